/**
 * Couchbase as an external cache of the visitors' jars (DESIGN.md "Data flow": "Couchbase
 * (external cache only)"), for other services that want a visitor's cookies without reading Kafka.
 * docs/couchbase.md documents the documents, the settings, the metrics and how tests reach
 * CouchbaseMock.
 *
 *   const cache = openJarCache(settings.couchbase, { registry, logger });   // connects in the background
 *   cache.write(userId, encodedJar);   // never blocks, never throws; null = erase
 *   await cache.read(userId);          // StoredJar | null
 *   await cache.close();
 *
 * The local store and tracking.cookies stay the source of truth. Writes go through a bounded queue
 * (state/cache-queue.ts: one pending write per visitor, drop-oldest, erasures kept first) drained
 * by a few concurrent SDK operations; a failure is counted, logged once per error kind and outage,
 * retried a bounded number of times, and never reaches the caller. Each document expires after
 * `ttlSeconds` without a newer write (Couchbase document expiry).
 */
import { connect, DocumentNotFoundError, RawJsonTranscoder, type Cluster, type Collection } from 'couchbase';
import { Counter, Gauge, type Registry } from 'prom-client';
import { storedJarSchema, type StoredJar } from '../core/contracts/index.ts';
import { JarCacheUnavailableError } from '../core/errors.ts';
import { componentLogger, type Logger } from '../core/log.ts';
import { LatestPerKeyQueue, type CacheOp } from './cache-queue.ts';
import type { ConfiguredCouchbaseSettings } from './couchbase-settings.ts';

export { CouchbaseSettingsSchema, couchbaseConfigured, type CouchbaseSettings, type ConfiguredCouchbaseSettings } from './couchbase-settings.ts';

/** The document key of a visitor's jar: other services read `jar::<userId>` from the bucket's default collection. */
export function jarDocumentKey(userId: string): string {
  return `jar::${userId}`;
}

/** Couchbase refuses keys over 250 bytes. */
const MAX_KEY_BYTES = 250;
/** Attempts per write (first + retries) before it is dropped and counted. */
const MAX_ATTEMPTS = 3;
const RAW_JSON = new RawJsonTranscoder();

/**
 * A visitor's jar as the cache holds it, for services that have their own Couchbase connection:
 * null when the cache has none (never written, erased, or expired). The document is the value of
 * tracking.cookies (the jar, `version`, `updatedAt`), checked against its schema.
 */
export async function readJar(collection: Collection, userId: string): Promise<StoredJar | null> {
  try {
    const result = await collection.get(jarDocumentKey(userId));
    return storedJarSchema.parse(result.content);
  } catch (error) {
    if (error instanceof DocumentNotFoundError) return null;
    throw error;
  }
}

export interface JarCacheStatus {
  connected: boolean;
  queued: number;
  inFlight: number;
}

export interface JarCache {
  /** Queues the visitor's new jar (its tracking.cookies value, JSON) or, with null, its erasure. Never blocks or throws. */
  write(userId: string, jar: string | Buffer | StoredJar | null): void;
  /** The visitor's jar in the cache; throws JarCacheUnavailableError when the cache cannot answer. */
  read(userId: string): Promise<StoredJar | null>;
  /** Resolves when nothing is queued or in flight (or `timeoutMs` passed): tests and shutdown. */
  flush(timeoutMs?: number): Promise<void>;
  status(): JarCacheStatus;
  /** Flushes for up to `timeoutMs` (default 2 × the operation timeout), then disconnects; what is still queued is dropped and counted. */
  close(timeoutMs?: number): Promise<void>;
}

export interface JarCacheOptions {
  /** Prometheus registry for the `tagstream_jar_cache_*` metrics; absent = none. */
  registry?: Registry;
  logger?: Logger;
}

export function openJarCache(settings: ConfiguredCouchbaseSettings, options: JarCacheOptions = {}): JarCache {
  return new CouchbaseJarCache(settings, options);
}

/** The SDK's error class name (a small fixed set: bounded label values, and never a cookie value). */
function errorKind(error: unknown): string {
  if (error instanceof Error) return error.name === 'Error' ? error.constructor.name : error.name;
  return 'unknown';
}

type Op = CacheOp['kind'];

class CacheMetrics {
  readonly writes?: Counter<'op' | 'result'>;
  readonly failures?: Counter<'op' | 'error'>;
  readonly dropped?: Counter<'op' | 'reason'>;
  readonly reads?: Counter<'result'>;
  readonly queued?: Gauge;
  readonly connected?: Gauge;

