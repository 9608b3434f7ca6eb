/**
 * Executor benchmark (docs/bench-executor.md): the same page-view workload through
 *   (a) naive   — the original design: a fresh Chromium (Debian's /usr/bin/chromium, Puppeteer
 *                 launch, high-level Page with request interception) per page view; goto a page
 *                 served from 127.0.0.1 with the tags, wait for network idle and for the waiting
 *                 tag's send in real time, close the browser;
 *   (b) executor — processors/executor at its best settings (headless shell, warm pool, fake
 *                 timers: the 2 s wait costs no wall time), every feature on.
 * Workloads: `small` (three small tags: a cookie id pixel, a localStorage id fetch, an inline tag
 * that sends after setTimeout 2000), `sdk` (posthog-js 1.449.2 array.js, 380 KB, with
 * PostHog's own snippet) and `three` (three real SDKs from npm on one page: Snowplow's
 * browser-tracker UMD bundle, posthog-js array.js, Plausible's ES module, as the demo partners). Scripts come from a local server on 127.0.0.1 (allowPrivateNetwork);
 * nothing else is reached: tag sends are captured.
 *
 * Prints per run: page views/s, CPU-seconds per page view (whole process tree: this node process,
 * the fixture server in it, every Chromium process, and exited children through cutime/cstime),
 * the CPU split by process kind, p50/p99 latency, peak PSS of the tree, and executor/naive
 * throughput ratio. Then a latency run of the executor at half its measured max throughput
 * (open loop: arrivals at a fixed rate, latency from the scheduled arrival, queueing included).
 *
 *   node --import tsx bench/executor/run.ts                          # default, bounded (~4 min)
 *   node --import tsx bench/executor/run.ts --variants=small --naive-n=10 --exec-n=300
 *   node --import tsx bench/executor/run.ts --soak                   # 10,000 views, PSS every 500
 *   node --import tsx bench/executor/run.ts --modes=executor --browsers=2 --pages=2
 *
 * Options (flag `--name=value` or env `BENCH_NAME`):
 *   variants      small,sdk,three       modes           naive,executor
 *   naive-n       20 (views per naive variant)          naive-conc    4
 *   exec-n        600 (small; sdk runs half)            exec-conc     browsers × pages
 *   browsers      1                     pages           4 (tabs per browser; best measured: 1 x 4)
 *   headless      shell|new (shell)     lat-n           400 (views in the half-rate run; 0 = skip)
 *   soak          (flag) soak-n 10000, soak-every 500: executor only, small workload
 *   extra         extra Chromium flags for the executor, space-separated ('|'-separated when a
 *                 value has spaces); a --disable-features or --js-flags given here replaces the
 *                 executor's own: repeat it in full
 *   trusted-close (flag) the executor ends each visit as a closed tab (ExecutorOptions.trustedClose)
 *   in-page-capture true|false (true): ExecutorOptions.inPageCapture
 *   json          path: also write the results as JSON
 */
import { readFileSync, writeFileSync } from 'node:fs';
import puppeteer, { type HTTPRequest } from 'puppeteer-core';
import { createExecutor, type ExecutorOptions, type PartnerConfigInput } from '../../processors/executor/index.ts';
import { CHROME_UA, makeEvent, startFixtureServer, tagPartner, type FixtureServer } from '../../test/executor/helpers.ts';
import { posthogSnippet } from '../../test/executor/posthog-snippet.ts';
import { demoPartners } from '../../runtime/demo/partners.ts';
import { loadSdks } from '../../runtime/demo/sdks.ts';
import { createRootLogger } from '../../core/log.ts';
import { cpuDelta, cpuSnapshot, pssSampler, treePssMb } from './proc.ts';

// ---------------------------------------------------------------- options
function opt(name: string, def: string): string {
  const flag = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (flag) return flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : 'true';
  const env = process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  return env ?? def;
}
const num = (name: string, def: number) => Number(opt(name, String(def)));

