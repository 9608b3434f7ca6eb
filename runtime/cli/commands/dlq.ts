/**
 * `dlq redrive --topic requests|events [--partner X …] [--since T] [--dry-run] [--max-redrives N]
 * [--group G] [--from-start] [--format text|json]`: dead letters back for another try, with a
 * summary (found, redriven, skipped and why). How it never loops and never redrives one dead
 * letter twice: runtime/operator/redrive.ts and docs/operations.md.
 *
 * Exit codes: 0 done (also when nothing was due); 1 a broker or publish failure; 2 bad input.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../../core/errors.ts';
import { createRootLogger } from '../../../core/log.ts';
import { DEFAULT_MAX_REDRIVES, DEFAULT_REDRIVE_GROUP, redrive, type RedriveSummary } from '../../operator/redrive.ts';
import { parseTime } from '../../operator/time.ts';
import { addCommonOptions, clientFor, parseCount, requireRealBroker, settingsFrom, type CommonFlags } from './kafka.ts';

interface RedriveFlags extends CommonFlags {
  topic?: string;
  partner: string[];
  since?: string;
  dryRun?: boolean;
  maxRedrives: string;
  group: string;
  fromStart?: boolean;
  format: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerDlq(program: Command): void {
  const dlq = program
    .command('dlq')
    .description('dead-letter topics: redrive')
    .addHelpText('after', '\nExample:\n  $ tagstream dlq redrive --topic requests --since -1h --dry-run\n');
  addCommonOptions(
    dlq
      .command('redrive')
      .description('re-publish dead letters: requests DLQ -> requests topic, events DLQ -> events topic; prints found / redriven / skipped')
      .option('--topic <dlq>', 'requests | events: which DLQ')
      .option('--partner <id>', 'requests only: the dead letters of this partner (repeatable; default all)', collect, [])
      .option('--since <time>', 'only dead letters written at or after it: ISO 8601 (2026-11-29T10:00:00Z) or relative (-1h, -30m, -1d)')
      .option('--dry-run', 'publish nothing, remember nothing: list what would be redriven')
      .option('--max-redrives <n>', 'skip dead letters whose record was already redriven this often', String(DEFAULT_MAX_REDRIVES))
      .option('--group <id>', 'the ledger: committed group remembering what was redriven (partner runs use <id>.<partner>)', DEFAULT_REDRIVE_GROUP)
      .option('--from-start', 'ignore the ledger: read the DLQ from its first offset (a deliberate second redrive)')
      .option('--format <format>', 'text | json', 'text')
      .addHelpText('after', '\nExamples:\n  $ tagstream dlq redrive --topic requests --partner partner-a --since -1h --dry-run\n  $ tagstream dlq redrive --topic requests --partner partner-a --since -1h\n  $ tagstream dlq redrive --topic events --format json\n'),
  ).action(async (flags: RedriveFlags) => redriveCommand(flags));
}

async function redriveCommand(flags: RedriveFlags): Promise<void> {
  if (flags.topic !== 'requests' && flags.topic !== 'events') {
    throw new InvalidInputError('--topic', flags.topic === undefined ? 'is required: requests or events' : `must be requests or events, got "${flags.topic}"`);
  }
  if (!['text', 'json'].includes(flags.format)) throw new InvalidInputError('--format', `must be text or json, got "${flags.format}"`);
  if (flags.topic === 'events' && flags.partner.length > 0) throw new InvalidInputError('--partner', 'applies to --topic requests only: an event runs every consented partner');
  for (const p of flags.partner) if (p.trim() === '') throw new InvalidInputError('--partner', 'must be a partner id, got an empty value');
  if (flags.group.trim() === '') throw new InvalidInputError('--group', 'must be a consumer group id');
  const maxRedrives = parseCount('--max-redrives', flags.maxRedrives, 1);
  const since = flags.since === undefined ? undefined : parseTime('--since', flags.since);
  const settings = settingsFrom(flags);
  requireRealBroker(settings, 'dlq redrive');
  const [dlqTopic, targetTopic] = flags.topic === 'requests' ? [settings.topics.requestsDlq, settings.topics.requests] : [settings.topics.eventsDlq, settings.topics.events];
  const logger = createRootLogger().child({ component: 'redrive' });
  const client = clientFor(settings);
  try {
    const summary = await redrive(client, {
      kind: flags.topic,
      dlqTopic,
      targetTopic,
      partners: flags.partner,
      ...(since === undefined ? {} : { since }),
      dryRun: flags.dryRun === true,
      maxRedrives,
      group: flags.group,
      fromStart: flags.fromStart === true,
      logger,
    });
    process.stdout.write(flags.format === 'json' ? JSON.stringify(summary, null, 2) + '\n' : formatSummary(summary));
  } finally {
    await client.close();
  }
}

export function formatSummary(s: RedriveSummary): string {
  const lines = [`dlq redrive: ${s.dlqTopic} -> ${s.targetTopic}${s.dryRun ? ' (dry run: nothing published, nothing remembered)' : ''}`];
  if (s.dryRun) {
    const due = s.items.filter((i) => i.decision === 'redrive');
    if (due.length > 0) lines.push('  would redrive:');
    for (const i of due) lines.push(`    [${i.partition}]@${i.offset}  ${new Date(i.timestamp).toISOString()}  ${i.reason}  ${i.partner ?? '-'}  ${i.id ?? '-'}  redriven ${i.redrives}x`);
  }
  lines.push(`  found ${s.found}`);
  lines.push(`  ${s.dryRun ? 'would redrive' : 'redriven'} ${s.redriven}`);
  const skipped = Object.entries(s.skipped).filter(([, n]) => n > 0);
  lines.push(`  skipped ${skipped.length === 0 ? 0 : skipped.map(([why, n]) => `${n} (${why})`).join(', ')}`);
  const reasons = Object.entries(s.byReason);
  if (reasons.length > 0) lines.push(`  by reason: ${reasons.map(([r, n]) => `${r} ${n}`).join(', ')}`);
  if (s.committed.length > 0) lines.push(`  ledger: ${s.committed.join(', ')}`);
  return lines.join('\n') + '\n';
}
