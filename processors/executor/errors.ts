import { TagstreamError } from '../../runtime/errors.ts';

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
