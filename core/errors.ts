/**
 * Every error that crosses a module boundary (the undici `lib/core/errors.js` model): one base
 * class with a stable `code` from the literal union below, one small class per code, all here.
 * Callers branch on `instanceof` or `code`, never on message text. `context` carries the facts an
 * operator needs (topic, partition, field, partner…) and is logged: never put cookie values or a
 * visitor's full IP in it.
 */

export type ErrorCode =
  // input and configuration
  | 'ERR_INVALID_INPUT'
  // Kafka
  | 'ERR_KAFKA_UNKNOWN_TOPIC'
  | 'ERR_KAFKA_BROKER_UNREACHABLE'
  | 'ERR_KAFKA_CLIENT'
  | 'ERR_KAFKA_RECORD_TOO_LARGE'
  | 'ERR_KAFKA_RECORD_REJECTED'
  | 'ERR_LOCAL_BROKER'
  // topology
  | 'ERR_TOPOLOGY_INVALID'
  | 'ERR_TOPOLOGY_MISMATCH'
  | 'ERR_TOPOLOGY_CLOSED'
  | 'ERR_TOPOLOGY_UNKNOWN_TOPIC'
  | 'ERR_TOPOLOGY_NODE_FAILED'
  | 'ERR_TOPOLOGY_NULL_KEY'
  | 'ERR_TOPOLOGY_PROCESS_TIMEOUT'
  // stream runtime
  | 'ERR_RUNNER_RESTORE'
  | 'ERR_RUNNER_RECORD'
  | 'ERR_RUNNER_STATE'
  // state stores
  | 'ERR_STATE_COMMIT'
  | 'ERR_STATE_STORE_CLOSED'
  | 'ERR_STATE_PARTITION_CLOSED'
  // executor
  | 'ERR_EGRESS_DENIED'
  | 'ERR_EXECUTOR_BROWSER_CRASHED'
  | 'ERR_EXECUTOR_FAILED'
  | 'ERR_EXECUTOR_UNAVAILABLE'
  | 'ERR_EXECUTOR_UPSTREAM'
  // dispatcher
  | 'ERR_DISPATCH_STATUS'
  | 'ERR_DISPATCH_WINDOW_SPENT'
  // timeouts and aborts (core/async.ts)
  | 'ERR_TIMEOUT'
  | 'ERR_ABORTED'
  // the process's HTTP endpoint (/health, /ready, /metrics)
  | 'ERR_METRICS_LISTEN'
  // the console's and the demo's ports (runtime/console, runtime/demo)
  | 'ERR_LISTEN'
  // operator commands (runtime/operator: replay)
  | 'ERR_REPLAY_INCOMPLETE'
  // the Couchbase jar cache (state/couchbase.ts)
  | 'ERR_JAR_CACHE_UNAVAILABLE';

export type ErrorContext = Readonly<Record<string, unknown>>;

export class TagstreamError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, context: this.context };
  }
}

/** Whether `error` is a TagstreamError with `code` (narrowing helper for callers that branch on codes). */
export function hasCode<C extends ErrorCode>(error: unknown, code: C): error is TagstreamError & { code: C } {
  return error instanceof TagstreamError && error.code === code;
}

// ───────────────────────────── input and configuration ─────────────────────────────

/** A setting, a file or a record failed validation. `field` names what was wrong. */
export class InvalidInputError extends TagstreamError {
  constructor(field: string, reason: string, context: Record<string, unknown> = {}) {
    super('ERR_INVALID_INPUT', `${field}: ${reason}`, { field, reason, ...context });
  }
}

// ───────────────────────────── Kafka ─────────────────────────────

/** The topic does not exist on the cluster (or in the embedded broker). */
export class UnknownTopicError extends TagstreamError {
  constructor(topic: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_KAFKA_UNKNOWN_TOPIC', `topic "${topic}" does not exist`, { topic, ...context }, options);
  }
}

/** No broker of the bootstrap list answered within the connection budget. */
export class BrokerUnreachableError extends TagstreamError {
  constructor(brokers: readonly string[], timeoutMs: number, options?: { cause?: unknown }) {
    super('ERR_KAFKA_BROKER_UNREACHABLE', `no Kafka broker reachable at ${brokers.join(',')} within ${timeoutMs} ms`, { brokers: [...brokers], timeoutMs }, options);
  }
}

/** Any other failure reported by a Kafka client; `context.clientCode` keeps the client's own code. */
export class KafkaClientError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_KAFKA_CLIENT', message, context, options);
  }
}

/**
 * A record that cannot be produced because of its own content: larger than the topic's
 * `max.message.bytes` (checked before producing, or refused by the broker). The record's fault,
 * not the cluster's: it is dead-lettered, the partition goes on.
 */
