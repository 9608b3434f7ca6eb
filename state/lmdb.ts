/**
 * The persistent store, on LMDB (one environment per store and partition, as Kafka Streams has one
 * RocksDB per task, so a revoked partition's files can be closed or deleted on their own).
 * Data and checkpoint live in two named databases of the same environment, so one write
 * transaction covers both: that is what makes the checkpoint atomic with the data.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { StoreClosedError, StoreCommitError } from '../core/errors.ts';
import type { KeyValueStore, StoreProvider } from './store.ts';

const CHECKPOINT_KEY = 'changelog-checkpoint';

/** A buffered write: `{ value }` puts, `null` deletes. */
type Pending<V> = { value: V } | null;

export interface LmdbStoreOptions {
  /** Directory of this store partition's environment (created if missing). */
  path: string;
  name: string;
  partition: number;
  /**
   * Skip fsync on commit. Faster; a machine crash (not a process crash) can then lose the last
   * commits, which restore then replays from the changelog. Default false.
   */
  noSync?: boolean;
}

export class LmdbKeyValueStore<V> implements KeyValueStore<V> {
  readonly persistent = true;
  readonly name: string;
  readonly partition: number;
  readonly path: string;
  private readonly root: RootDatabase;
  private readonly data: Database<V, string>;
  private readonly meta: Database<number, string>;
  /** Writes since the last commit started. */
  private buffer = new Map<string, Pending<V>>();
  /** Writes of the commit in progress (still readable while LMDB commits them). */
  private committing: Map<string, Pending<V>> | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(options: LmdbStoreOptions) {
    this.name = options.name;
    this.partition = options.partition;
    this.path = options.path;
    mkdirSync(options.path, { recursive: true });
    this.root = open({ path: options.path, maxDbs: 4, noSync: options.noSync ?? false });
    this.data = this.root.openDB<V, string>({ name: 'data' });
    this.meta = this.root.openDB<number, string>({ name: 'meta', encoding: 'json' });
  }

  get(key: string): V | undefined {
    this.assertOpen();
    const pending = this.buffer.get(key) ?? this.committing?.get(key);
    if (pending !== undefined) return pending === null ? undefined : pending.value;
    return this.data.get(key);
  }

  put(key: string, value: V): void {
    this.assertOpen();
    this.buffer.set(key, { value });
  }

  delete(key: string): void {
    this.assertOpen();
    this.buffer.set(key, null);
  }

  checkpoint(): number | undefined {
    this.assertOpen();
    return this.meta.get(CHECKPOINT_KEY);
  }

  commit(checkpoint?: number): Promise<void> {
    this.assertOpen();
    return this.serialize(async () => {
      const batch = this.buffer;
      if (batch.size === 0 && checkpoint === undefined) return;
      this.buffer = new Map();
      this.committing = batch;
      try {
        await this.root.transaction(() => {
          for (const [key, pending] of batch) {
            if (pending === null) void this.data.remove(key);
            else void this.data.put(key, pending.value);
          }
          if (checkpoint !== undefined) void this.meta.put(CHECKPOINT_KEY, checkpoint);
        });
      } catch (err) {
        // Keep the writes for the next commit, unless they were overwritten meanwhile.
        for (const [key, pending] of batch) if (!this.buffer.has(key)) this.buffer.set(key, pending);
        throw new StoreCommitError(this.name, this.partition, { checkpoint }, { cause: err });
      } finally {
        this.committing = null;
      }
    });
  }

  clear(): Promise<void> {
    this.assertOpen();
    return this.serialize(async () => {
      this.buffer = new Map();
      // One transaction: a crash midway must not leave a checkpoint over partial data.
      await this.root.transaction(() => {
        for (const key of this.data.getKeys()) void this.data.remove(key);
        void this.meta.remove(CHECKPOINT_KEY);
      });
    });
  }

  entries(): IterableIterator<[string, V]> {
    this.assertOpen();
    const merged = new Map<string, V>();
    for (const { key, value } of this.data.getRange()) merged.set(key, value);
    for (const overlay of [this.committing, this.buffer]) {
      if (overlay === null) continue;
      for (const [key, pending] of overlay) {
        if (pending === null) merged.delete(key);
        else merged.set(key, pending.value);
      }
    }
    return new Map([...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))).entries();
  }

  count(): number {
    this.assertOpen();
    let count = this.data.getCount();
    const overlay = new Map<string, Pending<V>>([...(this.committing ?? []), ...this.buffer]);
    for (const [key, pending] of overlay) {
      const stored = this.data.doesExist(key);
      if (pending === null && stored) count -= 1;
      if (pending !== null && !stored) count += 1;
    }
    return count;
  }

  /** Waits for commits in progress; uncommitted writes are dropped (the changelog has them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.root.close();
  }

  private serialize(step: () => Promise<void>): Promise<void> {
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new StoreClosedError(this.name, this.partition);
    }
  }
}

export function openLmdbStore<V>(options: LmdbStoreOptions): LmdbKeyValueStore<V> {
  return new LmdbKeyValueStore<V>(options);
}

export interface LmdbStoreProviderOptions {
  /** Kafka Streams' state.dir: stores live in `<stateDir>/<store>/<partition>`. */
  stateDir: string;
  noSync?: boolean;
}

/** Opens persistent stores on first use and closes them per partition (on revocation) or all. */
export class LmdbStoreProvider implements StoreProvider {
  private readonly stores = new Map<string, LmdbKeyValueStore<unknown>>();

  constructor(private readonly options: LmdbStoreProviderOptions) {}

  pathOf(name: string, partition: number): string {
    return join(this.options.stateDir, encodeURIComponent(name), String(partition));
  }

  store(name: string, partition: number): LmdbKeyValueStore<unknown> {
    const id = `${name}\u0000${partition}`;
    let store = this.stores.get(id);
    if (store === undefined) {
      store = openLmdbStore<unknown>({
        path: this.pathOf(name, partition),
        name,
        partition,
        ...(this.options.noSync === undefined ? {} : { noSync: this.options.noSync }),
      });
      this.stores.set(id, store);
    }
    return store;
  }

  async closePartition(partition: number): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [id, store] of this.stores) {
      if (store.partition !== partition) continue;
      this.stores.delete(id);
      closing.push(store.close());
    }
    await Promise.all(closing);
  }

  async close(): Promise<void> {
    const all = [...this.stores.values()];
    this.stores.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}
