/**
 * Maps the browser executor's pool (processors/executor: `createExecutor()` → `execute(event, jar,
 * partners)`) to the application topology's injected `Executor` (event, jar | null, signal).
 * Kept deliberately thin: the pool validates events and partners itself.
 */
import { untilAborted } from '../../core/async.ts';
import type { ExecuteResult, JarInput, PartnerConfig } from '../../processors/executor/index.ts';
import type { Executor } from '../../topology/app/processor.ts';

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
    // A replay names the partners to run again (docs/replay.md): the others do not run at all.
    const chosen = selectPartners(partners, event.replay?.partners ?? null);
    if (chosen.length === 0) return { requests: [], jar: jar === null ? { cookies: [], localStorage: {} } : { cookies: jar.cookies, localStorage: jar.localStorage }, trackers: [] };
    // The pool takes no signal: an aborted attempt stops waiting at once while the page run ends on
    // its own, bounded by the partners' timeoutMs.
    const result = await untilAborted(pool.execute(event, pageJar, chosen), signal, 'executor call');
    return result;
  };
}

/** The partners a replay runs: the named ones (null = all), in the configuration's order. */
export function selectPartners(partners: readonly PartnerConfig[], only: readonly string[] | null): readonly PartnerConfig[] {
  return only === null ? partners : partners.filter((p) => only.includes(p.id));
}