const soak = opt('soak', '') === 'true' || opt('soak', '') === '1';
const variants = opt('variants', soak ? 'small' : 'small,sdk,three').split(',').filter(Boolean) as Variant[];
const modes = opt('modes', soak ? 'executor' : 'naive,executor').split(',').filter(Boolean);
const naiveN = num('naive-n', 20);
const naiveConc = num('naive-conc', 4);
const execN = num('exec-n', 600);
const browsers = num('browsers', 1);
const pages = num('pages', 4);
const execConc = num('exec-conc', browsers * pages);
const headless = opt('headless', 'shell') as 'shell' | 'new';
const latN = num('lat-n', soak ? 0 : 400);
const soakN = num('soak-n', 10_000);
const soakEvery = num('soak-every', 500);
const jsonOut = opt('json', '');
const trustedClose = opt('trusted-close', '') === 'true' || opt('trusted-close', '') === '1';
const inPageCapture = opt('in-page-capture', 'true') !== 'false';
// Space-separated; '|'-separated instead when a flag's value has spaces (--js-flags=--a --b).
const extraRaw = opt('extra', '');
const extraArgs = extraRaw.split(extraRaw.includes('|') ? '|' : ' ').filter(Boolean);

const CHROMIUM = '/usr/bin/chromium';
const REQUIRED_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

type Variant = 'small' | 'sdk' | 'three';

// ---------------------------------------------------------------- workload
const srv: FixtureServer = await startFixtureServer();
const SDK = readFileSync(new URL('../../test/executor/fixtures/vendor/posthog-array.js', import.meta.url));
const SMALL_WAIT_TAG = "<script>setTimeout(function(){ new Image().src='https://collect.t.example/wait2s' }, 2000)</script>";

// The three real SDKs of the demo (npm devDependencies: @snowplow/browser-tracker's UMD bundle,
// posthog-js array.js, @plausible-analytics/tracker's ES module), each as a site owner pastes it,
// loaded from this server as allowHosts; their sends go to /c/<partner>/ (captureHosts).
const SDKS = loadSdks();
const THREE = demoPartners(srv.origin).filter((p) => p.id !== 'pixel');

interface Workload {
  partners: PartnerConfigInput[];
  html: string;
  expected: number;
  naiveExpected: number;
  /** Captured requests each partner must have sent for a view to count as right. */
  perPartner?: Record<string, number>;
}

const workloads: Record<Variant, Workload> = {
  small: {
    partners: [
      tagPartner(srv, 'a', 'cookie-id'),
      tagPartner(srv, 'b', 'ls-id'),
      { id: 'c', html: SMALL_WAIT_TAG, captureHosts: ['collect.t.example'] },
    ],
    html:
      `<script src="${srv.origin}/tags/cookie-id.js"></script>\n` +
      `<script src="${srv.origin}/tags/ls-id.js"></script>\n${SMALL_WAIT_TAG}`,
    expected: 3,
    naiveExpected: 3,
  },
  sdk: {
    partners: [{ id: 'posthog', html: posthogSnippet(srv.origin), allowHosts: [`${srv.origin}/static/`], captureHosts: [srv.host] }],
    html: posthogSnippet(srv.origin),
    // flags + $pageview batch + … ; the executor also captures the $pageleave beacon of pagehide
    expected: 4,
    naiveExpected: 3,
  },
  three: {
    partners: THREE,
    html: THREE.map((p) => p.html).join('\n'),
    // snowplow: the page view POST; posthog: its config script and config, flags, $pageview batch
    // (+ the $pageleave beacon of pagehide); plausible: pageview (+ engagement on pagehide)
    expected: 7,
    naiveExpected: 5,
    perPartner: { snowplow: 1, posthog: 4, plausible: 1 },
  },
};

