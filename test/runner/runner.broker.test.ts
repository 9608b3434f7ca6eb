/** Runner scenarios against the real Kafka broker of the mocha root hook (platformatic adapter). */
import { createPlatformaticClient } from '../../runtime/kafka/platformatic/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import type { RunnerTestEnv } from './helpers.ts';
import { defineRunnerScenarios } from './scenarios.ts';

function brokerEnv(): RunnerTestEnv {
  const { brokers } = realBroker();
  const clients: KafkaClient[] = [];
  const created: string[] = [];
  const client = (): KafkaClient => {
    const c = createPlatformaticClient({ brokers, clientId: 'runner-test' });
    clients.push(c);
    return c;
  };
  const setup = client();
  return {
    name: 'platformatic',
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

describe('runner (real broker, platformatic client)', () => {
  defineRunnerScenarios(() => Promise.resolve(brokerEnv()), { slowEvents: 120, maxBatch: 40 });
});
