/**
 * The README's settings table is generated from the settings schema (scripts/settings-table.ts):
 * these tests fail when a setting has no documented meaning, when the table in README.md is not
 * what the generator writes now (run `npm run docs:settings`), or when the environment map points
 * at a setting that does not exist.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ENV_SETTINGS } from '../../runtime/config.ts';
import { BEGIN, END, MEANINGS, settingRows, settingsTable, withSettingsTable } from '../../scripts/settings-table.ts';

describe('README settings table (npm run docs:settings)', () => {
  const rows = settingRows();

  it('documents every setting of the schema with a meaning', () => {
    const missing = rows.filter((r) => r.meaning === undefined || r.meaning.trim() === '').map((r) => r.key);
    expect(missing, 'add their meaning to MEANINGS in scripts/settings-table.ts (or .describe() them in the schema)').to.deep.equal([]);
  });

  it('keeps no meaning of a setting that is gone', () => {
    const keys = new Set(rows.map((r) => r.key));
    expect(Object.keys(MEANINGS).filter((k) => !keys.has(k)), 'remove them from MEANINGS').to.deep.equal([]);
  });

  it('maps every environment variable to a setting of the table', () => {
    const keys = new Set(rows.map((r) => r.key));
    const dangling = Object.entries(ENV_SETTINGS).filter(([, s]) => !keys.has(s.path.join('.'))).map(([name]) => name);
    expect(dangling, 'ENV_SETTINGS entries whose path is not a setting').to.deep.equal([]);
    const listed = new Set(rows.flatMap((r) => r.env));
    expect(Object.keys(ENV_SETTINGS).filter((e) => !listed.has(e))).to.deep.equal([]);
  });

  it('shows defaults, variables and flags from the code', () => {
    const byKey = new Map(rows.map((r) => [r.key, r]));
    expect(byKey.get('metrics.port')).to.deep.include({ env: ['METRICS_PORT'], default: '`9464`' });
    expect(byKey.get('collector.port')?.flags).to.deep.equal(['--collector-port']);
    expect(byKey.get('couchbase.ttlSeconds')).to.deep.include({ env: ['COUCHBASE_TTL_SECONDS'], default: '`604800`' });
    expect(byKey.get('state.dir')?.default, 'no machine-specific path in the README').to.equal('`<os tmpdir>/tagstream/state`');
  });

  it('README.md holds the table the generator writes now', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).to.include(BEGIN).and.include(END);
    const block = readme.slice(readme.indexOf(BEGIN) + BEGIN.length + 1, readme.indexOf(END) - 1);
    expect(block, 'README.md is out of date: run `npm run docs:settings`').to.equal(settingsTable());
    expect(withSettingsTable(readme)).to.equal(readme);
  });

  it('notices a README row that differs from the code', () => {
    const readme = readFileSync('README.md', 'utf8');
    const edited = readme.replace('| `metrics.port` | `METRICS_PORT` | — | `9464` |', '| `metrics.port` | `METRICS_PORT` | — | `9000` |');
    expect(edited).to.not.equal(readme);
    expect(withSettingsTable(edited)).to.equal(readme);
  });
});
