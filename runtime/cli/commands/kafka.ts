/**
 * Commands that talk to Kafka: `topics create` here; `run`, `lag`, `erase`, `dlq redrive` in their
 * own files, through the helpers below (settings, client, the flags every one of them takes).
 * Times and durations of their flags are parsed by runtime/operator/time.ts (one syntax for all).
 * All read the same settings (runtime/config.ts): defaults < --config file < environment < flags.
 */
import type { Command } from 'commander';
import { loadSettings, type Settings, type SettingsInput } from '../../config.ts';
import { createKafkaClient } from '../../kafka/index.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { createTopics } from '../../topics.ts';
import { InvalidInputError } from '../../../core/errors.ts';

export interface CommonFlags {
  config?: string;
  brokers?: string;
  client?: string;
}

export function addCommonOptions(cmd: Command): Command {
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

export function requireRealBroker(settings: Settings, command: string): void {
  if (settings.brokers.length === 0) {
    throw new InvalidInputError('--brokers', `\`${command}\` needs a real cluster (the embedded broker lives inside a \`run\` process); set --brokers or KAFKA_BROKERS`);
  }
}

export function registerKafkaCommands(program: Command): void {
  const topics = program.command('topics').description('manage the product\'s topics');
  addCommonOptions(
    topics
      .command('create')
      .description('create events/cookies (co-partitioned, cookies compacted), requests and DLQ topics; existing ones are kept and verified')
      .addHelpText('after', '\nExample:\n  $ KAFKA_BROKERS=kafka-1:9092 tagstream topics create\n'),
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
}

/** An integer flag of at least `min`. */
export function parseCount(flag: string, text: string, min = 0): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min) throw new InvalidInputError(flag, `must be an integer >= ${min}, got "${text}"`);
  return Number(text);
}
