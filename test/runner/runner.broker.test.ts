/**
 * Runner scenarios against the real Kafka broker of the mocha root hook. Adapter: platformatic by
 * default; RUNNER_TEST_CLIENT=kafkajs runs the same scenarios on kafkajs.
 */
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import type { RunnerTestEnv } from './helpers.ts';
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
});
