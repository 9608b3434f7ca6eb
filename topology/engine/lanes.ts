import type { RecordKey } from '../model.ts';

/**
 * One promise chain per key, so the records of a key go through the whole graph one after another
 * while different keys run concurrently. An entry disappears when its chain drains: idle users
 * cost nothing.
 */
export class KeyedLanes {
  private readonly tails = new Map<string, Promise<void>>();

  /** `settled` runs once the task settled (whatever the outcome), after the lane moved on. */
  run<T>(key: RecordKey, task: () => Promise<T>, settled: () => void): Promise<T> {
    if (key === null) {
      const result = task();
      result.then(settled, settled);
      return result;
    }
    const previous = this.tails.get(key);
    // An idle key (the usual case when the caller already orders per key) starts at once.
    const result = previous === undefined ? task() : previous.then(task);
    const tail: Promise<void> = result.then(
      () => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
        settled();
      },
      () => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
        settled();
      },
    );
    this.tails.set(key, tail);
    return result;
  }

  get size(): number {
    return this.tails.size;
  }
}
