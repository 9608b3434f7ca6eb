/**
 * The dispatcher's retry consumer on the real broker (runtime/roles/dispatcher-retry.ts): each
 * retry record waits on its own until its notBefore and goes back to tracking.requests with its
 * attempts; one that waits long holds back nothing behind it; stopping gives waiting records up
 * uncommitted; an undecodable record is dead-lettered and the partition moves on.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { parseRequestRecord, type RequestDeadLetter, type RetryRecord } from '../../core/contracts/index.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { startRetryConsumer } from '../../runtime/roles/dispatcher-retry.ts';
import { requestDeadLetters } from '../../runtime/roles/dispatcher.ts';
import type { StreamRunner } from '../../runtime/runner/index.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../runner/helpers.ts';
import { requestRecord } from './helpers.ts';
import { readJson } from './setup.ts';

describe('dispatcher retry consumer (real broker)', function () {
  this.timeout(60_000);
  let client: KafkaClient;
  let topics: { retry: string; requests: string; dlq: string };
  let group: string;
  const running: StreamRunner[] = [];

  before(async () => {
    client = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'retry-consumer-test' });
    const prefix = uniqueTopic('retryc');
    topics = { retry: `${prefix}-retry`, requests: `${prefix}-requests`, dlq: `${prefix}-dlq` };
    group = `${prefix}-group`;
    const admin = await client.admin();
    try {
      // readJson reads 3 partitions.
      await admin.createTopics([topics.retry, topics.requests, topics.dlq].map((name) => ({ name, partitions: 3 })));
    } finally {
      await admin.close();
    }
  });

  after(async () => {
    await Promise.allSettled(running.map((r) => r.stop(0)));
    await client.close();
  });

  const start = async (): Promise<StreamRunner> => {
    const r = await startRetryConsumer({ client, groupId: group, retryTopic: topics.retry, requestsTopic: topics.requests, buffer: 100, deadLetters: requestDeadLetters(topics.dlq), registry: new Registry(), runner: { sessionTimeoutMs: 10_000 } });
    running.push(r);
    return r;
  };
  const retryOf = (k: string, notBefore: number, rounds = 1): RetryRecord => ({
    request: parseRequestRecord(requestRecord(k, 'pa', 'https://collect.partner-a.example/hit', { userId: 'u-one' })),
    attempts: [{ at: new Date(notBefore - 1_000).toISOString(), status: 503 }],
    firstAttemptAt: new Date(notBefore - 2_000).toISOString(),
    notBefore: new Date(notBefore).toISOString(),
    rounds,
  });

  it('hands each record back when due, whatever waits in front of it; stopping gives up the waiting one uncommitted; bad records go to the DLQ', async () => {
    const first = await start();
    const now = Date.now();
    const producer = await client.producer();
    // One visitor, one partition, in this order: an hour away, not JSON, due in a second, overdue.
    await producer.send([
      { topic: topics.retry, key: 'u-one', value: JSON.stringify(retryOf('far', now + 3_600_000, 7)) },
      { topic: topics.retry, key: 'u-one', value: '{not json' },
      { topic: topics.retry, key: 'u-one', value: JSON.stringify(retryOf('soon', now + 1_000, 2)) },
      { topic: topics.retry, key: 'u-one', value: JSON.stringify(retryOf('late', now - 60_000, 1)) },
    ]);
    await producer.close();

    await waitFor('two records handed back', async () => (await readJson(client, topics.requests)).length >= 2, 20_000);
    const back = await readJson<Record<string, unknown>>(client, topics.requests);
    expect(back.map((r) => (r.value.eventId as string))).to.deep.equal(['e-late', 'e-soon'], 'the overdue one first, the far one holds back neither');
    for (const r of back) expect(r.key).to.equal('u-one');
    const soon = parseRequestRecord(back[1]?.value);
    expect(soon.retry).to.deep.equal({ attempts: retryOf('soon', now + 1_000).attempts, firstAttemptAt: new Date(now + 1_000 - 2_000).toISOString(), rounds: 2 });

    const dead = await readJson<RequestDeadLetter>(client, topics.dlq);
    expect(dead).to.have.length(1);
    expect(dead[0]?.value).to.deep.include({ reason: 'invalid-request', code: 'ERR_INVALID_INPUT' });
    expect(first.status().inFlight, 'the far one waits').to.equal(1);

    // An hour to go: stop(0) gives it up at once, and nothing is committed past it.
    await first.stop(0);
    const second = await start();
    await waitFor('the waiting record is read again by the next owner', () => second.status().inFlight >= 1, 20_000);
    // Records behind it were read again too (the commit cannot pass a waiting record): handed back
    // a second time, which the dispatcher's idempotency store absorbs once they are delivered.
    await waitFor('the ones behind it handed back again', async () => (await readJson(client, topics.requests)).length >= 4, 20_000);
    const again = (await readJson<Record<string, unknown>>(client, topics.requests)).map((r) => r.value.eventId);
    // Both are due by now: they go out at once, in either order.
    expect(again.slice(0, 2)).to.deep.equal(['e-late', 'e-soon']);
    expect(again.slice(2).sort()).to.deep.equal(['e-late', 'e-soon']);
    expect(again).to.not.include('e-far');
  });
});