srv.routes.push((req, res) => {
  if (req.url === '/static/array.js') {
    res.writeHead(200, { 'content-type': 'application/javascript', 'cache-control': 'no-cache' }).end(SDK);
    return true;
  }
  const sdk = SDKS.find((x) => x.path === req.url);
  if (sdk) {
    res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'access-control-allow-origin': '*', 'cache-control': 'no-cache' }).end(sdk.body);
    return true;
  }
  const m = /^\/page\/(small|sdk|three)\.html/.exec(req.url ?? '');
  if (m) {
    const w = workloads[m[1] as Variant];
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>Product 42</title></head><body>\n${w.html}\n</body></html>`);
    return true;
  }
  return false;
});

// ---------------------------------------------------------------- measurement helpers
export interface RunResult {
  name: string;
  views: number;
  wrong: number;
  concurrency: number | string;
  seconds: number;
  viewsPerSecond: number;
  cpuSecondsPerView: number;
  cpuMsPerViewByKind: Record<string, number>;
  p50ms: number;
  p99ms: number;
  maxms: number;
  peakPssMb: number;
}

function pct(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

async function measure(
  name: string,
  views: number,
  concurrency: number | string,
  body: (latencies: number[], markWrong: () => void) => Promise<void>,
): Promise<RunResult> {
  const latencies: number[] = [];
  let wrong = 0;
  const pss = pssSampler(1000);
  const before = cpuSnapshot();
  const t0 = Date.now();
  await body(latencies, () => wrong++);
  const seconds = (Date.now() - t0) / 1000;
  const after = cpuSnapshot();
  const peakPssMb = pss.stop();
  const cpu = cpuDelta(before, after);
  // The benchmark's own PSS sampling is not the workload's cost.
  cpu.total -= pss.overheadSeconds();
  cpu.byKind.node = (cpu.byKind.node ?? 0) - pss.overheadSeconds();
  latencies.sort((a, b) => a - b);
  const byKind: Record<string, number> = {};
  for (const [k, v] of Object.entries(cpu.byKind)) if (Math.abs(v) > 0) byKind[k] = r1((v / views) * 1000);
  const res: RunResult = {
    name,
    views,
    wrong,
    concurrency,
    seconds: r1(seconds),
    viewsPerSecond: r1(views / seconds),
    cpuSecondsPerView: r3(cpu.total / views),
    cpuMsPerViewByKind: byKind,
    p50ms: pct(latencies, 0.5),
    p99ms: pct(latencies, 0.99),
    maxms: latencies[latencies.length - 1] ?? NaN,
    peakPssMb: Math.round(peakPssMb),
  };
  process.stderr.write(`${JSON.stringify(res)}\n`);
  return res;
}

async function closedLoop(n: number, conc: number, one: () => Promise<boolean>, latencies: number[], markWrong: () => void) {
  let started = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (started < n) {
        started++;
        const s = performance.now();
        const ok = await one();
        latencies.push(Math.round(performance.now() - s));
        if (!ok) markWrong();
      }
    }),
  );
}

// ---------------------------------------------------------------- (a) naive
function naiveView(v: Variant): () => Promise<boolean> {
  const w = workloads[v];
  return async () => {
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: REQUIRED_ARGS,
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
    try {
      const page = await browser.newPage();
      // The visitor of makeEvent()
      await page.setUserAgent({ userAgent: CHROME_UA });
      await page.setViewport({ width: 1280, height: 720 });
      await page.emulateTimezone('Europe/Paris');
      const captured: string[] = [];
      await page.setRequestInterception(true);
      page.on('request', (req: HTTPRequest) => {
        const u = new URL(req.url());
        // Scripts and the page load for real from 127.0.0.1; every tag send is captured and
        // answered (never sent), as any correct implementation must.
        const load = u.hostname === '127.0.0.1' && !u.pathname.startsWith('/c/') && (req.resourceType() === 'document' || req.resourceType() === 'script');
        if (load) {
          void req.continue();
          return;
        }
        captured.push(`${req.method()} ${req.url()}`);
        const type = req.resourceType();
        const cors = { 'access-control-allow-origin': srv.origin, 'access-control-allow-credentials': 'true' };
        if (type === 'image') {
          void req.respond({ status: 200, contentType: 'image/gif', headers: cors, body: Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64') });
        } else if (type === 'fetch' || type === 'xhr') {
          void req.respond({ status: 200, contentType: 'application/json', headers: cors, body: '{}' });
        } else {
          void req.respond({ status: 204, headers: cors, body: '' });
        }
      });
      await page.goto(`${srv.origin}/page/${v}.html`, { waitUntil: 'networkidle0', timeout: 30_000 });
      // Page time is real time here: the waiting tag needs its 2 s; poll until everything expected
      // was sent (bounded).
      const until = Date.now() + 5000;
      while (captured.length < w.naiveExpected && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await page.cookies(); // a jar must be read out
      await page.evaluate(() => JSON.stringify(localStorage));
      return captured.length >= w.naiveExpected;
    } finally {
      await browser.close();
    }
  };
}

async function runNaive(v: Variant): Promise<RunResult> {
  const one = naiveView(v);
  await one(); // warm the page cache of the binary, fixture server
  return measure(`naive/${v}`, naiveN, naiveConc, (lat, wrong) => closedLoop(naiveN, naiveConc, one, lat, wrong));
}

// ---------------------------------------------------------------- (b) executor
type Exec = Awaited<ReturnType<typeof createExecutor>>;

function execView(ex: Exec, v: Variant): () => Promise<boolean> {
  const w = workloads[v];
  return async () => {
    const r = await ex.execute(makeEvent(), null, w.partners);
    const ok = r.requests.length >= w.expected && r.trackers.every((t) => t.status === 'ok');
    if (!ok || !w.perPartner) return ok;
    return Object.entries(w.perPartner).every(([p, n]) => r.requests.filter((q) => q.partner === p).length >= n);
  };
}

async function startExecutor(): Promise<Exec> {
  const opts: ExecutorOptions = {
    browsers,
    pagesPerBrowser: pages,
    headless,
    allowPrivateNetwork: true,
    extraArgs,
    trustedClose,
    inPageCapture,
    logger: createRootLogger({ level: process.env.LOG_LEVEL ?? 'warn' }).child({ component: 'executor' }),
  };
  return createExecutor(opts);
}

async function openLoop(
  ex: Exec,
  v: Variant,
  n: number,
  rate: number,
  latencies: number[],
  markWrong: () => void,
): Promise<void> {
  const one = execView(ex, v);
  const t0 = performance.now();
  const interval = 1000 / rate;
  const running: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    running.push(
      one().then(
        (ok) => {
          latencies.push(Math.round(performance.now() - due));
          if (!ok) markWrong();
        },
        () => {
          latencies.push(Math.round(performance.now() - due));
          markWrong();
        },
      ),
    );
  }
  await Promise.all(running);
}

async function runExecutor(v: Variant, max: RunResult[], lat: RunResult[]): Promise<void> {
  const ex = await startExecutor();
  try {
    const one = execView(ex, v);
    for (let i = 0; i < 20; i++) await one(); // warm-up: script cache, compiled code, tabs
    const n = v === 'small' ? execN : Math.max(50, Math.round(execN / 2));
    const m = await measure(`executor/${v}`, n, execConc, (l, wrong) => closedLoop(n, execConc, one, l, wrong));
    max.push(m);
    if (latN > 0) {
      const rate = m.viewsPerSecond / 2;
      const ln = v === 'small' ? latN : Math.max(50, Math.round(latN / 2));
      lat.push(await measure(`executor/${v} @ ${r1(rate)}/s (half max)`, ln, `open loop ${r1(rate)}/s`, (l, wrong) => openLoop(ex, v, ln, rate, l, wrong)));
    }
  } finally {
    await ex.close();
  }
}

async function runSoak(): Promise<{ views: number; wrong: number; samples: { views: number; pssMb: number; cpuMsPerView: number }[] }> {
  const ex = await startExecutor();
  const one = execView(ex, 'small');
  for (let i = 0; i < 20; i++) await one();
  const samples: { views: number; pssMb: number; cpuMsPerView: number }[] = [];
  let done = 0;
  let wrong = 0;
  let started = 0;
  let snap = cpuSnapshot();
  const first = { views: 0, pssMb: Math.round(treePssMb()), cpuMsPerView: 0 };
  samples.push(first);
  process.stderr.write(`${JSON.stringify(first)}\n`);
  await Promise.all(
    Array.from({ length: execConc }, async () => {
      while (started < soakN) {
        started++;
        if (!(await one().catch(() => false))) wrong++;
        done++;
        if (done % soakEvery === 0) {
          const now = cpuSnapshot();
          const s = { views: done, pssMb: Math.round(treePssMb()), cpuMsPerView: r1((cpuDelta(snap, now).total / soakEvery) * 1000) };
          snap = now;
          samples.push(s);
          process.stderr.write(`${JSON.stringify({ ...s, wrong, stats: ex.stats() })}\n`);
        }
      }
    }),
  );
  await ex.close();
  return { views: done, wrong, samples };
}

// ---------------------------------------------------------------- main
function table(rows: RunResult[]): string {
  const head = '| run | views (wrong) | conc. | views/s | CPU s/view | p50 / p99 ms | peak PSS MB | CPU ms/view by process |';
  const sep = '|---|---|---|---|---|---|---|---|';
  const lines = rows.map((r) => {
    const kinds = Object.entries(r.cpuMsPerViewByKind)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    return `| ${r.name} | ${r.views} (${r.wrong}) | ${r.concurrency} | ${r.viewsPerSecond} | ${r.cpuSecondsPerView} | ${r.p50ms} / ${r.p99ms} | ${r.peakPssMb} | ${kinds} |`;
  });
  return [head, sep, ...lines].join('\n');
}

const startedAt = new Date().toISOString();
const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const out: Record<string, unknown> = {
  startedAt,
  node: process.version,
  options: { variants, modes, naiveN, naiveConc, execN, execConc, browsers, pages, headless, latN, extraArgs, trustedClose, inPageCapture },
};
try {
  if (soak) {
    const s = await runSoak();
    const pss = s.samples.slice(1).map((x) => x.pssMb);
    const summary = {
      views: s.views,
      wrong: s.wrong,
      pssMbMin: Math.min(...pss),
      pssMbMax: Math.max(...pss),
      pssMbFirst: pss[0],
      pssMbLast: pss[pss.length - 1],
    };
    out.soak = { ...summary, samples: s.samples };
    process.stdout.write(`soak: ${JSON.stringify(summary)}\n`);
    process.stdout.write(`| views | ${s.samples.map((x) => x.views).join(' | ')} |\n| PSS MB | ${s.samples.map((x) => x.pssMb).join(' | ')} |\n`);
  } else {
    const naive: RunResult[] = [];
    const max: RunResult[] = [];
    const lat: RunResult[] = [];
    for (const v of variants) {
      if (modes.includes('naive')) naive.push(await runNaive(v));
      if (modes.includes('executor')) await runExecutor(v, max, lat);
    }
    const rows = [...naive, ...max, ...lat];
    process.stdout.write(`${table(rows)}\n\n`);
    const ratios: Record<string, { throughput: number; cpuPerView: number }> = {};
    for (const v of variants) {
      const a = naive.find((r) => r.name === `naive/${v}`);
      const b = max.find((r) => r.name === `executor/${v}`);
      if (a && b) {
        ratios[v] = { throughput: r1(b.viewsPerSecond / a.viewsPerSecond), cpuPerView: r3(b.cpuSecondsPerView / a.cpuSecondsPerView) };
        process.stdout.write(
          `${v}: executor/naive throughput ${ratios[v].throughput}x, CPU per view ${ratios[v].cpuPerView}x\n`,
        );
      }
    }
    out.runs = rows;
    out.ratios = ratios;
  }
} finally {
  await srv.close();
}
const loadAfter = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
out.loadavg = { before: loadBefore, after: loadAfter };
process.stdout.write(`started ${startedAt}; load average before ${loadBefore}, after ${loadAfter}\n`);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(out, null, 2)}\n`);
