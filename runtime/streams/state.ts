/**
 * The state stores of the partitions a stream application owns, and their checkpoints (Kafka
 * Streams' ProcessorStateManager). One store per (store name, partition); each store's changelog
 * is a topic of the topology.
 *
 * The checkpoint recorded with a store commit is the offset after the last changelog record this
 * instance produced for that store partition and had acknowledged. The store already holds every
 * write below it (a value is put before it is produced), so a restart replays only what comes
 * after. That holds because every writer of a changelog is this topology, in the partition's task
 * (control records such as `erase` travel through the source topic, never straight to a changelog).
 */
import { PartitionClosedError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { CommitOffset, PartitionReader, RecordMetadata } from '../../core/records.ts';
import { changelogRestorer, type KeyValueStore, type StoreProvider } from '../../state/index.ts';
import type { StoreSpec } from '../../topology/index.ts';
import type { KafkaAdmin } from '../kafka/types.ts';
import type { ChangelogBinding } from '../runner/index.ts';

export type ClosableStoreProvider = StoreProvider & { closePartition(partition: number): Promise<void>; close(): Promise<void> };

const id = (store: string, partition: number): string => `${store}\u0000${partition}`;

export class TopologyState {
  /** Store partitions restored and not closed: the only ones the engine may touch. */
  private readonly open = new Set<string>();
  /** Next changelog offset after our last acknowledged write, per store partition (since its restore). */
  private readonly checkpoints = new Map<string, number>();
  /** One store commit per partition at a time; a request while one runs is coalesced into one more. */
  private readonly commits = new Map<number, { running: Promise<void>; again: boolean }>();
  private readonly storeOfChangelog = new Map<string, string>();
  /** The provider the engine gets: refuses partitions that are not (or no longer) owned. */
  readonly guarded: StoreProvider;

  constructor(
    private readonly stores: ClosableStoreProvider,
    private readonly specs: readonly StoreSpec[],
    private readonly log: Logger,
  ) {
    for (const spec of specs) this.storeOfChangelog.set(spec.changelogTopic, spec.name);
    this.guarded = {
      store: (name: string, partition: number): KeyValueStore<unknown> => {
        // A record abandoned at revocation may still be running: it must not reopen a closed store.
        if (!this.open.has(id(name, partition))) throw new PartitionClosedError(name, partition);
        return this.stores.store(name, partition);
      },
    };
  }

  /** The runner's changelog bindings: one per store, restored in order before a partition's first record. */
  bindings(admin: KafkaAdmin): ChangelogBinding[] {
    return this.specs.map((spec) => {
      const restorer = changelogRestorer({
        topic: spec.changelogTopic,
        storeName: spec.name,
        stores: this.stores,
        decode: (bytes) => spec.serde.deserialize(bytes),
      });
      return {
        topic: spec.changelogTopic,
        restore: async (partition: number, reader: PartitionReader, signal: AbortSignal): Promise<void> => {
          await this.resetIfAhead(spec, partition, admin);
          await restorer.restore(partition, reader, signal);
          if (!signal.aborted) this.opened(spec.name, partition);
        },
        close: (partition: number) => this.close(partition),
      };
    });
  }

  /** Restored and not closed: records of the partition may run. */
  isOpen(partition: number): boolean {
    return this.specs.every((s) => this.open.has(id(s.name, partition)));
  }

  acknowledged(metadata: readonly RecordMetadata[]): void {
    for (const m of metadata) {
      const store = this.storeOfChangelog.get(m.topic);
      if (store === undefined) continue;
      const key = id(store, m.partition);
      if (!this.open.has(key)) continue;
      const next = m.offset + 1;
      if (next > (this.checkpoints.get(key) ?? -1)) this.checkpoints.set(key, next);
    }
  }

  /** Store commits follow consumer commits (Kafka Streams commits stores with the offsets). */
  afterConsumerCommit(offsets: readonly CommitOffset[]): void {
    for (const partition of new Set(offsets.map((o) => o.partition))) if (this.isOpen(partition)) this.requestCommit(partition);
  }

  /** Last commit of a revoked (or stopping) partition, then its stores are closed. Idempotent. */
  async close(partition: number): Promise<void> {
    const wasOpen = this.specs.filter((s) => this.open.delete(id(s.name, partition)));
    await this.commits.get(partition)?.running;
    for (const spec of wasOpen) await this.commitNow(spec, partition);
    for (const spec of this.specs) this.checkpoints.delete(id(spec.name, partition));
    await this.stores.closePartition(partition);
  }

  async closeAll(): Promise<void> {
    const partitions = new Set([...this.open].map((key) => Number(key.split('\u0000')[1])));
    for (const partition of partitions) await this.close(partition);
    await this.stores.close();
  }

  /**
   * A checkpoint beyond the changelog's end means the topic was recreated or truncated (or, with the
   * embedded broker, that it died with the last process): the local state is ahead of its source
   * of truth, so it is wiped and restored from 0 (Kafka Streams treats it as a corrupted task).
   */
  private async resetIfAhead(spec: StoreSpec, partition: number, admin: KafkaAdmin): Promise<void> {
    const store = this.stores.store(spec.name, partition);
    const checkpoint = store.checkpoint();
    if (checkpoint === undefined || checkpoint === 0) return;
    const end = (await admin.listEndOffsets(spec.changelogTopic)).find((e) => e.partition === partition)?.offset ?? 0;
    if (checkpoint > end) {
      this.log.warn({ topic: spec.changelogTopic, partition, checkpoint, endOffset: end }, 'store checkpoint beyond the changelog end: wiping the store and restoring from 0');
      await store.clear();
    }
  }

  /** Entries of every open store partition (the store-size gauge reads it on scrape). */
  sizes(): Array<{ store: string; partition: number; entries: number }> {
    return [...this.open].map((key) => {
      const [store = '', p = '0'] = key.split('\u0000');
      const partition = Number(p);
      return { store, partition, entries: this.stores.store(store, partition).count() };
    });
  }

  private opened(store: string, partition: number): void {
    this.checkpoints.delete(id(store, partition));
    this.open.add(id(store, partition));
  }

  private requestCommit(partition: number): void {
    const current = this.commits.get(partition);
    if (current) {
      current.again = true;
      return;
    }
    const entry = { running: Promise.resolve(), again: false };
    entry.running = (async () => {
      do {
        entry.again = false;
        for (const spec of this.specs) if (this.open.has(id(spec.name, partition))) await this.commitNow(spec, partition);
      } while (entry.again);
    })().finally(() => {
      if (this.commits.get(partition) === entry) this.commits.delete(partition);
    });
    this.commits.set(partition, entry);
  }

  private async commitNow(spec: StoreSpec, partition: number): Promise<void> {
    try {
      await this.stores.store(spec.name, partition).commit(this.checkpoints.get(id(spec.name, partition)));
    } catch (error) {
      // The next commit carries the same writes; a lost one is replayed from the changelog.
      this.log.warn({ err: error, store: spec.name, partition }, 'store commit failed');
    }
  }
}
