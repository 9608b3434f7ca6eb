/**
 * Settings of every command, validated once at the edge (zod). Precedence, lowest first:
 * defaults < --config JSON file < environment variables < command-line flags.
 * Every setting is documented in the README ("Settings"); keep the two in step.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { InvalidInputError } from '../core/errors.ts';
import { RunnerSettingsSchema } from './runner/settings.ts';
import { jarBudgetSchema } from '../core/contracts/jar-budget.ts';
import { DispatcherSettingsSchema } from './roles/dispatcher-settings.ts';
import { CollectorSettingsSchema } from './roles/collector/settings.ts';
import { ConsoleSettingsSchema } from './console/settings.ts';
import { DemoSettingsSchema } from './demo/settings.ts';
import { CouchbaseSettingsSchema } from '../state/couchbase-settings.ts';

/** Kafka's own rule for topic names (a typo fails at start, not at the first produce). */
const topicName = z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, 'must be a Kafka topic name (letters, digits, . _ -; at most 249)').refine((t) => t !== '.' && t !== '..', 'must be a Kafka topic name');

const hostPort = z.string().regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'expected host:port');

export const SettingsSchema = z
  .object({
    /** Bootstrap brokers; empty = the embedded in-process broker. */
    brokers: z.array(hostPort).default([]),
    client: z.enum(['platformatic', 'kafkajs']).default('platformatic'),
    clientId: z.string().min(1).default('tagstream'),
    /**
     * This process's stable name (INSTANCE_ID, `run --instance-id`): its static membership in each
     * consumer group (KIP-345, platformatic only), so a restart resumes its partitions at once.
     * Unique per running process; absent = dynamic membership.
     */
    instanceId: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, 'letters, digits, . _ - (at most 200)').optional(),
    /** Prometheus endpoint of `run` (GET /metrics, GET /health). */
    metrics: z
      .object({
        /** Interface to listen on; Prometheus scrapes from other hosts, hence all interfaces. */
        host: z.string().min(1).default('0.0.0.0'),
        /** TCP port; 0 turns the endpoint off. */
        port: z.number().int().min(0).max(65_535).default(9464),
      })
      .strict()
      .prefault({}),
    topics: z
      .object({
        events: topicName.default('tracking.events'),
        cookies: topicName.default('tracking.cookies'),
        requests: topicName.default('tracking.requests'),
        requestsDlq: topicName.default('tracking.requests.dlq'),
        eventsDlq: topicName.default('tracking.events.dlq'),
      })
      .strict()
      .prefault({}),
    /** Partitions of events and cookies (co-partitioned) when `topics create` makes them. */
    partitions: z.number().int().min(1).max(10_000).default(6),
    /** Partitions of the requests and DLQ topics. */
    requestPartitions: z.number().int().min(1).max(10_000).default(6),
    /** Replication factor for created topics; -1 = the broker's default.replication.factor. */
    replicationFactor: z.number().int().min(-1).max(32).refine((n) => n !== 0, 'must not be 0').default(-1),
    groups: z
      .object({
        processor: z.string().min(1).default('tagstream-processor'),
        dispatcher: z.string().min(1).default('tagstream-dispatcher'),
      })
      .strict()
      .prefault({}),
    connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    requestTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** The consumer-group runner under the processor (docs/runner.md "Settings"). */
    runner: RunnerSettingsSchema.prefault({}),
    /** Local state stores of the processor (the cookie jars, restored from the changelog). */
    state: z
      .object({
        /** Kafka Streams' state.dir: stores live in `<dir>/<store>/<partition>`. One per instance. */
        dir: z.string().min(1).default(join(tmpdir(), 'tagstream', 'state')),
        /** `lmdb` persists (restore reads only the changelog after the checkpoint); `memory` restores from 0 at every assignment. */
        store: z.enum(['lmdb', 'memory']).default('lmdb'),
        /** Skip fsync on store commits: a machine crash may lose the last commits (restore replays them). */
        noSync: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    processor: z
      .object({
        /** JSON array of partner configurations (the `--partners` flag wins). */
        partners: z.string().min(1).optional(),
        /** Simultaneous executions per instance; default = executor.browsers × executor.pagesPerBrowser. */
        concurrency: z.number().int().min(1).max(1000).optional(),
        /** Bound on one executor attempt (ms); default none (the partners' timeoutMs bound the page run). */
        executorTimeoutMs: z.number().int().min(100).max(600_000).optional(),
        /** Extra attempts after an executor failure before the event goes to the events DLQ. */
        retries: z.number().int().min(0).max(10).default(1),
      })
      .strict()
      .prefault({}),
    /**
     * What one visitor's records may hold (docs/processor.md "Limits"): a partner tag must not be
     * able to make a record Kafka refuses, nor crowd out the other partners' ids.
     */
    limits: z
      .object({
        jar: jarBudgetSchema.prefault({}),
        /** A captured request whose body is larger is not published (events DLQ, reason output-too-large). */
        requestBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(512 * 1024),
      })
      .strict()
      .prefault({}),
    /** The first-party collector (docs/collector.md): GET /tag.js, POST /collect, /health, /ready. */
    collector: CollectorSettingsSchema.prefault({}),
    /** The dispatcher (docs/dispatcher.md "Settings"). */
    dispatcher: DispatcherSettingsSchema.prefault({}),
    /** The console (docs/console.md): recent events and their traces, on loopback. */
    console: ConsoleSettingsSchema.prefault({}),
    /** The demo shop, partner inbox and demo partners of `npm start` (`run --demo`). */
    demo: DemoSettingsSchema.prefault({}),
    /** The browser pool of the processor (processors/executor). */
    executor: z
      .object({
        browsers: z.number().int().min(1).max(64).default(1),
        /** 4 tabs per browser measured best on 2 cores (bench/executor: 35 views/s against 25 with 2). */
        pagesPerBrowser: z.number().int().min(1).max(64).default(4),
        /** `shell` = chromium-headless-shell, `new` = Chromium's new headless. */
        headless: z.enum(['shell', 'new']).default('shell'),
        /** Let allowHosts resolve to loopback/private addresses (development and tests only). */
        allowPrivateNetwork: z.boolean().default(false),
        /**
         * End each visit as a closed tab with trusted lifecycle events (for SDKs that ignore
         * untrusted ones); costs ~30% more CPU per view (docs/executor.md).
         */
        trustedClose: z.boolean().default(false),
        /**
         * Plain fetch/sendBeacon sends to captureHosts are taken in the page, not through
         * Chromium's network stack (same record, less CPU: docs/executor.md "In-page capture").
         */
        inPageCapture: z.boolean().default(true),
        /** Chromium's OS sandbox; absent = on unless running as root (Chromium refuses it there). */
        sandbox: z.boolean().optional(),
      })
      .strict()
      .prefault({}),
    /** The Couchbase jar cache (docs/couchbase.md): off unless a connection string is set. */
    couchbase: CouchbaseSettingsSchema.prefault({}),
  })
  .strict();

export type Settings = z.infer<typeof SettingsSchema>;
export type SettingsInput = z.input<typeof SettingsSchema>;

/** Environment variables → setting paths. */
export const ENV_SETTINGS: Record<string, { path: string[]; parse: (v: string) => unknown }> = {
  KAFKA_BROKERS: { path: ['brokers'], parse: splitList },
  KAFKA_CLIENT: { path: ['client'], parse: (v) => v },
  KAFKA_CLIENT_ID: { path: ['clientId'], parse: (v) => v },
  INSTANCE_ID: { path: ['instanceId'], parse: (v) => v },
  METRICS_HOST: { path: ['metrics', 'host'], parse: (v) => v },
  METRICS_PORT: { path: ['metrics', 'port'], parse: Number },
  TOPIC_EVENTS: { path: ['topics', 'events'], parse: (v) => v },
  TOPIC_COOKIES: { path: ['topics', 'cookies'], parse: (v) => v },
  TOPIC_REQUESTS: { path: ['topics', 'requests'], parse: (v) => v },
  TOPIC_REQUESTS_DLQ: { path: ['topics', 'requestsDlq'], parse: (v) => v },
  TOPIC_EVENTS_DLQ: { path: ['topics', 'eventsDlq'], parse: (v) => v },
  TOPIC_PARTITIONS: { path: ['partitions'], parse: Number },
  TOPIC_REQUEST_PARTITIONS: { path: ['requestPartitions'], parse: Number },
  TOPIC_REPLICATION_FACTOR: { path: ['replicationFactor'], parse: Number },
  GROUP_PROCESSOR: { path: ['groups', 'processor'], parse: (v) => v },
  GROUP_DISPATCHER: { path: ['groups', 'dispatcher'], parse: (v) => v },
  KAFKA_CONNECT_TIMEOUT_MS: { path: ['connectTimeoutMs'], parse: Number },
  KAFKA_REQUEST_TIMEOUT_MS: { path: ['requestTimeoutMs'], parse: Number },
  RUNNER_CONCURRENCY: { path: ['runner', 'concurrency'], parse: Number },
  RUNNER_MAX_BUFFERED: { path: ['runner', 'maxBuffered'], parse: Number },
  RUNNER_RESUME_BELOW: { path: ['runner', 'resumeBelow'], parse: Number },
  RUNNER_FETCH_MAX_BYTES: { path: ['runner', 'fetchMaxBytes'], parse: Number },
  RUNNER_COMMIT_INTERVAL_MS: { path: ['runner', 'commitIntervalMs'], parse: Number },
  RUNNER_REVOKE_TIMEOUT_MS: { path: ['runner', 'revokeTimeoutMs'], parse: Number },
  RUNNER_SHUTDOWN_TIMEOUT_MS: { path: ['runner', 'shutdownTimeoutMs'], parse: Number },
  RUNNER_AUTO_OFFSET_RESET: { path: ['runner', 'autoOffsetReset'], parse: (v) => v },
  RUNNER_REQUIRE_COMPACTED_CHANGELOG: { path: ['runner', 'requireCompactedChangelog'], parse: parseBool },
  RUNNER_BROKER_RETRY_MS: { path: ['runner', 'brokerRetryMs'], parse: Number },
  KAFKA_SESSION_TIMEOUT_MS: { path: ['runner', 'sessionTimeoutMs'], parse: Number },
  KAFKA_HEARTBEAT_INTERVAL_MS: { path: ['runner', 'heartbeatIntervalMs'], parse: Number },
  KAFKA_REBALANCE_TIMEOUT_MS: { path: ['runner', 'rebalanceTimeoutMs'], parse: Number },
  STATE_DIR: { path: ['state', 'dir'], parse: (v) => v },
  STATE_STORE: { path: ['state', 'store'], parse: (v) => v },
  STATE_NO_SYNC: { path: ['state', 'noSync'], parse: parseBool },
  PARTNERS_FILE: { path: ['processor', 'partners'], parse: (v) => v },
  PROCESSOR_CONCURRENCY: { path: ['processor', 'concurrency'], parse: Number },
  PROCESSOR_EXECUTOR_TIMEOUT_MS: { path: ['processor', 'executorTimeoutMs'], parse: Number },
  PROCESSOR_RETRIES: { path: ['processor', 'retries'], parse: Number },
  LIMIT_JAR_BYTES: { path: ['limits', 'jar', 'jarBytes'], parse: Number },
  LIMIT_ORIGIN_STORAGE_BYTES: { path: ['limits', 'jar', 'originStorageBytes'], parse: Number },
  LIMIT_COOKIES_PER_DOMAIN: { path: ['limits', 'jar', 'cookiesPerDomain'], parse: Number },
  LIMIT_COOKIES: { path: ['limits', 'jar', 'cookies'], parse: Number },
  LIMIT_COOKIE_BYTES: { path: ['limits', 'jar', 'cookieBytes'], parse: Number },
  LIMIT_REQUEST_BODY_BYTES: { path: ['limits', 'requestBodyBytes'], parse: Number },
  COLLECTOR_HOST: { path: ['collector', 'host'], parse: (v) => v },
  COLLECTOR_PORT: { path: ['collector', 'port'], parse: Number },
  COLLECTOR_ALLOWED_ORIGINS: { path: ['collector', 'allowedOrigins'], parse: splitList },
  COLLECTOR_TRUSTED_PROXIES: { path: ['collector', 'trustedProxies'], parse: splitList },
  COLLECTOR_COOKIE_DOMAIN: { path: ['collector', 'cookieDomain'], parse: (v) => v },
  COLLECTOR_COOKIE_NAME: { path: ['collector', 'cookieName'], parse: (v) => v },
  COLLECTOR_COOKIE_MAX_AGE_DAYS: { path: ['collector', 'cookieMaxAgeDays'], parse: Number },
  COLLECTOR_ID_CONSENT: { path: ['collector', 'idConsent'], parse: (v) => v },
  COLLECTOR_BODY_LIMIT_BYTES: { path: ['collector', 'bodyLimitBytes'], parse: Number },
  COLLECTOR_MAX_STRING_LENGTH: { path: ['collector', 'maxStringLength'], parse: Number },
  COLLECTOR_MAX_DEPTH: { path: ['collector', 'maxDepth'], parse: Number },
  COLLECTOR_PRODUCE_TIMEOUT_MS: { path: ['collector', 'produceTimeoutMs'], parse: Number },
  COLLECTOR_MAX_IN_FLIGHT: { path: ['collector', 'maxInFlight'], parse: Number },
  COLLECTOR_DROP_BOTS: { path: ['collector', 'dropBots'], parse: parseBool },
  COLLECTOR_SHUTDOWN_TIMEOUT_MS: { path: ['collector', 'shutdownTimeoutMs'], parse: Number },
  DISPATCHER_RESOLVE: { path: ['dispatcher', 'resolve'], parse: (v) => v },
  DISPATCHER_ALLOW_PRIVATE_NETWORK: { path: ['dispatcher', 'allowPrivateNetwork'], parse: parseBool },
  DISPATCHER_DEDUPE_WINDOW_MS: { path: ['dispatcher', 'dedupeWindowMs'], parse: Number },
  DISPATCHER_CONCURRENCY: { path: ['dispatcher', 'concurrency'], parse: Number },
  DISPATCHER_CONNECTIONS_PER_HOST: { path: ['dispatcher', 'connectionsPerHost'], parse: Number },
  DISPATCHER_QUEUE_BOUND: { path: ['dispatcher', 'queueBound'], parse: Number },
  DISPATCHER_BREAKER_THRESHOLD: { path: ['dispatcher', 'breakerThreshold'], parse: Number },
  DISPATCHER_HALF_OPEN_AFTER_MS: { path: ['dispatcher', 'halfOpenAfterMs'], parse: Number },
  DISPATCHER_IN_MEMORY_ATTEMPTS: { path: ['dispatcher', 'inMemoryAttempts'], parse: Number },
  DISPATCHER_IN_MEMORY_BUDGET_MS: { path: ['dispatcher', 'inMemoryBudgetMs'], parse: Number },
  DISPATCHER_IN_MEMORY_BASE_DELAY_MS: { path: ['dispatcher', 'inMemoryBaseDelayMs'], parse: Number },
  DISPATCHER_RETRY_BASE_DELAY_MS: { path: ['dispatcher', 'retryBaseDelayMs'], parse: Number },
  DISPATCHER_RETRY_MAX_DELAY_MS: { path: ['dispatcher', 'retryMaxDelayMs'], parse: Number },
  DISPATCHER_RETRY_BUFFER: { path: ['dispatcher', 'retryBuffer'], parse: Number },
  DISPATCHER_MAX_KEYS_PER_VISITOR: { path: ['dispatcher', 'maxKeysPerVisitor'], parse: Number },
  TOPIC_REQUESTS_RETRY: { path: ['dispatcher', 'topics', 'retry'], parse: (v) => v },
  TOPIC_REQUESTS_DELIVERED: { path: ['dispatcher', 'topics', 'delivered'], parse: (v) => v },
  EXECUTOR_BROWSERS: { path: ['executor', 'browsers'], parse: Number },
  EXECUTOR_PAGES_PER_BROWSER: { path: ['executor', 'pagesPerBrowser'], parse: Number },
  EXECUTOR_HEADLESS: { path: ['executor', 'headless'], parse: (v) => v },
  EXECUTOR_ALLOW_PRIVATE_NETWORK: { path: ['executor', 'allowPrivateNetwork'], parse: parseBool },
  EXECUTOR_TRUSTED_CLOSE: { path: ['executor', 'trustedClose'], parse: parseBool },
  EXECUTOR_IN_PAGE_CAPTURE: { path: ['executor', 'inPageCapture'], parse: parseBool },
  EXECUTOR_SANDBOX: { path: ['executor', 'sandbox'], parse: parseBool },
  COUCHBASE_CONNECTION_STRING: { path: ['couchbase', 'connectionString'], parse: (v) => v },
  COUCHBASE_BUCKET: { path: ['couchbase', 'bucket'], parse: (v) => v },
  COUCHBASE_USERNAME: { path: ['couchbase', 'username'], parse: (v) => v },
  COUCHBASE_PASSWORD: { path: ['couchbase', 'password'], parse: (v) => v },
  COUCHBASE_TTL_SECONDS: { path: ['couchbase', 'ttlSeconds'], parse: Number },
  COUCHBASE_QUEUE_BOUND: { path: ['couchbase', 'queueBound'], parse: Number },
  COUCHBASE_CONCURRENCY: { path: ['couchbase', 'concurrency'], parse: Number },
  COUCHBASE_TIMEOUT_MS: { path: ['couchbase', 'timeoutMs'], parse: Number },
  COUCHBASE_HTTP_READS: { path: ['couchbase', 'httpReads'], parse: parseBool },
  CONSOLE_ENABLED: { path: ['console', 'enabled'], parse: parseBool },
  CONSOLE_HOST: { path: ['console', 'host'], parse: (v) => v },
  CONSOLE_PORT: { path: ['console', 'port'], parse: Number },
  CONSOLE_BUFFER_SIZE: { path: ['console', 'bufferSize'], parse: Number },
  CONSOLE_COUNTER_MINUTES: { path: ['console', 'counterMinutes'], parse: Number },
  DEMO_ENABLED: { path: ['demo', 'enabled'], parse: parseBool },
  DEMO_HOST: { path: ['demo', 'host'], parse: (v) => v },
  DEMO_SHOP_PORT: { path: ['demo', 'shopPort'], parse: Number },
  DEMO_INBOX_PORT: { path: ['demo', 'inboxPort'], parse: Number },
};

/** `true`/`1`/`yes` and `false`/`0`/`no`; anything else is left as is for the schema to reject by name. */
function parseBool(v: string): unknown {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(s)) return true;
  if (['false', '0', 'no'].includes(s)) return false;
  return v;
}

