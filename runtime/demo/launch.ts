/**
 * What `run` adds around the roles besides the endpoint (DESIGN.md "The console"; `npm start`):
 *
 * - `--demo` (demo.enabled): the partner inbox and the demo shop start first, the demo partners
 *   replace `--partners`, the executor and the dispatcher may reach loopback (where the inbox is),
 *   and the collector's CORS allows the shop;
 * - the console (console.enabled; absent = on with the embedded broker or the demo), whose
 *   observers the processor and the dispatcher get.
 *
 * After the roles started, `announce()` prints the URLs a newcomer opens.
 */
import type { PartnerConfig } from '../../core/contracts/index.ts';
import { hasCode, InvalidInputError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Settings } from '../config.ts';
import { consoleEnabled, startConsole, type RunningConsole } from '../console/index.ts';
import { consoleReplayer, type ConsoleReplayer } from '../console/replay.ts';
import type { DeliveryObserver, ExecutionObserver } from '../roles/observers.ts';
import { startDemo, type RunningDemo } from './index.ts';

export interface RunExtras {
  /** The settings the roles run with (the demo's changes applied). */
  readonly settings: Settings;
  readonly partners: readonly PartnerConfig[];
  readonly processor: { observer?: ExecutionObserver };
  readonly dispatcher: { observer?: DeliveryObserver };
  /**
   * Prints the URLs to open (stdout) and logs them, once the process is ready (bounded wait), so
   * they are not buried under the start-up logs.
   */
  announce(endpoint: { host: string; port: number } | undefined, readiness?: () => { ready: boolean }): void;
  close(): Promise<void>;
}

export interface RunExtrasOptions {
  /** The partners of `--partners` (ignored with the demo, which brings its own). */
  partners: () => Promise<PartnerConfig[]>;
  logger: Logger;
  /** Where the announcement goes. Default process.stdout. */
  out?: (text: string) => void;
}

export async function startRunExtras(given: Settings, options: RunExtrasOptions): Promise<RunExtras> {
  const log = options.logger.child({ component: 'run' });
  const embedded = given.brokers.length === 0;
  let demo: RunningDemo | undefined;
  let consoleRun: RunningConsole | undefined;
  let replayer: ConsoleReplayer | undefined;
  let settings = given;
  let demoLinks: { label: string; url: string }[] | undefined;
  try {
    if (given.demo.enabled) {
      if (given.collector.port === 0) throw new InvalidInputError('collector.port (COLLECTOR_PORT)', 'the demo shop links the collector\'s tag by its port: give it one (not 0) with --demo');
      const collectorUrl = `http://${loopbackName(given.collector.host)}:${given.collector.port}`;
      const links: { label: string; url: string }[] = [];
      demo = await startDemo({ settings: given.demo, collectorUrl: () => collectorUrl, links: () => links });
      settings = {
        ...given,
        executor: { ...given.executor, allowPrivateNetwork: true },
        dispatcher: { ...given.dispatcher, allowPrivateNetwork: true },
        collector: { ...given.collector, allowedOrigins: [...new Set([...given.collector.allowedOrigins, ...demo.shopOrigins])] },
      };
      if (given.processor.partners !== undefined) log.warn({ ignored: given.processor.partners }, '--demo brings its own partners: the partners file is not used');
      links.push({ label: 'demo shop', url: demo.shop.url });
      demoLinks = links;
    }
    const partners = demo?.partners ?? (await options.partners());
    if (consoleEnabled(given.console, { embedded, demo: demo !== undefined })) {
      const { executor } = settings;
      replayer = consoleReplayer({
        partners,
        executor: { allowPrivateNetwork: executor.allowPrivateNetwork, headless: executor.headless, trustedClose: executor.trustedClose, inPageCapture: executor.inPageCapture, jarBudget: settings.limits.jar, ...(executor.sandbox === undefined ? {} : { sandbox: executor.sandbox }) },
      });
      const replay = replayer.action;
      const links = demo === undefined ? [] : [{ label: 'demo shop', url: demo.shop.url }, { label: 'partner inbox', url: demo.inbox.url }];
      const start = (port: number): Promise<RunningConsole> => startConsole({ settings: { ...given.console, port }, partners, replay, links, logger: options.logger.child({ component: 'console' }) });
      try {
        consoleRun = await start(given.console.port);
      } catch (error) {
        // On by default (not asked for): a taken port must not keep the product from starting; asked for, it is an error.
        if (given.console.enabled !== undefined || !hasCode(error, 'ERR_LISTEN') || !String(error.message).includes('EADDRINUSE')) throw error;
        consoleRun = await start(0);
        log.warn({ port: given.console.port, url: consoleRun.url }, 'the console port is taken: the console listens on a free port instead (set CONSOLE_PORT to choose)');
      }
      demoLinks?.push({ label: 'console', url: consoleRun.url });
    }
    const c = consoleRun;
    return {
      settings,
      partners,
      processor: c === undefined ? {} : { observer: c.observers.execution },
      dispatcher: c === undefined ? {} : { observer: c.observers.delivery },
      announce(endpoint, readiness) {
        const lines = [
          `tagstream is running: ${embedded ? 'the embedded in-process broker' : `Kafka at ${given.brokers.join(',')}`}`,
          ...(demo === undefined ? [] : [`  demo shop      ${demo.shop.url}/`, `  partner inbox  ${demo.inbox.url}/`]),
          ...(c === undefined ? [] : [`  console        ${c.url}/`]),
          `  collector      http://${loopbackName(settings.collector.host)}:${settings.collector.port}/tag.js`,
          ...(endpoint === undefined ? [] : [`  metrics        http://${loopbackName(endpoint.host)}:${endpoint.port}/metrics`]),
          'Stop with Ctrl-C.',
        ];
        const deadline = Date.now() + 60_000;
        const print = (): void => {
          if (readiness !== undefined && !readiness().ready && Date.now() < deadline) {
            setTimeout(print, 200).unref();
            return;
          }
          log.info({ shop: demo?.shop.url, inbox: demo?.inbox.url, console: c?.url }, 'ready');
          (options.out ?? ((t: string) => process.stdout.write(t)))(`\n${lines.join('\n')}\n\n`);
        };
        print();
      },
      async close() {
        await Promise.allSettled([c?.close(), demo?.close(), replayer?.close()]);
      },
    };
  } catch (error) {
    await Promise.allSettled([consoleRun?.close(), demo?.close(), replayer?.close()]);
    throw error;
  }
}

/** The name a browser on this machine reaches an interface by. */
function loopbackName(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
