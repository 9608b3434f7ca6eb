import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { lastValueFrom, toArray } from 'rxjs';
import type { ConsumedRecord, PartitionReader } from '../../runtime/kafka/types.ts';
import { TagstreamError } from '../../core/errors.ts';
import {
  InMemoryKeyValueStore,
  LmdbStoreProvider,
  openLmdbStore,
  restoreStores,
  restoreProgress$,
  changelogRestorer,
  type KeyValueStore,
  type RestoreProgress,
} from '../../state/index.ts';

interface Jar {
  v: number;
}

/** A changelog in memory; remembers where each read started. Delivers batches of `batch` records. */
class FakeReader implements PartitionReader {
  readonly reads: { partition: number; from: number; to: number | undefined }[] = [];
  constructor(
    private readonly log: Map<number, ConsumedRecord[]>,
    private readonly batch = 2,
  ) {}

  async read(
    _topic: string,
    partition: number,
    fromOffset: number,
    onRecords: (records: ConsumedRecord[]) => Promise<void> | void,
    toOffset?: number,
  ): Promise<void> {
    this.reads.push({ partition, from: fromOffset, to: toOffset });
    const records = (this.log.get(partition) ?? []).filter((r) => r.offset >= fromOffset && (toOffset === undefined || r.offset < toOffset));
    for (let i = 0; i < records.length; i += this.batch) await onRecords(records.slice(i, i + this.batch));
  }

  async close(): Promise<void> {}
}

function rec(partition: number, offset: number, key: string, value: Jar | null): ConsumedRecord {
  return {
    topic: 'changelog',
    partition,
    offset,
    key: Buffer.from(key),
    value: value === null ? null : Buffer.from(JSON.stringify(value)),
    headers: {},
    timestamp: 0,
  };
}

function storeContract(name: string, open: () => KeyValueStore<Jar>): void {
  describe(`${name}: KeyValueStore contract`, () => {
    let store: KeyValueStore<Jar>;
    beforeEach(() => {
      store = open();
    });
    afterEach(async () => {
      await store.close();
    });

    it('put/get/delete with read-your-writes before any commit', async () => {
      expect(store.get('a')).to.equal(undefined);
      store.put('a', { v: 1 });
      store.put('b', { v: 2 });
      expect(store.get('a')).to.deep.equal({ v: 1 });
      store.delete('a');
      expect(store.get('a')).to.equal(undefined);
      expect(store.count()).to.equal(1);
      await store.commit();
      expect(store.get('b')).to.deep.equal({ v: 2 });
      store.put('c', { v: 3 });
      store.delete('b');
      expect([...store.entries()]).to.deep.equal([['c', { v: 3 }]]);
      expect(store.count()).to.equal(1);
    });

    it('records a checkpoint with commit(), and clear() removes data and checkpoint', async () => {
      expect(store.checkpoint()).to.equal(undefined);
      store.put('a', { v: 1 });
      await store.commit(7);
      expect(store.checkpoint()).to.equal(7);
      await store.commit();
      expect(store.checkpoint()).to.equal(7);
      await store.clear();
      expect(store.checkpoint()).to.equal(undefined);
      expect(store.get('a')).to.equal(undefined);
      expect(store.count()).to.equal(0);
    });

    it('refuses use after close with ERR_STATE_STORE_CLOSED', async () => {
      await store.close();
      expect(() => store.get('a')).to.throw(TagstreamError, /closed/);
    });
  });
}

