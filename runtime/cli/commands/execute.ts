/**
 * `execute`: one event through the browser executor, no Kafka (DESIGN.md "Contracts"). How an
 * operator onboards a partner, and how acceptance tests drive the executor.
 *
 * stdout carries exactly one JSON document ({ requests, jar, trackers }); logs go to stderr.
 * Invalid input (file, JSON, schema) → InvalidInputError → exit 2; executor failure → exit 1.
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { InvalidInputError } from '../../../core/errors.ts';
import { createRootLogger } from '../../../core/log.ts';
import { loadSettings } from '../../config.ts';
import { createExecutor, parseEvent, parseJar, parsePartners } from '../../../processors/executor/index.ts';

async function readJson(path: string, option: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new InvalidInputError(option, `cannot read ${path} (${code})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidInputError(option, `${path} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

interface ExecuteOptions {
  event: string;
  partners: string;
  jar?: string;
  allowPrivateNetwork?: boolean;
  trustedClose?: boolean;
  headless: 'shell' | 'new';
  chromium?: string;
  quietWindow: string;
}

export function registerExecute(program: Command): void {
  program
    .command('execute')
    .description("run one page-view event's consented partner tags in headless Chromium; print captured requests, jar and outcomes as JSON")
    .requiredOption('--event <file>', 'page-view event (JSON)')
    .requiredOption('--partners <file>', 'partner configurations (JSON array)')
    .option('--jar <file>', 'the visitor\'s jar: the "jar" object of an earlier output')
    .option('--allow-private-network', 'let allowHosts resolve to loopback/private addresses (development and tests only)')
    .option('--trusted-close', 'end the visit as a closed tab with trusted beforeunload/visibilitychange/pagehide/unload (env EXECUTOR_TRUSTED_CLOSE; ~30% more CPU)')
    .addOption(new Option('--headless <mode>', 'chromium-headless-shell or new headless').choices(['shell', 'new']).default('shell'))
    .option('--chromium <path>', 'Chromium executable (default: Debian\'s headless shell, or /usr/bin/chromium with --headless new)')
    .option('--quiet-window <ms>', 'page time without due timers or pending requests that ends the event', '5000')
    .action(async (opts: ExecuteOptions) => {
      const [eventRaw, partnersRaw, jarRaw] = await Promise.all([
        readJson(opts.event, '--event'),
        readJson(opts.partners, '--partners'),
        opts.jar === undefined ? Promise.resolve(null) : readJson(opts.jar, '--jar'),
      ]);
      // Validate before starting Chromium: bad input is exit 2 and costs nothing.
      const event = parseEvent(eventRaw);
      const partners = parsePartners(partnersRaw);
      const jar = jarRaw === null ? null : parseJar(jarRaw);
      const quietWindowMs = Number(opts.quietWindow);
      if (!Number.isInteger(quietWindowMs) || quietWindowMs < 0) {
        throw new InvalidInputError('--quiet-window', 'must be a non-negative integer (ms)');
      }
      const logger = createRootLogger().child({ component: 'execute' });
      const executor = await createExecutor({
        browsers: 1,
        pagesPerBrowser: 1,
        headless: opts.headless,
        allowPrivateNetwork: opts.allowPrivateNetwork === true,
        trustedClose: opts.trustedClose === true || /^(1|true|yes)$/i.test(process.env.EXECUTOR_TRUSTED_CLOSE ?? ''),
        quietWindowMs,
        logger,
        // The same jar budget as the processor's (LIMIT_* variables): what execute prints is what would be stored.
        jarBudget: loadSettings({ env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('LIMIT_'))) }).limits.jar,
        ...(opts.chromium ? { executablePath: opts.chromium } : {}),
      });
      try {
        const result = await executor.execute(event, jar, partners);
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      } finally {
        await executor.close();
      }
    });
}
