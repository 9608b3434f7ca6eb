import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../runtime/config.ts';
import { InvalidInputError } from '../../core/errors.ts';

describe('settings (runtime/config.ts)', () => {
  it('defaults to the embedded broker and the DESIGN.md topic names', () => {
    const s = loadSettings({ env: {} });
    expect(s.brokers).to.deep.equal([]);
    expect(s.client).to.equal('platformatic');
    expect(s.topics).to.deep.equal({
      events: 'tracking.events',
      cookies: 'tracking.cookies',
      requests: 'tracking.requests',
      requestsDlq: 'tracking.requests.dlq',
      eventsDlq: 'tracking.events.dlq',
    });
  });

  it('file < environment < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ partitions: 3, client: 'kafkajs', topics: { events: 'ev' } }));
    const s = loadSettings({ configFile: file, env: { TOPIC_PARTITIONS: '12' }, flags: { client: 'platformatic' } });
    expect(s.partitions).to.equal(12);
    expect(s.client).to.equal('platformatic');
    expect(s.topics.events).to.equal('ev');
    expect(s.topics.cookies).to.equal('tracking.cookies');
  });

  it('names the field and the variable of a bad value', () => {
    expect(() => loadSettings({ env: { TOPIC_PARTITIONS: 'many' } }))
      .to.throw(InvalidInputError, /partitions \(TOPIC_PARTITIONS\)/);
    expect(() => loadSettings({ env: { KAFKA_BROKERS: 'localhost' } }))
      .to.throw(InvalidInputError, /brokers.*KAFKA_BROKERS.*host:port/);
    expect(() => loadSettings({ flags: { client: 'librdkafka' as 'kafkajs' } })).to.throw(InvalidInputError, /^client/);
  });

  it('rejects unknown keys in the file instead of ignoring a typo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ partitons: 3 }));
    expect(() => loadSettings({ configFile: file, env: {} })).to.throw(InvalidInputError, /partitons|Unrecognized/);
  });

  it('a missing or malformed file is a clear error', () => {
    expect(() => loadSettings({ configFile: '/nonexistent/x.json', env: {} })).to.throw(InvalidInputError, /--config: cannot read/);
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, '{');
    expect(() => loadSettings({ configFile: file, env: {} })).to.throw(InvalidInputError, /not valid JSON/);
  });
});
