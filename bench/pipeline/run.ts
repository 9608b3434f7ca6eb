/**
 * Pipeline benchmark (docs/e2e.md "Benchmark"): page views/s sustained end to end on a real Kafka
 * broker — POST /collect → tracking.events → processor (jar join, Chromium executor) →
 * tracking.requests → dispatcher → a partner sink on 127.0.0.1 — with the executor benchmark's
 * `small` workload (three tags per page: a cookie id pixel, a localStorage id fetch, a tag that
 * sends after setTimeout 2000), compared in the same run with that executor benchmark alone
 * (bench/executor/run.ts, run as a child before and after), then with 1 and 2 processor instances.
 *
 * Each role is its own `tagstream run <role>` process, so the CPU each one spends per page view is
 * read from /proc (collector, processor node = join + runner + executor driver, Chromium, the
 * dispatcher, the broker JVM, this process = the visitors, the tag server and the partner sink).
 * Throughput: a backlog of page views is posted at once (the collector takes them far faster than
 * the processor runs them), then the rate at which the partner sink receives them is measured
 * between 10% and 90% of the deliveries (steady state), and over the whole run.
 *
 *   npm run bench:pipeline                                      # 600 views, instances 1,2, 2 rounds (~6 min)
 *   node --import tsx bench/pipeline/run.ts --views=300 --instances=1 --rounds=1
 *
 * Options (flag `--name=value` or env `BENCH_NAME`): views 600, instances 1,2, rounds 2, exec-n 300,
 * parallel 32 (visitors posting at once), json path (default bench/pipeline/results/<date>.json).
 * KAFKA_BROKERS set = use that broker instead of starting one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadSettings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { startLocalBroker, type LocalBroker } from '../../runtime/kafka-local/broker.ts';
import { createTopics } from '../../runtime/topics.ts';
import { makeCert } from '../../test/dispatcher/helpers.ts';
import { RoleProcess, ROOT } from '../../test/e2e/processes.ts';
import { startFixtureServer, tagPartner } from '../../test/executor/helpers.ts';
import { cpuDelta, cpuSnapshot, type CpuSnapshot } from '../executor/proc.ts';

function opt(name: string, def: string): string {
  const flag = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (flag) return flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : 'true';
  return process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? def;
}
const VIEWS = Number(opt('views', '600'));
const INSTANCES = opt('instances', '1,2').split(',').map(Number);
const EXEC_N = Number(opt('exec-n', '300'));
const PARALLEL = Number(opt('parallel', '32'));
const ROUNDS = Number(opt('rounds', '2'));
const RESULTS = join(ROOT, 'bench', 'pipeline', 'results');
const JSON_OUT = opt('json', join(RESULTS, `${new Date().toISOString().slice(0, 10)}.json`));
const r1 = (x: number): number => Math.round(x * 10) / 10;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---------------------------------------------------------------- the executor benchmark alone
interface ExecutorRun {
  viewsPerSecond: number;
  cpuSecondsPerView: number;
  cpuMsPerViewByKind: Record<string, number>;
}

function executorAlone(): ExecutorRun {
  const out = join(tmpdir(), `bench-exec-${process.pid}.json`);
  execFileSync(join(ROOT, 'node_modules', '.bin', 'node'), ['--import', 'tsx', 'bench/executor/run.ts', '--modes=executor', '--variants=small', `--exec-n=${EXEC_N}`, '--lat-n=0', `--json=${out}`], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
  const parsed = JSON.parse(readFileSync(out, 'utf8')) as { runs: ExecutorRun[] };
  rmSync(out, { force: true });
  const run = parsed.runs[0];
  if (!run) throw new Error('the executor benchmark printed no run');
  return run;
}

// ---------------------------------------------------------------- the workload
const srv = await startFixtureServer();
const SMALL_WAIT_TAG = "<script>setTimeout(function(){ new Image().src='https://collect.t.example/wait2s' }, 2000)</script>";
const partners = [tagPartner(srv, 'a', 'cookie-id'), tagPartner(srv, 'b', 'ls-id'), { id: 'c', html: SMALL_WAIT_TAG, captureHosts: ['collect.t.example'] }];
const PER_VIEW = partners.length;

const cert = makeCert(['collect.t.example']);
const arrivals: number[] = [];
const sink = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
  req.resume();
  req.on('end', () => {
    arrivals.push(Date.now());
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkPort = (sink.address() as AddressInfo).port;

const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36';

async function post(collector: string, user: string, n: number): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const res = await request(`${collector}/collect`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'user-agent': UA, 'accept-language': 'fr-FR,fr;q=0.9' },
      body: JSON.stringify({ userId: user, page: { url: `https://shop.example/p/${n}?utm_source=x`, referrer: 'https://www.google.com/', title: 'Product 42' }, device: { userAgent: UA, language: 'fr-FR', timezone: 'Europe/Paris' }, consent: { analytics: true, advertising: false }, data: { product: n } }),
    });
    await res.body.dump();
    if (res.statusCode === 204) return;
    await sleep(200);
  }
  throw new Error(`the collector refused a page view of ${user}`);
}

/** `views` page views: visitors of 4 views each, PARALLEL visitors posting at once. */
async function postAll(collector: string, tag: string, views: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      for (let i = next++; i < views; i = next++) await post(collector, `${tag}-u${Math.floor(i / 4)}`, i % 4);
    }),
  );
}