  constructor(registry: Registry | undefined, status: () => JarCacheStatus) {
    if (registry === undefined) return;
    // A second cache on the same registry (a restarted role in tests) shares the metrics.
    const counter = <L extends string>(name: string, help: string, labelNames: L[]): Counter<L> =>
      (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
    this.writes = counter('tagstream_jar_cache_writes_total', 'Jar cache writes to Couchbase by operation (upsert, remove) and result (ok, error)', ['op', 'result']);
    this.failures = counter('tagstream_jar_cache_failures_total', 'Jar cache failures by operation (upsert, remove, read, connect) and SDK error class', ['op', 'error']);
    this.dropped = counter('tagstream_jar_cache_dropped_total', 'Jar cache writes given up: queue-full (bound reached), retries-exhausted, closed (still queued at shutdown)', ['op', 'reason']);
    this.reads = counter('tagstream_jar_cache_reads_total', 'Jar cache reads by result (hit, miss, error)', ['result']);
    const gauge = (name: string, help: string, collect: () => number): Gauge => {
      const existing = registry.getSingleMetric(name);
      if (existing !== undefined) registry.removeSingleMetric(name);
      return new Gauge({ name, help, registers: [registry], collect() { this.set(collect()); } });
    };
    this.queued = gauge('tagstream_jar_cache_queue_depth', 'Jar cache writes waiting for Couchbase', () => status().queued);
    this.connected = gauge('tagstream_jar_cache_connected', '1 once the jar cache has bootstrapped its Couchbase connection', () => (status().connected ? 1 : 0));
  }
}

class CouchbaseJarCache implements JarCache {
  readonly #settings: ConfiguredCouchbaseSettings;
  readonly #log: Logger;
  readonly #queue: LatestPerKeyQueue;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #metrics: CacheMetrics;
  /** Error kinds logged during the current outage (cleared by the next success). */
  readonly #logged = new Set<string>();
  #cluster: Cluster | undefined;
  #collection: Collection | undefined;
  #connecting: Promise<void> | undefined;
  #closed = false;
  #backoffMs = 0;
  /** Set while the pump waits after a failure. */
  #backoffTimer: NodeJS.Timeout | undefined;
  /** Ends the wait between two connection attempts (close() calls it). */
  #wake: (() => void) | undefined;
  #idle: Array<() => void> = [];

  constructor(settings: ConfiguredCouchbaseSettings, options: JarCacheOptions) {
    this.#settings = settings;
    this.#log = componentLogger(options.logger, 'jar-cache');
    this.#queue = new LatestPerKeyQueue(settings.queueBound);
    this.#metrics = new CacheMetrics(options.registry, () => this.status());
    this.#connecting = this.#connect(1000);
  }

  write(userId: string, jar: string | Buffer | StoredJar | null): void {
    const key = jarDocumentKey(userId);
    const kind: Op = jar === null ? 'remove' : 'upsert';
    if (this.#closed) {
      this.#metrics.dropped?.inc({ op: kind, reason: 'closed' });
      return;
    }
    if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
      this.#failed(kind, undefined, 'the visitor id is too long for a Couchbase key (250 bytes): not cached', 'key-too-long');
      return;
    }
    const op: CacheOp =
      jar === null ? { kind: 'remove', key, attempts: 1 } : { kind: 'upsert', key, attempts: 1, value: typeof jar === 'string' ? jar : Buffer.isBuffer(jar) ? jar.toString('utf8') : JSON.stringify(jar) };
    const dropped = this.#queue.push(op);
    if (dropped !== undefined) this.#metrics.dropped?.inc({ op: dropped.kind, reason: 'queue-full' });
    this.#pump();
  }

  async read(userId: string): Promise<StoredJar | null> {
    const collection = this.#collection;
    if (collection === undefined) {
      this.#metrics.reads?.inc({ result: 'error' });
      throw new JarCacheUnavailableError('not connected');
    }
    try {
      const jar = await readJar(collection, userId);
      this.#metrics.reads?.inc({ result: jar === null ? 'miss' : 'hit' });
      return jar;
    } catch (error) {
      this.#metrics.reads?.inc({ result: 'error' });
      this.#failed('read', error, 'jar cache read failed');
      throw new JarCacheUnavailableError(errorKind(error), { cause: error });
    }
  }

  status(): JarCacheStatus {
    return { connected: this.#collection !== undefined, queued: this.#queue.size, inFlight: this.#inFlight.size };
  }

  flush(timeoutMs = 30_000): Promise<void> {
    if (this.#queue.size === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idle.push(done);
    });
  }

