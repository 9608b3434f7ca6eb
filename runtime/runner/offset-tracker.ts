/**
 * Per-partition commit watermark. A partition's committable offset is the lowest offset that is not
 * yet fully done (its outputs acknowledged), or the offset after the last tracked record when all
 * are done. Records finish out of order (different keys run concurrently), so committing the
 * highest finished offset would skip unfinished work and lose it after a crash; the watermark
 * never does: a crash replays from it, which gives duplicates, never loss.
 *
 * Offsets may have gaps (compaction, transaction markers): only tracked offsets matter.
 */
export class OffsetTracker {
  /** Tracked offsets in arrival order (= offset order), from `#head` on. */
  #pending: number[] = [];
  #head = 0;
  readonly #done = new Set<number>();
  /** Offset after the last tracked record; -1 before the first. */
  #next = -1;
  #first = -1;

  /** Registers a record as taken. Offsets must increase; a repeated or older offset is refused (false). */
  track(offset: number): boolean {
    if (offset < this.#next) return false;
    if (this.#first < 0) this.#first = offset;
    this.#pending.push(offset);
    this.#next = offset + 1;
    return true;
  }

  /** Marks a tracked record as done (outputs acknowledged). */
  complete(offset: number): void {
    if (this.#head >= this.#pending.length || offset < (this.#pending[this.#head] ?? Infinity)) return;
    this.#done.add(offset);
    while (this.#head < this.#pending.length) {
      const first = this.#pending[this.#head] as number;
      if (!this.#done.delete(first)) break;
      this.#head += 1;
    }
    // Drop the consumed prefix now and then: keeps the array small without O(n) shifts per record.
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The offset to commit (Kafka convention: next to read), or undefined before any record. */
  watermark(): number | undefined {
    if (this.#next < 0) return undefined;
    return this.#head < this.#pending.length ? (this.#pending[this.#head] as number) : this.#next;
  }

  /** The first offset ever tracked (-1 before any): a watermark equal to it means no progress. */
  get first(): number {
    return this.#first;
  }

  /** Offset after the last tracked record (-1 before any): records below it were already taken. */
  get next(): number {
    return this.#next;
  }

  /** Tracked records not yet done. */
  get outstanding(): number {
    return this.#pending.length - this.#head;
  }
}
