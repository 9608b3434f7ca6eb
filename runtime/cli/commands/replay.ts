/**
 * `replay --from T --to T [--partner X …] [--dry-run] [--format text|json]` (docs/replay.md): the
 * page views of a time range of tracking.events run again, for some partners or all. The work is
 * runtime/operator/replay.ts; this file is flags, progress and output.
 *
 * stdout: the summary (text, or one JSON document with --format json); stderr: the progress bar on
 * a terminal, JSON log lines otherwise. Exit 0 done, 2 bad input, 1 failure (events that failed or
 * were not processed in time: the summary is printed first).
 */
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { InvalidInputError, ReplayIncompleteError } from '../../../core/errors.ts';
import { createRootLogger, type Logger } from '../../../core/log.ts';
import type { PartnerConfig } from '../../../core/contracts/index.ts';
import { createExecutor } from '../../../processors/executor/index.ts';
import { formatReplayText } from '../../operator/report.ts';
import { replay, type ReplayProgress, type ReplaySummary } from '../../operator/replay.ts';
import { parseDuration, parseTimeRange } from '../../operator/time.ts';
import { loadPartners } from '../../roles/partners.ts';
import { executorOptionsFrom } from '../../roles/processor.ts';
import { clientFor, settingsFrom } from './kafka.ts';

interface ReplayFlags {
  from?: string;
  to?: string;
  partner: string[];
  dryRun?: boolean;
  format: string;
  partners?: string;
  allowPrivateNetwork?: boolean;
  wait: boolean;
  waitTimeout: string;
  config?: string;
  brokers?: string;
  client?: string;
}

const EXAMPLES = `
Examples:
  # partner-a was down from 09:00 to 10:00 UTC: send it what it missed (the others get nothing twice)
  tagstream replay --from 2026-11-29T09:00:00Z --to 2026-11-29T10:00:00Z --partner partner-a

  # partner-a changed its script: what would its requests of the last 2 hours look like now?
  tagstream replay --from -2h --to now --partner partner-a --dry-run --partners partners.json

Times: ISO 8601 (2026-11-29T09:00:00Z, 2026-11-29) or relative to now (-90s, -30m, -2h, -1d, now).`;

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description("run the page views of a time range of the events topic again, for some partners or all; the dispatcher's idempotency keys deliver only what partners did not receive")
    .option('--from <time>', 'start of the range, inclusive (ISO 8601 or relative: -2h)')
    .option('--to <time>', 'end of the range, exclusive (ISO 8601 or relative: now)')
    .option('--partner <id>', 'replay this partner only (repeatable, or comma-separated); none = every consented partner', collect, [])
    .option('--dry-run', 'publish nothing, change no jar: run the events here and print how their requests differ from those captured originally')
    .option('--format <format>', 'text | json', 'text')
    .option('--partners <file>', 'partner configurations, JSON array (env PARTNERS_FILE); needed by --dry-run, checks --partner names otherwise')
    .option('--allow-private-network', 'dry run: the executor may reach loopback and private addresses (development and tests; env EXECUTOR_ALLOW_PRIVATE_NETWORK)')
    .option('--no-wait', 'publish the replayed events and exit, without waiting for the processor')
    .option('--wait-timeout <duration>', 'how long to wait for the processor to process the replayed events (90s, 10m, 1h)', '10m')
    .option('--config <file>', 'settings file (JSON); environment variables override it')
    .option('--brokers <list>', 'bootstrap brokers host:port,... (env KAFKA_BROKERS)')
    .option('--client <name>', 'Kafka client: platformatic | kafkajs (env KAFKA_CLIENT)')
    .addHelpText('after', EXAMPLES)
    .action(async (flags: ReplayFlags) => replayCommand(flags));
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((p) => p.trim())];
}