describe('state stores', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tagstream-state-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  storeContract('in-memory', () => new InMemoryKeyValueStore<Jar>('jars', 0));
  let n = 0;
  storeContract('lmdb', () => {
    n += 1;
    return openLmdbStore<Jar>({ path: join(dir, `contract-${n}`), name: 'jars', partition: 0 });
  });

  describe('lmdb persistence', () => {
    it('keeps committed data and its checkpoint across reopen; uncommitted writes are not kept', async () => {
      const path = join(dir, 'reopen');
      const first = openLmdbStore<Jar>({ path, name: 'jars', partition: 2 });
      first.put('alice', { v: 1 });
      first.put('bob', { v: 2 });
      await first.commit(10);
      first.put('carol', { v: 3 }); // never committed: the changelog would give it back on restore
      await first.close();

      const second = openLmdbStore<Jar>({ path, name: 'jars', partition: 2 });
      expect(second.checkpoint()).to.equal(10);
      expect(second.get('alice')).to.deep.equal({ v: 1 });
      expect(second.get('bob')).to.deep.equal({ v: 2 });
      expect(second.get('carol')).to.equal(undefined);
      await second.close();
    });

    it('survives kill -9 at any moment: the checkpoint always matches the data it covers', async function () {
      this.timeout(60_000);
      const path = join(dir, 'kill9');
      const script = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
      let lastSeen = 0;
      for (let round = 0; round < 3; round += 1) {
        const child = spawn(process.execPath, ['--import', 'tsx', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
        let printed = 0;
        await new Promise<void>((resolve) => {
          child.stdout.on('data', (chunk: Buffer) => {
            const lines = chunk.toString().trim().split('\n');
            printed = Number(lines.at(-1));
            // Let it run a few commits past where it started, then kill it mid-flight.
            if (printed >= lastSeen + 500) {
              child.kill('SIGKILL');
              resolve();
            }
          });
        });
        await new Promise((resolve) => child.once('exit', resolve));
        const store = openLmdbStore<{ offset: number }>({ path, name: 'jars', partition: 0 });
        const checkpoint = store.checkpoint() ?? 0;
        expect(checkpoint).to.be.at.least(printed);
        expect(checkpoint % 50).to.equal(0);
        expect(store.count()).to.equal(checkpoint);
        expect(store.get(`k${checkpoint - 1}`)).to.deep.equal({ offset: checkpoint - 1 });
        expect(store.get(`k${checkpoint}`)).to.equal(undefined);
        await store.close();
        lastSeen = checkpoint;
      }
    });

    it('provider opens one store per name and partition under the state dir and closes a partition', async () => {
      const provider = new LmdbStoreProvider({ stateDir: join(dir, 'provider') });
      const p0 = provider.store('cookie-jars', 0);
      const p1 = provider.store('cookie-jars', 1);
      expect(provider.store('cookie-jars', 0)).to.equal(p0);
      expect(p1.path).to.equal(join(dir, 'provider', 'cookie-jars', '1'));
      p0.put('k', 1);
      await p0.commit(1);
      await provider.closePartition(0);
      expect(() => p0.get('k')).to.throw(TagstreamError);
      expect(provider.store('cookie-jars', 0).get('k')).to.equal(1);
      await provider.close();
    });
  });

  describe('changelog restore', () => {
    function changelog(): Map<number, ConsumedRecord[]> {
      return new Map([
        [
          0,
          [
            rec(0, 0, 'alice', { v: 1 }),
            rec(0, 1, 'bob', { v: 1 }),
            rec(0, 2, 'alice', { v: 2 }),
            rec(0, 3, 'carol', { v: 1 }),
            rec(0, 4, 'bob', null), // tombstone: erase bob
            rec(0, 5, 'alice', { v: 3 }),
            // offsets 6..7 compacted away; end offset 8
          ],
        ],
        [1, [rec(1, 0, 'dave', { v: 1 }), rec(1, 1, 'erin', { v: 1 }), rec(1, 2, 'dave', null)]],
      ]);
    }

    it('restores from the beginning, applies tombstones and reports records remaining per partition', async () => {
      const reader = new FakeReader(changelog());
      const s0 = new InMemoryKeyValueStore<Jar>('jars', 0);
      const s1 = new InMemoryKeyValueStore<Jar>('jars', 1);
      const progress: RestoreProgress[] = [];
      const results = await restoreStores({
        reader,
        topic: 'changelog',
        partitions: [
          { partition: 0, store: s0, endOffset: 8 },
          { partition: 1, store: s1, endOffset: 3 },
        ],
        onProgress: (p) => progress.push(p),
      });
      expect([...s0.entries()]).to.deep.equal([
        ['alice', { v: 3 }],
        ['carol', { v: 1 }],
      ]);
      expect([...s1.entries()]).to.deep.equal([['erin', { v: 1 }]]);
      expect(s0.checkpoint()).to.equal(8);
      expect(s1.checkpoint()).to.equal(3);
      expect(results.map((r) => [r.partition, r.applied, r.done, r.remaining])).to.deep.equal([
        [0, 6, true, 0],
        [1, 3, true, 0],
      ]);
      expect(progress.filter((p) => p.partition === 0).map((p) => p.remaining)).to.deep.equal([8, 6, 4, 2, 0]);
      expect(progress.filter((p) => p.partition === 1).map((p) => p.remaining)).to.deep.equal([3, 1, 0, 0]);
      expect(reader.reads).to.deep.equal([
        { partition: 0, from: 0, to: 8 },
        { partition: 1, from: 0, to: 3 },
      ]);
    });

    it('persistent store: restores only the records after the checkpoint, and ends with the same state', async () => {
      const path = join(dir, 'restore');
      const log = changelog();
      // First life: the store applied offsets 0..2 and checkpointed 3, then the process died.
      const before = openLmdbStore<Jar>({ path, name: 'jars', partition: 0 });
      await restoreStores({
        reader: new FakeReader(new Map([[0, (log.get(0) ?? []).slice(0, 3)]])),
        topic: 'changelog',
        partitions: [{ partition: 0, store: before, endOffset: 3 }],
      });
      expect(before.checkpoint()).to.equal(3);
      await before.close();

      const reader = new FakeReader(log);
      const after = openLmdbStore<Jar>({ path, name: 'jars', partition: 0 });
      const [result] = await restoreStores({ reader, topic: 'changelog', partitions: [{ partition: 0, store: after, endOffset: 8 }] });
      expect(reader.reads).to.deep.equal([{ partition: 0, from: 3, to: 8 }]);
      expect(result).to.include({ fromOffset: 3, applied: 3, position: 8, done: true, reset: false });
      expect([...after.entries()]).to.deep.equal([
        ['alice', { v: 3 }],
        ['carol', { v: 1 }],
      ]);
      expect(after.checkpoint()).to.equal(8);
      await after.close();

      // Third life: nothing to read.
      const idle = new FakeReader(log);
      const again = openLmdbStore<Jar>({ path, name: 'jars', partition: 0 });
      await restoreStores({ reader: idle, topic: 'changelog', partitions: [{ partition: 0, store: again, endOffset: 8 }] });
      expect(idle.reads).to.deep.equal([]);
      expect(again.count()).to.equal(2);
      await again.close();
    });

    it('wipes and restores from 0 when the checkpoint is beyond the changelog end (topic recreated)', async () => {
      const store = new InMemoryKeyValueStore<Jar>('jars', 1);
      store.put('ghost', { v: 9 });
      await store.commit(50);
      const reader = new FakeReader(changelog());
      const [result] = await restoreStores({ reader, topic: 'changelog', partitions: [{ partition: 1, store, endOffset: 3 }] });
      expect(result?.reset).to.equal(true);
      expect(reader.reads).to.deep.equal([{ partition: 1, from: 0, to: 3 }]);
      expect([...store.entries()]).to.deep.equal([['erin', { v: 1 }]]);
      expect(store.checkpoint()).to.equal(3);
    });

    it('skips undecodable values (counted) instead of blocking the partition', async () => {
      const bad: ConsumedRecord = { ...rec(0, 1, 'bob', { v: 1 }), value: Buffer.from('{not json') };
      const reader = new FakeReader(new Map([[0, [rec(0, 0, 'alice', { v: 1 }), bad]]]));
      const store = new InMemoryKeyValueStore<Jar>('jars', 0);
      const [result] = await restoreStores({ reader, topic: 'changelog', partitions: [{ partition: 0, store, endOffset: 2 }] });
      expect(result).to.include({ applied: 1, skipped: 1, position: 2 });
      expect(store.get('alice')).to.deep.equal({ v: 1 });
      expect(store.get('bob')).to.equal(undefined);
    });

    it('changelogRestorer (the runner binding): reads to the end without a known end offset, closes a partition', async () => {
      const provider = new LmdbStoreProvider({ stateDir: join(dir, 'binding') });
      const progress: RestoreProgress[] = [];
      const restorer = changelogRestorer({ topic: 'changelog', storeName: 'jars', stores: provider, onProgress: (p) => progress.push(p) });
      const reader = new FakeReader(changelog());
      await restorer.restore(1, reader, new AbortController().signal);
      expect(reader.reads).to.deep.equal([{ partition: 1, from: 0, to: undefined }]);
      const store = provider.store('jars', 1);
      expect([...store.entries()]).to.deep.equal([['erin', { v: 1 }]]);
      expect(store.checkpoint()).to.equal(3);
      expect(progress.at(0)?.remaining).to.equal(null);
      expect(progress.at(-1)).to.include({ done: true, remaining: 0, position: 3 });
      await restorer.close(1);
      expect(() => store.get('erin')).to.throw(TagstreamError);
      await provider.close();
    });

    it('stops between batches when aborted, keeping what it applied with its checkpoint', async () => {
      const store = new InMemoryKeyValueStore<Jar>('jars', 0);
      const controller = new AbortController();
      const failure = await restoreStores({
        reader: new FakeReader(changelog()),
        topic: 'changelog',
        partitions: [{ partition: 0, store, endOffset: 8 }],
        signal: controller.signal,
        onProgress: (p) => {
          if (p.position === 2) controller.abort(new Error('revoked'));
        },
      }).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(failure?.message).to.equal('revoked');
      expect(store.checkpoint()).to.equal(2);
      expect(store.count()).to.equal(2);
    });

    it('restoreProgress$ emits the progress and completes', async () => {
      const store = new InMemoryKeyValueStore<Jar>('jars', 1);
      const progress = await lastValueFrom(
        restoreProgress$({ reader: new FakeReader(changelog()), topic: 'changelog', partitions: [{ partition: 1, store, endOffset: 3 }] }).pipe(toArray()),
      );
      expect(progress.map((p) => [p.remaining, p.done])).to.deep.equal([
        [3, false],
        [1, false],
        [0, false],
        [0, true],
      ]);
      expect(store.checkpoint()).to.equal(3);
    });

    it('an empty changelog checkpoints 0', async () => {
      const store = new InMemoryKeyValueStore<Jar>('jars', 0);
      const [result] = await restoreStores({ reader: new FakeReader(new Map()), topic: 'changelog', partitions: [{ partition: 0, store, endOffset: 0 }] });
      expect(result).to.include({ done: true, applied: 0, remaining: 0 });
      expect(store.checkpoint()).to.equal(0);
    });
  });
});
