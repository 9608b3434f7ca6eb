import { StoreClosedError } from '../core/errors.ts';
import type { KeyValueStore, StoreProvider } from './store.ts';

/** A Map-backed store: nothing survives the process, so its checkpoint only lives as long as it. */
export class InMemoryKeyValueStore<V> implements KeyValueStore<V> {
  readonly persistent = false;
  private readonly data = new Map<string, V>();
  private offset: number | undefined;
  private closed = false;

  constructor(
    readonly name: string,
    readonly partition: number,
  ) {}

  get(key: string): V | undefined {
    this.assertOpen();
    return this.data.get(key);
  }

  put(key: string, value: V): void {
    this.assertOpen();
    this.data.set(key, value);
  }

  delete(key: string): void {
    this.assertOpen();
    this.data.delete(key);
  }

  checkpoint(): number | undefined {
    return this.offset;
  }

  async commit(checkpoint?: number): Promise<void> {
    this.assertOpen();
    if (checkpoint !== undefined) this.offset = checkpoint;
  }

  async clear(): Promise<void> {
    this.assertOpen();
    this.data.clear();
    this.offset = undefined;
  }

  entries(): IterableIterator<[string, V]> {
    this.assertOpen();
    return new Map([...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))).entries();
  }

  count(): number {
    return this.data.size;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new StoreClosedError(this.name, this.partition);
    }
  }
}

/** Creates in-memory stores on first use (the test driver's default). */
export class InMemoryStoreProvider implements StoreProvider {
  private readonly stores = new Map<string, InMemoryKeyValueStore<unknown>>();

  store(name: string, partition: number): KeyValueStore<unknown> {
    const id = `${name}\u0000${partition}`;
    let store = this.stores.get(id);
    if (store === undefined) {
      store = new InMemoryKeyValueStore<unknown>(name, partition);
      this.stores.set(id, store);
    }
    return store;
  }

  /** Closes (and so forgets: in memory there is nothing to keep) the stores of a partition. */
  async closePartition(partition: number): Promise<void> {
    for (const [id, store] of this.stores) {
      if (store.partition !== partition) continue;
      this.stores.delete(id);
      await store.close();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.stores.values()].map((s) => s.close()));
    this.stores.clear();
  }
}