async function replayCommand(flags: ReplayFlags): Promise<void> {
  // Everything the flags can get wrong fails before a broker or a browser is touched.
  if (!['text', 'json'].includes(flags.format)) throw new InvalidInputError('--format', `must be text or json, got "${flags.format}"`);
  const range = parseTimeRange(flags.from, flags.to);
  if (flags.partner.some((p) => p.length === 0)) throw new InvalidInputError('--partner', 'must name a partner id (an empty name was given)');
  const only = flags.partner.length === 0 ? null : [...new Set(flags.partner)];
  const waitTimeoutMs = parseDuration('--wait-timeout', flags.waitTimeout);
  const settings = settingsFrom(flags, {
    ...(flags.partners === undefined ? {} : { processor: { partners: flags.partners } }),
    ...(flags.allowPrivateNetwork === true ? { executor: { allowPrivateNetwork: true } } : {}),
  });
  if (settings.brokers.length === 0) {
    throw new InvalidInputError('--brokers', '`replay` needs a real cluster (the embedded broker lives inside a `run` process); set --brokers or KAFKA_BROKERS');
  }
  const partnersFile = settings.processor.partners;
  if (flags.dryRun === true && partnersFile === undefined) {
    throw new InvalidInputError('--partners', 'a dry run runs the partners\' tags here: --partners partners.json (or PARTNERS_FILE)');
  }
  const partners = partnersFile === undefined ? undefined : await loadPartners(partnersFile);
  if (partners !== undefined && only !== null) checkPartnerNames(only, partners);

  const log = createRootLogger().child({ component: 'replay' });
  const progress = progressReporter(log);
  const client = clientFor(settings);
  let summary: ReplaySummary;
  try {
    if (flags.dryRun === true) {
      const executor = await createExecutor({ ...executorOptionsFrom(settings), logger: log });
      try {
        summary = await replay({
          client, settings, range, partners: only, dryRun: true, partnerConfigs: partners!, executor,
          concurrency: settings.executor.browsers * settings.executor.pagesPerBrowser, progress,
        });
      } finally {
        await executor.close();
      }
    } else {
      summary = await replay({ client, settings, range, partners: only, dryRun: false, wait: flags.wait, waitTimeoutMs, progress });
    }
  } finally {
    progress.stop();
    await client.close();
  }
  process.stdout.write(flags.format === 'json' ? JSON.stringify(summary, null, 2) + '\n' : formatReplayText(summary));
  if (summary.failures.length > 0) throw new ReplayIncompleteError(`${summary.failures.length} of ${summary.events.replayed} events failed (listed in the summary)`, { failures: summary.failures.length });
  if (summary.processed === false) {
    throw new ReplayIncompleteError(`the processor did not process every replayed event within --wait-timeout ${flags.waitTimeout}; they stay on ${settings.topics.events} and run when it catches up`);
  }
}

function checkPartnerNames(only: readonly string[], partners: readonly PartnerConfig[]): void {
  const known = new Set(partners.map((p) => p.id));
  const unknown = only.filter((p) => !known.has(p));
  if (unknown.length > 0) {
    throw new InvalidInputError('--partner', `unknown partner ${unknown.map((u) => `"${u}"`).join(', ')} (the partners file lists ${[...known].join(', ')})`);
  }
}


/** A cli-progress bar on a terminal; JSON log lines (a phase's start, every 10 %, its end) otherwise. */
function progressReporter(log: Logger): ReplayProgress & { stop(): void } {
  if (process.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      { stream: process.stderr, format: '{phase} [{bar}] {value}/{total} {duration_formatted}', hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      phase(name, total) {
        if (started) bar.stop();
        bar.start(Math.max(total, 0), 0, { phase: name });
        started = true;
      },
      advance(done) {
        bar.update(done);
      },
      stop() {
        if (started) bar.stop();
        started = false;
      },
    };
  }
  let current = { name: '', total: 0, step: 0 };
  return {
    phase(name, total) {
      current = { name, total, step: 0 };
      log.info({ phase: name, done: 0, total }, 'replay progress');
    },
    advance(done) {
      const step = current.total === 0 ? 10 : Math.floor((done / current.total) * 10);
      if (step <= current.step) return;
      current.step = step;
      log.info({ phase: current.name, done, total: current.total }, 'replay progress');
    },
    stop() {},
  };
}
