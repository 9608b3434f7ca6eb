/**
 * The jar budget as the executor applies it, and what the jar keeps when a store cannot be read:
 * who a dropped entry belongs to, the outcome warnings, the counter and the log line, and the
 * storage journal (no Chromium: pure functions and a prom-client registry).
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { DEFAULT_JAR_BUDGET, type DroppedJarEntry } from '../../core/contracts/jar-budget.ts';
import { createRootLogger } from '../../core/log.ts';
import { limitJar } from '../../processors/executor/jar-limits.ts';
import { executorMetrics } from '../../processors/executor/metrics.ts';
import {
  cappedJarWarnings,
  entryHost,
  ownerOfDropped,
  partialWarnings,
  partnerOfDomain,
  partnerOfOrigin,
  withWarnings,
} from '../../processors/executor/page/jar-attribution.ts';
import { framesOfHungPage } from '../../processors/executor/page/frame-storage.ts';
import { policyOf } from '../../processors/executor/page/router.ts';
import { StorageJournal } from '../../processors/executor/page/storage-journal.ts';
import { parsePartners, type ExecuteResult } from '../../processors/executor/schemas.ts';

const partners = parsePartners([
  { id: 'a', html: '', allowHosts: ['cdn.a.example', 'https://static.shared.example/a.js'], captureHosts: ['collect.a.example:8443'] },
  { id: 'b', html: '', allowHosts: ['[::1]:9000'], captureHosts: ['px.b.example', 'static.shared.example'] },
  { id: 'c', html: '', allowHosts: ['cdn.c.example'] },
]);
const policy = policyOf(partners);
const drop = (over: Partial<DroppedJarEntry>): DroppedJarEntry => ({ kind: 'localStorage', where: 'https://shop.example', name: 'k', bytes: 10, limit: 'originStorageBytes', ...over });

describe('executor jar budget: attribution and warnings (pure)', () => {
  it('reads the host of every kind of allowHosts/captureHosts entry', () => {
    expect(['cdn.a.example', 'Collect.A.example:8443', '[::1]:9000', 'https://static.shared.example/a.js', 'http://x'].map(entryHost)).to.deep.equal([
      'cdn.a.example',
      'collect.a.example',
      '[::1]',
      'static.shared.example',
      'x',
    ]);
  });

  it('names the one partner whose hosts serve an origin or fall in a cookie domain; a shared host names none', () => {
    expect(partnerOfOrigin(policy, 'https://cdn.a.example')).to.equal('a');
    expect(partnerOfOrigin(policy, 'http://[::1]:9000')).to.equal('b');
    expect(partnerOfOrigin(policy, 'https://static.shared.example')).to.equal(null);
    expect(partnerOfOrigin(policy, 'https://shop.example')).to.equal(null);
    expect(partnerOfDomain(policy, '.c.example')).to.equal('c');
    expect(partnerOfDomain(policy, 'b.example')).to.equal('b');
    // Both a and c have hosts under example: nobody.
    expect(partnerOfDomain(policy, 'example')).to.equal(null);
  });

  it('attributes a dropped entry to the code that wrote it, then to hosts, else to nobody', () => {
    const ctx = {
      writers: { cookies: { big: 'b', ghost: 'gone' }, localStorage: { k0: 'a', constructor: 'c' } },
      policy,
      pageOrigin: 'https://shop.example',
      activeIds: new Set(['a', 'b', 'c']),
    };
    expect(ownerOfDropped(drop({ name: 'k0' }), ctx)).to.equal('a');
    expect(ownerOfDropped(drop({ name: 'constructor' }), ctx)).to.equal('c');
    // Not an own key of the writers map: not attributed through Object.prototype.
    expect(ownerOfDropped(drop({ name: 'toString' }), ctx)).to.equal(null);
    expect(ownerOfDropped(drop({ kind: 'cookie', where: 'shop.example', name: 'big (/p)', limit: 'jarBytes' }), ctx)).to.equal('b');
    // A writer that did not run this visit is not believed; the domain decides then.
    expect(ownerOfDropped(drop({ kind: 'cookie', where: 'shop.example', name: 'ghost' }), ctx)).to.equal(null);
    expect(ownerOfDropped(drop({ kind: 'cookie', where: 'px.b.example', name: 'x' }), ctx)).to.equal('b');
    // A frame's localStorage: the writers map is the page's, the frame origin's partner decides.
    expect(ownerOfDropped(drop({ where: 'https://cdn.a.example', name: 'k0' }), { ...ctx, writers: { cookies: {}, localStorage: {} } })).to.equal('a');
  });

  it('words warnings without values, caps them per partner and appends them to outcomes', () => {
    const lines = Array.from({ length: 23 }, (_, i) => ({ line: `w${i}`, bytes: 100 }));
    const capped = cappedJarWarnings(lines);
    expect(capped).to.have.length(21);
    expect(capped[20]).to.equal('jar: dropped 3 more entries (300 bytes)');
    const trackers = [
      { partner: 'a', status: 'ok' as const, durationMs: 1, error: null },
      { partner: 'b', status: 'timeout' as const, durationMs: 2, error: 'x', warnings: ['earlier'] },
    ];
    const out = withWarnings(trackers, new Map([['b', ['later']], ['a', []]]));
    expect(out[0]).to.equal(trackers[0]);
    expect(out[1]?.warnings).to.deep.equal(['earlier', 'later']);
    const partial = partialWarnings(
      [
        { what: 'localStorage', origin: 'https://cdn.a.example', reason: 'gone' },
        { what: 'cookies', origin: null, reason: 'timed out' },
      ],
      policy,
      'https://shop.example',
      ['a', 'b'],
    );
    expect(Object.fromEntries(partial)).to.deep.equal({
      a: ['capture: partial (localStorage of https://cdn.a.example not readable: gone)', 'capture: partial (cookies not readable: timed out)'],
      b: ['capture: partial (cookies not readable: timed out)'],
    });
  });

  it('cuts a result\'s jar, counts and logs each drop once per run, and tells the writer or every partner that ran', async () => {
    const registry = new Registry();
    const logged: string[] = [];
    const log = createRootLogger({ level: 'warn', destination: { write: (s: string) => void logged.push(s) } });
    const big = 'x'.repeat(70_000);
    const result: ExecuteResult = {
      requests: [],
      jar: { cookies: [], localStorage: { 'https://shop.example': { mine: big, nobody: big, small: 'v' } } },
      trackers: [
        { partner: 'a', status: 'ok', durationMs: 1, error: null },
        { partner: 'b', status: 'timeout', durationMs: 2, error: 'did not yield' },
        { partner: 'c', status: 'skipped', durationMs: 0, error: null },
      ],
    };
    const out = limitJar(result, {
      budget: DEFAULT_JAR_BUDGET,
      eventId: 'e1',
      pageOrigin: 'https://shop.example',
      active: partners.slice(0, 2),
      writers: { cookies: {}, localStorage: { mine: 'a' } },
      metrics: executorMetrics(registry),
      log,
    });
    expect(out.jar.localStorage).to.deep.equal({ 'https://shop.example': { small: 'v' } });
    expect(out.trackers.map((t) => [t.partner, t.status, t.warnings])).to.deep.equal([
      [
        'a',
        'ok',
        [
          // Largest first, as the budget dropped them.
          'jar: dropped localStorage nobody on https://shop.example (70006 bytes, originStorageBytes, unattributed)',
          'jar: dropped localStorage mine on https://shop.example (70004 bytes, originStorageBytes)',
        ],
      ],
      ['b', 'timeout', ['jar: dropped localStorage nobody on https://shop.example (70006 bytes, originStorageBytes, unattributed)']],
      ['c', 'skipped', undefined],
    ]);
    const counted = (await registry.getSingleMetric('tagstream_executor_jar_dropped_total')?.get())?.values ?? [];
    expect(counted.map((v) => [v.labels, v.value])).to.have.deep.members([
      [{ partner: 'a', where: 'https://shop.example', kind: 'localStorage', limit: 'originStorageBytes' }, 1],
      [{ partner: '', where: 'https://shop.example', kind: 'localStorage', limit: 'originStorageBytes' }, 1],
    ]);
    expect(logged).to.have.length(1);
    const line = JSON.parse(logged[0] ?? '{}') as Record<string, unknown>;
    expect(line).to.deep.include({ level: 40, eventId: 'e1', dropped: 2, bytes: 140_010, msg: 'jar over its budget: entries dropped' });
    expect(logged[0]).not.to.contain('xxxx');
    // Within the budget: the same result, untouched.
    expect(limitJar(out, { budget: DEFAULT_JAR_BUDGET, eventId: 'e2', pageOrigin: 'https://shop.example', active: [], writers: { cookies: {}, localStorage: {} }, metrics: executorMetrics(registry), log })).to.equal(out);
  });
});

describe('executor storage journal (pure)', () => {
  const id = (origin: string, isLocalStorage = true) => ({ securityOrigin: origin, storageKey: `${origin}/`, isLocalStorage });

  it('applies each key\'s last write over the jar\'s values, removals too, never a clear', () => {
    const j = new StorageJournal();
    j.record({ storageId: id('https://shop.example'), change: 'clear', key: '', value: '' });
    j.record({ storageId: id('https://shop.example'), change: 'set', key: 'small', value: 'v1' });
    j.record({ storageId: id('https://shop.example'), change: 'set', key: 'small', value: 'v2' });
    j.record({ storageId: id('https://shop.example'), change: 'remove', key: 'gone', value: '' });
    j.record({ storageId: id('https://shop.example'), change: 'set', key: '__proto__', value: 'p' });
    j.record({ storageId: id('https://shop.example', false), change: 'set', key: 'session', value: 's' });
    j.record({ storageId: { storageKey: 'https://f.example/^0https://shop.example', isLocalStorage: true }, change: 'set', key: 'fid', value: 'F1' });
    j.record({ storageId: id('https://shop.example'), change: 'clear', key: '', value: '' });
    const page = j.applyTo('https://shop.example', { old: 'o1', gone: 'g' });
    expect(page).to.deep.equal({ old: 'o1', small: 'v2', ['__proto__']: 'p' });
    expect(Object.getPrototypeOf(page)).to.equal(Object.prototype);
    expect(j.applyTo('https://f.example', {})).to.deep.equal({ fid: 'F1' });
    expect(j.applyTo('https://other.example', { keep: '1' })).to.deep.equal({ keep: '1' });
    expect(j.clears).to.equal(2);
    expect(j.has('https://shop.example')).to.equal(true);
    expect(j.has('https://other.example')).to.equal(false);
  });

  it('keeps what frames removed earlier sent when the page hung, and names the others unread', () => {
    const pageUrl = new URL('https://shop.example/p');
    const frames = framesOfHungPage(
      new Set(['https://shop.example', 'https://f.example', 'https://g.example']),
      ['https://j.example'],
      pageUrl,
      new Map([['https://f.example', { fid: 'F1' }]]),
    );
    expect([...frames.items]).to.deep.equal([['https://f.example', { fid: 'F1' }]]);
    expect([...frames.unread]).to.deep.equal([['https://g.example', 'the page stopped answering']]);
    expect([...frames.keys.keys()]).to.deep.equal(['https://f.example', 'https://g.example', 'https://j.example']);
  });
});
