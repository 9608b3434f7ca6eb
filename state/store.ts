/**
 * Key-value stores, one per (store name, partition), as Kafka Streams has one store instance per
 * task. The changelog topic is the source of truth; a store is a local, restorable materialization.
 *
 * Write model (Kafka Streams' caching layer): `put`/`delete` are visible to `get` at once
 * (read-your-writes for the next record of the key), and become durable at `commit(checkpoint)`,
 * which writes the buffered changes and the changelog checkpoint in ONE atomic step. A crash before
 * a commit therefore leaves data and checkpoint consistent with each other, and restoring from the
 * checkpoint replays exactly the changelog records the store has not applied.
 */
export interface KeyValueStore<V> {
  readonly name: string;
  readonly partition: number;
  /** False for the in-memory store: it restores from the beginning of the changelog every time. */
  readonly persistent: boolean;

  get(key: string): V | undefined;
  put(key: string, value: V): void;
  delete(key: string): void;

  /**
   * The next changelog offset to apply (Kafka's committed-offset convention: last applied + 1), or
   * undefined when the store has never been checkpointed.
   */
  checkpoint(): number | undefined;
  /**
   * Makes every write so far durable and, when given, records `checkpoint` atomically with them.
   * Concurrent calls are serialized in call order.
   */
  commit(checkpoint?: number): Promise<void>;
  /** Deletes every entry and the checkpoint (used when the changelog was truncated or recreated). */
  clear(): Promise<void>;

  /** Committed and uncommitted entries, in key order for the persistent store. */
  entries(): IterableIterator<[string, V]>;
  count(): number;

  close(): Promise<void>;
}

/** Gives the engine the store instance of a partition. The runner opens and restores them first. */
export interface StoreProvider {
  store(name: string, partition: number): KeyValueStore<unknown>;
}
