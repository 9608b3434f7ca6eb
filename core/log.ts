/**
 * Structured JSON logs (pino) on stderr: stdout is reserved for command output (`execute` prints
 * one JSON document there). One root logger per process, made by the entry point (the CLI, a
 * bench, a test) and handed down; components log through children (`child(root, 'runner')`), so
 * nothing creates a logger at import time and a test can silence or capture a component.
 * Never log cookie values or full client IPs at info level.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export interface RootLoggerOptions {
  /** pino level; default LOG_LEVEL, else `info`. */
  level?: string;
  /** Where lines go; default stderr (synchronous, so the last lines before an exit are not lost). */
  destination?: pino.DestinationStream;
}

export function createRootLogger(options: RootLoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  return pino({ name: 'tagstream', level, base: { pid: process.pid } }, options.destination ?? pino.destination({ fd: 2, sync: true }));
}

let fallback: Logger | undefined;

/**
 * The logger of a component: a child of `parent` with `component` set, or, when the caller passed
 * none (a library use, a unit test), a child of a root made on first use.
 */
export function componentLogger(parent: Logger | undefined, component: string): Logger {
  if (parent !== undefined) return parent.child({ component });
  fallback ??= createRootLogger();
  return fallback.child({ component });
}

/** A logger that drops everything (tests that assert on behaviour, not on logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