function splitList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Flags override key by key, also inside sections (a `--partners` flag keeps the other processor settings). */
function mergeFlags(target: Record<string, unknown>, flags: object): void {
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const current = target[key];
    if (isPlainObject(value) && isPlainObject(current)) mergeFlags(current, value);
    else target[key] = value;
  }
}

export interface LoadSettingsOptions {
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags (already shaped like Settings), highest precedence. */
  flags?: SettingsInput;
}

export function loadSettings(options: LoadSettingsOptions = {}): Settings {
  const merged: Record<string, unknown> = {};
  if (options.configFile) {
    let text: string;
    try {
      text = readFileSync(options.configFile, 'utf8');
    } catch (err) {
      throw new InvalidInputError('--config', `cannot read ${options.configFile}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new InvalidInputError('--config', `${options.configFile} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new InvalidInputError('--config', `${options.configFile} must hold a JSON object`);
    }
    Object.assign(merged, parsed);
  }
  const env = options.env ?? process.env;
  for (const [name, { path, parse }] of Object.entries(ENV_SETTINGS)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') setPath(merged, path, parse(raw));
  }
  mergeFlags(merged, options.flags ?? {});
  const result = SettingsSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue && issue.path.length > 0 ? issue.path.join('.') : 'settings';
    const envName = Object.entries(ENV_SETTINGS).find(([, s]) => field === s.path.join('.') || field.startsWith(`${s.path.join('.')}.`))?.[0];
    throw new InvalidInputError(envName ? `${field} (${envName})` : field, issue?.message ?? 'invalid');
  }
  return withInstanceId(result.data);
}

/** The instance name becomes each group's static member id (the runner's groupInstanceId, unless set there). */
function withInstanceId(settings: Settings): Settings {
  const id = settings.runner.groupInstanceId ?? settings.instanceId;
  if (id === undefined) return settings;
  if (settings.client === 'kafkajs') {
    const field = settings.instanceId === undefined ? 'runner.groupInstanceId' : 'instanceId (INSTANCE_ID)';
    throw new InvalidInputError(field, 'static group membership needs the platformatic client: kafkajs has no group instance id (use --client platformatic or unset it)');
  }
  return { ...settings, runner: { ...settings.runner, groupInstanceId: id } };
}
