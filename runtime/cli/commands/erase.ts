/**
 * `erase --user ID [--yes] [--wait] [--timeout 30s] [--format text|json]` (DESIGN.md "Replay and
 * erasure"): shows what the visitor's jar holds (names and domains, never values), asks on a
 * terminal unless --yes, writes the `erase` control record to the events topic, and with --wait
 * waits for the processor's tombstone on the cookies topic. The work is runtime/operator/erase.ts.
 *
 * Exit codes: 0 written (and applied, with --wait); 1 not confirmed, or not applied in time;
 * 2 bad input (a flag, or no --yes without a terminal to ask on).
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { InvalidInputError } from '../../../core/errors.ts';
import { createRootLogger } from '../../../core/log.ts';
import { checkUserId, eraseRecord, formatPreview, lookUpJar, waitForTombstone } from '../../operator/erase.ts';
import { parseDuration } from '../../operator/time.ts';
import { addCommonOptions, clientFor, requireRealBroker, settingsFrom, type CommonFlags } from './kafka.ts';

interface EraseFlags extends CommonFlags {
  user?: string;
  yes?: boolean;
  wait?: boolean;
  timeout: string;
  format: string;
}

export function registerErase(program: Command): void {
  addCommonOptions(
    program
      .command('erase')
      .description("erase a visitor: writes the erase control record; the processor empties the visitor's jar (store, tombstone on the cookies topic)")
      .option('--user <id>', 'the visitor id (userId, the key of the events topic)')
      .option('--yes', 'do not ask for confirmation (required when stdin is not a terminal)')
      .option('--wait', "wait until the processor applied it (the visitor's tombstone on the cookies topic)")
      .option('--timeout <duration>', 'bound of --wait (10s, 2m)', '30s')
      .option('--format <format>', 'text | json (the preview and the outcome as one JSON document)', 'text')
      .addHelpText('after', '\nExamples:\n  $ tagstream erase --user 7f3c9a2e-visitor            # shows the jar, asks, writes\n  $ tagstream erase --user 7f3c9a2e-visitor --yes --wait --timeout 1m\n'),
  ).action(async (flags: EraseFlags) => eraseCommand(flags));
}

async function eraseCommand(flags: EraseFlags): Promise<void> {
  if (flags.user === undefined) throw new InvalidInputError('--user', 'is required: the visitor id to erase');
  const userId = checkUserId(flags.user);
  if (!['text', 'json'].includes(flags.format)) throw new InvalidInputError('--format', `must be text or json, got "${flags.format}"`);
  const timeoutMs = parseDuration('--timeout', flags.timeout);
  const interactive = process.stdin.isTTY === true;
  if (flags.yes !== true && !interactive) throw new InvalidInputError('--yes', 'stdin is not a terminal, so the erasure cannot be confirmed: pass --yes');
  const settings = settingsFrom(flags);
  requireRealBroker(settings, 'erase');
  const log = createRootLogger().child({ component: 'erase' });
  const client = clientFor(settings);
  try {
    const admin = await client.admin();
    const reader = client.reader();
    const { preview, endOffset } = await lookUpJar(admin, reader, settings.topics.cookies, userId);
    if (flags.format === 'text') process.stdout.write(`will erase:\n${formatPreview(preview)}`);

    if (flags.yes !== true && !(await confirm(`erase visitor ${userId}? type "yes" to go on: `))) {
      process.stderr.write('error: not confirmed: nothing was written\n');
      process.exitCode = 1;
      return;
    }
    const producer = await client.producer();
    const [meta] = await producer.send([eraseRecord(settings.topics.events, userId, Date.now())]);
    log.info({ userId, topic: settings.topics.events, partition: meta?.partition, offset: meta?.offset }, 'erase record written');

    let tombstone: number | undefined;
    if (flags.wait === true) {
      tombstone = await waitForTombstone(reader, admin, settings.topics.cookies, preview.partition, endOffset, userId, timeoutMs);
      if (tombstone === undefined) process.exitCode = 1;
    }
    const applied = flags.wait === true ? tombstone !== undefined : null;
    if (flags.format === 'json') {
      process.stdout.write(JSON.stringify({ preview, written: meta ?? null, applied, tombstoneOffset: tombstone ?? null }, null, 2) + '\n');
    } else {
      process.stdout.write(`erase record written: ${settings.topics.events}[${meta?.partition ?? '?'}]@${meta?.offset ?? '?'}\n`);
      if (applied === true) process.stdout.write(`applied: tombstone at ${settings.topics.cookies}[${preview.partition}]@${String(tombstone)}\n`);
    }
    if (applied === false) {
      process.stderr.write(`error: --timeout: the processor did not apply the erasure within ${flags.timeout} (is it running? \`tagstream lag\` shows its lag); the record stays and will be applied when it catches up\n`);
    }
  } finally {
    await client.close();
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim().toLowerCase() === 'yes';
  } finally {
    rl.close();
  }
}
