import { TagstreamError } from '../errors.ts';

/** Restoring a changelog partition failed: the partition cannot be processed without its state. */
export class RestoreFailedError extends TagstreamError {
  constructor(topic: string, partition: number, options?: { cause?: unknown }) {
    super('ERR_RUNNER_RESTORE', `restoring partition ${partition} of changelog ${topic} failed`, { topic, partition }, options);
  }
}

/**
 * Processing a record failed and no `onError` took responsibility for it: the runner stops (its
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
