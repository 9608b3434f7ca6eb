/**
 * Process-tree accounting from /proc for the executor benchmark: CPU seconds (utime + stime of
 * every live process of the tree, plus cutime + cstime, i.e. what exited children used once
 * reaped: fresh browsers of the naive approach, recycled renderers) and PSS (smaps_rollup).
 */
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100;

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // the process ended meanwhile
  }
}

/** `root` and all its descendants. */
export function processTree(root: number = process.pid): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
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

/** utime + stime + cutime + cstime in seconds (0 when gone). */
export function cpuSeconds(pid: number): number {
  const st = readOr(`/proc/${pid}/stat`);
  if (!st) return 0;
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** node, browser, renderer, gpu-process, utility (network service, storage), zygote, … */
export function kindOf(pid: number): string {
  if (pid === process.pid) return 'node';
  const cmd = readOr(`/proc/${pid}/cmdline`).replace(/\0/g, ' ');
  const type = /--type=([a-z-]+)/.exec(cmd)?.[1];
  if (type === 'utility') {
    const sub = /--utility-sub-type=([\w.]+)/.exec(cmd)?.[1] ?? '';
    return sub.includes('network') ? 'network' : sub.includes('storage') ? 'storage' : 'utility';
  }
  return type ?? (/chrom/.test(cmd) ? 'browser' : 'other');
}

export interface CpuSnapshot {
  at: number;
  perPid: Map<number, { cpu: number; kind: string }>;
}

export function cpuSnapshot(root: number = process.pid): CpuSnapshot {
  const perPid = new Map<number, { cpu: number; kind: string }>();
  for (const p of processTree(root)) perPid.set(p, { cpu: cpuSeconds(p), kind: kindOf(p) });
  return { at: Date.now(), perPid };
}

/**
 * CPU seconds used between two snapshots, total and by process kind. A process gone by `after`
 * counts 0 there: its whole use reappears in its parent's cutime (exact, as long as the parent
 * is in the tree and reaped it).
 */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  let total = 0;
  const pids = new Set([...before.perPid.keys(), ...after.perPid.keys()]);
  for (const p of pids) {
    const a = after.perPid.get(p);
    const b = before.perPid.get(p);
    const used = (a?.cpu ?? 0) - (b?.cpu ?? 0);
    total += used;
    // A zygote's own work is negligible: its CPU is that of the renderers it reaped (tabs
    // replaced after maxUsesPerPage, crashed renderers).
    let k = a?.kind ?? b?.kind ?? 'other';
    if (k === 'zygote') k = 'renderer';
    byKind[k] = (byKind[k] ?? 0) + used;
  }
  return { total, byKind };
}

/** PSS of the whole tree in MB. */
export function treePssMb(root: number = process.pid): number {
  let kb = 0;
  for (const p of processTree(root)) {
    const m = /^Pss:\s+(\d+) kB/m.exec(readOr(`/proc/${p}/smaps_rollup`));
    if (m) kb += Number(m[1]);
  }
  return kb / 1024;
}

/**
 * Samples the tree's PSS every `everyMs` until stopped; `peak` is the largest sample. Reading
 * smaps_rollup is not free (the kernel walks Chromium's page tables: ~30 ms of this process's
 * CPU per sample of a 7-process tree): `overheadSeconds` is what sampling cost this process,
 * for the caller to subtract from the measured CPU.
 */
export function pssSampler(everyMs = 1000): { stop(): number; peak(): number; overheadSeconds(): number } {
  let overhead = 0;
  const sample = (): number => {
    const c = process.cpuUsage();
    const mb = treePssMb();
    const d = process.cpuUsage(c);
    overhead += (d.user + d.system) / 1e6;
    return mb;
  };
  let peak = sample();
  const timer = setInterval(() => {
    peak = Math.max(peak, sample());
  }, everyMs);
  timer.unref();
  return {
    peak: () => peak,
    overheadSeconds: () => overhead,
    stop: () => {
      clearInterval(timer);
      peak = Math.max(peak, sample());
      return peak;
    },
  };
}
