/**
 * Errors that cross a module boundary carry a stable `code` (like undici's and fastify's) and a
 * `context` object with the facts an operator needs (topic, partition, field, broker…).
 * Never put cookie values or full client IPs in `context`: it is logged.
 */
export class TagstreamError extends Error {
  readonly code: string;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, context: this.context };
  }
}

/** A setting, a file or a record failed validation. `field` names what was wrong. */
export class InvalidInputError extends TagstreamError {
  constructor(field: string, reason: string, context: Record<string, unknown> = {}) {
    super('ERR_INVALID_INPUT', `${field}: ${reason}`, { field, reason, ...context });
  }
}

/** The topic does not exist on the cluster (or in the embedded broker). */
export class UnknownTopicError extends TagstreamError {
  constructor(topic: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_KAFKA_UNKNOWN_TOPIC', `topic "${topic}" does not exist`, { topic, ...context }, options);
  }
}

/** No broker of the bootstrap list answered within the connection budget. */
export class BrokerUnreachableError extends TagstreamError {
  constructor(brokers: readonly string[], timeoutMs: number, options?: { cause?: unknown }) {
    super(
      'ERR_KAFKA_BROKER_UNREACHABLE',
      `no Kafka broker reachable at ${brokers.join(',')} within ${timeoutMs} ms`,
      { brokers: [...brokers], timeoutMs },
      options,
    );
  }
}

/** Any other failure reported by a Kafka client; `context.clientCode` keeps the client's own code. */
export class KafkaClientError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_KAFKA_CLIENT', message, context, options);
  }
}

/** Topics that must be co-partitioned are not, or a compacted topic is not compacted. */
export class TopologyMismatchError extends TagstreamError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('ERR_TOPOLOGY_MISMATCH', message, context);
  }
}