export class RecordTooLargeError extends TagstreamError {
  constructor(topic: string, bytes: number | undefined, limit: number | undefined, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(
      'ERR_KAFKA_RECORD_TOO_LARGE',
      bytes === undefined
        ? `a record for ${topic} was refused by the broker as too large`
        : `${typeof context.subject === 'string' ? context.subject : 'a record'} of ${bytes} bytes for ${topic} exceeds ${typeof context.limitName === 'string' ? context.limitName : 'its max.message.bytes'} (${limit ?? 'unknown'})`,
      { topic, bytes, limit, ...context },
      options,
    );
  }
}

/** The broker refused a record as invalid (INVALID_RECORD, CORRUPT_MESSAGE, INVALID_TIMESTAMP): its content's fault. */
export class RecordRejectedError extends TagstreamError {
  constructor(topic: string, brokerCode: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_KAFKA_RECORD_REJECTED', `a record for ${topic} was refused by the broker as invalid (${brokerCode})`, { topic, brokerCode, ...context }, options);
  }
}

/** The local development/test broker (runtime/kafka-local) could not be found or started. */
export class LocalBrokerError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('ERR_LOCAL_BROKER', message, context);
  }
}

// ───────────────────────────── topology ─────────────────────────────

/** A topology failed validation at build() (every problem is listed in `context.problems`). */
export class TopologyInvalidError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('ERR_TOPOLOGY_INVALID', message, context);
  }
}

/** Topics that must be co-partitioned are not, or a compacted topic is not compacted. */
export class TopologyMismatchError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('ERR_TOPOLOGY_MISMATCH', message, context);
  }
}

/** The topology engine was closed: no new record is taken, running steps see their signal aborted. */
export class TopologyClosedError extends TagstreamError {
  constructor(context: Record<string, unknown> = {}) {
    super('ERR_TOPOLOGY_CLOSED', 'the topology engine is closed', context);
  }
}

/** A record of a topic that no source of the topology reads. */
export class TopologyUnknownTopicError extends TagstreamError {
  constructor(topic: string, context: Record<string, unknown> = {}) {
    super('ERR_TOPOLOGY_UNKNOWN_TOPIC', `topic "${topic}" is not a source of this topology`, { topic, ...context });
  }
}

/** A user function of a node threw: `context.node` says which, with the record's coordinates. */
export class TopologyNodeFailedError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_TOPOLOGY_NODE_FAILED', message, context, options);
  }
}

/** A record without key reached a node that writes a table (a table is addressed by key). */
export class TopologyNullKeyError extends TagstreamError {
  constructor(node: string, store: string, context: Record<string, unknown> = {}) {
    super('ERR_TOPOLOGY_NULL_KEY', `node "${node}" cannot write a record without key to table "${store}"`, { node, ...context });
  }
}

/** A process() step took longer than its `timeoutMs`. */
export class TopologyProcessTimeoutError extends TagstreamError {
  constructor(node: string, timeoutMs: number, context: Record<string, unknown> = {}) {
    super('ERR_TOPOLOGY_PROCESS_TIMEOUT', `process "${node}" took more than ${timeoutMs} ms`, { node, ...context, timeoutMs });
  }
}

// ───────────────────────────── stream runtime ─────────────────────────────

/** Restoring a changelog partition failed: the partition cannot be processed without its state. */
export class RestoreFailedError extends TagstreamError {
  constructor(topic: string, partition: number, options?: { cause?: unknown }) {
    super('ERR_RUNNER_RESTORE', `restoring partition ${partition} of changelog ${topic} failed`, { topic, partition }, options);
  }
}

/**
 * Processing a record failed and nothing took responsibility for it: the runner stops (its
 * committed offset stays below the record, which is redelivered to the next owner).
 */
export class RecordFailedError extends TagstreamError {
  constructor(topic: string, partition: number, offset: number, options?: { cause?: unknown }) {
    super('ERR_RUNNER_RECORD', `processing ${topic}[${partition}]@${offset} failed`, { topic, partition, offset }, options);
  }
}

/** A runner method was called in a state that does not allow it (e.g. start twice). */
export class RunnerStateError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('ERR_RUNNER_STATE', message, context);
  }
}

// ───────────────────────────── state stores ─────────────────────────────

export class StoreCommitError extends TagstreamError {
  constructor(store: string, partition: number, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_STATE_COMMIT', `store "${store}" partition ${partition}: commit failed`, { store, partition, ...context }, options);
  }
}

export class StoreClosedError extends TagstreamError {
  constructor(store: string, partition: number) {
    super('ERR_STATE_STORE_CLOSED', `store "${store}" partition ${partition} is closed`, { store, partition });
  }
}

