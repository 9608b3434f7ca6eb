/**
 * Producing an accepted event with a bounded wait and bounded memory (DESIGN.md: "503 quickly
 * when the broker is unavailable (bounded wait, bounded memory, never an unbounded buffer)").
 *
 * - `inFlight` counts records handed to the producer and not settled yet, including those whose
 *   request already got its 503 after `produceTimeoutMs`: they still hold memory, so they still
 *   count. Past `maxInFlight` a request is refused at once, whatever the broker does;
 * - one producer, through the batching producer (concurrent requests share produce requests);
 * - a produce that failed (not timed out) drops the producer: the next event opens a fresh one,
 *   as the broker probe does with its admin (a client whose connection broke is not trusted to
 *   recover by itself). Opening is shared by concurrent requests and bounded by the same wait.
 */
import type { Logger } from '../../../core/log.ts';
import type { KafkaClient, KafkaProducer } from '../../kafka/types.ts';
import { BatchingProducer } from '../../streams/batching-producer.ts';

export type ProduceOutcome = { ok: true } | { ok: false; reason: 'overloaded' | 'timeout' | 'failed' | 'closed' };

const OK: ProduceOutcome = Object.freeze({ ok: true });

export interface EventProducerOptions {
  client: KafkaClient;
  topic: string;
  clientId?: string;
  produceTimeoutMs: number;
  maxInFlight: number;
  logger: Logger;
}

export class EventProducer {
  readonly #options: EventProducerOptions;
  #producer: Promise<KafkaProducer> | undefined;
  #inFlight = 0;
  #closed = false;
  #unsettled = new Set<Promise<unknown>>();
  #healthy = true;

  constructor(options: EventProducerOptions) {
    this.#options = options;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** False after a produce failed or timed out, until one succeeds again. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Opens the producer now (at start: a broker that is not there fails `run` early, with its reason). */
  async open(): Promise<void> {
    await this.#current();
  }

  async produce(key: string, value: string): Promise<ProduceOutcome> {
    if (this.#closed) return { ok: false, reason: 'closed' };
    if (this.#inFlight >= this.#options.maxInFlight) return { ok: false, reason: 'overloaded' };
    this.#inFlight += 1;
    const opening = this.#current();
    const sent = opening.then((producer) => producer.send([{ topic: this.#options.topic, key, value }]));
    const settled = sent.then(
      () => {
        this.#healthy = true;
      },
      (error: unknown) => {
        this.#healthy = false;
        this.#drop(opening, error);
      },
    );
    this.#unsettled.add(settled);
    void settled.finally(() => {
      this.#inFlight -= 1;
      this.#unsettled.delete(settled);
    });
    // One timer and one promise per request: this is the hot path of every accepted event, and
    // nothing here can be aborted (the record stays with the producer and counts in inFlight).
    const verdict = await new Promise<ProduceOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.#healthy = false;
        resolve({ ok: false, reason: 'timeout' });
      }, this.#options.produceTimeoutMs);
      sent.then(
        () => {
          clearTimeout(timer);
          resolve(OK);
        },
        () => {
          clearTimeout(timer);
          resolve({ ok: false, reason: 'failed' });
        },
      );
    });
    return verdict;
  }

  /** Waits (up to `timeoutMs`) for the records in flight to settle, then closes the producer. */
  async close(timeoutMs: number): Promise<void> {
    this.#closed = true;
    const pending = Promise.allSettled([...this.#unsettled]);
    await Promise.race([pending, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    const producer = this.#producer;
    this.#producer = undefined;
    await producer?.then((p) => p.close()).catch(() => undefined);
  }

  #current(): Promise<KafkaProducer> {
    if (this.#producer === undefined) {
      const { client, clientId } = this.#options;
      const opening = client.producer(clientId === undefined ? {} : { clientId }).then((inner) => new BatchingProducer(inner, { maxInFlight: 4 }));
      this.#producer = opening;
      // A failed open is forgotten, so the next event tries again (never a cached failure).
      opening.catch((error: unknown) => this.#drop(opening, error));
    }
    return this.#producer;
  }

  #drop(producer: Promise<KafkaProducer>, error: unknown): void {
    if (this.#producer !== producer) return;
    this.#producer = undefined;
    this.#options.logger.warn({ err: error }, 'collector: produce failed, reopening the producer for the next event');
    void producer.then((p) => p.close()).catch(() => undefined);
  }
}
