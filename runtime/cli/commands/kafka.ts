/**
 * Commands that talk to Kafka: `topics create`, `lag` (and `run`, in ./run.ts, through settingsFrom/clientFor).
 * All read the same settings (runtime/config.ts): defaults < --config file < environment < flags.
 */
import type { Command } from 'commander';
import { loadSettings, type Settings, type SettingsInput } from '../../config.ts';
import { createKafkaClient } from '../../kafka/index.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { computeLag, type PartitionLag } from '../../lag.ts';
import { createTopics } from '../../topics.ts';
import { InvalidInputError } from '../../../core/errors.ts';

interface CommonFlags {
  config?: string;
  brokers?: string;
  client?: string;
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'settings file (JSON); environment variables override it')
    .option('--brokers <list>', 'bootstrap brokers host:port,... (env KAFKA_BROKERS; absent = embedded broker)')
    .option('--client <name>', 'Kafka client: platformatic | kafkajs (env KAFKA_CLIENT)');
}

export function settingsFrom(flags: CommonFlags, extra: SettingsInput = {}): Settings {
  const over: SettingsInput = { ...extra };
  if (flags.brokers !== undefined) {
    over.brokers = flags.brokers.split(',').map((b) => b.trim()).filter(Boolean);
  }
  if (flags.client !== undefined) over.client = flags.client as Settings['client'];
  return loadSettings({ configFile: flags.config, flags: over });
}

export function clientFor(settings: Settings): KafkaClient {
  const kind = settings.brokers.length === 0 ? 'embedded' : settings.client;
  return createKafkaClient(kind, {
    brokers: settings.brokers,
    clientId: settings.clientId,
    connectTimeoutMs: settings.connectTimeoutMs,
    requestTimeoutMs: settings.requestTimeoutMs,
  });
}

function requireRealBroker(settings: Settings, command: string): void {
  if (settings.brokers.length === 0) {
    throw new InvalidInputError('--brokers', `\`${command}\` needs a real cluster (the embedded broker lives inside a \`run\` process); set --brokers or KAFKA_BROKERS`);
  }
}

function formatLagTable(rows: PartitionLag[]): string {
  const header = ['GROUP', 'TOPIC', 'PARTITION', 'END-OFFSET', 'COMMITTED', 'LAG'];
  const body = rows.map((r) => [r.group, r.topic, String(r.partition), String(r.endOffset), r.committedOffset < 0 ? '-' : String(r.committedOffset), String(r.lag)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  return [header, ...body].map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}

export function registerKafkaCommands(program: Command): void {
  const topics = program.command('topics').description('manage the product\'s topics');
  addCommonOptions(
    topics
      .command('create')
      .description('create events/cookies (co-partitioned, cookies compacted), requests and DLQ topics; existing ones are kept and verified'),
  ).action(async (flags: CommonFlags) => {
    const settings = settingsFrom(flags);
    requireRealBroker(settings, 'topics create');
    const client = clientFor(settings);
    try {
      const admin = await client.admin();
      const specs = await createTopics(admin, settings);
      for (const s of specs) {
        process.stdout.write(`${s.name}\tpartitions=${s.partitions}${s.configs?.['cleanup.policy'] ? `\tcleanup.policy=${s.configs['cleanup.policy']}` : ''}\n`);
      }
    } finally {
      await client.close();
    }
  });

  addCommonOptions(
    program
      .command('lag')
      .description('consumer lag per group/topic/partition (end offset - committed offset)')
      .option('--format <format>', 'text | json', 'text'),
  ).action(async (flags: CommonFlags & { format: string }) => {
    if (!['text', 'json'].includes(flags.format)) throw new InvalidInputError('--format', `must be text or json, got "${flags.format}"`);
    const settings = settingsFrom(flags);
    requireRealBroker(settings, 'lag');
    const client = clientFor(settings);
    try {
      const admin = await client.admin();
      const rows = [
        ...(await computeLag(admin, settings.groups.processor, settings.topics.events)),
        ...(await computeLag(admin, settings.groups.dispatcher, settings.topics.requests)),
      ];
      process.stdout.write(flags.format === 'json' ? JSON.stringify(rows, null, 2) + '\n' : formatLagTable(rows));
    } finally {
      await client.close();
    }
  });
}
