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
  private logStart = 0;
  private totalBytes = 0;
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

  /** Kafka's log start offset: 0 until retention deletes the oldest records (compaction keeps it). */
  get startOffset(): number {
    return this.logStart;
  }

  /** Total bytes of keys, values and headers (for retention.bytes). */
  get bytes(): number {
    return this.totalBytes;
  }

  /** The timestamp of the oldest record, if any (for retention.ms). */
  get oldestTimestamp(): number | undefined {
    return this.records[0]?.timestamp;
  }

  /**
   * Applies retention limits: drops the oldest records until at most `maxRecords` remain, none is
   * older than `minTimestamp` and the log holds at most `maxBytes`. Only from the head, as Kafka
   * deletes whole old segments (a late old timestamp behind a newer one stays). The record limit
   * is applied in steps of a tenth, like segments, so that a full log does not shift its array
   * at every append.
   */
  retain(limits: { maxRecords: number; minTimestamp: number; maxBytes: number }): void {
    const slack = Math.max(1, Math.floor(limits.maxRecords / 10));
    let cut = this.records.length >= limits.maxRecords + slack ? this.records.length - limits.maxRecords : 0;
    let bytes = this.totalBytes;
    for (let i = 0; i < cut; i++) bytes -= recordSize(this.records[i]!);
    while (cut < this.records.length && (this.records[cut]!.timestamp < limits.minTimestamp || bytes > limits.maxBytes)) {
      bytes -= recordSize(this.records[cut]!);
      cut++;
    }
    if (cut === 0) return;
    this.truncateBefore(cut < this.records.length ? this.records[cut]!.offset : this.nextOffset);
  }

  /**
   * Retention: deletes the records before `offset` and moves the log start offset there, like
   * Kafka's DeleteRecords. Consumers positioned before it are out of range and reset.
   */
  truncateBefore(offset: number): void {
    const target = Math.min(offset, this.nextOffset);
    if (target <= this.logStart) return;
    const cut = this.indexOf(target);
    for (let i = 0; i < cut; i++) this.totalBytes -= recordSize(this.records[i]!);
    this.records.splice(0, cut);
    this.logStart = target;
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
    this.totalBytes += recordSize(record);
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
      const keep =
        !record.key ||
        (latest.get(record.key.toString('base64')) === record.offset &&
          !(record.value === null && record.timestamp < tombstonesBefore));
      if (!keep) this.totalBytes -= recordSize(record);
      return keep;
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
