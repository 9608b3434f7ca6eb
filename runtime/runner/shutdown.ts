import type { Logger } from '../../core/log.ts';

export interface ShutdownOptions {
  /** Default SIGTERM and SIGINT. */
  signals?: readonly NodeJS.Signals[];
  logger?: Logger;
  /**
   * Called after the graceful stop finished (code 0, or 1 when it failed), or at once with 130 on a
   * second signal (the operator insists). Default: process.exit.
   */
  exit?: (code: number) => void;
}

/**
 * Wires SIGTERM/SIGINT to a graceful stop (for the CLI's `run`): the first signal stops intake,
 * drains up to the runner's timeout, commits and leaves the group; a second signal exits at once
 * (what is not committed is processed again by the next owner). Returns a function that removes
 * the handlers.
 */
export function onShutdownSignals(stop: (signal: NodeJS.Signals) => Promise<void>, options: ShutdownOptions = {}): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      options.logger?.warn({ signal }, 'second signal: exiting without waiting for the drain');
      exit(130);
      return;
    }
    stopping = true;
    options.logger?.info({ signal }, 'shutting down: draining in-flight records');
    stop(signal).then(
      () => exit(0),
      (error: unknown) => {
        options.logger?.error({ err: error, signal }, 'graceful shutdown failed');
        exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}