async function waitArrivals(count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (arrivals.length < count) {
    if (Date.now() > deadline) throw new Error(`only ${arrivals.length} of ${count} requests reached the sink within ${timeoutMs} ms`);
    await sleep(100);
  }
}

// ---------------------------------------------------------------- one pipeline run
interface PipelineRun {
  instances: number;
  views: number;
  viewsPerSecond: number;
  steadyViewsPerSecond: number;
  cpuMsPerView: Record<string, number>;
  executorMsPerEvent: number;
}

async function pipelineRun(brokers: string[], instances: number, dir: string): Promise<PipelineRun> {
  const tag = `bench-${Date.now().toString(36)}`;
  const env: Record<string, string> = {
    KAFKA_BROKERS: brokers.join(','),
    TOPIC_EVENTS: `${tag}.events`,
    TOPIC_COOKIES: `${tag}.cookies`,
    TOPIC_REQUESTS: `${tag}.requests`,
    TOPIC_REQUESTS_DLQ: `${tag}.requests.dlq`,
    TOPIC_EVENTS_DLQ: `${tag}.events.dlq`,
    GROUP_PROCESSOR: `${tag}-processor`,
    GROUP_DISPATCHER: `${tag}-dispatcher`,
    PARTNERS_FILE: join(dir, 'partners.json'),
    DISPATCHER_RESOLVE: `collect.t.example:443=127.0.0.1:${sinkPort}`,
    NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
    STATE_STORE: 'lmdb',
    STATE_NO_SYNC: 'true',
    LOG_LEVEL: 'warn',
  };
  const client = createKafkaClient('platformatic', { brokers, clientId: 'bench-setup' });
  const admin = await client.admin();
  await createTopics(admin, loadSettings({ env }));
  await admin.close();
  await client.close();
  const collector = await RoleProcess.create({ name: 'collector', roles: ['collector'], env: { ...env, STATE_DIR: join(dir, `${tag}-c`) } });
  const dispatcher = await RoleProcess.create({ name: 'dispatcher', roles: ['dispatcher'], args: ['--allow-private-network'], env: { ...env, STATE_DIR: join(dir, `${tag}-d`) } });
  const processors: RoleProcess[] = [];
  for (let i = 0; i < instances; i += 1) {
    processors.push(await RoleProcess.create({ name: `processor-${i}`, roles: ['processor'], args: ['--allow-private-network', '--instance-id', `bench-${i}`], env: { ...env, STATE_DIR: join(dir, `${tag}-p${i}`) } }));
  }
  const roles = [collector, dispatcher, ...processors];
  try {
    for (const role of roles) role.start();
    for (const role of roles) await role.ready(120_000);
    const url = `http://127.0.0.1:${collector.collectorPort}`;
    // Warm-up: script cache, tabs, connections, the group settled.
    arrivals.length = 0;
    await postAll(url, `${tag}-warm`, 40);
    await waitArrivals(40 * PER_VIEW, 120_000);
    await sleep(500);
    arrivals.length = 0;
    const snap = (): Map<string, CpuSnapshot> => new Map(roles.map((r) => [r.name, cpuSnapshot(r.pid!)]));
    const before = snap();
    const selfBefore = process.cpuUsage();
    const execBefore = await Promise.all(processors.map(async (p) => [await p.metric('tagstream_executor_event_duration_seconds_sum'), await p.metric('tagstream_executor_event_duration_seconds_count')]));
    const t0 = Date.now();
    await postAll(url, tag, VIEWS);
    await waitArrivals(VIEWS * PER_VIEW, 600_000);
    const seconds = (Math.max(...arrivals) - t0) / 1000;
    const after = snap();
    const self = process.cpuUsage(selfBefore);
    const execAfter = await Promise.all(processors.map(async (p) => [await p.metric('tagstream_executor_event_duration_seconds_sum'), await p.metric('tagstream_executor_event_duration_seconds_count')]));
    const sorted = [...arrivals].sort((a, b) => a - b);
    const lo = sorted[Math.floor(sorted.length * 0.1)]!;
    const hi = sorted[Math.floor(sorted.length * 0.9)]!;
    const cpu: Record<string, number> = {};
    const add = (k: string, s: number): void => {
      cpu[k] = r1((cpu[k] ?? 0) + (s / VIEWS) * 1000);
    };
    for (const role of roles) {
      const d = cpuDelta(before.get(role.name)!, after.get(role.name)!);
      if (role.name.startsWith('processor')) {
        add('processor node (join, runner, executor driver)', (d.byKind.other ?? 0) + (d.byKind.node ?? 0));
        add('chromium', d.total - (d.byKind.other ?? 0) - (d.byKind.node ?? 0));
      } else add(role.name, d.total);
    }
    add('bench process (visitors, tag server, partner sink)', (self.user + self.system) / 1e6);
    const execSum = execAfter.reduce((s, [sum], i) => s + sum! - execBefore[i]![0]!, 0);
    const execCount = execAfter.reduce((s, [, count], i) => s + count! - execBefore[i]![1]!, 0);
    return {
      instances,
      views: VIEWS,
      viewsPerSecond: r1(VIEWS / seconds),
      steadyViewsPerSecond: r1((0.8 * VIEWS) / ((hi - lo) / 1000)),
      cpuMsPerView: cpu,
      executorMsPerEvent: r1((execSum / Math.max(1, execCount)) * 1000),
    };
  } finally {
    await Promise.allSettled(roles.map((r) => r.stop()));
  }
}

