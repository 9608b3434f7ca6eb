/**
 * The whole product on a real broker, as separate processes: topics made as `topics create` makes
 * them (events and cookies co-partitioned, 6 partitions), one process with the collector and the
 * dispatcher, and N processor instances in one group, each with its own instance id (static
 * membership) and its own state dir. Topic and group names are unique per pipeline: suites share
 * the broker.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings, type Settings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { createTopics } from '../../runtime/topics.ts';
import { uniqueTopic } from '../helpers/kafka.ts';
import { readAll } from '../runner/helpers.ts';
import { partnerConfigs, startInbox, type PartnerInbox } from './partners.ts';
import { RoleProcess, ROOT } from './processes.ts';

export const PARTITIONS = 6;

export interface PipelineOptions {
  brokers: string[];
  processors: readonly string[];
  /** The processors' session timeout: how long a lost instance keeps its partitions. */
  sessionTimeoutMs: number;
  /** Extra environment of every role. */
  env?: Record<string, string>;
}

export class Pipeline {
  readonly settings: Settings;
  readonly env: Record<string, string>;
  readonly inbox: PartnerInbox;
  readonly edge: RoleProcess;
  readonly processors: Map<string, RoleProcess>;
  readonly #dir: string;
  #brokers: string[];

  private constructor(options: PipelineOptions, inbox: PartnerInbox, dir: string, env: Record<string, string>, edge: RoleProcess, processors: Map<string, RoleProcess>) {
    this.#brokers = options.brokers;
    this.inbox = inbox;
    this.#dir = dir;
    this.env = env;
    this.edge = edge;
    this.processors = processors;
    this.settings = loadSettings({ env });
  }

  static async start(options: PipelineOptions): Promise<Pipeline> {
    const inbox = await startInbox();
    const dir = mkdtempSync(join(tmpdir(), 'tagstream-e2e-'));
    const partners = join(dir, 'partners.json');
    writeFileSync(partners, JSON.stringify(partnerConfigs()));
    writeFileSync(join(dir, 'ca.pem'), inbox.cert.cert);
    const p = uniqueTopic('e2e');
    const env: Record<string, string> = {
      KAFKA_BROKERS: options.brokers.join(','),
      TOPIC_EVENTS: `${p}.events`,
      TOPIC_COOKIES: `${p}.cookies`,
      TOPIC_REQUESTS: `${p}.requests`,
      TOPIC_REQUESTS_DLQ: `${p}.requests.dlq`,
      TOPIC_EVENTS_DLQ: `${p}.events.dlq`,
      TOPIC_PARTITIONS: String(PARTITIONS),
      TOPIC_REQUEST_PARTITIONS: String(PARTITIONS),
      GROUP_PROCESSOR: `${p}-processor`,
      GROUP_DISPATCHER: `${p}-dispatcher`,
      PARTNERS_FILE: partners,
      KAFKA_SESSION_TIMEOUT_MS: String(options.sessionTimeoutMs),
      KAFKA_HEARTBEAT_INTERVAL_MS: String(Math.min(3000, Math.floor(options.sessionTimeoutMs / 4))),
      // The product's default: 5 s failed a role's start once on a loaded machine (a connect to a
      // broker started a moment before); the broker restart is covered by the produce retries.
      KAFKA_CONNECT_TIMEOUT_MS: '10000',
      KAFKA_REQUEST_TIMEOUT_MS: '10000',
      DISPATCHER_RESOLVE: inbox.resolve,
      NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
      // Seconds instead of minutes: an outage of a few seconds goes through the retry topic.
      DISPATCHER_IN_MEMORY_ATTEMPTS: '2',
      DISPATCHER_IN_MEMORY_BUDGET_MS: '1000',
      DISPATCHER_IN_MEMORY_BASE_DELAY_MS: '100',
      DISPATCHER_RETRY_BASE_DELAY_MS: '1000',
      DISPATCHER_RETRY_MAX_DELAY_MS: '3000',
      DISPATCHER_BREAKER_THRESHOLD: '5',
      DISPATCHER_HALF_OPEN_AFTER_MS: '1000',
      EXECUTOR_BROWSERS: '1',
      EXECUTOR_PAGES_PER_BROWSER: '4',
      STATE_DIR: join(dir, 'state-edge'),
      LOG_LEVEL: 'warn',
      ...options.env,
    };
    const settings = loadSettings({ env });
    const client = createKafkaClient('platformatic', { brokers: options.brokers, clientId: 'e2e-setup' });
    try {
      const admin = await client.admin();
      try {
        await createTopics(admin, settings);
      } finally {
        await admin.close();
      }
    } finally {
      await client.close();
    }
    const edge = await RoleProcess.create({ name: 'collector+dispatcher', roles: ['collector', 'dispatcher'], args: ['--allow-private-network'], env });
    const processors = new Map<string, RoleProcess>();
    for (const id of options.processors) {
      processors.set(id, await RoleProcess.create({ name: `processor ${id}`, roles: ['processor'], args: ['--allow-private-network', '--instance-id', id], env: { ...env, STATE_DIR: join(dir, `state-${id}`) } }));
    }
    const pipeline = new Pipeline(options, inbox, dir, env, edge, processors);
    try {
      pipeline.edge.start();
      for (const proc of processors.values()) proc.start();
      await Promise.all([pipeline.edge.ready(), ...[...processors.values()].map((proc) => proc.ready())]);
    } catch (error) {
      await pipeline.close();
      throw error;
    }
    return pipeline;
  }

  /** One more processor instance in the group; `instanceId` undefined = a dynamic member. */
  async addProcessor(name: string, instanceId: string | undefined): Promise<RoleProcess> {
    const args = ['--allow-private-network', ...(instanceId === undefined ? [] : ['--instance-id', instanceId])];
    const proc = await RoleProcess.create({ name: `processor ${name}`, roles: ['processor'], args, env: { ...this.env, STATE_DIR: join(this.#dir, `state-${name}`) } });
    this.processors.set(name, proc);
    proc.start();
    await proc.ready();
    return proc;
  }

  /** A `tagstream` command with this pipeline's settings (topics, groups, partners); bounded. */
  cli(args: string[], timeoutMs = 180_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(join(ROOT, 'node_modules', '.bin', 'node'), ['--import', 'tsx', 'runtime/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  get collector(): string {
    return `http://127.0.0.1:${this.edge.collectorPort}`;
  }

  processor(id: string): RoleProcess {
    const proc = this.processors.get(id);
    if (!proc) throw new Error(`no processor ${id}`);
    return proc;
  }

  /** The records of a topic of this pipeline (the DLQs), parsed. */
  async read(topic: string): Promise<Record<string, unknown>[]> {
    const client = createKafkaClient('platformatic', { brokers: this.#brokers, clientId: 'e2e-read' });
    try {
      const records = await readAll(client, topic, PARTITIONS);
      return records.map((r) => JSON.parse(r.value?.toString('utf8') ?? 'null') as Record<string, unknown>);
    } finally {
      await client.close();
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.edge.stop(), ...[...this.processors.values()].map((proc) => proc.stop())]);
    await this.inbox.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
