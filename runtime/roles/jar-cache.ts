/**
 * The Couchbase jar cache in the processor (docs/couchbase.md): which writes reach it, and the
 * read route other services may use.
 *
 * Write-through follows the changelog, not the store: a jar is written to Couchbase once its
 * tracking.cookies record (new jar, merged jar, or the tombstone of an erasure) was acknowledged by
 * the broker. What the cache holds is therefore always something the source of truth holds too;
 * a record that is processed again after a rebalance writes the same document again (idempotent).
 * The Kafka client handed to the stream runtime is decorated for that, so neither the topology nor
 * the stream runtime knows about the cache.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../../core/log.ts';
import type { ProduceRecord, RecordMetadata } from '../../core/records.ts';
import { couchbaseConfigured } from '../../state/couchbase-settings.ts';
import type { JarCache } from '../../state/couchbase.ts';
import type { Settings } from '../config.ts';
import type { KafkaClient, KafkaProducer, ProducerOptions } from '../kafka/types.ts';
import type { StreamsHandle } from '../streams/index.ts';
import type { HttpRoute } from './role.ts';

/** The cache the settings configure (none without `couchbase.connectionString`); the SDK loads only then. */
export async function openConfiguredJarCache(settings: Settings, options: { registry?: Registry; logger?: Logger }): Promise<JarCache | undefined> {
  const couchbase = settings.couchbase;
  if (!couchbaseConfigured(couchbase)) return undefined;
  const { openJarCache } = await import('../../state/couchbase.ts');
  return openJarCache(couchbase, options);
}

/** `client` whose producers hand every acknowledged record of `cookiesTopic` to the cache. */
export function writeThroughClient(client: KafkaClient, cookiesTopic: string, cache: Pick<JarCache, 'write'>): KafkaClient {
  const observe = (records: readonly ProduceRecord[]): void => {
    for (const record of records) {
      if (record.topic !== cookiesTopic || record.key === null) continue;
      cache.write(typeof record.key === 'string' ? record.key : record.key.toString('utf8'), record.value);
    }
  };
  return {
    kind: client.kind,
    async producer(options?: ProducerOptions): Promise<KafkaProducer> {
      const producer = await client.producer(options);
      return {
        async send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]> {
          const metadata = await producer.send(records);
          observe(records);
          return metadata;
        },
        close: () => producer.close(),
      };
    },
    consumer: (options) => client.consumer(options),
    reader: () => client.reader(),
    admin: () => client.admin(),
    close: () => client.close(),
  };
}

/** The stream handle, closing the cache it owns after the processor stopped (or failed). */
export function withOwnedCache<H extends StreamsHandle>(handle: H, cache: JarCache | undefined): H {
  if (cache === undefined) return handle;
  let closing: Promise<void> | undefined;
  const closeCache = (): Promise<void> => (closing ??= cache.close());
  const closed = handle.closed.then(
    () => closeCache(),
    async (error: unknown) => {
      await closeCache();
      throw error;
    },
  );
  closed.catch(() => undefined);
  return {
    ...handle,
    closed,
    async stop(timeoutMs?: number) {
      try {
        await handle.stop(timeoutMs);
      } finally {
        await closeCache();
      }
    },
  };
}

/**
 * GET /jars/:userId on the process's HTTP endpoint (couchbase.httpReads): the visitor's jar from
 * the cache. 200 `{"userId","jar"}`, 404 when the cache has none, 503 while it cannot answer.
 * It returns cookie values: the endpoint's port must stay internal when it is on.
 */
export function jarReadRoute(cache: () => JarCache | undefined): HttpRoute {
  return {
    prefix: '/jars/',
    handle(req: IncomingMessage, res: ServerResponse, rest: string): void {
      let userId: string;
      try {
        userId = decodeURIComponent(rest);
      } catch {
        return reply(res, req, 400, { error: { code: 'ERR_INVALID_INPUT', field: 'userId', reason: 'not a valid percent-encoded visitor id' } });
      }
      if (userId === '' || userId.includes('/')) return reply(res, req, 400, { error: { code: 'ERR_INVALID_INPUT', field: 'userId', reason: 'expected /jars/<userId>' } });
      const current = cache();
      if (current === undefined) return reply(res, req, 503, { error: { code: 'ERR_JAR_CACHE_UNAVAILABLE', reason: 'the processor has not started its cache yet' } });
      current.read(userId).then(
        (jar) => reply(res, req, jar === null ? 404 : 200, { userId, jar }),
        (error: unknown) => reply(res, req, 503, { error: { code: 'ERR_JAR_CACHE_UNAVAILABLE', reason: error instanceof Error ? error.message : String(error) } }),
      );
    },
  };
}

function reply(res: ServerResponse, req: IncomingMessage, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : JSON.stringify(body) + '\n');
}
