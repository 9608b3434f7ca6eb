/**
 * `lag [--group G] [--topic T] [--watch [--interval 2s]] [--format text|json]`: consumer lag per
 * group/topic/partition in records and in seconds (the age of the oldest unprocessed record).
 * By default the processor group on the events topic and the dispatcher group on the requests
 * topic and the dispatcher's retry consumer on the retry topic. `--watch` redraws on a terminal, prints one block per interval otherwise
 * (one JSON line per interval with --format json), and stops on SIGINT with exit 0.
 */
import type { Command } from 'commander';
import { createRootLogger } from '../../../core/log.ts';
import { InvalidInputError } from '../../../core/errors.ts';
import type { Settings } from '../../config.ts';
import type { KafkaAdmin, PartitionReader } from '../../kafka/types.ts';
import { computeLag, type PartitionLag } from '../../lag.ts';
import { dispatcherTopics, retryGroupOf } from '../../roles/dispatcher-settings.ts';
import { parseDuration } from '../../operator/time.ts';
import { addCommonOptions, clientFor, requireRealBroker, settingsFrom, type CommonFlags } from './kafka.ts';

interface LagFlags extends CommonFlags {
  format: string;
  group?: string;
  topic?: string;
  watch?: boolean;
  interval: string;
}

interface Target {
  group: string;
  topic: string;
}

/** The groups and topics the product consumes, or the one the flags name. */
export function lagTargets(settings: Settings, group?: string, topic?: string): Target[] {
  const known: Target[] = [
    { group: settings.groups.processor, topic: settings.topics.events },
    { group: settings.groups.dispatcher, topic: settings.topics.requests },
    { group: retryGroupOf(settings.groups.dispatcher), topic: dispatcherTopics(settings.topics.requests, settings.dispatcher).retry },
  ];
  const picked = known.filter((t) => (group === undefined || t.group === group) && (topic === undefined || t.topic === topic));
  if (picked.length > 0) return picked;
  if (group !== undefined && topic !== undefined) return [{ group, topic }];
  if (group !== undefined) throw new InvalidInputError('--topic', `group "${group}" is not one of the product's groups (${[...new Set(known.map((k) => k.group))].join(', ')}): name its topic with --topic`);
  throw new InvalidInputError('--topic', `"${topic ?? ''}" is not a topic the product consumes (${known.map((k) => k.topic).join(', ')}): name its group with --group`);
}

export function formatLagTable(rows: readonly PartitionLag[]): string {
  const header = ['GROUP', 'TOPIC', 'PARTITION', 'END-OFFSET', 'COMMITTED', 'LAG', 'LAG-SECONDS'];
  const body = rows.map((r) => [
    r.group,
    r.topic,
    String(r.partition),
    String(r.endOffset),
    r.committedOffset < 0 ? '-' : String(r.committedOffset),
    String(r.lag),
    r.lagSeconds === null ? '-' : r.lagSeconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  return [header, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}

async function collect(admin: KafkaAdmin, reader: PartitionReader, targets: readonly Target[]): Promise<PartitionLag[]> {
  const rows: PartitionLag[] = [];
  for (const t of targets) rows.push(...(await computeLag(admin, t.group, t.topic, { reader })));
  return rows;
}

export function registerLag(program: Command): void {
  addCommonOptions(
    program
      .command('lag')
      .description('consumer lag per group/topic/partition: records (end offset - committed offset) and seconds (age of the oldest unprocessed record, 0 when caught up)')
      .option('--group <id>', 'only this consumer group (default: the processor and the dispatcher groups)')
      .option('--topic <name>', 'only this topic (required with a --group the product does not know)')
      .option('--watch', 'refresh until Ctrl-C (redraws on a terminal, one block per interval otherwise)')
      .option('--interval <duration>', 'refresh interval of --watch (500ms, 2s, 1m)', '2s')
      .option('--format <format>', 'text | json (with --watch: one JSON line per interval)', 'text')
      .addHelpText('after', '\nExamples:\n  $ tagstream lag\n  $ tagstream lag --group tagstream-dispatcher --watch --interval 5s\n  $ tagstream lag --format json | jq \'map(select(.lag > 0))\'\n'),
  ).action(async (flags: LagFlags) => lagCommand(flags));
}

async function lagCommand(flags: LagFlags): Promise<void> {
  if (!['text', 'json'].includes(flags.format)) throw new InvalidInputError('--format', `must be text or json, got "${flags.format}"`);
  const intervalMs = parseDuration('--interval', flags.interval);
  if (intervalMs < 100) throw new InvalidInputError('--interval', `must be at least 100ms, got "${flags.interval}"`);
  const settings = settingsFrom(flags);
  requireRealBroker(settings, 'lag');
  const targets = lagTargets(settings, flags.group, flags.topic);
  const log = createRootLogger().child({ component: 'lag' });
  const client = clientFor(settings);
  try {
    const admin = await client.admin();
    const reader = client.reader();
    if (flags.watch !== true) {
      const rows = await collect(admin, reader, targets);
      process.stdout.write(flags.format === 'json' ? JSON.stringify(rows, null, 2) + '\n' : formatLagTable(rows));
      return;
    }
    await watch(intervalMs, async () => {
      const at = new Date().toISOString();
      let rows: PartitionLag[];
      try {
        rows = await collect(admin, reader, targets);
      } catch (error) {
        // One failed round (a broker restarting) does not end the watch; the next one retries.
        log.warn({ err: error }, 'lag round failed');
        return;
      }
      if (flags.format === 'json') process.stdout.write(JSON.stringify({ at, rows }) + '\n');
      else if (process.stdout.isTTY) process.stdout.write(`\x1b[H\x1b[2Jlag at ${at} (every ${flags.interval}, Ctrl-C to stop)\n\n${formatLagTable(rows)}`);
      else process.stdout.write(`lag at ${at}\n${formatLagTable(rows)}\n`);
    });
  } finally {
    await client.close();
  }
}

/** Runs `round` every `intervalMs` until SIGINT (or SIGTERM); resolves then, so the command exits 0. */
async function watch(intervalMs: number, round: () => Promise<void>): Promise<void> {
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  let done = false;
  const onSignal = (): void => {
    done = true;
    stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!done) {
      await Promise.race([round(), stopped]);
      if (done) break;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, intervalMs))), stopped]);
      clearTimeout(timer);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