  async close(timeoutMs = 2 * this.#settings.timeoutMs): Promise<void> {
    if (this.#closed) return;
    if (this.#collection !== undefined) await this.flush(timeoutMs);
    this.#closed = true;
    clearTimeout(this.#backoffTimer);
    this.#wake?.();
    for (const op of this.#queue.drain()) this.#metrics.dropped?.inc({ op: op.kind, reason: 'closed' });
    await Promise.allSettled(this.#inFlight.values());
    await this.#connecting?.catch(() => undefined);
    const cluster = this.#cluster;
    this.#cluster = undefined;
    this.#collection = undefined;
    await cluster?.close().catch(() => undefined);
    this.#notifyIdle();
  }

  /** Bootstraps in the background, retrying with backoff until it works or the cache closes. */
  async #connect(delayMs: number): Promise<void> {
    const { connectionString, username, password, timeoutMs, bucket } = this.#settings;
    try {
      const cluster = await connect(connectionString, {
        ...(username === undefined ? {} : { username, password: password ?? '' }),
        timeouts: { kvTimeout: timeoutMs, connectTimeout: timeoutMs, bootstrapTimeout: timeoutMs },
      });
      if (this.#closed) {
        await cluster.close().catch(() => undefined);
        return;
      }
      this.#cluster = cluster;
      this.#collection = cluster.bucket(bucket).defaultCollection();
      this.#connecting = undefined;
      this.#log.info({ bucket }, 'jar cache connected to Couchbase');
      this.#pump();
    } catch (error) {
      this.#failed('connect', error, 'jar cache cannot connect to Couchbase: retrying; jars are written through once it can');
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
      if (!this.#closed) this.#connecting = this.#connect(Math.min(delayMs * 2, 30_000));
    }
  }

  /** Starts operations while there is room, a connection and no backoff pending. */
  #pump(): void {
    const collection = this.#collection;
    if (collection === undefined || this.#closed || this.#backoffTimer !== undefined) return;
    while (this.#inFlight.size < this.#settings.concurrency) {
      const op = this.#queue.take(this.#inFlight);
      if (op === undefined) break;
      const running = this.#run(collection, op).finally(() => {
        this.#inFlight.delete(op.key);
        this.#pump();
        this.#notifyIdle();
      });
      this.#inFlight.set(op.key, running);
    }
  }

  async #run(collection: Collection, op: CacheOp): Promise<void> {
    try {
      if (op.kind === 'upsert') await collection.upsert(op.key, op.value, { expiry: this.#settings.ttlSeconds, transcoder: RAW_JSON });
      else await collection.remove(op.key).catch((error: unknown) => {
        // Already gone (expired, or never cached): the erasure holds.
        if (!(error instanceof DocumentNotFoundError)) throw error;
      });
      this.#metrics.writes?.inc({ op: op.kind, result: 'ok' });
      this.#recovered();
    } catch (error) {
      this.#metrics.writes?.inc({ op: op.kind, result: 'error' });
      this.#failed(op.kind, error, 'jar cache write failed: counted and retried, the event is not affected');
      if (this.#closed) return;
      const dropped = op.attempts >= MAX_ATTEMPTS ? op : this.#queue.retry(op);
      if (dropped !== undefined) this.#metrics.dropped?.inc({ op: dropped.kind, reason: dropped === op ? 'retries-exhausted' : 'queue-full' });
      this.#backOff();
    }
  }

  /** After a failure the pump waits (100 ms doubling to 5 s) instead of hammering a sick cluster. */
  #backOff(): void {
    this.#backoffMs = Math.min(Math.max(this.#backoffMs * 2, 100), 5000);
    if (this.#backoffTimer !== undefined) return;
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = undefined;
      this.#pump();
    }, this.#backoffMs);
  }

  #recovered(): void {
    this.#backoffMs = 0;
    if (this.#logged.size > 0) {
      this.#log.info({ errors: [...this.#logged] }, 'jar cache writes succeed again');
      this.#logged.clear();
    }
  }

  /** Counted every time, logged once per error kind until the next success (no keys, no values). */
  #failed(op: Op | 'read' | 'connect', error: unknown, message: string, kind = errorKind(error)): void {
    this.#metrics.failures?.inc({ op, error: kind });
    const logKey = `${op}:${kind}`;
    if (this.#logged.has(logKey)) return;
    this.#logged.add(logKey);
    // The SDK's message names the failure (`unambiguous timeout`), never a document's content.
    this.#log.warn({ op, error: kind, ...(error instanceof Error ? { reason: error.message } : {}) }, message);
  }

  #notifyIdle(): void {
    if (this.#queue.size > 0 || this.#inFlight.size > 0) return;
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }
}
