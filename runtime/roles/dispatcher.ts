/**
 * The dispatcher role (DESIGN.md "The dispatcher"): the dispatcher topology
 * (topology/app/dispatcher.ts) run by the stream runtime, with the undici sender and the
 * per-partner policies of processors/dispatcher as its delivery. Wiring only: restores, commits,
 * checkpoints and dead letters are the stream runtime's.
 *
 *   const d = await startDispatcher({ settings, dispatcher: { resolve: ['collect.p.example:443=127.0.0.1:8443'] }, client, partners });
 *   await d.stop();
 *   const role = createDispatcherRole({ settings, dispatcher, client, partners, logger });   // for `run`
 *
 * Its own settings (`dispatcher.*`) are validated here with DispatcherSettingsSchema until
 * runtime/config.ts embeds the schema (docs/dispatcher.md "Settings").
 */
import type { Registry } from 'prom-client';
import type { PartnerConfig } from '../../core/contracts/index.ts';
import { componentLogger, type Logger } from '../../core/log.ts';
import { TagstreamError } from '../../core/errors.ts';
import { createDeliver, createSender, parseResolve, PartnerPolicies, type Sender } from '../../processors/dispatcher/index.ts';
import { DEFAULT_DELIVERED_STORE, dispatcherTopology, type Deliver } from '../../topology/app/dispatcher.ts';
import type { ConsumedRecord } from '../../core/records.ts';
import type { Settings } from '../config.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { startStreams, type DeadLetterRouter, type StreamsHandle } from '../streams/index.ts';
import type { Readiness, Role } from './role.ts';
import { observedDeliver, type DeliveryObserver as DeliveryReportObserver } from './observers.ts';

export { DispatcherSettingsSchema, parseDispatcherSettings, type DispatcherSettings, type DispatcherSettingsInput } from './dispatcher-settings.ts';
import { dispatcherTopics, parseDispatcherSettings, retryGroupOf, type DispatcherSettings, type DispatcherSettingsInput } from './dispatcher-settings.ts';
import { startRetryConsumer } from './dispatcher-retry.ts';
import type { StreamRunner } from '../runner/index.ts';

export interface DispatcherOptions {
  settings: Settings;
  dispatcher?: DispatcherSettingsInput;
  client: KafkaClient;
  partners: readonly PartnerConfig[];
  /** Extra trusted CA (PEM), for tests; production trusts Node's store plus NODE_EXTRA_CA_CERTS. */
  ca?: string;
  registry?: Registry;
  logger?: Logger;
  now?: () => number;
  /** Sees every delivery decision with its request (the console); never changes it. */
  observer?: DeliveryReportObserver;
}

export type { DispatcherStats } from '../metrics/dispatcher.ts';
import { dispatcherMetrics, forgetDispatcherPolicies, type DispatcherStats } from '../metrics/dispatcher.ts';

export interface DispatcherHandle extends Pick<StreamsHandle, 'runner' | 'engine' | 'closed' | 'status' | 'readiness'> {
  /** The retry consumer (its own group on the retry topic; runtime/roles/dispatcher-retry.ts). */
  retry: StreamRunner;
  stats(): DispatcherStats;
  stop(timeoutMs?: number): Promise<void>;
}

/** The dispatcher topology as the settings configure it (also what `topology describe` prints). */
export function configuredDispatcherTopology(settings: Settings, dispatcher: DispatcherSettings, deliver: Deliver, hooks: { onDuplicate?: () => void; now?: () => number } = {}) {
  return dispatcherTopology({
    deliver,
    topics: { requests: settings.topics.requests, ...dispatcherTopics(settings.topics.requests, dispatcher), requestsDlq: settings.topics.requestsDlq, events: settings.topics.events },
    deliveredStore: DEFAULT_DELIVERED_STORE,
    concurrency: dispatcher.concurrency,
    dedupeWindowMs: dispatcher.dedupeWindowMs,
    maxKeysPerVisitor: dispatcher.maxKeysPerVisitor,
    ...(hooks.onDuplicate === undefined ? {} : { onDuplicate: hooks.onDuplicate }),
    ...(hooks.now === undefined ? {} : { now: hooks.now }),
  });
}

/** The requests DLQ for what is the record's own fault: undecodable (`invalid-request`) or too large. */
export function requestDeadLetters(topic: string, now: () => number = Date.now): DeadLetterRouter {
  return (error: unknown, record: ConsumedRecord) => {
    if (!(error instanceof TagstreamError) || (error.code !== 'ERR_INVALID_INPUT' && error.code !== 'ERR_KAFKA_RECORD_TOO_LARGE')) return undefined;
    const letter = {
      reason: 'invalid-request',
      code: error.code,
      error: error.message,
      source: { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp },
      attempts: [],
      request: null,
      value: record.value === null ? null : record.value.toString('base64'),
      valueEncoding: 'base64',
      failedAt: new Date(now()).toISOString(),
    };
    return { topic, key: record.key, value: JSON.stringify(letter) };
  };
}

/** The dispatcher's commit cadence unless `runner.commitIntervalMs` (RUNNER_COMMIT_INTERVAL_MS) says otherwise. */
export const DISPATCHER_COMMIT_INTERVAL_MS = 250;

