/**
 * The console's "replay this event (dry-run)" (docs/console.md): the buffered event runs again
 * through a browser executor with the partners as configured now and the visitor's latest jar the
 * console saw, and its requests are compared with those captured the first time
 * (runtime/operator/dry-run.ts `dryRunEvent`, the unit of `replay --dry-run`). Nothing is
 * published, no jar is written. The executor is the console's own (one tab), started at the first
 * replay: the processor's pool keeps serving live traffic.
 */
import type { PartnerConfig, RequestRecord, StoredJar } from '../../core/contracts/index.ts';
import { createExecutor, type Executor as ExecutorPool, type ExecutorOptions } from '../../processors/executor/index.ts';
import { dryRunEvent, type EventDryRun } from '../operator/dry-run.ts';
import { idempotencyKeys, type ConsoleBuffer } from './buffer.ts';
import type { ConsoleReplay } from './server.ts';

export interface ConsoleReplayOptions {
  partners: readonly PartnerConfig[];
  /** The settings' executor options (private network, headless, sandbox); one browser, one tab. */
  executor: Pick<ExecutorOptions, 'allowPrivateNetwork' | 'headless' | 'sandbox' | 'trustedClose' | 'inPageCapture' | 'jarBudget' | 'logger'>;
}

export interface ConsoleReplayer {
  /** Builds the server's action over a buffer. */
  action(buffer: ConsoleBuffer): ConsoleReplay;
  close(): Promise<void>;
}

export function consoleReplayer(options: ConsoleReplayOptions): ConsoleReplayer {
  let pool: Promise<ExecutorPool> | undefined;
  // One replay at a time: it is an operator's click, and the tab is single.
  let queue: Promise<unknown> = Promise.resolve();
  const executor = (): Promise<ExecutorPool> => (pool ??= createExecutor({ ...options.executor, browsers: 1, pagesPerBrowser: 1 }));
  return {
    action: (buffer) => (eventId) => {
      const run = queue.then(async (): Promise<EventDryRun> => {
        const found = buffer.event(eventId);
        if (found === undefined) throw new Error('event not in the console buffer');
        const original: RequestRecord[] = (found.result?.requests ?? []).map((r, i, all) => ({
          ...r,
          eventId: found.event.eventId,
          userId: found.event.userId,
          idempotencyKey: idempotencyKeys(found.event.eventId, { requests: all })[i] as string,
        }));
        const jar: StoredJar | null = buffer.latestJar(found.event.userId) ?? found.jarBefore;
        return dryRunEvent({ event: found.event, jar, original, partners: options.partners, executor: await executor() });
      });
      queue = run.catch(() => undefined);
      return run;
    },
    async close() {
      const p = pool;
      pool = undefined;
      if (p !== undefined) await (await p.catch(() => undefined))?.close();
    },
  };
}
