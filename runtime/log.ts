import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs on stderr (stdout is reserved for command output, e.g. `execute`).
 * Level from LOG_LEVEL (default info). Never log cookie values or full IPs at info level.
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
