/** ListOffsets by time (KafkaAdmin.listOffsetsForTime), what `replay` finds its range with: every adapter, the real broker for two. */
import { expect } from 'chai';
import { hasCode } from '../../core/errors.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient, KafkaClientKind } from '../../runtime/kafka/types.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';

const T0 = Date.parse('2026-11-29T09:00:00Z');

for (const kind of ['platformatic', 'kafkajs', 'embedded'] as KafkaClientKind[]) {
  describe(`listOffsetsForTime (${kind})`, function () {
    this.timeout(60_000);
    let client: KafkaClient;

    before(() => {
      client = createKafkaClient(kind, { brokers: kind === 'embedded' ? [] : realBroker().brokers, clientId: 'offsets-for-time' });
    });
    after(async () => client?.close());

    it('the earliest offset at or after the time per partition, the end offset when none is that recent', async () => {
      const topic = uniqueTopic(`oft-${kind}`);
      const admin = await client.admin();
      try {
        await admin.createTopics([{ name: topic, partitions: 2 }]);
        const producer = await client.producer();
        try {
          await producer.send([0, 1, 2].map((i) => ({ topic, key: null, value: `p0-${i}`, partition: 0, timestamp: T0 + i * 60_000 })));
          await producer.send([{ topic, key: null, value: 'p1-0', partition: 1, timestamp: T0 + 10 * 60_000 }]);
        } finally {
          await producer.close();
        }
        const at = async (ms: number): Promise<number[]> => (await admin.listOffsetsForTime(topic, ms)).map((p) => p.offset);
        expect(await at(0)).to.deep.equal([0, 0]);
        expect(await at(T0)).to.deep.equal([0, 0]);
        expect(await at(T0 + 1)).to.deep.equal([1, 0]);
        expect(await at(T0 + 120_000)).to.deep.equal([2, 0]);
        expect(await at(T0 + 120_001)).to.deep.equal([3, 0]);
        expect(await at(T0 + 10 * 60_000 + 1)).to.deep.equal([3, 1]);
        try {
          await admin.listOffsetsForTime(`${topic}-missing`, T0);
          expect.fail('a missing topic was answered');
        } catch (error) {
          expect(hasCode(error, 'ERR_KAFKA_UNKNOWN_TOPIC'), String(error)).to.equal(true);
        }
      } finally {
        await admin.deleteTopics([topic]).catch(() => undefined);
        await admin.close();
      }
    });
  });
}
