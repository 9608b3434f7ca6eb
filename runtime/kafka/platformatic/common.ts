import type { Base, BaseOptions } from '@platformatic/kafka';
import type { Bytes } from '../types.ts';
import { isUnknownTopic, withConnectDeadline } from './errors.ts';

import type { ResolvedOptions } from '../options.ts';
export { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, resolveOptions, type ResolvedOptions } from '../options.ts';


/**
 * Options shared by producer, consumer and admin. Retries back off exponentially and stop after a
 * few attempts: a broker that went away must not be hammered (the library default is a flat 1 s).
 * `autocreateTopics: false` so that a typo in a topic name is an UnknownTopicError, not a new topic.
 */
export function baseOptions(options: ResolvedOptions, clientId: string = options.clientId): BaseOptions {
  return {
    clientId,
    bootstrapBrokers: [...options.brokers],
    connectTimeout: options.connectTimeoutMs,
    timeout: options.requestTimeoutMs,
    retries: 5,
    retryDelay: (_client, _operation, attempt) => Math.min(100 * 2 ** attempt, 2_000),
    autocreateTopics: false,
  };
}

/**
 * Verifies that the cluster answers (bootstrap + metadata) within connectTimeoutMs. On failure
 * the client is closed, which also cancels its pending retries.
 */
export async function probe(client: Base, options: ResolvedOptions): Promise<void> {
  await withConnectDeadline(client.metadata({ topics: [] }), options.brokers, options.connectTimeoutMs, () =>
    client.close(),
  );
}

export function toBuffer(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

export function toHeaderRecord(headers: Map<Buffer, Buffer> | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  if (!headers) return out;
  for (const [k, v] of headers) out[k.toString()] = v ?? Buffer.alloc(0);
  return out;
}

/**
 * Metadata of `topics` for a data path (produce, read). The library retries
 * UNKNOWN_TOPIC_OR_PARTITION like a network error, ~5 s with our backoff; two quick retries are
 * enough for a topic another process has just created, so a missing topic is reported fast,
 * while other failures (a broker restarting) still get the full retry budget.
 */
export async function topicMetadata(client: Base, topics: string[]): ReturnType<Base['metadata']> {
  try {
    return await client.metadata({ topics, retries: 2 });
  } catch (error) {
    if (isUnknownTopic(error)) throw error;
    return await client.metadata({ topics });
  }
}
