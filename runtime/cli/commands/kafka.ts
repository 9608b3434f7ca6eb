/**
 * Commands that talk to Kafka: `run` (the processor role, runtime/app/), `topics create`, `lag`. All read the same settings
 * (runtime/config.ts): defaults < --config file < environment < flags.
 */
import type { Command } from 'commander';
import { loadSettings, type Settings, type SettingsInput } from '../../config.ts';
import { createKafkaClient } from '../../kafka/index.ts';
import type { KafkaClient } from '../../kafka/types.ts';
import { computeLag, type PartitionLag } from '../../lag.ts';
import { createRootLogger } from '../../../core/log.ts';
import { startMetricsServer, type MetricsServer } from '../../metrics-server.ts';
import { createTopics, verifyTopics } from '../../topics.ts';
import { InvalidInputError } from '../../../core/errors.ts';
import { register } from 'prom-client';
import { createExecutor, executorMetrics } from '../../../processors/executor/index.ts';
import { loadPartners, poolExecutor, startProcessor, type ProcessorHandle } from '../../app/index.ts';
import { onShutdownSignals } from '../../runner/index.ts';

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

  addCommonOptions(
    program
      .command('run')
      .description('run roles in this process: processor today (collector and dispatcher are not implemented yet); none named = every available role')
      .argument('[roles...]', 'processor | all | collector | dispatcher')
      .option('--partners <file>', 'partner (tag) configurations, JSON array (env PARTNERS_FILE); required by the processor'),
  ).action(async (roles: string[], flags: CommonFlags & { partners?: string }) => {
    const known = ['collector', 'processor', 'dispatcher', 'all'];
    for (const r of roles) if (!known.includes(r)) throw new InvalidInputError('roles', `unknown role "${r}" (expected ${known.join(', ')})`);
    const missing = roles.filter((r) => r === 'collector' || r === 'dispatcher');
    if (missing.length > 0) {
      throw new InvalidInputError('roles', `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not implemented yet (available: processor)`);
    }
    const settings = settingsFrom(flags, flags.partners === undefined ? {} : { processor: { partners: flags.partners } });
    // Everything that can be wrong with the input fails here, before a broker or a browser starts.
    const partnersFile = settings.processor.partners;
    if (partnersFile === undefined) {
      throw new InvalidInputError('--partners', 'the processor needs the partner configurations: --partners partners.json (or PARTNERS_FILE)');
    }
    const partners = await loadPartners(partnersFile);
    const root = createRootLogger();
    const log = root.child({ component: 'run' });
    if (roles.length === 0 || roles.includes('all')) {
      log.info({ running: ['processor'], unavailable: ['collector', 'dispatcher'] }, 'collector and dispatcher are not available yet: running the processor only');
    }

    const client = clientFor(settings);
    let pool: Awaited<ReturnType<typeof createExecutor>> | undefined;
    let processor: ProcessorHandle | undefined;
    let metricsServer: MetricsServer | undefined;
    try {
      const admin = await client.admin();
      try {
        if (client.kind === 'embedded') await createTopics(admin, settings);
        else await verifyTopics(admin, settings);
      } finally {
        await admin.close();
      }
      log.info(
        { kafka: client.kind, brokers: settings.brokers, topics: settings.topics, partners: partners.map((p) => p.id) },
        client.kind === 'embedded' ? 'started on the embedded in-process broker' : 'connected to Kafka',
      );
      pool = await createExecutor({
        browsers: settings.executor.browsers,
        pagesPerBrowser: settings.executor.pagesPerBrowser,
        headless: settings.executor.headless,
        allowPrivateNetwork: settings.executor.allowPrivateNetwork,
        ...(settings.executor.sandbox === undefined ? {} : { sandbox: settings.executor.sandbox }),
        logger: root,
      });
      // The default registry: the executor's metrics live there too (one /metrics for the process).
      processor = await startProcessor({ settings, client, executor: poolExecutor(pool, partners), registry: register, logger: root });
      if (settings.metrics.port !== 0) {
        executorMetrics(); // registered lazily by the first event; the endpoint lists them from the start
        metricsServer = await startMetricsServer(register, settings.metrics);
        log.info({ metrics: `http://${metricsServer.address.host}:${metricsServer.address.port}/metrics` }, 'metrics endpoint listening');
      }
    } catch (error) {
      await Promise.allSettled([processor?.stop(), pool?.close()]);
      await client.close();
      throw error;
    }

    const running = processor;
    const browsers = pool;
    let exitCode = 0;
    const signalled = new Promise<void>((resolveStop) => {
      onShutdownSignals(
        async () => {
          await running.stop();
        },
        {
          logger: log,
          exit: (code) => {
            // A second signal: the operator insists; what is not committed is processed again later.
            if (code === 130) process.exit(130);
            exitCode = code;
            resolveStop();
          },
        },
      );
    });
    try {
      // Either a signal stopped it gracefully, or the processor failed on its own (closed rejects).
      await Promise.race([signalled, running.closed]);
    } finally {
      await running.stop().catch(() => undefined);
      await metricsServer?.close();
      await browsers.close();
      await client.close();
    }
    await running.closed;
    if (exitCode !== 0) process.exitCode = exitCode;
  });
}
