/**
 * How the processor topology runs a replayed event (docs/replay.md), broker-less through the
 * topology test driver with a fake executor, and the executor adapter's partner selection.
 */
import { expect } from 'chai';
import { parseEvent, parsePartners, type ExecuteResult, type PageViewEvent, type RequestRecord, type StoredJar } from '../../core/contracts/index.ts';
import { processorTopology } from '../../topology/app/processor.ts';
import { TopologyTestDriver } from '../../topology/index.ts';
import { poolExecutor } from '../../runtime/roles/executor-adapter.ts';

function event(userId: string, eventId: string, replay?: { partners: string[] | null; requestedAt: string }): PageViewEvent {
  return parseEvent({ eventId, userId, timestamp: '2026-11-29T10:00:00.000Z', page: { url: 'https://shop.example/' }, ...(replay === undefined ? {} : { replay }) });
}

/** Two partners, two requests each, one unattributed; the jar counts visits (what the tags "wrote"). */
function fakeExecutor(calls: Array<{ eventId: string; jarVersion: number | null }>) {
  return async (e: PageViewEvent, jar: StoredJar | null): Promise<ExecuteResult> => {
    calls.push({ eventId: e.eventId, jarVersion: jar?.version ?? null });
    const visits = Number(jar?.localStorage['https://shop.example']?.visits ?? '0') + 1;
    const r = (partner: string | null, path: string) => ({ partner, method: 'GET', url: `https://collect.example${path}?v=${visits}`, headers: {}, body: null, bodyEncoding: 'utf8' as const, transport: 'image' as const });
    const all = [r('a', '/a1'), r('b', '/b1'), r(null, '/x'), r('a', '/a2'), r('b', '/b2')];
    const only = e.replay?.partners ?? null;
    return {
      requests: all.filter((q) => only === null || q.partner === null || only.includes(q.partner)),
      jar: { cookies: [], localStorage: { 'https://shop.example': { visits: String(visits) } } },
      trackers: [],
    };
  };
}

describe('replay: the processor runs a replayed event', () => {
  it('with the current jar, the first run\'s idempotency keys for the named partners, `replayedAt`, and no jar written', async () => {
    const calls: Array<{ eventId: string; jarVersion: number | null }> = [];
    const driver = new TopologyTestDriver(processorTopology({ executor: fakeExecutor(calls), now: () => Date.UTC(2026, 10, 29, 12) }));
    await driver.pipeInput('tracking.events', 'u1', event('u1', 'e1'));
    await driver.pipeInput('tracking.events', 'u1', event('u1', 'e2'));
    const first = driver.outputs('tracking.requests').map((o) => o.value as RequestRecord);
    expect(first.filter((r) => r.eventId === 'e1').map((r) => r.idempotencyKey)).to.deep.equal(['e1:a:0', 'e1:b:0', 'e1:-:0', 'e1:a:1', 'e1:b:1']);
    expect(driver.store<StoredJar>('cookie-jars').get('u1')?.version).to.equal(2);
    const jarWrites = driver.outputs('tracking.cookies').length;

    const requestedAt = '2026-11-29T12:00:00.000Z';
    await driver.pipeInput('tracking.events', 'u1', event('u1', 'e1', { partners: ['a'], requestedAt }));
    await driver.pipeInput('tracking.events', 'u1', event('u1', 'e1', { partners: null, requestedAt }));
    const replayed = driver.outputs('tracking.requests').map((o) => o.value as RequestRecord).slice(first.length);
    // --partner a: only a's requests, same keys; the unattributed one cannot be matched, dropped.
    expect(replayed.slice(0, 2).map((r) => [r.idempotencyKey, r.replayedAt])).to.deep.equal([['e1:a:0', requestedAt], ['e1:a:1', requestedAt]]);
    // All partners: the first run's five keys again.
    expect(replayed.slice(2).map((r) => r.idempotencyKey)).to.deep.equal(['e1:a:0', 'e1:b:0', 'e1:-:0', 'e1:a:1', 'e1:b:1']);
    expect(replayed.every((r) => r.replayedAt === requestedAt && r.eventTimestamp === '2026-11-29T10:00:00.000Z')).to.equal(true);
    // The replays ran with the current jar (version 2) and wrote none.
    expect(calls.slice(2)).to.deep.equal([{ eventId: 'e1', jarVersion: 2 }, { eventId: 'e1', jarVersion: 2 }]);
    expect(driver.outputs('tracking.cookies')).to.have.length(jarWrites);
    expect(driver.store<StoredJar>('cookie-jars').get('u1')?.version).to.equal(2);
    // The next live page view starts from the real jar.
    await driver.pipeInput('tracking.events', 'u1', event('u1', 'e3'));
    expect(calls.at(-1)).to.deep.equal({ eventId: 'e3', jarVersion: 2 });
    expect(driver.store<StoredJar>('cookie-jars').get('u1')?.version).to.equal(3);
    await driver.close();
  });

  it('the executor adapter runs only the partners a replay names (none known: nothing runs)', async () => {
    const partners = parsePartners([
      { id: 'a', html: '<script></script>' },
      { id: 'b', html: '<script></script>' },
    ]);
    const ran: string[][] = [];
    const pool = {
      execute: async (_e: unknown, _j: unknown, ps: readonly { id: string }[]): Promise<ExecuteResult> => {
        ran.push(ps.map((p) => p.id));
        return { requests: [], jar: { cookies: [], localStorage: {} }, trackers: [] };
      },
    };
    const run = poolExecutor(pool, partners);
    const signal = new AbortController().signal;
    await run(event('u', 'e'), null, signal);
    await run(event('u', 'e', { partners: ['b'], requestedAt: '2026-11-29T12:00:00Z' }), null, signal);
    await run(event('u', 'e', { partners: null, requestedAt: '2026-11-29T12:00:00Z' }), null, signal);
    const none = await run(event('u', 'e', { partners: ['gone'], requestedAt: '2026-11-29T12:00:00Z' }), null, signal);
    expect(ran).to.deep.equal([['a', 'b'], ['b'], ['a', 'b']]);
    expect(none.requests).to.deep.equal([]);
  });
});
