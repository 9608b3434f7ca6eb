/**
 * Changelog restore, run on partition assignment before the first record of the partition is
 * processed: apply the changelog from the store's checkpoint (or the beginning) up to the end
 * offset taken at assignment. Each fetched batch is committed together with its checkpoint, so an
 * interrupted restore resumes where it stopped.
 */
import { Observable } from 'rxjs';
import type { ConsumedRecord, PartitionReader } from '../core/records.ts';
import type { KeyValueStore, StoreProvider } from './store.ts';

export interface RestorePartition {
  partition: number;
  store: KeyValueStore<unknown>;
  /**
   * The changelog's end offset (high watermark) at assignment: restore reads up to it. Absent: the
   * reader's end at call time, and `remaining` is unknown (null) until done.
   */
  endOffset?: number;
}

export interface RestoreProgress {
  topic: string;
  partition: number;
  store: string;
  /** Where this restore started (the checkpoint, or 0). */
  fromOffset: number;
  /** null when the caller did not give it. */
  endOffset: number | null;
  /** Next offset to apply. */
  position: number;
  /** Changelog records applied so far (tombstones included). */
  applied: number;
  /** Records whose value could not be decoded; skipped so a bad record cannot block the partition. */
  skipped: number;
  /**
   * endOffset - position: an upper bound of the records left to read (compaction leaves gaps in
   * offsets, so fewer may remain).
   */
  remaining: number | null;
  done: boolean;
  /** The checkpoint was beyond the changelog's end (topic recreated or truncated): the store was wiped. */
  reset: boolean;
}

export interface RestoreOptions {
  reader: PartitionReader;
  /** The changelog topic. */
  topic: string;
  partitions: readonly RestorePartition[];
  /** Value decoder; default UTF-8 JSON. A `null` value is a tombstone and never reaches it. */
  decode?: (value: Buffer) => unknown;
  /** Called after every applied batch and once per partition when done. */
  onProgress?: (progress: Readonly<RestoreProgress>) => void;
  /** Aborting stops the restore between batches (what is applied stays, with its checkpoint). */
  signal?: AbortSignal;
}

const decodeJson = (value: Buffer): unknown => JSON.parse(value.toString('utf8'));

/** Restores the partitions one after another; resolves with the final progress of each. */
export async function restoreStores(options: RestoreOptions): Promise<RestoreProgress[]> {
  const results: RestoreProgress[] = [];
  for (const part of options.partitions) {
    results.push(await restorePartition(options, part));
  }
  return results;
}

async function restorePartition(options: RestoreOptions, part: RestorePartition): Promise<RestoreProgress> {
  const { store, partition } = part;
  const endOffset = part.endOffset ?? null;
  const decode = options.decode ?? decodeJson;
  let from = store.checkpoint() ?? 0;
  let reset = false;
  if (endOffset !== null && from > endOffset) {
    // Kafka Streams treats this as a corrupted task: the local state is ahead of its source of truth.
    await store.clear();
    from = 0;
    reset = true;
  }
  const progress: RestoreProgress = {
    topic: options.topic,
    partition,
    store: store.name,
    fromOffset: from,
    endOffset,
    position: from,
    applied: 0,
    skipped: 0,
    remaining: endOffset === null ? null : Math.max(0, endOffset - from),
    done: false,
    reset,
  };
  const report = (): void => options.onProgress?.({ ...progress });

  options.signal?.throwIfAborted();
  if (endOffset === null || from < endOffset) {
    report();
    await options.reader.read(
      options.topic,
      partition,
      from,
      async (records: ConsumedRecord[]) => {
        // Throwing from the callback is how a PartitionReader is told to stop.
        options.signal?.throwIfAborted();
        let last = -1;
        for (const record of records) {
          if (record.offset < progress.position || (endOffset !== null && record.offset >= endOffset)) continue;
          last = record.offset;
          if (record.key === null) continue; // cannot address a key; a compacted topic has none
          const key = record.key.toString('utf8');
          if (record.value === null) {
            store.delete(key);
          } else {
            let value: unknown;
            try {
              value = decode(record.value);
            } catch {
              progress.skipped += 1;
              continue;
            }
            store.put(key, value);
          }
          progress.applied += 1;
        }
        if (last < 0) return;
        await store.commit(last + 1);
        progress.position = last + 1;
        progress.remaining = endOffset === null ? null : Math.max(0, endOffset - progress.position);
        report();
      },
      ...(endOffset === null ? [] : [endOffset]),
    );
  }
  // Records at the end may have been compacted away: having read up to endOffset is what counts.
  if (endOffset !== null && progress.position < endOffset) {
    await store.commit(endOffset);
    progress.position = endOffset;
  } else if (store.checkpoint() === undefined) {
    await store.commit(progress.position);
  }
  progress.remaining = 0;
  progress.done = true;
  report();
  return { ...progress };
}

/**
 * restoreStores as an Observable of progress (for metrics and logs): completes when every partition
 * is restored, errors when the restore fails; unsubscribing stops it between batches.
 */
export function restoreProgress$(options: Omit<RestoreOptions, 'onProgress'>): Observable<RestoreProgress> {
  return new Observable<RestoreProgress>((subscriber) => {
    const controller = new AbortController();
    const signal = options.signal === undefined ? controller.signal : AbortSignal.any([options.signal, controller.signal]);
    restoreStores({ ...options, signal, onProgress: (p) => subscriber.next({ ...p }) }).then(
      () => subscriber.complete(),
      (err: unknown) => subscriber.error(err),
    );
    return () => controller.abort(new Error('restore unsubscribed'));
  });
}

/**
 * What a consumer-group runner needs from the state of one co-partitioned changelog: restore
 * partition p with a reader of its choosing before p's first record, release it on revocation.
 * (Structurally the runner's ChangelogBinding; defined here so state/ does not depend on runtime/runner.)
 */
export interface ChangelogRestorer {
  readonly topic: string;
  restore(partition: number, reader: PartitionReader, signal: AbortSignal): Promise<void>;
  close(partition: number): Promise<void>;
}

export interface ChangelogRestorerOptions {
  /** The changelog topic (the table's topic). */
  topic: string;
  /** The store restored from it (StoreSpec.name of the topology). */
  storeName: string;
  stores: StoreProvider & { closePartition(partition: number): Promise<void> };
  decode?: (value: Buffer) => unknown;
  onProgress?: (progress: Readonly<RestoreProgress>) => void;
}

export function changelogRestorer(options: ChangelogRestorerOptions): ChangelogRestorer {
  return {
    topic: options.topic,
    async restore(partition, reader, signal) {
      await restoreStores({
        reader,
        topic: options.topic,
        partitions: [{ partition, store: options.stores.store(options.storeName, partition) }],
        signal,
        ...(options.decode === undefined ? {} : { decode: options.decode }),
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      });
    },
    close(partition) {
      return options.stores.closePartition(partition);
    },
  };
}
