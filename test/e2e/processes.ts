/**
 * Roles as an operator runs them: `tagstream run <roles>` child processes (node_modules/.bin/node
 * --import tsx runtime/cli/main.ts), each in its own process group so that "kill -9 of a processor"
 * takes its Chromium with it, as a crashed container would. Every child is killed when the test
 * process exits, whatever happened.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { waitFor } from '../runner/helpers.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = join(ROOT, 'node_modules', '.bin', 'node');

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export interface RoleProcessOptions {
  name: string;
  roles: string[];
  args?: string[];
  env: Record<string, string>;
  /** The checkout whose code runs (default: this one); benchmarks compare two trees with it. */
  root?: string;
}

export class RoleProcess {
  readonly name: string;
  readonly metricsPort: number;
  readonly collectorPort: number;
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> | undefined;
  #log = '';
  readonly #options: RoleProcessOptions;

  private constructor(options: RoleProcessOptions, metricsPort: number, collectorPort: number) {
    this.name = options.name;
    this.#options = options;
    this.metricsPort = metricsPort;
    this.collectorPort = collectorPort;
  }

  /** Ports are chosen once: a restarted instance comes back where it was. */
  static async create(options: RoleProcessOptions): Promise<RoleProcess> {
    return new RoleProcess(options, await freePort(), await freePort());
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The child's stderr (JSON logs), the last 200 KB. */
  get log(): string {
    return this.#log;
  }

  start(): void {
    const { roles, args = [], env, root = ROOT } = this.#options;
    const child = spawn(NODE, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', ...roles, ...args], {
      cwd: root,
      detached: true,
      env: {
        ...process.env,
        METRICS_HOST: '127.0.0.1',
        METRICS_PORT: String(this.metricsPort),
        COLLECTOR_HOST: '127.0.0.1',
        COLLECTOR_PORT: String(this.collectorPort),
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.#child = child;
    live.add(child);
    this.#log = '';
    child.stderr!.on('data', (d: Buffer) => {
      this.#log = (this.#log + d.toString()).slice(-200_000);
    });
    this.#exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        live.delete(child);
        resolve(code);
      }),
    );
  }

  async ready(timeoutMs = 90_000): Promise<void> {
    await waitFor(`${this.name} /ready 200`, async () => {
      if (this.#child?.exitCode !== null) throw new Error(`${this.name} exited (${String(this.#child?.exitCode)}): ${this.#log.slice(-2000)}`);
      try {
        const res = await request(`http://127.0.0.1:${this.metricsPort}/ready`, { headersTimeout: 2000, bodyTimeout: 2000 });
        await res.body.dump();
        return res.statusCode === 200;
      } catch {
        return false;
      }
    }, timeoutMs, 250);
  }

  /** kill -9 of the whole instance (node and its Chromium). */
  async kill9(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    killGroup(child, 'SIGKILL');
    await this.#exited;
  }

  /** The Chromium browser processes this instance launched (direct children of its node process). */
  browserPids(): number[] {
    const pid = this.#child?.pid;
    if (pid === undefined) return [];
    let out: string;
    try {
      out = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
    } catch {
      return []; // no child at all
    }
    return out
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((p) => {
        try {
          return /chrom/i.test(readFileSync(`/proc/${p}/cmdline`, 'utf8'));
        } catch {
          return false;
        }
      });
  }

  /** Graceful stop (SIGTERM: drain, commit, leave the group); SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    child.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
    const code = await this.#exited!;
    clearTimeout(timer);
    killGroup(child, 'SIGKILL'); // a browser that outlived its parent
    return code;
  }

  /** A counter of the process's /metrics, summed over the series matching `labels`. */
  async metric(name: string, labels: RegExp = /.*/): Promise<number> {
    const res = await request(`http://127.0.0.1:${this.metricsPort}/metrics`);
    const text = await res.body.text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^(\S+?)(\{[^}]*\})?\s+(\S+)$/.exec(line);
      if (m && m[1] === name && labels.test(m[2] ?? '')) sum += Number(m[3]);
    }
    return sum;
  }
}
