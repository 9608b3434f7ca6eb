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
import { Counter, type Registry } from 'prom-client';
import type { PartnerConfig } from '../../core/contracts/index.ts';
import { componentLogger, type Logger } from '../../core/log.ts';
import { TagstreamError } from '../../core/errors.ts';
import { createDeliver, createSender, parseResolve, PartnerPolicies, type DeliveryOutcome, type Sender } from '../../processors/dispatcher/index.ts';
import { DEFAULT_DELIVERED_STORE, dispatcherTopology, type Deliver } from '../../topology/app/dispatcher.ts';
import type { ConsumedRecord } from '../../core/records.ts';
import type { Settings } from '../config.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { startStreams, type DeadLetterRouter, type StreamsHandle } from '../streams/index.ts';
import type { Readiness, Role } from './role.ts';

export { DispatcherSettingsSchema, parseDispatcherSettings, type DispatcherSettings, type DispatcherSettingsInput } from './dispatcher-settings.ts';
import { dispatcherTopics, parseDispatcherSettings, type DispatcherSettings, type DispatcherSettingsInput } from './dispatcher-settings.ts';

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
}

export interface DispatcherStats {
  delivered: number;
  retried: number;
  deadLettered: number;
  notSent: number;
  duplicates: number;
}

export interface DispatcherHandle extends Pick<StreamsHandle, 'runner' | 'engine' | 'closed' | 'status' | 'readiness'> {
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
    retryHoldMs: dispatcher.retryHoldMs,
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

export async function startDispatcher(options: DispatcherOptions): Promise<DispatcherHandle> {
  const { settings } = options;
  const config = parseDispatcherSettings(options.dispatcher ?? options.settings.dispatcher);
  const log = componentLogger(options.logger, 'dispatcher');
  const metrics = dispatcherMetrics(options.registry, log);
  const sender: Sender = createSender({
    allowPrivateNetwork: config.allowPrivateNetwork,
    resolve: parseResolve(config.resolve),
    connectionsPerHost: config.connectionsPerHost,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });
  const deliver = createDeliver({
    partners: options.partners,
    sender,
    policies: new PartnerPolicies({ breakerThreshold: config.breakerThreshold, halfOpenAfterMs: config.halfOpenAfterMs, ...(config.queueBound === undefined ? {} : { queueBound: config.queueBound }) }),
    inMemoryAttempts: config.inMemoryAttempts,
    inMemoryBudgetMs: config.inMemoryBudgetMs,
    inMemoryBackoff: { baseMs: config.inMemoryBaseDelayMs, maxMs: Math.max(config.inMemoryBaseDelayMs, 2_000) },
    topicBackoff: { baseMs: config.retryBaseDelayMs, maxMs: Math.max(config.retryBaseDelayMs, config.retryMaxDelayMs) },
    observer: { outcome: metrics.outcome, attempt: metrics.attempt, cookiesRejected: metrics.cookiesRejected },
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const state = settings.state.store === 'memory' ? { store: 'memory' as const } : { store: 'lmdb' as const, dir: settings.state.dir, noSync: settings.state.noSync };
  let handle: StreamsHandle;
  try {
    handle = await startStreams({
      name: 'dispatcher',
      topology: configuredDispatcherTopology(settings, config, deliver, { onDuplicate: metrics.duplicate, ...(options.now === undefined ? {} : { now: options.now }) }),
      client: options.client,
      groupId: settings.groups.dispatcher,
      clientId: settings.clientId,
      state,
      deadLetters: requestDeadLetters(settings.topics.requestsDlq, options.now),
      // Deliveries wait on partners, not on CPU: the runner must let as many run as the topology allows.
      runner: { ...settings.runner, concurrency: Math.max(settings.runner.concurrency, config.concurrency) },
      logger: log,
      ...(options.registry === undefined ? {} : { registry: options.registry }),
    });
  } catch (error) {
    await sender.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const closeSender = (): Promise<void> => (closing ??= sender.close().catch(() => undefined));
  const closed = handle.closed.finally(closeSender);
  closed.catch(() => undefined);
  return {
    runner: handle.runner,
    engine: handle.engine,
    closed,
    status: () => handle.status(),
    readiness: () => handle.readiness(),
    stats: () => ({ ...metrics.stats }),
    async stop(timeoutMs?: number) {
      try {
        await handle.stop(timeoutMs);
      } finally {
        await closeSender();
      }
    },
  };
}

/** Counters per partner; an undeclared host is logged once (operators add it when they mean it). */
function dispatcherMetrics(registry: Registry | undefined, log: Logger) {
  const registers = registry === undefined ? [] : [registry];
  const requests = new Counter({ name: 'tagstream_dispatcher_requests_total', help: 'Requests by partner and outcome (delivered, retry, dead, not-sent)', labelNames: ['partner', 'outcome'], registers });
  const notSent = new Counter({ name: 'tagstream_dispatcher_not_sent_total', help: 'Requests not sent, by partner, host and reason (undeclared host, egress policy)', labelNames: ['partner', 'host', 'reason'], registers });
  const attempts = new Counter({ name: 'tagstream_dispatcher_attempts_total', help: 'Delivery attempts by partner and result (HTTP status or error code)', labelNames: ['partner', 'result'], registers });
  const duplicates = new Counter({ name: 'tagstream_dispatcher_duplicates_total', help: 'Requests skipped because their idempotency key was already delivered', registers });
  const rejected = new Counter({ name: 'tagstream_dispatcher_cookies_rejected_total', help: 'Set-Cookie lines a browser would refuse, by partner', labelNames: ['partner'], registers });
  const stats: DispatcherStats = { delivered: 0, retried: 0, deadLettered: 0, notSent: 0, duplicates: 0 };
  const seenHosts = new Set<string>();
  const MAX_HOSTS = 1000;
  return {
    stats,
    outcome(partner: string | null, o: DeliveryOutcome): void {
      requests.inc({ partner: partner ?? '-', outcome: o.kind });
      if (o.kind === 'delivered') stats.delivered += 1;
      else if (o.kind === 'retry') stats.retried += 1;
      else if (o.kind === 'dead') stats.deadLettered += 1;
      else {
        stats.notSent += 1;
        const known = seenHosts.has(o.host);
        // Tags can reach any host: a bounded label set keeps the metric from growing without end.
        if (!known && seenHosts.size < MAX_HOSTS) {
          seenHosts.add(o.host);
          log.warn({ partner: o.partner, host: o.host, reason: o.reason }, 'request not sent: host not declared in captureHosts or refused by the egress policy (logged once per host)');
        }
        notSent.inc({ partner: o.partner ?? '-', host: seenHosts.has(o.host) ? o.host : 'other', reason: o.reason });
      }
    },
    attempt(partner: string, a: { status?: number | undefined; code?: string | undefined }): void {
      attempts.inc({ partner, result: a.status === undefined ? (a.code ?? 'error') : String(a.status) });
    },
    cookiesRejected(partner: string, count: number): void {
      rejected.inc({ partner }, count);
    },
    duplicate(): void {
      stats.duplicates += 1;
      duplicates.inc();
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
