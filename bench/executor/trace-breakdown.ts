/**
 * The renderer main thread's time of a trace (bench/executor/trace.ts), split by what it was
 * (parse / compile / execute / GC / HTML / style+layout+paint / other) and by whose script:
 * each slice's self time (its thread time minus its children's) goes to the category of its own
 * name and to the script of its nearest enclosing slice that names one (FunctionCall,
 * EvaluateScript, v8.compile…: `args.data.url`). Scripts without a URL are the executor's own
 * in-page code (Page.addScriptToEvaluateOnNewDocument): the settle loop and the fake clock, with
 * the partner timer callbacks the clock runs inside it. Plus V8's code-cache use per script.
 */
export interface TraceEvent {
  ph: string;
  pid: number;
  tid: number;
  name: string;
  cat: string;
  ts: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string; data?: Record<string, unknown> } & Record<string, unknown>;
}

const CATEGORIES: [string, RegExp][] = [
  ['GC', /GC|Scavenge|MarkCompact|Sweep|Finaliz/],
  ['parse', /Parse(?!HTML)|PreParse|parseOnBackground/],
  ['compile', /[Cc]ompile|produceCache|consumeCache|Bytecode|Ignition|Maglev|Turbofan|Sparkplug|Deserializ/],
  ['HTML parse', /ParseHTML|HTMLDocumentParser|HTMLTokenizer/],
  ['style/layout/paint', /Layout|Style|Paint|Layeriz|Composit|BeginMainFrame|UpdateLayer|LocalFrameView|Animation|HitTest|IntersectionObserver|Lifecycle/],
  ['execute', /FunctionCall|EvaluateScript|v8\.run|v8\.callFunction|v8\.evaluateModule|V8\.Execute|v8\.execute|TimerFire|EventDispatch|FireAnimationFrame|RunMicrotasks|V8\.Run|Builtin|Callback/],
];

function categoryOf(name: string): string {
  for (const [c, re] of CATEGORIES) if (re.test(name)) return c;
  return 'other (tasks, IPC, loading, DevTools)';
}

function urlOf(e: TraceEvent): string | undefined {
  const a = e.args;
  if (!a) return undefined;
  const d = a.data;
  const u = (d && typeof d.url === 'string' ? d.url : undefined) ?? (typeof a.url === 'string' ? a.url : undefined) ?? (typeof a.fileName === 'string' ? a.fileName : undefined);
  if (u !== undefined) return u;
  // A JS entry without a URL: the executor's injected scripts.
  return /FunctionCall|EvaluateScript|v8\.compile|v8\.run/.test(e.name) ? '' : undefined;
}

