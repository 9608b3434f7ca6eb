/**
 * The product as `npm start` runs it (`run --demo`), in a child process on free ports, and
 * Debian's Chromium to visit it: shared by the demo and console browser tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { request } from 'undici';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { waitFor } from '../runner/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** A visitor's browser user agent (a HeadlessChrome one is a bot to the collector); `n` makes two browsers differ. */
export const visitorUa = (n: number): string => `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/13${n}.0.0.0 Safari/537.36`;

export interface RunningProduct {
  shop: string;
  inbox: string;
  console: string;
  collector: string;
  metrics: string;
  /** What the process printed on stdout (the URLs). */
  stdout(): string;
  stop(): Promise<number | null>;
}

/** `run --demo` with every port free; `env` adds settings (KAFKA_BROKERS, topics). Resolves once /ready is 200. */
export async function startProduct(env: Record<string, string> = {}): Promise<RunningProduct> {
  const [shopPort, inboxPort, consolePort, collectorPort, metricsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', '--demo'], {
    cwd: root,
    env: {
      ...process.env,
      KAFKA_BROKERS: '',
      PARTNERS_FILE: '',
      STATE_STORE: 'memory',
      LOG_LEVEL: 'warn',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(metricsPort),
      COLLECTOR_HOST: '127.0.0.1',
      COLLECTOR_PORT: String(collectorPort),
      CONSOLE_PORT: String(consolePort),
      DEMO_SHOP_PORT: String(shopPort),
      DEMO_INBOX_PORT: String(inboxPort),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let done = false;
  void exited.then(() => (done = true));
  const metrics = `http://127.0.0.1:${metricsPort}`;
  try {
    await waitFor(
      'the product to be ready',
      async () => {
        if (done) throw new Error(`run --demo exited: ${stderr.slice(-2000)}`);
        try {
          return (await request(`${metrics}/ready`)).statusCode === 200 && stdout.includes('console');
        } catch {
          return false;
        }
      },
      90_000,
      250,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    shop: `http://127.0.0.1:${shopPort}`,
    inbox: `http://127.0.0.1:${inboxPort}`,
    console: `http://127.0.0.1:${consolePort}`,
    collector: `http://127.0.0.1:${collectorPort}`,
    metrics,
    stdout: () => stdout,
    async stop() {
      if (!done) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({ executablePath: '/usr/lib/chromium/chromium-headless-shell', headless: 'shell', pipe: true, args: CHROMIUM_ARGS, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false });
}

/** A visitor: their own browser context (cookies, storage), their own user agent. */
export async function visitor(browser: Browser, n: number) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setUserAgent(visitorUa(n));
  return { context, page };
}

export interface InboxEntryJson {
  partner: string;
  userAgent?: string;
  events: { partner: string; name: string; pageView: boolean; page?: string; visitorId?: string }[];
}

export async function inboxEntries(inbox: string): Promise<InboxEntryJson[]> {
  const res = await request(`${inbox}/api/received`);
  return ((await res.body.json()) as { entries: InboxEntryJson[] }).entries;
}
