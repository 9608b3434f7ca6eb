/**
 * Where the Chromium CPU of a page view goes: runs a workload through the executor
 * with Chromium's startup tracing on, then sums the thread time (`tdur`, CPU) of trace slices
 * by process kind, thread and slice name, per page view; and splits the renderer main thread's
 * time (self time of each slice) into parse / compile / execute / GC / HTML / style+layout+paint /
 * other, by whose script it was (partner SDK by URL, inline snippets, the executor's in-page
 * code: its settle loop and hooks), with V8's code-cache use per script (v8.compile events).
 *
 *   node --import tsx bench/executor/trace.ts                 # small-tag workload
 *   TRACE_VARIANT=three node --import tsx bench/executor/trace.ts   # the three real SDKs
 *   TRACE_EXTRA='--some-flag' node --import tsx bench/executor/trace.ts   # with extra Chromium flags
 *   TRACE_N=150 TRACE_CATS=toplevel,blink,v8 TRACE_TOP=40 node --import tsx bench/executor/trace.ts
 *
 * The trace itself costs CPU: compare shares, not absolute numbers, with bench/executor/run.ts.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createExecutor, type PartnerConfigInput } from '../../processors/executor/index.ts';
import { createRootLogger } from '../../core/log.ts';
import { makeEvent, startFixtureServer, tagPartner } from '../../test/executor/helpers.ts';
import { demoPartners } from '../../runtime/demo/partners.ts';
import { loadSdks } from '../../runtime/demo/sdks.ts';
import { rendererBreakdown, type TraceEvent } from './trace-breakdown.ts';

const N = Number(process.env.TRACE_N ?? 120);
const VARIANT = process.env.TRACE_VARIANT ?? 'small';
const CATS =
  process.env.TRACE_CATS ??
  'toplevel,blink,v8,v8.execute,loading,navigation,devtools,devtools.timeline,disabled-by-default-devtools.timeline,disabled-by-default-v8.compile';
const TOP = Number(process.env.TRACE_TOP ?? 30);
const dir = mkdtempSync(join(tmpdir(), 'exec-trace-'));
const file = join(dir, 'trace.json');

const srv = await startFixtureServer();
const SDKS = loadSdks();
srv.routes.push((req, res) => {
  const sdk = SDKS.find((x) => x.path === req.url);
  if (!sdk) return false;
  res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'access-control-allow-origin': '*', 'cache-control': 'no-cache' }).end(sdk.body);
  return true;
});
const partners: PartnerConfigInput[] =
  VARIANT === 'three'
    ? demoPartners(srv.origin).filter((p) => p.id !== 'pixel')
    : [
        tagPartner(srv, 'a', 'cookie-id'),
        tagPartner(srv, 'b', 'ls-id'),
        { id: 'c', html: "<script>setTimeout(function(){ new Image().src='https://collect.t.example/wait2s' }, 2000)</script>", captureHosts: ['collect.t.example'] },
      ];
const ex = await createExecutor({
  browsers: 1,
  pagesPerBrowser: 2,
  allowPrivateNetwork: true,
  logger: createRootLogger({ level: process.env.LOG_LEVEL ?? 'warn' }).child({ component: 'executor' }),
  extraArgs: [...(process.env.TRACE_EXTRA ?? '').split(' ').filter(Boolean), `--trace-startup=${CATS}`, `--trace-startup-file=${file}`, '--trace-startup-duration=0', '--trace-startup-format=json'],
});
for (let i = 0; i < 10; i++) await ex.execute(makeEvent(), null, partners);
let started = 0;
await Promise.all(
  [0, 1].map(async () => {
    while (started < N) {
      started++;
      await ex.execute(makeEvent(), null, partners);
    }
  }),
);
await ex.close(); // the trace is written on exit
await srv.close();
for (let i = 0; i < 50 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));

const raw = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: TraceEvent[] } | TraceEvent[];
const events = Array.isArray(raw) ? raw : raw.traceEvents;
const procName = new Map<number, string>();
const threadName = new Map<string, string>();
for (const e of events) {
  if (e.ph === 'M' && e.name === 'process_name') procName.set(e.pid, e.args?.name ?? '?');
  if (e.ph === 'M' && e.name === 'thread_name') threadName.set(`${e.pid}:${e.tid}`, e.args?.name ?? '?');
}
const views = N + 10;
// Only top-level complete slices of each thread (no double counting of nested ones): a slice
// is top-level when it does not start inside the previous top-level slice of its thread.
const byThread = new Map<string, TraceEvent[]>();
for (const e of events) {
  if (e.ph !== 'X' || e.tdur === undefined) continue;
  const k = `${e.pid}:${e.tid}`;
  const list = byThread.get(k) ?? [];
  list.push(e);
  byThread.set(k, list);
}
const top = new Map<string, number>();
const nested = new Map<string, number>();
const perThread = new Map<string, number>();
for (const [k, list] of byThread) {
  list.sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0));
  let end = -1;
  const pid = Number(k.split(':')[0]);
  const label = `${procName.get(pid) ?? pid} / ${threadName.get(k) ?? k.split(':')[1]}`;
  for (const e of list) {
    const key = `${label} / ${e.name}`;
    if (e.ts >= end) {
      end = e.ts + (e.dur ?? 0);
      top.set(key, (top.get(key) ?? 0) + (e.tdur ?? 0));
      perThread.set(label, (perThread.get(label) ?? 0) + (e.tdur ?? 0));
    } else {
      nested.set(key, (nested.get(key) ?? 0) + (e.tdur ?? 0));
    }
  }
}
const show = (title: string, m: Map<string, number>, n: number) => {
  process.stdout.write(`\n${title} (CPU ms per view, ${views} views)\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    process.stdout.write(`${(v / 1000 / views).toFixed(2).padStart(8)}  ${k}\n`);
  }
};
show('threads (top-level slices)', perThread, 20);
show('top-level slices', top, TOP);
show('nested slices (inclusive)', nested, TOP);
process.stdout.write(`\n${rendererBreakdown(events, procName, threadName, views)}\n`);
process.stdout.write(`\ntrace: ${file}\n`);
