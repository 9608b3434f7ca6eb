import { BrokerUnreachableError, KafkaClientError, RecordRejectedError, RecordTooLargeError, TagstreamError, UnknownTopicError } from '../../../core/errors.ts';
import { findInErrorTree, isErrorNode } from '../error-tree.ts';

/**
 * @platformatic/kafka reports failures as GenericError trees: MultipleErrors (retries, one error
 * per broker) wrapping ProtocolError (`apiId` = Kafka's error name) or NetworkError, sometimes
 * several levels deep, sometimes through `cause`. We look through the whole tree because the
 * interesting error (UNKNOWN_TOPIC_OR_PARTITION, ECONNREFUSED) is rarely at the top.
 */

const UNKNOWN_TOPIC_IDS = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_ID']);

/** Broker answers that blame the record's content, not the cluster (ERR_KAFKA_RECORD_REJECTED). */
const REJECTED_RECORD_CODES = ['INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TIMESTAMP'] as const;

/** The library's metadata call turns UNKNOWN_TOPIC_OR_PARTITION into this UserError (no cause kept). */
const UNKNOWN_TOPIC_MESSAGE = /^Unknown topic (.+)\.$/;

export function isUnknownTopic(error: unknown): boolean {
  return (
    findInErrorTree(
      error,
      (n) =>
        (typeof n.apiId === 'string' && UNKNOWN_TOPIC_IDS.has(n.apiId)) ||
        (typeof n.message === 'string' && UNKNOWN_TOPIC_MESSAGE.test(n.message)),
    ) !== undefined
  );
}

function unknownTopicName(error: unknown): string | undefined {
  const node = findInErrorTree(error, (n) => typeof n.message === 'string' && UNKNOWN_TOPIC_MESSAGE.test(n.message));
  const name = node ? UNKNOWN_TOPIC_MESSAGE.exec(node.message as string)?.[1] : undefined;
  return name === 'unknown' ? undefined : name;
}

export function hasApiId(error: unknown, apiId: string): boolean {
  return findInErrorTree(error, (n) => n.apiId === apiId) !== undefined;
}

export function isNetworkFailure(error: unknown): boolean {
  return (
    findInErrorTree(
      error,
      (n) => n.code === 'PLT_KFK_NETWORK' || n.code === 'ECONNREFUSED' || n.code === 'EHOSTUNREACH' || n.code === 'ETIMEDOUT',
    ) !== undefined
  );
}

export interface ErrorContext {
  brokers: readonly string[];
  connectTimeoutMs: number;
  /** The topic(s) the failed operation was about, for UnknownTopicError. */
  topics?: readonly string[];
  operation: string;
}

/** Maps a client error to the product's typed errors; TagstreamErrors pass through untouched. */
export function mapError(error: unknown, ctx: ErrorContext): TagstreamError {
  if (error instanceof TagstreamError) return error;
  if (isUnknownTopic(error)) {
    const topic = unknownTopicName(error) ?? (ctx.topics?.length === 1 ? ctx.topics[0]! : (ctx.topics ?? []).join(','));
    return new UnknownTopicError(topic, { operation: ctx.operation, client: 'platformatic' }, { cause: error });
  }
  if (isNetworkFailure(error)) {
    return new BrokerUnreachableError(ctx.brokers, ctx.connectTimeoutMs, { cause: error });
  }
  if (hasApiId(error, 'MESSAGE_TOO_LARGE') || hasApiId(error, 'RECORD_LIST_TOO_LARGE')) {
    return new RecordTooLargeError((ctx.topics ?? []).join(','), undefined, undefined, { operation: ctx.operation, client: 'platformatic' }, { cause: error });
  }
  const rejected = REJECTED_RECORD_CODES.find((code) => hasApiId(error, code));
  if (rejected !== undefined) {
    return new RecordRejectedError((ctx.topics ?? []).join(','), rejected, { operation: ctx.operation, client: 'platformatic' }, { cause: error });
  }
  const apiNode = findInErrorTree(error, (n) => typeof n.apiId === 'string');
  // The broker's own explanation (e.g. "Compacted topic cannot accept message without key") is
  // more useful than the library's "Producing messages failed." at the top of the tree.
  const serverMessage = findInErrorTree(error, (n) => typeof n.serverErrorMessage === 'string')?.serverErrorMessage;
  const message = [error instanceof Error ? error.message : String(error), serverMessage].filter(Boolean).join(': ');
  const codeNode = isErrorNode(error) ? error : undefined;
  return new KafkaClientError(
    `${ctx.operation} failed: ${message}`,
    {
      client: 'platformatic',
      operation: ctx.operation,
      clientCode: codeNode?.code,
      apiId: apiNode?.apiId,
      ...(ctx.topics ? { topics: [...ctx.topics] } : {}),
    },
    { cause: error },
  );
}

/**
 * Runs `operation`, and gives up with BrokerUnreachableError after `timeoutMs`. `onTimeout` must
 * stop the client's own retries (closing the client does): otherwise a failed connect keeps
 * retrying in the background after the caller was told it failed.
 */
export async function withConnectDeadline<T>(
  operation: Promise<T>,
  brokers: readonly string[],
  timeoutMs: number,
  onTimeout: () => Promise<void>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BrokerUnreachableError(brokers, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([operation, deadline]);
  } catch (error) {
    await onTimeout().catch(() => undefined);
    operation.catch(() => undefined);
    if (error instanceof BrokerUnreachableError) throw error;
    throw new BrokerUnreachableError(brokers, timeoutMs, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
