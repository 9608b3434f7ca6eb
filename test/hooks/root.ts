/**
 * Mocha root hook: one real Kafka broker for the whole run (integration suites reach it through
 * test/helpers/kafka.ts). KAFKA_BROKERS set = use that broker instead (e.g. `npm run kafka` in
 * another terminal), so a developer can skip the start-up. TAGSTREAM_NO_BROKER=1 (`npm run
 * test:unit`) starts none: the unit list needs neither broker nor browser, and a suite that calls
 * `realBroker()` there fails at once, saying so.
 */
import { startLocalBroker, type LocalBroker } from '../../runtime/kafka-local/broker.ts';
import { setRealBroker } from '../helpers/kafka.ts';

// Keep the test report readable: components log JSON to stderr; info-level lines of hundreds of
// runner starts drown the results. LOG_LEVEL=info mocha ... shows them again.
process.env.LOG_LEVEL ??= 'warn';

let broker: LocalBroker | undefined;

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    if (process.env.TAGSTREAM_NO_BROKER === '1') {
      console.log('  Kafka: no broker (TAGSTREAM_NO_BROKER=1: unit tests only)');
      return;
    }
    const external = process.env.KAFKA_BROKERS;
    if (external) {
      setRealBroker({ brokers: external.split(',').map((b) => b.trim()), version: 'external' });
      console.log(`  Kafka: external broker ${external}`);
      return;
    }
    const started = Date.now();
    broker = await startLocalBroker();
    setRealBroker({ brokers: broker.brokers, version: broker.version });
    console.log(`  Kafka: Apache Kafka ${broker.version} (KRaft, single node) at ${broker.brokers.join(',')}, started in ${Date.now() - started} ms`);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(30_000);
    setRealBroker(undefined);
    await broker?.stop();
    broker = undefined;
  },
};
