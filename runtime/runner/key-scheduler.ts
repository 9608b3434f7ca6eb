/**
 * Per-key ordering with bounded concurrency. Jobs of one key run one at a time, in the order they
 * were added; jobs of different keys run concurrently, at most `concurrency` at once. A key waits in
 * a FIFO "ready" queue while all slots are busy, so no key starves.
 *
 * This is the bounded replacement for RxJS `groupBy` + `concatMap` inside `mergeMap(…, n)`: those
 * queue without limit, here the runner sees `buffered` and pauses fetching (backpressure).
 */
export interface KeyedJob {
  /** Jobs with equal keys never overlap and keep their order. */
  readonly key: string;
  /** Lets the runner drop the not-yet-started jobs of a revoked partition. */
  readonly partition: number;
  run(): Promise<void>;
}

export class KeyScheduler<J extends KeyedJob = KeyedJob> {
  readonly #concurrency: number;
  /** Not-started jobs per key (the head runs next for that key). */
  readonly #queues = new Map<string, J[]>();
  /** Keys whose head job may start (key idle, queue non-empty), oldest first. */
  #ready: string[] = [];
  readonly #active = new Set<string>();
  #running = 0;
  #queued = 0;
  #peak = 0;
  readonly #runningPerPartition = new Map<number, number>();
  readonly #idleWaiters: Array<{ partition: number | undefined; resolve: () => void }> = [];
  readonly #onChange: () => void;

  constructor(concurrency: number, onChange: () => void = () => undefined) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be an integer >= 1');
    this.#concurrency = concurrency;
    this.#onChange = onChange;
  }

  /** Jobs added but not started. */
  get buffered(): number {
    return this.#queued;
  }

  /** Jobs started and not finished. */
  get inFlight(): number {
    return this.#running;
  }

  /** Highest `inFlight` seen (exact even when the owner coalesces its onChange work). */
  get peakInFlight(): number {
    return this.#peak;
  }

  inFlightOf(partition: number): number {
    return this.#runningPerPartition.get(partition) ?? 0;
  }

  add(job: J): void {
    const queue = this.#queues.get(job.key);
    if (queue) queue.push(job);
    else {
      this.#queues.set(job.key, [job]);
      if (!this.#active.has(job.key)) this.#ready.push(job.key);
    }
    this.#queued += 1;
    this.#pump();
  }

  /** Removes the not-started jobs of the partitions (all when omitted); returns how many. */
  drop(partitions?: ReadonlySet<number>): number {
    let dropped = 0;
    for (const [key, queue] of this.#queues) {
      const kept = partitions ? queue.filter((j) => !partitions.has(j.partition)) : [];
      dropped += queue.length - kept.length;
      if (kept.length > 0) this.#queues.set(key, kept);
      else this.#queues.delete(key);
    }
    if (dropped > 0) {
      this.#queued -= dropped;
      this.#ready = this.#ready.filter((key) => this.#queues.has(key));
      this.#onChange();
    }
    return dropped;
  }

  /** Resolves when no job of the partition (any partition when omitted) is running. */
  whenIdle(partition?: number): Promise<void> {
    if ((partition === undefined ? this.#running : this.inFlightOf(partition)) === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push({ partition, resolve }));
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#ready.length > 0) {
      const key = this.#ready.shift() as string;
      const queue = this.#queues.get(key);
      const job = queue?.shift();
      if (!queue || !job) continue;
      if (queue.length === 0) this.#queues.delete(key);
      this.#queued -= 1;
      this.#running += 1;
      if (this.#running > this.#peak) this.#peak = this.#running;
      this.#runningPerPartition.set(job.partition, this.inFlightOf(job.partition) + 1);
      this.#active.add(key);
      this.#execute(job);
    }
    this.#onChange();
  }

  /** Plain promise callbacks rather than an async function: two fewer promises per job. */
  #execute(job: J): void {
    const finish = (): void => this.#finish(job);
    let running: Promise<void>;
    try {
      running = job.run();
    } catch {
      // run() owns its error handling; a throw here must not wedge the key (finished async, as before).
      running = Promise.resolve();
    }
    running.then(finish, finish);
  }

  #finish(job: J): void {
    this.#active.delete(job.key);
    this.#running -= 1;
    const left = this.inFlightOf(job.partition) - 1;
    if (left > 0) this.#runningPerPartition.set(job.partition, left);
    else this.#runningPerPartition.delete(job.partition);
    if (this.#queues.has(job.key)) this.#ready.push(job.key);
    if (this.#idleWaiters.length > 0) this.#wakeIdle();
    this.#pump();
  }

  #wakeIdle(): void {
    for (let i = this.#idleWaiters.length - 1; i >= 0; i -= 1) {
      const waiter = this.#idleWaiters[i] as { partition: number | undefined; resolve: () => void };
      const busy = waiter.partition === undefined ? this.#running : this.inFlightOf(waiter.partition);
      if (busy === 0) {
        this.#idleWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }
}
