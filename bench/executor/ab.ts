/**
 * A/B rounds of the executor benchmark (docs/bench-executor.md "Levers"): runs bench/executor/run.ts
 * alternately for A and B (A B A B …, so machine noise hits both alike), each a fresh process, and
 * prints per variant and side the median views/s and CPU ms per view with their spread.
 *
 *   node --import tsx bench/executor/ab.ts --rounds=4 --variants=three,sdk,small \
 *        --a-dir=/tmp/base --b-dir=. [--a-extra='--flag'] [--b-extra='--flag'] [--a-env=K=V,K2=V2] [--exec-n=200]
 *
 * `--x-dir`: the tree whose bench/executor/run.ts (and so whose executor) runs; `--x-extra`: extra
 * Chromium flags; `--x-env`: extra environment. Executor only (no naive run), no half-rate run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

function opt(name: string, def: string): string {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  return flag ? flag.slice(flag.indexOf('=') + 1) : def;
}
const rounds = Number(opt('rounds', '4'));
const variants = opt('variants', 'three');
const execN = opt('exec-n', '200');
const sides = ['a', 'b'].map((s) => ({
  name: s.toUpperCase(),
  dir: resolve(opt(`${s}-dir`, '.')),
  extra: opt(`${s}-extra`, ''),
  env: Object.fromEntries(
    opt(`${s}-env`, '')
      .split(',')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  ),
}));
const tmp = mkdtempSync(join(tmpdir(), 'exec-ab-'));

interface Run {
  name: string;
  viewsPerSecond: number;
  cpuSecondsPerView: number;
  wrong: number;
  cpuMsPerViewByKind: Record<string, number>;
}
const results = new Map<string, { vps: number[]; cpu: number[]; wrong: number; kinds: Record<string, number[]> }>();

for (let r = 0; r < rounds; r++) {
  for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
    const json = join(tmp, `${side.name}-${r}.json`);
    const args = ['--import', 'tsx', 'bench/executor/run.ts', '--modes=executor', `--variants=${variants}`, `--exec-n=${execN}`, '--lat-n=0', `--json=${json}`];
    if (side.extra) args.push(`--extra=${side.extra}`);
    const p = spawnSync(process.execPath, args, { cwd: side.dir, env: { ...process.env, ...side.env }, encoding: 'utf8', timeout: 600_000 });
    if (p.status !== 0) {
      process.stderr.write(`round ${r} ${side.name} failed: ${p.stderr.slice(-2000)}\n`);
      continue;
    }
    const out = JSON.parse(readFileSync(json, 'utf8')) as { runs: Run[] };
    for (const run of out.runs) {
      const key = `${run.name}\u0000${side.name}`;
      const e = results.get(key) ?? { vps: [], cpu: [], wrong: 0, kinds: {} };
      e.vps.push(run.viewsPerSecond);
      e.cpu.push(Math.round(run.cpuSecondsPerView * 1000));
      e.wrong += run.wrong;
      for (const [k, v] of Object.entries(run.cpuMsPerViewByKind)) (e.kinds[k] ??= []).push(v);
      results.set(key, e);
      process.stderr.write(`round ${r} ${side.name} ${run.name}: ${run.viewsPerSecond} views/s, ${Math.round(run.cpuSecondsPerView * 1000)} ms CPU/view, wrong ${run.wrong}\n`);
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const v = s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
  return Math.round(v * 100) / 100; // 18.05, not 18.049999999999997
};
const spread = (xs: number[]): string => `${Math.min(...xs)}–${Math.max(...xs)}`;
process.stdout.write(`A: ${sides[0]?.dir} ${sides[0]?.extra} ${JSON.stringify(sides[0]?.env)}\nB: ${sides[1]?.dir} ${sides[1]?.extra} ${JSON.stringify(sides[1]?.env)}\n`);
process.stdout.write('| run | side | views/s median (spread) | CPU ms/view median (spread) | wrong | CPU ms/view by process (medians) |\n|---|---|---|---|---|---|\n');
for (const [key, e] of [...results].sort((x, y) => x[0].localeCompare(y[0]))) {
  const [name, side] = key.split('\u0000');
  const kinds = Object.entries(e.kinds)
    .map(([k, v]) => [k, median(v)] as const)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${Math.round(v * 10) / 10}`)
    .join(', ');
  process.stdout.write(`| ${name} | ${side} | ${median(e.vps)} (${spread(e.vps)}) | ${median(e.cpu)} (${spread(e.cpu)}) | ${e.wrong} | ${kinds} |\n`);
}
process.stdout.write(`load average now: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
