/**
 * A process() step at run time: its semaphore (`concurrency`), its timeout, and the abort signal a
 * call may read. Shared between the keys and partitions of one engine.
 */
import { TopologyClosedError, TopologyProcessTimeoutError } from '../../core/errors.ts';
import type { ProcessContext, ProcessNode, RecordContext } from '../model.ts';
import { nodeError } from './failures.ts';
import { Semaphore } from './semaphore.ts';
import type { ProcessStepStats } from './records.ts';

/** What the steps of one engine share: the signals to abort on close(), and whether it is closed. */
export interface ProcessShared {
  readonly controllers: Set<AbortController>;
  isClosed(): boolean;
}

export class ProcessStep {
  private readonly semaphore: Semaphore;

  constructor(
    private readonly node: ProcessNode,
    private readonly shared: ProcessShared,
  ) {
    this.semaphore = new Semaphore(node.options.concurrency);
  }

  stats(): ProcessStepStats {
    const s = this.semaphore;
    return { active: s.active, waiting: s.waiting, maxActive: s.maxActive };
  }

  /** Runs the step, then `then` with its result (in the same promise step: one promise less per record). */
  run(value: unknown, ctx: RecordContext, then: (result: unknown) => Promise<void> | void): Promise<void> {
    if (this.semaphore.tryAcquire()) return this.call(value, ctx, then);
    return this.semaphore.acquire().then(() => this.call(value, ctx, then));
  }

  /**
   * Calls the step holding a permit. Its signal (an AbortController per call) is created only if
   * the step reads `ctx.signal` or a timeout needs it: most steps of the hot path never do, and an
   * AbortController per record was a visible share of the per-record CPU.
   */
  private call(value: unknown, ctx: RecordContext, then: (result: unknown) => Promise<void> | void): Promise<void> {
    const { node, shared, semaphore } = this;
    let controller: AbortController | undefined;
    const signalOf = (): AbortController => {
      if (controller === undefined) {
        controller = new AbortController();
        shared.controllers.add(controller);
        // Created after close(): the step must still see that the engine is closed.
        if (shared.isClosed()) controller.abort(new TopologyClosedError());
      }
      return controller;
    };
    const pctx: ProcessContext = {
      topic: ctx.topic,
      partition: ctx.partition,
      offset: ctx.offset,
      timestamp: ctx.timestamp,
      key: ctx.key,
      node: node.name,
      get signal(): AbortSignal {
        return signalOf().signal;
      },
    };
    let call: Promise<unknown>;
    try {
      call = Promise.resolve(node.fn(value, pctx));
    } catch (err) {
      call = Promise.reject(err);
    }
    // The permit is held until the call really settles, even after a timeout: the concurrency bound
    // is about work actually running, and an aborted call may take a moment to stop.
    const release = (): void => {
      if (controller !== undefined) shared.controllers.delete(controller);
      semaphore.release();
    };
    const timeoutMs = node.options.timeoutMs;
    if (timeoutMs === undefined) {
      // A failure of `then` (a downstream node) is that node's, not this step's: not caught here.
      return call.then(
        (result) => {
          release();
          return then(result);
        },
        (err: unknown) => {
          release();
          throw nodeError(node.name, ctx, err);
        },
      );
    }
    call.then(release, release);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new TopologyProcessTimeoutError(node.name, timeoutMs, { topic: ctx.topic, partition: ctx.partition, offset: ctx.offset });
        // Reject first: a call that settles on abort must not win the race.
        reject(err);
        signalOf().abort(err);
      }, timeoutMs);
    });
    return Promise.race([call, timeout]).then(
      (result) => {
        clearTimeout(timer);
        return then(result);
      },
      (err: unknown) => {
        clearTimeout(timer);
        throw nodeError(node.name, ctx, err);
      },
    );
  }
}
