/**
 * The processor on a real broker with three real SDKs per page (issue 13's "today" figure):
 * a backlog of page views of several visitors is posted to the collector first (Snowplow's
 * browser-tracker, posthog-js and Plausible on every page, served from a loopback server as
 * each partner's allowHosts), then one `tagstream run processor` is started and timed until it
 * has executed every one of them, start-up included (Chromium launch, group join, the jar
 * restore), as an operator sees it after a deploy or a restart with lag behind it.
 *
 * Two checkouts can be compared in alternating rounds (A B A B …, each a fresh processor on
 * fresh topics of the same broker), the processor of each tree running its own code:
 *
 *   node --import tsx bench/processor/run.ts                              # this tree, 2 rounds
 *   node --import tsx bench/processor/run.ts --a-dir=/tmp/old --rounds=3  # old tree (A) against this one (B)
 *
 * Options (flag `--name=value` or env `BENCH_NAME`): views 240, visitors 80 (so 3 views each,
 * in order per visitor), rounds 2, a-dir (unset: B only), b-dir (this tree), json path.
 * KAFKA_BROKERS set = that broker instead of a local one. Reports per run: views/s from the
 * processor's spawn to its last executed event, the steady rate between 10% and 90% of the
 * events, the processor tree's CPU per view over the whole run (node and Chromium), and the
 * events and partner outcomes that were not ok (a wrong run is reported, not hidden).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadSettings } from '../../runtime/config.ts';
import { demoPartners } from '../../runtime/demo/partners.ts';
import { loadSdks } from '../../runtime/demo/sdks.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { startLocalBroker, type LocalBroker } from '../../runtime/kafka-local/broker.ts';
import { createTopics } from '../../runtime/topics.ts';
import { RoleProcess, ROOT } from '../../test/e2e/processes.ts';
import { startFixtureServer } from '../../test/executor/helpers.ts';
import { cpuDelta, cpuSnapshot } from '../executor/proc.ts';

function opt(name: string, def: string): string {
  const flag = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (flag) return flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : 'true';
  return process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? def;
}
const VIEWS = Number(opt('views', '240'));
const VISITORS = Number(opt('visitors', '80'));
const ROUNDS = Number(opt('rounds', '2'));
const A_DIR = opt('a-dir', '');
const B_DIR = resolve(opt('b-dir', ROOT));
const JSON_OUT = opt('json', '');
const r1 = (x: number): number => Math.round(x * 10) / 10;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---------------------------------------------------------------- the workload
const srv = await startFixtureServer();
const SDKS = loadSdks();
srv.routes.push((req, res) => {
  const sdk = SDKS.find((x) => x.path === req.url);
  if (!sdk) return false;
  res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'access-control-allow-origin': '*', 'cache-control': 'no-cache' }).end(sdk.body);
  return true;
});
// The demo's three SDK partners, as bench/executor's `three` workload has them.
const partners = demoPartners(srv.origin).filter((p) => p.id !== 'pixel');
const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36';

async function post(collector: string, user: string, n: number): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const res = await request(`${collector}/collect`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'user-agent': UA, 'accept-language': 'fr-FR,fr;q=0.9' },
      body: JSON.stringify({
        userId: user,
        page: { url: `https://shop.example/p/${n}?utm_source=x`, referrer: 'https://www.google.com/', title: `Product ${n}` },
        device: { userAgent: UA, language: 'fr-FR', timezone: 'Europe/Paris' },
        consent: { analytics: true, advertising: false },
        data: { product: n },
      }),
    });
    await res.body.dump();
    if (res.statusCode === 204) return;
    await sleep(200);
  }
  throw new Error(`the collector refused a page view of ${user}`);
}

interface Run {
  side: string;
  round: number;
  views: number;
  /** Spawn of the processor to its last executed event. */
  viewsPerSecond: number;
  steadyViewsPerSecond: number;
  startupSeconds: number;
  cpuMsPerView: number;
  cpuMsPerViewByKind: Record<string, number>;
  notOk: number;
  partnersNotOk: number;
}

async function metricOr0(p: RoleProcess, name: string, labels?: RegExp): Promise<number> {
  try {
    return await p.metric(name, labels);
  } catch {
    return 0; // not listening yet
  }
}

