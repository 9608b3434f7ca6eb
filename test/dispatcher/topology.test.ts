/**
 * The dispatcher topology as data and on the in-process driver (no broker): its shape for
 * `topology describe`, the idempotency window, the retry loop and the dead letters.
 */
import { expect } from 'chai';
import { parseRequestRecord } from '../../core/contracts/index.ts';
import { TopologyTestDriver } from '../../topology/driver.ts';
import { DEFAULT_DISPATCHER_TOPICS as T, dispatcherTopology, type Deliver, type DeliveryOutcome, type PendingDelivery } from '../../topology/app/dispatcher.ts';
import { decodeRetry } from '../../runtime/roles/dispatcher-retry.ts';
import { requestRecord } from './helpers.ts';

describe('dispatcher topology', () => {
  it('reads requests only (the retry consumer hands due retries back there), keeps delivered keys in a compacted changelog co-partitioned with them', () => {
    const t = dispatcherTopology({ deliver: () => Promise.reject(new Error('unused')) });
    expect(t.streamTopics).to.deep.equal([T.requests]);
    expect(t.compactedTopics).to.deep.equal([T.delivered]);
    expect(t.copartitionGroups).to.deep.equal([[T.requests, T.delivered]]);
    expect(t.sinkTopics.sort()).to.deep.equal([T.delivered, T.events, T.requestsDlq, T.retry].sort());
    const text = t.describe().toString();
    for (const node of ['decode-request', 'join-delivered-keys', 'skip-delivered', 'deliver-request', 'delivery-outcome', 'record-delivered', 'partner-cookies', 'retry-record', 'request-dead-letter']) {
      expect(text).to.contain(node);
    }
    expect(text, 'nothing in the topology waits for a due time').to.not.match(/hold-again|not-due|retry-source/);
  });

  it('a delivered key is skipped within the dedupe window and sent again after it; retries loop, dead letters go to the DLQ', async () => {
    let clock = 1_000_000;
    const calls: string[] = [];
    const seen: PendingDelivery[] = [];
    let next: DeliveryOutcome['kind'] = 'delivered';
    const deliver: Deliver = (p) => {
      calls.push(p.request.idempotencyKey);
      seen.push(p);
      const attempts = [{ at: new Date(clock).toISOString(), status: next === 'dead' ? 400 : 204 }];
      if (next === 'retry') return Promise.resolve({ kind: 'retry', partner: 'pa', attempts, firstAttemptAt: new Date(clock).toISOString(), notBefore: new Date(clock + 60_000).toISOString(), rounds: 1 });
      if (next === 'dead') return Promise.resolve({ kind: 'dead', partner: 'pa', reason: 'permanent-failure', code: 'ERR_DISPATCH_STATUS', error: 'pa answered 400', attempts });
      return Promise.resolve({ kind: 'delivered', partner: 'pa', status: 204, attempts, cookies: [] });
    };
    let duplicates = 0;
    const driver = new TopologyTestDriver(dispatcherTopology({ deliver, dedupeWindowMs: 10_000, now: () => clock, onDuplicate: () => (duplicates += 1) }));
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
      const retry = driver.outputs(T.retry).at(-1)?.value as { notBefore: string; rounds: number; request: Record<string, unknown> };
      expect(retry.rounds).to.equal(1);
      expect(retry.request).to.not.have.property('retry');
      // The retry consumer hands it back to tracking.requests once due, with its attempts in `retry`.
      const back = decodeRetry({ value: Buffer.from(JSON.stringify(retry)) });
      expect(back.due).to.equal(Date.parse(retry.notBefore));
      clock += 61_000;
      next = 'delivered';
      await driver.pipeInput(T.requests, r2.userId, back.request);
      expect(calls.at(-1)).to.equal(r2.idempotencyKey);
      const pending = seen.at(-1) as PendingDelivery;
      expect(pending.rounds, 'the backoff goes on from its round').to.equal(1);
      expect(pending.attempts.map((a) => a.status)).to.deep.equal([204]);
      expect(pending.firstAttemptAt).to.equal(new Date(clock - 61_000).toISOString());
      expect(pending.request, 'the delivery sees the request without the marker').to.not.have.property('retry');
      expect(driver.outputs(T.retry), 'delivered: nothing more to retry').to.have.length(1);

      next = 'dead';
      const r3 = parseRequestRecord(requestRecord('3', 'pa', 'https://collect.partner-a.example/bad'));
      await driver.pipeInput(T.requests, r3.userId, r3);
      expect(driver.outputs(T.requestsDlq).at(-1)?.value).to.deep.include({ reason: 'permanent-failure', code: 'ERR_DISPATCH_STATUS' });
    } finally {
      await driver.close();
    }
  });
});
