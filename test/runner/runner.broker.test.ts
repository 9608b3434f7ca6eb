/**
 * Runner scenarios against the real Kafka broker of the mocha root hook. Adapter: platformatic by
 * default; RUNNER_TEST_CLIENT=kafkajs runs the same scenarios on kafkajs.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { StreamRunner } from '../../runtime/runner/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { eventRecord, waitFor, type RunnerTestEnv } from './helpers.ts';
import { defineRunnerScenarios } from './scenarios.ts';

const kind = process.env.RUNNER_TEST_CLIENT === 'kafkajs' ? 'kafkajs' : 'platformatic';

function brokerEnv(): RunnerTestEnv {
  const { brokers } = realBroker();
  const clients: KafkaClient[] = [];
  const created: string[] = [];
  const client = (): KafkaClient => {
    const c = createKafkaClient(kind, { brokers, clientId: 'runner-test' });
    clients.push(c);
    return c;
  };
  const setup = client();
  return {
    name: kind,
    client,
    async createTopics(specs) {
      const admin = await setup.admin();
      try {
        await admin.createTopics(specs);
        created.push(...specs.map((s) => s.name));
      } finally {
        await admin.close();
      }
    },
    topic: (prefix) => uniqueTopic(`runner-${prefix}`),
    async close() {
      if (created.length > 0) {
        const admin = await setup.admin();
        await admin.deleteTopics(created).catch(() => undefined);
        await admin.close();
      }
      await Promise.allSettled(clients.map((c) => c.close()));
    },
  };
}

describe(`runner (real broker, ${kind} client)`, () => {
  defineRunnerScenarios(() => Promise.resolve(brokerEnv()), { slowEvents: 120, maxBatch: 40 });

  it('a step longer than the session timeout, with fetching paused, costs no membership (heartbeats go on)', async function () {
    this.timeout(60_000);
    const env = brokerEnv();
    const source = env.topic('long');
    await env.createTopics([{ name: source, partitions: 2 }]);
    const client = env.client();
    const producer = await client.producer();
    await producer.send([eventRecord(source, 'a', 0), eventRecord(source, 'b', 1), eventRecord(source, 'a', 2)]);
    const registry = new Registry();
    const r = new StreamRunner({
      client,
      registry,
      groupId: env.topic('g-long'),
      topic: source,
      concurrency: 2,
      maxBuffered: 2, // fetching stays paused for the whole step: heartbeats must not depend on fetching
      sessionTimeoutMs: 6000, // the broker's group.min.session.timeout.ms
      heartbeatIntervalMs: 1000,
      handler: () => sleep(7000),
    });
    try {
      await r.start();
      let pausedSeen = 0;
      await waitFor('3 records processed', () => {
        pausedSeen = Math.max(pausedSeen, r.status().pausedPartitions.length);
        return r.status().processed === 3;
      }, 40_000, 100);
      expect(pausedSeen, 'fetching was paused during the step').to.be.greaterThan(0);
      const rebalanced = await registry.getSingleMetricAsString('tagstream_runner_partitions_rebalanced_total');
      expect(rebalanced).to.not.match(/kind="revoked"/);
      expect(r.status().partitions.map((p) => p.partition).sort()).to.deep.equal([0, 1]);
    } finally {
      await r.stop(1000);
      await producer.close();
      await env.close();
    }
  });
});
