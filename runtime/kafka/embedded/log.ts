/**
 * One partition's log of the embedded broker. Offsets are assigned once and never change; compaction
 * removes records but leaves gaps, exactly like Kafka, so committed offsets and changelog
 * checkpoints stay valid across compaction.
 */

export interface StoredRecord {
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, Buffer>>;
  readonly timestamp: number;
}

export type NewRecord = Omit<StoredRecord, 'offset'>;

export interface CompactOptions {
  /** Remove tombstones whose timestamp is before this (Kafka's delete.retention.ms). Default: remove all. */
  tombstonesBefore?: number;
}

export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  /** Kept sorted by offset; gaps after compaction. */
  private records: StoredRecord[] = [];
  private nextOffset = 0;
  /** Records appended since the last compaction, for the automatic cleaner's dirty ratio. */
  private dirty = 0;
  /** Readers waiting for the log to grow (see waitForAppend). */
  private readonly appendWaiters = new Set<() => void>();
  /** Set when the topic is deleted, so that pending readers of this incarnation stop. */
  deleted = false;

  constructor(topic: string, partition: number) {
    this.topic = topic;
    this.partition = partition;
  }

  /** The offset the next appended record gets (Kafka's high watermark: acks=all, one replica). */
  get endOffset(): number {
    return this.nextOffset;
  }

  /** Retention never deletes here, so the log always starts at 0 (compaction keeps offsets). */
  get startOffset(): number {
    return 0;
  }

  get size(): number {
    return this.records.length;
  }

  get dirtyCount(): number {
    return this.dirty;
  }

  append(record: NewRecord): number {
    const offset = this.nextOffset++;
    this.records.push({ ...record, offset });
    this.dirty++;
    return offset;
  }

  /** Wakes the readers waiting for growth; called by the broker after a whole send is appended. */
  notifyAppended(): void {
    const waiters = [...this.appendWaiters];
    this.appendWaiters.clear();
    for (const wake of waiters) wake();
  }

  /** Resolves on the next append (or deletion). A promise, never a polling timer. */
  waitForAppend(): Promise<void> {
    return new Promise((resolve) => this.appendWaiters.add(resolve));
  }

  /** Index of the first record with offset ≥ `offset` (binary search: offsets have gaps). */
  private indexOf(offset: number): number {
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]!.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Records with offset in [from, to), at most `maxRecords`, stopping once `maxBytes` is exceeded
   * (but always at least one record, like Kafka's fetch, so a big record cannot stall a partition).
   */
  read(from: number, to: number, maxRecords: number, maxBytes: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (let i = this.indexOf(from); i < this.records.length && out.length < maxRecords; i++) {
      const record = this.records[i]!;
      if (record.offset >= to) break;
      const size = recordSize(record);
      if (out.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      out.push(record);
    }
    return out;
  }

  /** Whether a record exists at or after `offset` (below `to`). */
  hasRecordsFrom(offset: number, to = this.nextOffset): boolean {
    const i = this.indexOf(offset);
    return i < this.records.length && this.records[i]!.offset < to;
  }

  /**
   * Keeps the latest record per key; tombstones that are the latest for their key are removed when
   * older than `tombstonesBefore` (all of them by default). Records without a key cannot exist on a
   * compacted topic (the producer rejects them) and are kept. Returns the number removed.
   */
  compact(options: CompactOptions = {}): number {
    const tombstonesBefore = options.tombstonesBefore ?? Number.POSITIVE_INFINITY;
    const latest = new Map<string, number>();
    for (const record of this.records) {
      if (record.key) latest.set(record.key.toString('base64'), record.offset);
    }
    const before = this.records.length;
    this.records = this.records.filter((record) => {
      if (!record.key) return true;
      if (latest.get(record.key.toString('base64')) !== record.offset) return false;
      return !(record.value === null && record.timestamp < tombstonesBefore);
    });
    this.dirty = 0;
    return before - this.records.length;
  }
}

export function recordSize(record: NewRecord): number {
  let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [name, value] of Object.entries(record.headers)) size += name.length + value.length;
  return size;
}
