/**
 * What the runner does while no broker is reachable (docs/runner.md "Broker outages"):
 *
 * - a produce that failed because no broker was reachable is tried again while its record is
 *   still this member's, up to `brokerRetryMs`, with backoff up to 5 s: a broker restart must not
 *   stop the application (the record's key keeps its slot meanwhile, so the key's order holds;
 *   nothing is committed past it). Any other error, a revocation or the budget's end ends the
 *   retries with the last error;
 * - meanwhile no new record starts (`whenOpen`): its outputs could not be written, and work done
 *   in between (a partner called, a page run) would be done again by whoever processes the record
 *   after a hand-over. The gate opens when a produce got through, or when no record is left
 *   retrying (revoked or failed: nobody would find out that the broker is back; the next produce
 *   that fails closes it again).
 */
import { BrokerUnreachableError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { ProduceRecord, RecordMetadata } from '../kafka/types.ts';

export class BrokerGate {
  #closed: { promise: Promise<void>; open: () => void } | undefined;
  /** Records whose produce is being retried. */
  #retrying = 0;

  constructor(
    private readonly send: (records: readonly ProduceRecord[]) => Promise<RecordMetadata[]>,
    private readonly retryMs: number,
    private readonly log: Logger,
    private readonly groupId: string,
  ) {}

  /** Settles when records may start; undefined when they may now (the per-record hot path checks this). */
  get closed(): Promise<void> | undefined {
    return this.#closed?.promise;
  }

  /** Resolves when the gate opens or the record was given up (the caller then checks its signal). */
  whenOpen(signal: AbortSignal): Promise<void> {
    const closed = this.#closed?.promise;
    if (closed === undefined || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      void closed.then(done);
    });
  }

  /** `error` is the first send's failure; resolves with the metadata of a later attempt or rejects with the last error. */
  async produceAgain(records: readonly ProduceRecord[], signal: AbortSignal, error: unknown): Promise<RecordMetadata[]> {
    const giveUpAt = Date.now() + this.retryMs;
    let delay = 250;
    let last = error;
    this.#retrying += 1;
    try {
      while (last instanceof BrokerUnreachableError && !signal.aborted && Date.now() + delay < giveUpAt) {
        if (this.#closed === undefined) {
          let open: () => void = () => undefined;
          const promise = new Promise<void>((resolve) => (open = resolve));
          this.#closed = { promise, open };
          this.log.warn({ groupId: this.groupId, err: last, retryForMs: this.retryMs }, 'no broker reachable: producing again until it is back; no new record starts meanwhile');
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 5_000);
        try {
          const metadata = await this.send(records);
          if (this.#closed !== undefined) this.log.info({ groupId: this.groupId }, 'broker reachable again: produce resumed');
          this.#open();
          return metadata;
        } catch (again) {
          last = again;
        }
      }
      throw last;
    } finally {
      this.#retrying -= 1;
      if (this.#retrying === 0) this.#open();
    }
  }

  #open(): void {
    const closed = this.#closed;
    this.#closed = undefined;
    closed?.open();
  }
}
