/**
 * The processor role (DESIGN.md "Data flow"): the processor topology (topology/app/processor.ts)
 * run by the stream runtime, with the browser pool as its executor. Wiring only: checkpoints,
 * restores, commits and dead letters are the stream runtime's (runtime/streams).
 *
 *   const processor = await startProcessor({ settings, client, executor, registry, logger });
 *   await processor.stop();
 *
 *   const role = createProcessorRole({ settings, client, partners, logger });   // for `run`
 */
import type { Registry } from 'prom-client';
import type { PartnerConfig } from '../../core/contracts/index.ts';
import { componentLogger, type Logger } from '../../core/log.ts';
import { createExecutor, type Executor as ExecutorPoolImpl } from '../../processors/executor/index.ts';
import { DEFAULT_COOKIE_STORE, processorTopology, type Executor } from '../../topology/app/processor.ts';
import type { Settings } from '../config.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { eventDeadLetters, recordLimits, startStreams, type StreamsHandle } from '../streams/index.ts';
import { InvalidInputError, UnknownTopicError } from '../../core/errors.ts';
import type { JarCache } from '../../state/couchbase.ts';
import { poolExecutor } from './executor-adapter.ts';
import { initStages, observeProcessorStages, pipelineCounter } from '../metrics/pipeline.ts';
import { jarReadRoute, openConfiguredJarCache, withOwnedCache, writeThroughClient } from './jar-cache.ts';
import { observedExecutor, type ExecutionObserver } from './observers.ts';
import { combineReadiness, type Readiness, type Role } from './role.ts';

export interface ProcessorOptions {
  settings: Settings;
  client: KafkaClient;
  /** topology/app/processor.ts's executor: (event, jar | null, signal) → { requests, jar, trackers }. */
  executor: Executor;
  registry?: Registry;
  logger?: Logger;
  /** Clock of the jars' `updatedAt` and of dead letters (tests). */
  now?: () => number;
  /**
   * The Couchbase jar cache that acknowledged jar records are written through to (docs/couchbase.md);
   * the caller closes it. Absent = the one `settings.couchbase` configures, if any, closed with the processor.
   */
  jarCache?: JarCache;
}

export type ProcessorHandle = StreamsHandle & { readonly jarCache?: JarCache };

/** The processor topology as the settings configure it (also what `topology describe` prints). */
export function configuredProcessorTopology(settings: Settings, executor: Executor, now?: () => number) {
  const { topics } = settings;
  return processorTopology({
    executor,
    topics: { events: topics.events, cookies: topics.cookies, requests: topics.requests, eventsDlq: topics.eventsDlq },
    cookieStore: DEFAULT_COOKIE_STORE,
    concurrency: settings.processor.concurrency ?? settings.executor.browsers * settings.executor.pagesPerBrowser,
    retries: settings.processor.retries,
    jarBudget: settings.limits.jar,
    maxRequestBodyBytes: settings.limits.requestBodyBytes,
    ...(settings.processor.executorTimeoutMs === undefined ? {} : { executorTimeoutMs: settings.processor.executorTimeoutMs }),
    ...(now === undefined ? {} : { now }),
  });
}

export async function startProcessor(options: ProcessorOptions): Promise<ProcessorHandle> {
  const { settings } = options;
  await checkLimitsFit(options.client, settings);
  const state = settings.state.store === 'memory' ? { store: 'memory' as const } : { store: 'lmdb' as const, dir: settings.state.dir, noSync: settings.state.noSync };
  const owned = options.jarCache === undefined ? await openConfiguredJarCache(settings, options) : undefined;
  const jarCache = options.jarCache ?? owned;
  const handle = await startStreams({
    name: 'processor',
    topology: configuredProcessorTopology(settings, options.executor, options.now),
    client: jarCache === undefined ? options.client : writeThroughClient(options.client, settings.topics.cookies, jarCache),
    groupId: settings.groups.processor,
    clientId: settings.clientId,
    state,
    deadLetters: eventDeadLetters(settings.topics.eventsDlq, undefined, options.now),
    runner: settings.runner,
    logger: componentLogger(options.logger, 'processor'),
    deadLetterTopics: [settings.topics.eventsDlq],
    ...(options.registry === undefined ? {} : { registry: options.registry }),
  }).catch(async (error: unknown) => {
    await owned?.close();
    throw error;
  });
  // The pipeline's executed/captured stages (docs/metrics.md "Reconciliation").
  if (options.registry !== undefined) observeProcessorStages(handle.engine, pipelineCounter(options.registry));
  return withOwnedCache(jarCache === undefined ? handle : { ...handle, jarCache }, owned);
}

export interface ProcessorRoleOptions {
  settings: Settings;
  client: KafkaClient;
  partners: readonly PartnerConfig[];
  registry?: Registry;
  logger?: Logger;
  /** Sees every executor attempt (the console); never changes its outcome. */
  observer?: ExecutionObserver;
}

/**
 * The processor as a Role: the browser pool and the processor start together and stop together
 * (processor first: it drains the events that still use the pool). Ready when the stream runtime
 * is (group joined, no partition restoring) and the pool has a browser.
 */