async function runOnce(brokers: string[], side: string, root: string, round: number, dir: string): Promise<Run> {
  const tag = `benchp-${Date.now().toString(36)}`;
  const env: Record<string, string> = {
    KAFKA_BROKERS: brokers.join(','),
    TOPIC_EVENTS: `${tag}.events`,
    TOPIC_COOKIES: `${tag}.cookies`,
    TOPIC_REQUESTS: `${tag}.requests`,
    TOPIC_REQUESTS_DLQ: `${tag}.requests.dlq`,
    TOPIC_EVENTS_DLQ: `${tag}.events.dlq`,
    GROUP_PROCESSOR: `${tag}-processor`,
    PARTNERS_FILE: join(dir, 'partners.json'),
    STATE_STORE: 'lmdb',
    STATE_NO_SYNC: 'true',
    LOG_LEVEL: 'warn',
  };
  const client = createKafkaClient('platformatic', { brokers, clientId: 'bench-setup' });
  const admin = await client.admin();
  await createTopics(admin, loadSettings({ env }));
  await admin.close();
  await client.close();
  // The backlog, through the way in (this tree's collector: the same topic format for both sides).
  const collector = await RoleProcess.create({ name: 'collector', roles: ['collector'], env: { ...env, STATE_DIR: join(dir, `${tag}-c`) } });
  collector.start();
  try {
    await collector.ready(120_000);
    const url = `http://127.0.0.1:${collector.collectorPort}`;
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        // Visitor v's views in order: view i is visitor i % VISITORS's (i / VISITORS)-th.
        for (let i = next++; i < VIEWS; i = next++) await post(url, `${tag}-u${i % VISITORS}`, Math.floor(i / VISITORS));
      }),
    );
  } finally {
    await collector.stop();
  }
  const processor = await RoleProcess.create({ name: `processor-${side}`, root, roles: ['processor'], args: ['--allow-private-network', '--instance-id', `bench-${side}`], env: { ...env, STATE_DIR: join(dir, `${tag}-p`) } });
  const t0 = Date.now();
  processor.start();
  try {
    const before = cpuSnapshot(processor.pid!);
    let readyAt = 0;
    const samples: { t: number; n: number }[] = [];
    const deadline = t0 + 600_000;
    for (;;) {
      const n = await metricOr0(processor, 'tagstream_executor_events_total');
      const now = Date.now();
      if (n > 0 && readyAt === 0) readyAt = now;
      samples.push({ t: now, n });
      if (n >= VIEWS) break;
      if (now > deadline) throw new Error(`${side}: ${n} of ${VIEWS} events executed in 600 s: ${processor.log.slice(-2000)}`);
      await sleep(100); // each poll is a /metrics scrape of the processor: not too often
    }
    const end = samples[samples.length - 1]!.t;
    const after = cpuSnapshot(processor.pid!);
    const at = (f: number): number => samples.find((s) => s.n >= VIEWS * f)!.t;
    const d = cpuDelta(before, after);
    const byKind: Record<string, number> = {};
    // 'other': the processor's node process (the executor driver, the runner, the jar join).
    for (const [k, s] of Object.entries(d.byKind)) byKind[k === 'other' ? 'node' : k] = r1((s / VIEWS) * 1000);
    const notOk = VIEWS - (await processor.metric('tagstream_executor_events_total', /result="ok"/));
    const partnersNotOk = await processor.metric('tagstream_executor_partner_outcomes_total', /status="(?!ok")/);
    return {
      side,
      round,
      views: VIEWS,
      viewsPerSecond: r1(VIEWS / ((end - t0) / 1000)),
      steadyViewsPerSecond: r1((0.8 * VIEWS) / ((at(0.9) - at(0.1)) / 1000)),
      startupSeconds: r1((readyAt - t0) / 1000),
      cpuMsPerView: r1((d.total / VIEWS) * 1000),
      cpuMsPerViewByKind: byKind,
      notOk,
      partnersNotOk,
    };
  } finally {
    await processor.stop();
  }
}

// ---------------------------------------------------------------- main
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const sides = [...(A_DIR ? [{ name: 'A', dir: resolve(A_DIR) }] : []), { name: 'B', dir: B_DIR }];
const dir = mkdtempSync(join(tmpdir(), 'bench-processor-'));
writeFileSync(join(dir, 'partners.json'), JSON.stringify(partners));
let broker: LocalBroker | undefined;
const startedAt = new Date().toISOString();
const loadBefore = loadavg();
try {
  let brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  if (brokers.length === 0) {
    broker = await startLocalBroker();
    brokers = broker.brokers;
  }
  const runs: Run[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    // Alternate which side goes first, so a trend in the machine's load hits both alike.
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) {
      const run = await runOnce(brokers, s.name, s.dir, round, dir);
      runs.push(run);
      process.stderr.write(`${JSON.stringify(run)}\n`);
    }
  }
  const fmt = (xs: number[]): string => `${r1(median(xs))} (${Math.min(...xs)}–${Math.max(...xs)})`;
  const lines = [
    `processor benchmark ${startedAt}: ${VIEWS} page views of ${VISITORS} visitors, three real SDKs per page (Snowplow, PostHog, Plausible), one processor (1 browser × 4 tabs), real broker`,
    ...sides.map((s) => `${s.name}: ${s.dir}`),
    '| side | views/s, spawn to last event (median, spread) | steady views/s (10–90%) | start-up s | CPU ms per view (processor tree) | not ok: events, partner outcomes |',
    '|---|---|---|---|---|---|',
    ...sides.map((s) => {
      const rs = runs.filter((r) => r.side === s.name);
      return `| ${s.name} | ${fmt(rs.map((r) => r.viewsPerSecond))} | ${fmt(rs.map((r) => r.steadyViewsPerSecond))} | ${fmt(rs.map((r) => r.startupSeconds))} | ${fmt(rs.map((r) => r.cpuMsPerView))} | ${rs.reduce((a, r) => a + r.notOk, 0)}, ${rs.reduce((a, r) => a + r.partnersNotOk, 0)} |`;
    }),
  ];
  if (A_DIR) {
    const a = runs.filter((r) => r.side === 'A');
    const b = runs.filter((r) => r.side === 'B');
    lines.push('', `B/A views/s (spawn to last event): ${(median(b.map((r) => r.viewsPerSecond)) / median(a.map((r) => r.viewsPerSecond))).toFixed(2)}×; steady: ${(median(b.map((r) => r.steadyViewsPerSecond)) / median(a.map((r) => r.steadyViewsPerSecond))).toFixed(2)}×; CPU per view A/B: ${(median(a.map((r) => r.cpuMsPerView)) / median(b.map((r) => r.cpuMsPerView))).toFixed(2)}×`);
  }
  lines.push(`load average before ${loadBefore}, after ${loadavg()}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (JSON_OUT) {
    mkdirSync(resolve(JSON_OUT, '..'), { recursive: true });
    writeFileSync(JSON_OUT, `${JSON.stringify({ startedAt, views: VIEWS, visitors: VISITORS, rounds: ROUNDS, sides, runs, table: lines }, null, 2)}\n`);
  }
} finally {
  await broker?.stop();
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
}
