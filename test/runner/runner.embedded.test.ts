/** Runner scenarios on the embedded in-process broker (fast; no network). */
import { EmbeddedKafka, createEmbeddedClient } from '../../runtime/kafka/embedded/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import type { RunnerTestEnv } from './helpers.ts';
import { defineRunnerScenarios } from './scenarios.ts';

function embeddedEnv(): RunnerTestEnv {
  const broker = new EmbeddedKafka();
  const clients: KafkaClient[] = [];
  let n = 0;
  return {
    name: 'embedded',
    client() {
      const c = createEmbeddedClient(broker);
      clients.push(c);
      return c;
    },
    createTopics(specs) {
      broker.createTopics(specs);
      return Promise.resolve();
    },
    topic(prefix) {
      n += 1;
      return `${prefix}-${n}`;
    },
    async close() {
      await Promise.allSettled(clients.map((c) => c.close()));
    },
  };
}

describe('runner (embedded client)', () => {
  defineRunnerScenarios(() => Promise.resolve(embeddedEnv()), { slowEvents: 120, maxBatch: 12 });
});