// ---------------------------------------------------------------- main
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const r2 = (x: number): number => Math.round(x * 100) / 100;
const kinds = (m: Record<string, number>): string => Object.entries(m).map(([k, v]) => `${k} ${v}`).join(', ');
const dir = mkdtempSync(join(tmpdir(), 'bench-pipeline-'));
writeFileSync(join(dir, 'partners.json'), JSON.stringify(partners));
writeFileSync(join(dir, 'ca.pem'), cert.cert);
let broker: LocalBroker | undefined;
const startedAt = new Date().toISOString();
const loadBefore = loadavg();
try {
  let brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  if (brokers.length === 0) {
    broker = await startLocalBroker();
    brokers = broker.brokers;
  }
  // Interleaved (executor, pipeline × each instance count) per round, the executor once more at the
  // end: each pipeline run is compared with the executor runs just before and after it.
  const executor: ExecutorRun[] = [];
  const runs: (PipelineRun & { round: number; executorAround: number })[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    executor.push(executorAlone());
    process.stderr.write(`round ${round}: executor alone ${executor[executor.length - 1]!.viewsPerSecond} views/s\n`);
    for (const n of INSTANCES) {
      const b0 = broker ? cpuSnapshot(broker.pid) : undefined;
      const run = await pipelineRun(brokers, n, dir);
      if (broker && b0) run.cpuMsPerView['kafka broker'] = r1((cpuDelta(b0, cpuSnapshot(broker.pid)).total / VIEWS) * 1000);
      runs.push({ ...run, round, executorAround: 0 });
      process.stderr.write(`${JSON.stringify(run)}\n`);
    }
  }
  executor.push(executorAlone());
  for (const r of runs) r.executorAround = r1(((executor[r.round]?.viewsPerSecond ?? NaN) + (executor[r.round + 1]?.viewsPerSecond ?? NaN)) / 2);
  const lines = [
    '| run | round | views/s (whole run) | views/s (10–90% steady) | vs executor alone (runs before and after) | executor ms/event | CPU ms per view |',
    '|---|---|---|---|---|---|---|',
    ...executor.map((e, i) => `| executor alone (bench/executor small, 1 browser × 4 tabs) | ${i} | ${e.viewsPerSecond} | | 1 | | ${r1(e.cpuSecondsPerView * 1000)} (${kinds(e.cpuMsPerViewByKind)}) |`),
    ...runs.map((r) => `| pipeline, ${r.instances} processor instance${r.instances > 1 ? 's' : ''} | ${r.round} | ${r.viewsPerSecond} | ${r.steadyViewsPerSecond} | ${r2(r.steadyViewsPerSecond / r.executorAround)} (${r.executorAround}) | ${r.executorMsPerEvent} | ${r1(Object.values(r.cpuMsPerView).reduce((a, b) => a + b, 0))} (${kinds(r.cpuMsPerView)}) |`),
  ];
  const summary: Record<string, number> = {};
  const ofN = (n: number): (PipelineRun & { executorAround: number })[] => runs.filter((r) => r.instances === n);
  if (ofN(1).length > 0) summary.pipelineOverExecutorMedian = r2(median(ofN(1).map((r) => r.steadyViewsPerSecond / r.executorAround)));
  if (ofN(1).length > 0 && ofN(2).length > 0) summary.twoOverOneMedian = r2(median(ofN(2).map((r, i) => r.steadyViewsPerSecond / (ofN(1)[i]?.steadyViewsPerSecond ?? NaN))));
  const loadAfter = loadavg();
  process.stdout.write(`${lines.join('\n')}\n\n${JSON.stringify(summary)}\nstarted ${startedAt}; ${VIEWS} views per pipeline run, ${ROUNDS} round(s); load average before ${loadBefore}, after ${loadAfter}\n`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(JSON_OUT, `${JSON.stringify({ startedAt, views: VIEWS, rounds: ROUNDS, executor, runs, summary, loadavg: { before: loadBefore, after: loadAfter }, table: lines }, null, 2)}\n`);
} finally {
  await broker?.stop();
  await srv.close();
  sink.closeAllConnections();
  sink.close();
  rmSync(dir, { recursive: true, force: true });
}
