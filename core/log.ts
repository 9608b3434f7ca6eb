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

/** Component loggers made here, with the logger they were made from and their path. */
const components = new WeakMap<Logger, { base: Logger; path: string }>();

/**
 * The logger of a component: a child of `parent` with `component` set, or, when the caller passed
 * none (a library use, a unit test), a child of a root made on first use. Nested components read
 * `processor.runner` (pino would otherwise write the key twice in one JSON line).
 */
export function componentLogger(parent: Logger | undefined, component: string): Logger {
  if (parent === undefined) fallback ??= createRootLogger();
  const from = parent ?? (fallback as Logger);
  const known = components.get(from);
  const base = known?.base ?? from;
  const path = known === undefined ? component : `${known.path}.${component}`;
  const child = base.child({ component: path });
  components.set(child, { base, path });
  return child;
}

/** A logger that drops everything (tests that assert on behaviour, not on logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
