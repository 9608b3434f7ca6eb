/**
 * Changelog restore, run on partition assignment before the first record of the partition is
 * processed: apply the changelog from the store's checkpoint (or the beginning) up to the end
 * offset taken at assignment. Each fetched batch is committed together with its checkpoint, so an
 * interrupted restore resumes where it stopped.
 */
import type { ConsumedRecord, PartitionReader } from '../runtime/kafka/types.ts';
import type { KeyValueStore } from './store.ts';

export interface RestorePartition {
  partition: number;
  store: KeyValueStore<unknown>;
  /** The changelog's end offset (high watermark) at assignment: restore reads up to it. */
  endOffset: number;
}

export interface RestoreProgress {
  topic: string;
  partition: number;
  store: string;
  /** Where this restore started (the checkpoint, or 0). */
  fromOffset: number;
  endOffset: number;
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
  remaining: number;
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
  const { store, endOffset, partition } = part;
  const decode = options.decode ?? decodeJson;
  let from = store.checkpoint() ?? 0;
  let reset = false;
  if (from > endOffset) {
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
    remaining: Math.max(0, endOffset - from),
    done: false,
    reset,
  };
  const report = (): void => options.onProgress?.({ ...progress });

  if (from < endOffset) {
    report();
    await options.reader.read(
      options.topic,
      partition,
      from,
      async (records: ConsumedRecord[]) => {
        let last = -1;
        for (const record of records) {
          if (record.offset < progress.position || record.offset >= endOffset) continue;
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
        progress.remaining = Math.max(0, endOffset - progress.position);
        report();
      },
      endOffset,
    );
  }
  // Records at the end may have been compacted away: having read up to endOffset is what counts.
  if (progress.position < endOffset) {
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