export function createProcessorRole(options: ProcessorRoleOptions): Role {
  const { settings } = options;
  let pool: ExecutorPoolImpl | undefined;
  let handle: ProcessorHandle | undefined;
  let resolveClosed!: () => void;
  let rejectClosed!: (error: unknown) => void;
  const closed = new Promise<void>((resolve, reject) => {
    resolveClosed = resolve;
    rejectClosed = reject;
  });
  closed.catch(() => undefined); // the composition observes it
  let closingPool: Promise<void> | undefined;
  const closePool = (): Promise<void> => (closingPool ??= pool?.close() ?? Promise.resolve());
  let stopping: Promise<void> | undefined;

  return {
    name: 'processor',
    closed,
    // GET /jars/:userId only when asked for: it serves cookie values (docs/couchbase.md).
    ...(settings.couchbase.httpReads ? { routes: [jarReadRoute(() => handle?.jarCache)] } : {}),
    async start() {
      pool = await createExecutor({
        ...executorOptionsFrom(settings),
        ...(options.logger === undefined ? {} : { logger: options.logger }),
        ...(options.registry === undefined ? {} : { registry: options.registry }),
      });
      try {
        handle = await startProcessor({
          settings,
          client: options.client,
          executor: observedExecutor(poolExecutor(pool, options.partners), options.observer),
          ...(options.registry === undefined ? {} : { registry: options.registry }),
          ...(options.logger === undefined ? {} : { logger: options.logger }),
        });
        if (options.registry !== undefined) initStages(pipelineCounter(options.registry), ['executed', 'captured'], options.partners);
      } catch (error) {
        await closePool();
        throw error;
      }
      handle.closed.then(
        () => closePool().then(resolveClosed, rejectClosed),
        (error: unknown) => closePool().finally(() => rejectClosed(error)),
      );
    },
    stop(timeoutMs?: number) {
      stopping ??= (async () => {
        try {
          if (handle !== undefined) await handle.stop(timeoutMs);
        } finally {
          await closePool();
          if (handle === undefined) resolveClosed();
        }
      })();
      return stopping;
    },
    readiness(): Readiness {
      if (handle === undefined) return { ready: false, reasons: ['processor: starting'] };
      return combineReadiness([handle.readiness(), poolReadiness(pool)]);
    },
  };
}

/** The pool's own health (a browser connected), when the pool reports it. */
function poolReadiness(pool: ExecutorPoolImpl | undefined): Readiness {
  const health = (pool as { health?: () => { up: boolean; reason?: string } } | undefined)?.health?.();
  if (health === undefined || health.up) return { ready: true, reasons: [] };
  return { ready: false, reasons: [health.reason ?? 'executor: no browser'] };
}

/** Room for what a stored jar adds to the jar itself (version, updatedAt, key) and a record's framing. */
const JAR_RECORD_OVERHEAD = 4096;
/** Room for what a request record adds to its body (URL, headers, ids, JSON escaping of a base64 body). */
const REQUEST_RECORD_OVERHEAD = 64 * 1024;

/**
 * The limits must fit the topics they protect: a budget that lets a jar grow past the cookie
 * topic's max.message.bytes would stop nothing. Checked at start against the cluster's topics
 * (missing topics are the stream runtime's error, reported next).
 */
async function checkLimitsFit(client: KafkaClient, settings: Settings): Promise<void> {
  const admin = await client.admin();
  try {
    const { cookies, requests } = settings.topics;
    const limits = await recordLimits(admin, [cookies, requests]).catch((error: unknown) => {
      if (error instanceof UnknownTopicError) return undefined;
      throw error;
    });
    if (limits === undefined) return;
    const jarLimit = limits.get(cookies);
    if (jarLimit !== undefined && settings.limits.jar.jarBytes + JAR_RECORD_OVERHEAD > jarLimit) {
      throw new InvalidInputError(
        'limits.jar.jarBytes (LIMIT_JAR_BYTES)',
        `${settings.limits.jar.jarBytes} bytes do not fit in one record of ${cookies} (max.message.bytes ${jarLimit}, ${JAR_RECORD_OVERHEAD} bytes kept for the record around the jar): lower it or raise the topic's max.message.bytes`,
      );
    }
    const requestLimit = limits.get(requests);
    if (requestLimit !== undefined && settings.limits.requestBodyBytes + REQUEST_RECORD_OVERHEAD > requestLimit) {
      throw new InvalidInputError(
        'limits.requestBodyBytes (LIMIT_REQUEST_BODY_BYTES)',
        `${settings.limits.requestBodyBytes} bytes do not fit in one record of ${requests} (max.message.bytes ${requestLimit}, ${REQUEST_RECORD_OVERHEAD} bytes kept for the URL, headers and ids)`,
      );
    }
  } finally {
    await admin.close();
  }
}

/** The browser pool's options that the settings decide (the processor role and `replay --dry-run` share them). */
export function executorOptionsFrom(settings: Settings): Parameters<typeof createExecutor>[0] {
  return {
    browsers: settings.executor.browsers,
    pagesPerBrowser: settings.executor.pagesPerBrowser,
    headless: settings.executor.headless,
    allowPrivateNetwork: settings.executor.allowPrivateNetwork,
    jarBudget: settings.limits.jar,
    trustedClose: settings.executor.trustedClose,
    inPageCapture: settings.executor.inPageCapture,
    ...(settings.executor.sandbox === undefined ? {} : { sandbox: settings.executor.sandbox }),
  };
}
