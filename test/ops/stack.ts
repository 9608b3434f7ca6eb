/**
 * The product as an operator runs it, for the operations tests: topics made on the real broker
 * (unique names), then `run --allow-private-network` in a child process (collector, processor with
 * real Chromium, dispatcher: one process, one /metrics), fake partners as HTTP servers on 127.0.0.1,
 * and visitors posting to the collector.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { loadSettings, type Settings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { createTopics } from '../../runtime/topics.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../runner/helpers.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PARTITIONS = 3;
export const VISITOR_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36';

export interface Hit {
  method: string;
  path: string;
  body: string;
}

/** What a fake partner answers: a status and headers per request (after reading its body). */
export type Answer = (hit: Hit) => { status: number; headers?: Record<string, string | string[]>; body?: string };

export interface FakeServer {
  readonly port: number;
  readonly host: string;
  readonly hits: Hit[];
  answer: Answer;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 standing in for a partner's CDN or collection endpoint. */
export async function fakeServer(answer: Answer = () => ({ status: 204 })): Promise<FakeServer> {
  const hits: Hit[] = [];
  const state = { answer };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { method: req.method ?? '', path: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') };
      hits.push(hit);
      const a = state.answer(hit);
      res.writeHead(a.status, a.headers ?? {}).end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    hits,
    get answer() {
      return state.answer;
    },
    set answer(a: Answer) {
      state.answer = a;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface Stack {
  readonly settings: Settings;
  readonly metricsPort: number;
  readonly collectorPort: number;
  readonly client: KafkaClient;
  stderr(): string;
  /** GET /metrics as text. */
  metrics(): Promise<string>;
  /** SIGTERM, then the exit code (SIGKILL after 30 s). */
  stop(): Promise<number | null>;
}

export interface StackOptions {
  partners: unknown[];
  /** More environment for `run` (DISPATCHER_*, EXECUTOR_*, ...). */
  env?: Record<string, string>;
}

/** Topics on the real broker, `run` started and ready (bounded: 90 s). */
export async function startStack(options: StackOptions): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'ops-'));
  const partnersFile = join(dir, 'partners.json');
  writeFileSync(partnersFile, JSON.stringify(options.partners));
  const prefix = uniqueTopic('ops');
  const [metricsPort, collectorPort] = [await freePort(), await freePort()];
  const env: Record<string, string> = {
    KAFKA_BROKERS: realBroker().brokers.join(','),
    TOPIC_EVENTS: `${prefix}-events`,
    TOPIC_COOKIES: `${prefix}-cookies`,
    TOPIC_REQUESTS: `${prefix}-requests`,
    TOPIC_REQUESTS_DLQ: `${prefix}-requests-dlq`,
    TOPIC_EVENTS_DLQ: `${prefix}-events-dlq`,
    TOPIC_PARTITIONS: String(PARTITIONS),
    TOPIC_REQUEST_PARTITIONS: String(PARTITIONS),
    GROUP_PROCESSOR: `${prefix}-processor`,
    GROUP_DISPATCHER: `${prefix}-dispatcher`,
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    COLLECTOR_HOST: '127.0.0.1',
    COLLECTOR_PORT: String(collectorPort),
    STATE_STORE: 'memory',
    EXECUTOR_BROWSERS: '1',
    EXECUTOR_PAGES_PER_BROWSER: '2',
    KAFKA_SESSION_TIMEOUT_MS: '10000',
    RUNNER_COMMIT_INTERVAL_MS: '200',
    CONSOLE_ENABLED: 'false',
    PARTNERS_FILE: '',
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  const settings = loadSettings({ env });
  const client = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'ops-test' });
  const admin = await client.admin();
  try {
    await createTopics(admin, settings);
  } finally {
    await admin.close();
  }
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', '--partners', partnersFile, '--allow-private-network'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(timer);
    await client.close();
    rmSync(dir, { recursive: true, force: true });
    return code;
  };
  try {
    await waitFor('run: /ready 200', async () => {
      if (child.exitCode !== null) throw new Error(`run exited ${child.exitCode}: ${stderr.slice(-2000)}`);
      try {
        return (await request(`http://127.0.0.1:${metricsPort}/ready`)).statusCode === 200;
      } catch {
        return false;
      }
    }, 90_000, 250);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    settings,
    metricsPort,
    collectorPort,
    client,
    stderr: () => stderr,
    metrics: async () => (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body.text(),
    stop,
  };
}

/** One visitor's page view posted as the first-party tag posts it; resolves with the HTTP status. */
export async function postPageView(stack: Stack, n: number, options: { userAgent?: string; consent?: Record<string, boolean> } = {}): Promise<number> {
  const res = await request(`http://127.0.0.1:${stack.collectorPort}/collect`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', 'user-agent': options.userAgent ?? VISITOR_UA },
    body: JSON.stringify({ userId: `visitor-${n}`, page: { url: `https://www.shop.example/p/${n}`, title: `Product ${n}` }, consent: options.consent ?? { analytics: true, advertising: false } }),
  });
  await res.body.dump();
  return res.statusCode;
}

/** A sample's value in Prometheus text, by name and exact labels (undefined when absent). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    const want = Object.entries(labels);
    if (want.length === Object.keys(got).length && want.every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** The sum of a metric's samples whose labels include `labels`. */
export function total(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}