/** A record abandoned at revocation tried to touch the store of a partition this instance gave up. */
export class PartitionClosedError extends TagstreamError {
  constructor(store: string, partition: number) {
    super('ERR_STATE_PARTITION_CLOSED', `store "${store}" partition ${partition} is not owned by this instance`, { store, partition });
  }
}

// ───────────────────────────── executor ─────────────────────────────

/** A request the egress policy refused; `context.reason` says why (never the full visitor IP). */
export class EgressDeniedError extends TagstreamError {
  constructor(target: string, reason: string) {
    super('ERR_EGRESS_DENIED', `egress to ${target} denied: ${reason}`, { target, reason });
  }
}

/** The browser process of a slot died (or was killed) while an event ran on it: retryable once. */
export class BrowserCrashedError extends TagstreamError {
  constructor(reason: string, context: Record<string, unknown> = {}) {
    super('ERR_EXECUTOR_BROWSER_CRASHED', `browser lost: ${reason}`, context);
  }
}

/** The executor could not execute the event, after its retry (the caller dead-letters it). */
export class ExecutorFailedError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_EXECUTOR_FAILED', message, context, options);
  }
}

/** The pool is closed or could not start a browser. */
export class ExecutorUnavailableError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_EXECUTOR_UNAVAILABLE', message, context, options);
  }
}

/** A partner script (allowHosts) could not be loaded from its origin. */
export class UpstreamFetchError extends TagstreamError {
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_EXECUTOR_UPSTREAM', `loading ${url} failed: ${reason}`, { url, reason }, options);
  }
}

// ───────────────────────────── dispatcher ─────────────────────────────

/** A partner answered a delivery with an error status (5xx/408: retried; other 4xx: dead-lettered). */
export class DeliveryStatusError extends TagstreamError {
  constructor(partner: string, status: number, context: Record<string, unknown> = {}) {
    super('ERR_DISPATCH_STATUS', `${partner} answered ${status}`, { partner, status, ...context });
  }
}

/** A request's retry window (`delivery.retryWindowMs`) ran out before the partner accepted it. */
export class RetryWindowSpentError extends TagstreamError {
  constructor(partner: string, windowMs: number, context: Record<string, unknown> = {}) {
    super('ERR_DISPATCH_WINDOW_SPENT', `${partner}: retry window of ${windowMs} ms spent`, { partner, windowMs, ...context });
  }
}

// ───────────────────────────── timeouts and aborts ─────────────────────────────

/** An operation ran past its time budget (core/async.ts `withTimeout`). */
export class TimeoutError extends TagstreamError {
  constructor(what: string, timeoutMs: number, context: Record<string, unknown> = {}) {
    super('ERR_TIMEOUT', `${what} took more than ${timeoutMs} ms`, { what, timeoutMs, ...context });
  }
}

/** The caller gave up (its AbortSignal fired) before the operation finished. */
export class AbortedError extends TagstreamError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('ERR_ABORTED', `${what} aborted`, { what }, options);
  }
}

// ───────────────────────────── HTTP endpoints ─────────────────────────────

/** The process could not listen on the port of its /health, /ready and /metrics endpoint. */
export class MetricsListenError extends TagstreamError {
  constructor(host: string, port: number, reason: string) {
    super('ERR_METRICS_LISTEN', `cannot listen on ${host}:${port} for /metrics: ${reason} (set METRICS_PORT, 0 turns it off)`, { host, port });
  }
}

// ───────────────────────────── Couchbase jar cache ─────────────────────────────

/** The jar cache could not answer a read (not connected yet, or Couchbase failed): `kind` says how. */
export class JarCacheUnavailableError extends TagstreamError {
  constructor(kind: string, options?: { cause?: unknown }) {
    super('ERR_JAR_CACHE_UNAVAILABLE', `the Couchbase jar cache cannot answer: ${kind}`, { kind }, options);
  }
}

/** A port of the console or the demo cannot be listened on (in use, not permitted). */
export class ListenError extends TagstreamError {
  constructor(what: string, host: string, port: number, reason: string, setting: string) {
    super('ERR_LISTEN', `cannot listen on ${host}:${port} for ${what}: ${reason} (set ${setting}; 0 = a free port)`, { host, port, what });
  }
}

// ───────────────────────────── operator commands ─────────────────────────────

/** A replay ended with events that failed or were not processed in time (its summary says which). */
export class ReplayIncompleteError extends TagstreamError {
  constructor(reason: string, context: Record<string, unknown> = {}) {
    super('ERR_REPLAY_INCOMPLETE', `replay incomplete: ${reason}`, context);
  }
}
