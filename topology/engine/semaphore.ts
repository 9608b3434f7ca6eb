/** FIFO counting semaphore: a released permit goes straight to the oldest waiter. */
export class Semaphore {
  active = 0;
  /** Highest `active` seen, for EngineStats. */
  maxActive = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes a permit at once if one is free (no promise: the common case on the hot path). */
  tryAcquire(): boolean {
    if (this.active >= this.limit) return false;
    this.active += 1;
    if (this.active > this.maxActive) this.maxActive = this.active;
    return true;
  }

  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active -= 1;
  }
}
