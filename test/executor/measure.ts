/**
 * Quick per-view cost measurement of the executor (not the benchmark: bench/executor compares it
 * with the naive approach). Runs N page views with PAGES concurrent tabs on one browser and prints
 * views/s, CPU ms per view for the whole process tree (this node process + Chromium's), split by
 * process kind, and p50/p99 latency.
 *
 *   node --import tsx test/executor/measure.ts                      # 3 small tags, one waits 2 s
 *   SDK=1 node --import tsx test/executor/measure.ts                # posthog-js array.js instead
 *   EMPTY=1 node --import tsx test/executor/measure.ts              # the pipeline alone (one inline pixel)
 *   HEADLESS=new PAGES=2 N=300 EXTRA='--flag' node --import tsx test/executor/measure.ts
 *   CLOCK=cdp node --import tsx test/executor/measure.ts            # CDP virtual time instead of fake timers
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createExecutor, type PartnerConfigInput } from '../../processors/executor/index.ts';
import { makeEvent, startFixtureServer, tagPartner } from './helpers.ts';
import { posthogSnippet } from './posthog-snippet.ts';

const CLK_TCK = 100;

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // the process ended meanwhile
  }
}

function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = readOr(`/proc/${d}/stat`);
    if (!st) continue;
    const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(d));
    children.set(ppid, list);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i] as number) ?? []));
  return out;
}

/** utime + stime + cutime + cstime in seconds. */
function cpuSeconds(pid: number): number {
  const st = readOr(`/proc/${pid}/stat`);
  if (!st) return 0;
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

function kindOf(pid: number): string {
  if (pid === process.pid) return 'node';
  const cmd = readOr(`/proc/${pid}/cmdline`);
  const type = /--type=([a-z-]+)/.exec(cmd)?.[1];
  return type ?? (/chrom/.test(cmd) ? 'browser' : 'other');
}

const srv = await startFixtureServer();
const headless = (process.env.HEADLESS ?? 'shell') as 'shell' | 'new';
const pages = Number(process.env.PAGES ?? 2);
const N = Number(process.env.N ?? 300);
const ex = await createExecutor({
  browsers: 1,
  pagesPerBrowser: pages,
  allowPrivateNetwork: true,
  headless,
  clock: process.env.CLOCK === 'cdp' ? 'cdp-virtual-time' : 'fake-timers',
  extraArgs: (process.env.EXTRA ?? '').split(' ').filter(Boolean),
});
let partners: PartnerConfigInput[] = [
  tagPartner(srv, 'a', 'cookie-id'),
  tagPartner(srv, 'b', 'ls-id'),
  { id: 'c', html: "<script>setTimeout(function(){ new Image().src='https://collect.t.example/wait2s' }, 2000)</script>" },
];
let expected = 3;
if (process.env.EMPTY) {
  // The pipeline's own cost: one inline partner that sends one pixel.
  partners = [{ id: 'e', html: "<script>new Image().src='https://collect.t.example/e'</script>" }];
  expected = 1;
}
if (process.env.SDK) {
  const sdk = readFileSync(new URL('./fixtures/vendor/posthog-array.js', import.meta.url));
  srv.routes.push((req, res) => {
    if (req.url !== '/static/array.js') return false;
    res.writeHead(200, { 'content-type': 'application/javascript' }).end(sdk);
    return true;
  });
  partners = [{ id: 'posthog', html: posthogSnippet(srv.origin), allowHosts: [`${srv.origin}/static/`], captureHosts: [srv.host] }];
  expected = 4;
}
for (let i = 0; i < 20; i++) await ex.execute(makeEvent(), null, partners); // warm-up
const before = new Map(processTree(process.pid).map((p) => [p, cpuSeconds(p)]));
const t0 = Date.now();
const latencies: number[] = [];
let started = 0;
let wrong = 0;
await Promise.all(
  Array.from({ length: pages }, async () => {
    while (started < N) {
      started++;
      const s = Date.now();
      const r = await ex.execute(makeEvent(), null, partners);
      latencies.push(Date.now() - s);
      if (r.requests.length < expected || r.trackers.some((t) => t.status !== 'ok')) wrong++;
    }
  }),
);
const wall = (Date.now() - t0) / 1000;
const byKind: Record<string, number> = {};
let total = 0;
for (const p of processTree(process.pid)) {
  const used = cpuSeconds(p) - (before.get(p) ?? 0);
  total += used;
  const k = kindOf(p);
  byKind[k] = (byKind[k] ?? 0) + used;
}
for (const k of Object.keys(byKind)) byKind[k] = Math.round(((byKind[k] ?? 0) / N) * 10000) / 10;
latencies.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    headless,
    clock: process.env.CLOCK === 'cdp' ? 'cdp-virtual-time' : 'fake-timers',
    pages,
    views: N,
    wrong,
    viewsPerSecond: Math.round((N / wall) * 10) / 10,
    cpuMsPerView: Math.round((total / N) * 10000) / 10,
    cpuMsPerViewByProcess: byKind,
    p50ms: latencies[Math.floor(N * 0.5)],
    p99ms: latencies[Math.floor(N * 0.99)],
  })}\n`,
);
await ex.close();
await srv.close();
