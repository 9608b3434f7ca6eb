/**
 * The dispatcher topology as data and on the in-process driver (no broker): its shape for
 * `topology describe`, the idempotency window, the retry loop and the dead letters.
 */
import { expect } from 'chai';
import { parseRequestRecord } from '../../core/contracts/index.ts';
import { TopologyTestDriver } from '../../topology/driver.ts';
import { DEFAULT_DISPATCHER_TOPICS as T, dispatcherTopology, type Deliver, type DeliveryOutcome } from '../../topology/app/dispatcher.ts';
import { requestRecord } from './helpers.ts';

describe('dispatcher topology', () => {
  it('reads requests and retries, keeps delivered keys in a compacted changelog co-partitioned with both', () => {
    const t = dispatcherTopology({ deliver: () => Promise.reject(new Error('unused')) });
    expect(t.streamTopics).to.deep.equal([T.requests, T.retry]);
    expect(t.compactedTopics).to.deep.equal([T.delivered]);
    expect(t.copartitionGroups).to.deep.equal([[T.requests, T.delivered, T.retry]]);
    expect(t.sinkTopics.sort()).to.deep.equal([T.delivered, T.events, T.requestsDlq, T.retry].sort());
    const text = t.describe().toString();
    for (const node of ['decode-request', 'decode-retry', 'pending-requests', 'join-delivered-keys', 'skip-delivered', 'deliver-request', 'delivery-outcome', 'record-delivered', 'partner-cookies', 'retry-record', 'hold-again', 'request-dead-letter']) {
      expect(text).to.contain(node);
    }
  });

  it('a delivered key is skipped within the dedupe window and sent again after it; retries loop, dead letters go to the DLQ', async () => {
    let clock = 1_000_000;
    const calls: string[] = [];
    let next: DeliveryOutcome['kind'] = 'delivered';
    const deliver: Deliver = (p) => {
      calls.push(p.request.idempotencyKey);
      const attempts = [{ at: new Date(clock).toISOString(), status: next === 'dead' ? 400 : 204 }];
      if (next === 'retry') return Promise.resolve({ kind: 'retry', partner: 'pa', attempts, firstAttemptAt: new Date(clock).toISOString(), notBefore: new Date(clock + 60_000).toISOString(), rounds: 1 });
      if (next === 'dead') return Promise.resolve({ kind: 'dead', partner: 'pa', reason: 'permanent-failure', code: 'ERR_DISPATCH_STATUS', error: 'pa answered 400', attempts });
      return Promise.resolve({ kind: 'delivered', partner: 'pa', status: 204, attempts, cookies: [] });
    };
    let duplicates = 0;
    const driver = new TopologyTestDriver(dispatcherTopology({ deliver, dedupeWindowMs: 10_000, retryHoldMs: 1, now: () => clock, onDuplicate: () => (duplicates += 1) }));
    try {
      const r1 = parseRequestRecord(requestRecord('1', 'pa', 'https://collect.partner-a.example/hit'));
      await driver.pipeInput(T.requests, r1.userId, r1);
      await driver.pipeInput(T.requests, r1.userId, r1);
      expect(calls).to.have.length(1);
      expect(duplicates).to.equal(1);
      clock += 20_000;
      await driver.pipeInput(T.requests, r1.userId, r1);
      expect(calls, 'outside the window it is a new delivery').to.have.length(2);
      expect(Object.keys((driver.outputs(T.delivered).at(-1)?.value as { keys: Record<string, number> }).keys)).to.deep.equal([r1.idempotencyKey]);

      next = 'retry';
      const r2 = parseRequestRecord(requestRecord('2', 'pa', 'https://collect.partner-a.example/hit'));
      await driver.pipeInput(T.requests, r2.userId, r2);
      const retry = driver.outputs(T.retry).at(-1)?.value as { notBefore: string; rounds: number };
      expect(retry.rounds).to.equal(1);
      // Not due yet: held briefly, then sent round the retry topic again, unchanged, without a delivery.
      const before = calls.length;
      await driver.pipeInput(T.retry, r2.userId, retry);
      expect(calls.length).to.equal(before);
      expect(driver.outputs(T.retry).at(-1)?.value).to.deep.include({ notBefore: retry.notBefore });
      clock += 61_000;
      next = 'delivered';
      await driver.pipeInput(T.retry, r2.userId, retry);
      expect(calls.at(-1)).to.equal(r2.idempotencyKey);

      next = 'dead';
      const r3 = parseRequestRecord(requestRecord('3', 'pa', 'https://collect.partner-a.example/bad'));
      await driver.pipeInput(T.requests, r3.userId, r3);
      expect(driver.outputs(T.requestsDlq).at(-1)?.value).to.deep.include({ reason: 'permanent-failure', code: 'ERR_DISPATCH_STATUS' });
    } finally {
      await driver.close();
    }
  });
});
