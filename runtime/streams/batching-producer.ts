/**
 * Coalesces the small sends of concurrent records into few produce requests.
 *
 * The runner sends the outputs of each record on its own (a record is done when ITS outputs are
 * acknowledged). platformatic's producer turns every send() into one produce request and does not
 * linger, so one-record sends cap a member at one broker round trip per record (~1,000 records/s
 * measured on the local broker, whatever the concurrency). This wrapper does what the Java client's
 * batching does: sends issued while a request is in flight wait and leave together in the next one
 * (no timer: an idle producer sends at once). Each caller still gets the metadata of its own
 * records, and a failed request fails every caller that was in it.
 */
import { hasCode } from '../../core/errors.ts';
import type { KafkaProducer, ProduceRecord, RecordMetadata } from '../kafka/types.ts';

interface Pending {
  records: readonly ProduceRecord[];
  bytes: number;
  resolve: (metadata: RecordMetadata[]) => void;
  reject: (error: unknown) => void;
}

export interface BatchingProducerOptions {
  /** Produce requests in flight at once (default 1: records of one partition stay in send order). */
  maxInFlight?: number;
  /** Upper bound of records in one request (default 10,000). */
  maxBatchRecords?: number;
  /**
   * Upper bound of key + value bytes in one request (default 512 KiB). The client puts all records
   * of one partition in one record batch, and the broker refuses a batch over the topic's
   * `max.message.bytes` (1 MiB by default) whole: without this bound, a few large jars finishing
   * together would fail every record that shared their request. A single larger record goes alone.
   */
  maxBatchBytes?: number;
}

/** What a record weighs in a request (key + value + headers; the framing is small and bounded). */
export function recordBytes(record: ProduceRecord): number {
  const size = (v: ProduceRecord['value']): number => (v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length);
  let n = size(record.key) + size(record.value);
  if (record.headers) for (const [k, v] of Object.entries(record.headers)) n += Buffer.byteLength(k, 'utf8') + size(v);
  return n;
}

export class BatchingProducer implements KafkaProducer {
  readonly #inner: KafkaProducer;
  readonly #maxInFlight: number;
  readonly #maxBatch: number;
  readonly #maxBytes: number;
  #queue: Pending[] = [];
  #inFlight = 0;
  #scheduled = false;
  #requests = 0;
  #records = 0;

  constructor(inner: KafkaProducer, options: BatchingProducerOptions = {}) {
    this.#inner = inner;
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.#maxBatch = Math.max(1, options.maxBatchRecords ?? 10_000);
    this.#maxBytes = Math.max(1, options.maxBatchBytes ?? 512 * 1024);
  }

  send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]> {
    if (records.length === 0) return Promise.resolve([]);
    return new Promise<RecordMetadata[]>((resolve, reject) => {
      let bytes = 0;
      for (const r of records) bytes += recordBytes(r);
      this.#queue.push({ records, bytes, resolve, reject });
      this.#schedule();
    });
  }

  /** Produce requests sent and records in them, since creation (the batching it achieved). */
  get stats(): { requests: number; records: number } {
    return { requests: this.#requests, records: this.#records };
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** Flushes after the current macrotask: records finishing together (one fetch's worth) share a request. */
  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const batch: Pending[] = [];
      let count = 0;
      let bytes = 0;
      while (
        this.#queue.length > 0 &&
        (batch.length === 0 || (count + this.#queue[0]!.records.length <= this.#maxBatch && bytes + this.#queue[0]!.bytes <= this.#maxBytes))
      ) {
        const next = this.#queue.shift()!;
        batch.push(next);
        count += next.records.length;
        bytes += next.bytes;
      }
      this.#inFlight += 1;
      this.#requests += 1;
      this.#records += count;
      void this.#sendBatch(batch);
    }
  }

  async #sendBatch(batch: readonly Pending[]): Promise<void> {
    let metadata: RecordMetadata[] | undefined;
    let error: unknown;
    try {
      metadata = await this.#inner.send(batch.flatMap((p) => p.records));
    } catch (e) {
      error = e;
    }
    // The broker refuses a record batch whole when one record in it is too large or invalid: the
    // callers that shared the request must not pay for it. Each is sent again on its own, in order
    // (nothing of a refused batch was written, so this duplicates nothing), and only the guilty fail.
    if (metadata === undefined && batch.length > 1 && blamesTheRecord(error)) {
      for (const p of batch) {
        try {
          p.resolve(await this.#inner.send(p.records));
        } catch (e) {
          p.reject(e);
        }
      }
      this.#inFlight -= 1;
      if (this.#queue.length > 0) this.#schedule();
      return;
    }
    this.#inFlight -= 1;
    // The next request leaves after the current macrotask, not right now: the callers resolved below
    // (a runner then starts the next record of each key and sends its outputs a few microtasks
    // later) all join it, instead of a first few leaving alone and the rest trailing one round trip.
    if (this.#queue.length > 0) this.#schedule();
    if (metadata === undefined) {
      for (const p of batch) p.reject(error);
      return;
    }
    let at = 0;
    for (const p of batch) {
      p.resolve(metadata.slice(at, at + p.records.length));
      at += p.records.length;
    }
  }
}

function blamesTheRecord(error: unknown): boolean {
  return hasCode(error, 'ERR_KAFKA_RECORD_TOO_LARGE') || hasCode(error, 'ERR_KAFKA_RECORD_REJECTED');
}
