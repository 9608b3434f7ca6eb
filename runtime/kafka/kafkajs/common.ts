import { createConnection } from 'node:net';
import kafkajs, { type Kafka, type LogEntry, type logCreator } from 'kafkajs';
import { BrokerUnreachableError, KafkaClientError, RecordRejectedError, RecordTooLargeError, TagstreamError, UnknownTopicError } from '../../../core/errors.ts';
import type { Logger } from '../../../core/log.ts';
import type { Bytes } from '../types.ts';
import { findInErrorTree, isErrorNode } from '../error-tree.ts';
import type { ResolvedOptions } from '../options.ts';

// kafkajs is CommonJS whose exports Node cannot list statically: values come from the default export.
const { Kafka: KafkaClass, logLevel } = kafkajs;

export { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, resolveOptions, type ResolvedOptions } from '../options.ts';

/** Retries back off from 100 ms to 2 s, a few times: a broker that went away is not hammered. */
export const RETRY = { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 } as const;


/**
 * kafkajs logs through its own console logger; route it to pino (stderr). kafkajs reports at ERROR
 * what we handle ourselves (an existing topic, a refused connection being retried), so its errors
 * become warnings here and its info becomes debug.
 */
const pinoLogCreator = (kafkajsLog: Logger): logCreator => () => (entry: LogEntry) => {
  const { message, ...extra } = entry.log;
  const fields = { namespace: entry.namespace, ...extra };
  // A deliberate choice documented in producer.ts; repeating it for every producer is noise.
  const expected = message.startsWith('Limiting retries for the idempotent producer');
  if (entry.level <= logLevel.WARN && !expected) kafkajsLog.warn(fields, message);
  else kafkajsLog.debug(fields, message);
};

export function createKafka(options: ResolvedOptions): Kafka {
  return new KafkaClass({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    retry: RETRY,
    logLevel: process.env.LOG_LEVEL === 'debug' ? logLevel.DEBUG : logLevel.WARN,
    logCreator: pinoLogCreator(options.logger.child({ library: 'kafkajs' })),
  });
}

export function toBuffer(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}


export function hasType(error: unknown, type: string): boolean {
  return findInErrorTree(error, (n) => n.type === type) !== undefined;
}

/** Broker answers that blame the record's content, not the cluster (ERR_KAFKA_RECORD_REJECTED). */
const REJECTED_RECORD_CODES = ['INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TIMESTAMP'] as const;

const NETWORK_ERRORS = new Set(['KafkaJSConnectionError', 'KafkaJSNoBrokerAvailableError', 'KafkaJSBrokerNotFound']);

export interface ErrorContext {
  brokers: readonly string[];
  connectTimeoutMs: number;
  topics?: readonly string[];
  operation: string;
}

export function mapError(error: unknown, ctx: ErrorContext): TagstreamError {
  if (error instanceof TagstreamError) return error;
  if (hasType(error, 'UNKNOWN_TOPIC_OR_PARTITION') || hasType(error, 'UNKNOWN_TOPIC_ID')) {
    const topic = ctx.topics?.length === 1 ? ctx.topics[0]! : (ctx.topics ?? []).join(',');
    return new UnknownTopicError(topic, { operation: ctx.operation, client: 'kafkajs' }, { cause: error });
  }
  if (findInErrorTree(error, (n) => typeof n.name === 'string' && NETWORK_ERRORS.has(n.name)) !== undefined) {
    return new BrokerUnreachableError(ctx.brokers, ctx.connectTimeoutMs, { cause: error });
  }
  if (hasType(error, 'MESSAGE_TOO_LARGE') || hasType(error, 'RECORD_LIST_TOO_LARGE')) {
    return new RecordTooLargeError((ctx.topics ?? []).join(','), undefined, undefined, { operation: ctx.operation, client: 'kafkajs' }, { cause: error });
  }
  const rejected = REJECTED_RECORD_CODES.find((code) => hasType(error, code));
  if (rejected !== undefined) {
    return new RecordRejectedError((ctx.topics ?? []).join(','), rejected, { operation: ctx.operation, client: 'kafkajs' }, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  const typed = findInErrorTree(error, (n) => typeof n.type === 'string');
  return new KafkaClientError(
    `${ctx.operation} failed: ${message}`,
    {
      client: 'kafkajs',
      operation: ctx.operation,
      clientCode: isErrorNode(error) ? error.name : undefined,
      kafkaError: typed?.type,
      ...(ctx.topics ? { topics: [...ctx.topics] } : {}),
    },
    { cause: error },
  );
}

/**
 * Opens a TCP connection to each bootstrap broker until one accepts, within `timeoutMs`. kafkajs
 * cannot be stopped while it retries a refused connection (disconnect() does not cancel the
 * connect loop), so an unreachable cluster is detected here, before kafkajs starts.
 */
export async function tcpProbe(options: ResolvedOptions): Promise<void> {
  const deadline = Date.now() + options.connectTimeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    for (const broker of options.brokers) {
      const separator = broker.lastIndexOf(':');
      const host = broker.slice(0, separator).replace(/^\[|\]$/g, '');
      const port = Number(broker.slice(separator + 1));
      try {
        await new Promise<void>((resolve, reject) => {
          const socket = createConnection({ host, port });
          socket.setTimeout(Math.max(1, deadline - Date.now()));
          socket.once('connect', () => {
            socket.destroy();
            resolve();
          });
          socket.once('timeout', () => {
            socket.destroy();
            reject(new Error(`connect to ${broker} timed out`));
          });
          socket.once('error', reject);
        });
        return;
      } catch (error) {
        lastError = error;
      }
    }
    // All refused: try again a little later (a broker that is starting), until the budget ends.
    await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
  }
  throw new BrokerUnreachableError(options.brokers, options.connectTimeoutMs, { cause: lastError });
}

/**
 * Runs a kafkajs `connect()` within the connection budget. kafkajs retries a refused connection
 * with its own backoff; on timeout `abort` (disconnect) stops those retries, so a failed connect
 * leaves nothing running in the background.
 */
export async function connectWithin(connect: () => Promise<void>, options: ResolvedOptions, abort: () => Promise<void>): Promise<void> {
  const started = Date.now();
  await tcpProbe(options);
  const remaining = Math.max(1, options.connectTimeoutMs - (Date.now() - started));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BrokerUnreachableError(options.brokers, options.connectTimeoutMs)), remaining);
  });
  try {
    const connecting = connect();
    connecting.catch(() => undefined);
    await Promise.race([connecting, deadline]);
  } catch (error) {
    await abort().catch(() => undefined);
    if (error instanceof BrokerUnreachableError) throw error;
    throw new BrokerUnreachableError(options.brokers, options.connectTimeoutMs, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
