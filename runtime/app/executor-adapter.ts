/**
 * Maps the browser executor's pool (processors/executor: `createExecutor()` → `execute(event, jar,
 * partners)`) to the application topology's injected `Executor` (event, jar | null, signal).
 * Kept deliberately thin: the pool validates events and partners itself.
 */
import type { ExecuteResult, JarInput, PartnerConfig } from '../../processors/executor/index.ts';
import type { Executor, ExecutionResult } from '../../topology/application.ts';

/** What the adapter needs of the pool (the pool's `Executor` class has it; tests can fake it). */
export interface ExecutorPool {
  execute(event: unknown, jar: JarInput | null, partners: readonly PartnerConfig[]): Promise<ExecuteResult>;
}

export function poolExecutor(pool: ExecutorPool, partners: readonly PartnerConfig[]): Executor {
  return async (event, jar, signal) => {
    signal.throwIfAborted();
    // The stored jar carries `version`/`updatedAt` (the processor's bookkeeping): the page gets only
    // what a browser would have, cookies and localStorage.
    const pageJar: JarInput | null = jar === null ? null : { cookies: jar.cookies.map((c) => ({ ...c })), localStorage: jar.localStorage };
    const result = await untilAborted(pool.execute(event, pageJar, partners), signal);
    return result satisfies ExecutionResult;
  };
}

/**
 * The pool takes no signal: an aborted attempt stops waiting at once (the record is retried or
 * abandoned by the caller) while the page run ends on its own, bounded by the partners' timeoutMs.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('executor call aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
