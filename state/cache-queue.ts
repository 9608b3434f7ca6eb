/**
 * The bounded queue between the processor and the Couchbase jar cache (state/couchbase.ts). Pure:
 * no I/O, no clock, so its rules are tested directly.
 *
 * - One pending operation per visitor: a newer jar (or an erasure) replaces the queued one in its
 *   place, so a busy visitor never takes more than one slot and the cache only ever receives the
 *   latest state of a key.
 * - Full queue, new visitor: the OLDEST queued upsert is dropped to make room. The newest jar is
 *   the one readers want, and a dropped upsert only leaves an older jar (or none) in the cache until
 *   the visitor's next page view or the document's TTL: a stale cache entry, never a lost event
 *   (the local store and tracking.cookies have it).
 * - Erasures are kept in preference to upserts: an erasure dropped would leave an erased visitor's
 *   jar readable in the cache until its TTL. An upsert arriving at a queue that holds only
 *   erasures is itself dropped; an erasure arriving there drops the oldest erasure (memory stays
 *   bounded whatever happens; the TTL still removes that document in the end).
 */

export type CacheOp = { kind: 'upsert'; key: string; value: string; attempts: number } | { kind: 'remove'; key: string; attempts: number };

export class LatestPerKeyQueue {
  /** Insertion order = age: the first entry is the oldest. */
  readonly #ops = new Map<string, CacheOp>();

  constructor(readonly bound: number) {
    if (!Number.isInteger(bound) || bound < 1) throw new RangeError(`queue bound must be a positive integer, got ${bound}`);
  }

  get size(): number {
    return this.#ops.size;
  }

  /** Queues `op`; returns the operation dropped to keep the bound (possibly `op` itself), if any. */
  push(op: CacheOp): CacheOp | undefined {
    if (this.#ops.has(op.key)) {
      // Map.set on an existing key keeps its position: the slot keeps its age, the value is the newest.
      this.#ops.set(op.key, op);
      return undefined;
    }
    let dropped: CacheOp | undefined;
    if (this.#ops.size >= this.bound) {
      dropped = this.#oldest('upsert') ?? (op.kind === 'upsert' ? op : this.#oldest('remove'));
      if (dropped === op) return op;
      if (dropped !== undefined) this.#ops.delete(dropped.key);
    }
    this.#ops.set(op.key, op);
    return dropped;
  }

  /** Re-queues a failed operation unless a newer one for its key is already waiting. */
  retry(op: CacheOp): CacheOp | undefined {
    if (this.#ops.has(op.key)) return undefined;
    return this.push({ ...op, attempts: op.attempts + 1 });
  }

  /** Takes the oldest operation whose key is not `busy` (one operation per key at a time keeps their order). */
  take(busy: ReadonlySet<string> | ReadonlyMap<string, unknown>): CacheOp | undefined {
    for (const [key, op] of this.#ops) {
      if (busy.has(key)) continue;
      this.#ops.delete(key);
      return op;
    }
    return undefined;
  }

  /** Empties the queue, returning what was in it (close without a reachable cache). */
  drain(): CacheOp[] {
    const all = [...this.#ops.values()];
    this.#ops.clear();
    return all;
  }

  #oldest(kind: CacheOp['kind']): CacheOp | undefined {
    for (const op of this.#ops.values()) if (op.kind === kind) return op;
    return undefined;
  }
}
