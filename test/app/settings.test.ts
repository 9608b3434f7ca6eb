import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../runtime/config.ts';
import { InvalidInputError } from '../../core/errors.ts';

describe('settings of the processor role (runtime/config.ts)', () => {
  it('defaults: runner settings of docs/runner.md, lmdb stores under the temp dir, one browser with four tabs', () => {
    const s = loadSettings({ env: {} });
    expect(s.runner).to.include({ concurrency: 16, maxBuffered: 1000, revokeTimeoutMs: 10_000, shutdownTimeoutMs: 30_000, autoOffsetReset: 'earliest', requireCompactedChangelog: true });
    expect(s.runner.commitIntervalMs).to.equal(undefined);
    expect(s.state).to.deep.equal({ dir: join(tmpdir(), 'tagstream', 'state'), store: 'lmdb', noSync: false });
    expect(s.processor).to.deep.equal({ retries: 1 });
    expect(s.executor).to.deep.equal({ browsers: 1, pagesPerBrowser: 4, headless: 'shell', allowPrivateNetwork: false, trustedClose: false, inPageCapture: true });
  });

  it('environment variables set them, booleans included; flags override one key of a section and keep the rest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ processor: { partners: 'from-file.json', retries: 3 }, runner: { maxBuffered: 50 } }));
    const s = loadSettings({
      configFile: file,
      env: { RUNNER_CONCURRENCY: '4', STATE_STORE: 'memory', STATE_NO_SYNC: 'yes', KAFKA_SESSION_TIMEOUT_MS: '6000', EXECUTOR_ALLOW_PRIVATE_NETWORK: 'false', PARTNERS_FILE: 'from-env.json' },
      flags: { processor: { partners: 'from-flag.json' } },
    });
    expect(s.runner).to.include({ concurrency: 4, maxBuffered: 50, sessionTimeoutMs: 6000 });
    expect(s.state).to.include({ store: 'memory', noSync: true });
    expect(s.executor.allowPrivateNetwork).to.equal(false);
    expect(s.processor).to.deep.equal({ partners: 'from-flag.json', retries: 3 });
  });

  it('a bad value names the setting and its variable', () => {
    expect(() => loadSettings({ env: { RUNNER_CONCURRENCY: '0' } })).to.throw(InvalidInputError, /^runner\.concurrency \(RUNNER_CONCURRENCY\)/);
    expect(() => loadSettings({ env: { STATE_STORE: 'rocksdb' } })).to.throw(InvalidInputError, /state\.store \(STATE_STORE\)/);
    expect(() => loadSettings({ env: { STATE_NO_SYNC: 'maybe' } })).to.throw(InvalidInputError, /state\.noSync \(STATE_NO_SYNC\)/);
    expect(() => loadSettings({ env: { RUNNER_MAX_BUFFERED: '10', RUNNER_RESUME_BELOW: '10' } })).to.throw(InvalidInputError, /resumeBelow/);
  });
});