function ownerOf(url: string, pageOrigin: string): string {
  if (url === '') return 'executor in-page code (settle loop, clock)';
  const sdk = /\/sdk\/(\w+)\//.exec(url);
  if (sdk) return `${sdk[1]} SDK`;
  if (url.startsWith(pageOrigin)) return 'inline snippets (page)';
  if (/\/tags\//.test(url)) return 'small tags';
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname.slice(0, 30)}`;
  } catch {
    return url.slice(0, 40);
  }
}

export function rendererBreakdown(events: TraceEvent[], procName: Map<number, string>, threadName: Map<string, string>, views: number, pageOrigin = 'https://shop.example'): string {
  const byThread = new Map<string, TraceEvent[]>();
  for (const e of events) {
    if (e.ph !== 'X' || e.tdur === undefined) continue;
    const k = `${e.pid}:${e.tid}`;
    if (!/Renderer/.test(procName.get(e.pid) ?? '') || threadName.get(k) !== 'CrRendererMain') continue;
    const list = byThread.get(k) ?? [];
    list.push(e);
    byThread.set(k, list);
  }
  const cells = new Map<string, number>(); // `${category}\u0000${owner}` -> µs
  const byCat = new Map<string, number>();
  const byOwner = new Map<string, number>();
  const compiles = new Map<string, { n: number; consumed: number; rejected: number; bytes: number; produced: number; options: Map<string, number> }>();
  for (const list of byThread.values()) {
    list.sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0));
    const stack: { e: TraceEvent; end: number; owner: string | undefined; childT: number }[] = [];
    const close = (f: { e: TraceEvent; owner: string | undefined; childT: number }): void => {
      const self = Math.max(0, (f.e.tdur ?? 0) - f.childT);
      const cat = categoryOf(f.e.name);
      const owner = f.owner === undefined ? 'no script' : ownerOf(f.owner, pageOrigin);
      const key = `${cat}\u0000${owner}`;
      cells.set(key, (cells.get(key) ?? 0) + self);
      byCat.set(cat, (byCat.get(cat) ?? 0) + self);
      byOwner.set(owner, (byOwner.get(owner) ?? 0) + self);
    };
    for (const e of list) {
      while (stack.length > 0 && (stack[stack.length - 1] as { end: number }).end <= e.ts) close(stack.pop() as (typeof stack)[number]);
      const parent = stack[stack.length - 1];
      if (parent) parent.childT += e.tdur ?? 0;
      const own = urlOf(e);
      stack.push({ e, end: e.ts + (e.dur ?? 0), owner: own ?? parent?.owner, childT: 0 });
      if (e.name === 'v8.compile' || e.name === 'v8.produceCache' || e.name === 'v8.compileModule') {
        const url = ownerOf(own ?? '', pageOrigin);
        const c = compiles.get(url) ?? { n: 0, consumed: 0, rejected: 0, bytes: 0, produced: 0, options: new Map() };
        const d = (e.args?.data ?? e.args ?? {}) as Record<string, unknown>;
        if (e.name === 'v8.produceCache') c.produced++;
        else {
          c.n++;
          const opt = String(d.cacheConsumeOptions ?? d.compileOptions ?? 'none');
          c.options.set(opt, (c.options.get(opt) ?? 0) + 1);
          if (typeof d.consumedCacheSize === 'number' && d.consumedCacheSize > 0) {
            c.consumed++;
            c.bytes += d.consumedCacheSize;
          }
          if (d.cacheRejected === true) c.rejected++;
        }
        compiles.set(url, c);
      }
    }
    while (stack.length > 0) close(stack.pop() as (typeof stack)[number]);
  }
  const ms = (us: number): string => (us / 1000 / views).toFixed(2);
  const cats = [...byCat].sort((a, b) => b[1] - a[1]).map(([c]) => c);
  const owners = [...byOwner].sort((a, b) => b[1] - a[1]).map(([o]) => o);
  const total = [...byCat.values()].reduce((a, b) => a + b, 0);
  const lines = [`renderer main thread, self time (CPU ms per view, ${views} views): ${ms(total)} in all`, `| script \\ what | ${cats.join(' | ')} | all |`, `|---|${cats.map(() => '---|').join('')}---|`];
  for (const o of owners) lines.push(`| ${o} | ${cats.map((c) => ms(cells.get(`${c}\u0000${o}`) ?? 0)).join(' | ')} | ${ms(byOwner.get(o) ?? 0)} |`);
  lines.push(`| all | ${cats.map((c) => ms(byCat.get(c) ?? 0)).join(' | ')} | ${ms(total)} |`);
  lines.push('', 'V8 compiles of scripts (v8.compile / v8.compileModule) per view, and the code cache:');
  for (const [url, c] of compiles) {
    const opts = [...c.options].map(([k, v]) => `${k} ${(v / views).toFixed(2)}`).join(', ');
    lines.push(`  ${url}: ${(c.n / views).toFixed(2)} compiles (${opts}); cache consumed ${(c.consumed / views).toFixed(2)} (${Math.round(c.bytes / Math.max(1, c.consumed))} B each), rejected ${(c.rejected / views).toFixed(2)}; produced ${(c.produced / views).toFixed(2)}`);
  }
  return lines.join('\n');
}