export async function startDispatcher(options: DispatcherOptions): Promise<DispatcherHandle> {
  const { settings } = options;
  const config = parseDispatcherSettings(options.dispatcher ?? options.settings.dispatcher);
  const log = componentLogger(options.logger, 'dispatcher');
  const policies = new PartnerPolicies({ breakerThreshold: config.breakerThreshold, halfOpenAfterMs: config.halfOpenAfterMs, ...(config.queueBound === undefined ? {} : { queueBound: config.queueBound }) });
  const metrics = dispatcherMetrics(options.registry, log, { policies, partners: options.partners });
  const sender: Sender = createSender({
    allowPrivateNetwork: config.allowPrivateNetwork,
    resolve: parseResolve(config.resolve),
    connectionsPerHost: config.connectionsPerHost,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });
  const deliver = metrics.counted(createDeliver({
    partners: options.partners,
    sender,
    policies,
    inMemoryAttempts: config.inMemoryAttempts,
    inMemoryBudgetMs: config.inMemoryBudgetMs,
    inMemoryBackoff: { baseMs: config.inMemoryBaseDelayMs, maxMs: Math.max(config.inMemoryBaseDelayMs, 2_000) },
    topicBackoff: { baseMs: config.retryBaseDelayMs, maxMs: Math.max(config.retryBaseDelayMs, config.retryMaxDelayMs) },
    observer: { outcome: metrics.outcome, attempt: metrics.attempt, cookiesRejected: metrics.cookiesRejected },
    ...(options.now === undefined ? {} : { now: options.now }),
  }));
  const state = settings.state.store === 'memory' ? { store: 'memory' as const } : { store: 'lmdb' as const, dir: settings.state.dir, noSync: settings.state.noSync };
  let handle: StreamsHandle;
  try {
    handle = await startStreams({
      name: 'dispatcher',
      topology: configuredDispatcherTopology(settings, config, observedDeliver(deliver, options.observer), { onDuplicate: metrics.duplicate, ...(options.now === undefined ? {} : { now: options.now }) }),
      client: options.client,
      groupId: settings.groups.dispatcher,
      clientId: settings.clientId,
      state,
      deadLetters: requestDeadLetters(settings.topics.requestsDlq, options.now),
      deadLetterTopics: [settings.topics.requestsDlq],
      // Deliveries wait on partners, not on CPU: the runner must let as many run as the topology allows.
      // Commits on an interval, not after every completion batch (the runner's default on clients
      // without an awaitable revoke): a record replayed after a hand-over finds its key in the
      // restored store and is skipped, so a longer replay costs reads, not deliveries, while a
      // commit per batch cost a broker request every few records (docs/dispatcher.md "Throughput").
      runner: { ...settings.runner, concurrency: Math.max(settings.runner.concurrency, config.concurrency), commitIntervalMs: settings.runner.commitIntervalMs ?? DISPATCHER_COMMIT_INTERVAL_MS },
      logger: log,
      ...(options.registry === undefined ? {} : { registry: options.registry }),
    });
  } catch (error) {
    forgetDispatcherPolicies(options.registry, policies);
    await sender.close();
    throw error;
  }
  const topics = dispatcherTopics(settings.topics.requests, config);
  let retry: StreamRunner;
  try {
    retry = await startRetryConsumer({
      client: options.client,
      groupId: retryGroupOf(settings.groups.dispatcher),
      retryTopic: topics.retry,
      requestsTopic: settings.topics.requests,
      buffer: config.retryBuffer,
      deadLetters: requestDeadLetters(settings.topics.requestsDlq, options.now),
      runner: settings.runner,
      logger: componentLogger(log, 'retry'),
      ...(settings.clientId === undefined ? {} : { clientId: settings.clientId }),
      ...(options.registry === undefined ? {} : { registry: options.registry }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  } catch (error) {
    await handle.stop(0).catch(() => undefined);
    forgetDispatcherPolicies(options.registry, policies);
    await sender.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const closeSender = (): Promise<void> => (closing ??= (forgetDispatcherPolicies(options.registry, policies), sender.close().catch(() => undefined)));
  // Either consumer failing ends the role: the other is stopped, and `closed` rejects with the cause.
  const closed = Promise.all([
    handle.closed.catch(async (error: unknown) => {
      await retry.stop(0).catch(() => undefined);
      throw error;
    }),
    retry.closed.catch(async (error: unknown) => {
      await handle.stop(0).catch(() => undefined);
      throw error;
    }),
  ]).then(() => undefined).finally(closeSender);
  closed.catch(() => undefined);
  return {
    runner: handle.runner,
    engine: handle.engine,
    retry,
    closed,
    status: () => handle.status(),
    readiness: () => {
      const main = handle.readiness();
      const state = retry.status().state;
      if (state === 'running') return main;
      return { ready: false, reasons: [...main.reasons, `dispatcher retry consumer: ${state}`] };
    },
    stats: () => ({ ...metrics.stats }),
    async stop(timeoutMs?: number) {
      try {
        // Waiting retry records are given up at once (uncommitted, read again by the next owner).
        await Promise.all([retry.stop(0), handle.stop(timeoutMs)]);
      } finally {
        await closeSender();
      }
    },
  };
}

export type DispatcherRoleOptions = DispatcherOptions;

/** The dispatcher as a Role for `run`: ready when the stream runtime is (group joined, nothing restoring). */
export function createDispatcherRole(options: DispatcherRoleOptions): Role {
  let handle: DispatcherHandle | undefined;
  let resolveClosed!: () => void;
  let rejectClosed!: (error: unknown) => void;
  const closed = new Promise<void>((resolve, reject) => {
    resolveClosed = resolve;
    rejectClosed = reject;
  });
  closed.catch(() => undefined);
  let stopping: Promise<void> | undefined;
  return {
    name: 'dispatcher',
    closed,
    async start() {
      handle = await startDispatcher(options);
      handle.closed.then(resolveClosed, rejectClosed);
    },
    stop(timeoutMs?: number) {
      stopping ??= (async () => {
        if (handle === undefined) resolveClosed();
        else await handle.stop(timeoutMs);
      })();
      return stopping;
    },
    readiness(): Readiness {
      return handle === undefined ? { ready: false, reasons: ['dispatcher: starting'] } : handle.readiness();
    },
  };
}
