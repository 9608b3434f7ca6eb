import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { ConsumedRecord, PartitionReader } from '../../runtime/kafka/types.ts';
import { LmdbStoreProvider, restoreStores } from '../../state/index.ts';
import type { PageViewEventInput, StoredJar } from '../../core/contracts/index.ts';
import { processorTopology } from '../../topology/app/processor.ts';
import { TopologyTestDriver } from '../../topology/index.ts';

/**
 * The changelog is the source of truth: what the application topology produced to tracking.cookies,
 * replayed into an empty store, gives exactly the store the processing left behind.
 */
describe('state: the changelog rebuilds the store the topology wrote', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tagstream-roundtrip-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('processor topology on lmdb stores, 2 partitions; restore from its changelog output matches', async () => {
    const live = new LmdbStoreProvider({ stateDir: join(dir, 'live') });
    let n = 0;
    const app = processorTopology({
      executor: async (event, jar) => {
        n += 1;
        return {
          requests: [],
          jar: { cookies: [], localStorage: { 'https://shop.example': { last: event.eventId, seen: String((jar?.version ?? 0) + 1) } } },
          trackers: [],
        };
      },
      now: () => 0,
    });
    const users = ['ana', 'ben', 'cy', 'dee', 'eve'];
    const partitionOf = (_topic: string, key: string | null): number => (key === null ? 0 : users.indexOf(key) % 2);
    const driver = new TopologyTestDriver(app, { stores: live, partitionOf });
    const events = Array.from({ length: 40 }, (_, i) => {
      const userId = users[(i * 7) % users.length] as string;
      // A whole page view: the processor validates every event before it runs.
      const value: PageViewEventInput = { eventId: `e${i}`, userId, timestamp: '2026-11-29T10:00:00.000Z', page: { url: 'https://shop.example/' } };
      return { key: userId, value };
    });
    await driver.pipeInputs('tracking.events', events);
    expect(n).to.equal(40);

    // The changelog as a broker would hold it: per partition, offsets in production order.
    const log = new Map<number, ConsumedRecord[]>();
    for (const out of driver.outputs('tracking.cookies')) {
      const partition = out.partition as number;
      const records = log.get(partition) ?? [];
      const encoded = driver.engine.encode(out);
      records.push({
        topic: out.topic,
        partition,
        offset: records.length,
        key: Buffer.from(out.key as string),
        value: encoded.value === null ? null : Buffer.from(encoded.value),
        headers: {},
        timestamp: 0,
      });
      log.set(partition, records);
    }
    const reader: PartitionReader = {
      async read(_topic, partition, from, onRecords, to) {
        await onRecords((log.get(partition) ?? []).filter((r) => r.offset >= from && (to === undefined || r.offset < to)));
      },
      async close() {},
    };
    const rebuilt = new LmdbStoreProvider({ stateDir: join(dir, 'rebuilt') });
    await restoreStores({
      reader,
      topic: 'tracking.cookies',
      partitions: [0, 1].map((p) => ({ partition: p, store: rebuilt.store('cookie-jars', p), endOffset: log.get(p)?.length ?? 0 })),
    });
    for (const p of [0, 1]) {
      const expected = [...live.store('cookie-jars', p).entries()];
      expect(expected.length).to.be.greaterThan(0);
      expect([...rebuilt.store('cookie-jars', p).entries()]).to.deep.equal(expected);
    }
    expect((live.store('cookie-jars', 0).get('ana') as StoredJar).version).to.equal(8);
    await driver.close();
    await live.close();
    await rebuilt.close();
  });
});
