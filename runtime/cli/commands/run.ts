/**
 * `run [roles...]` (DESIGN.md "Commands"): the named roles in this process, behind one HTTP
 * endpoint (/health, /ready, /metrics on metrics.host:metrics.port), composed by
 * runtime/roles/compose.ts. Only the processor exists today; collector and dispatcher exit 2.
 *
 * Everything that can be wrong with the input fails before a broker or a browser starts; then the
 * topics are created (embedded broker) or verified (a cluster), then the roles start.
 */
import type { Command } from 'commander';
import { register } from 'prom-client';
import { InvalidInputError } from '../../../core/errors.ts';
import { createRootLogger } from '../../../core/log.ts';
import { executorMetrics } from '../../../processors/executor/index.ts';
import { createBrokerProbe } from '../../roles/broker-probe.ts';
import { startRoles } from '../../roles/compose.ts';
import { loadPartners } from '../../roles/partners.ts';
import { createProcessorRole } from '../../roles/processor.ts';
import { createTopics, verifyTopics } from '../../topics.ts';
import { clientFor, settingsFrom } from './kafka.ts';

interface RunFlags {
  config?: string;
  brokers?: string;
  client?: string;
  partners?: string;
  allowPrivateNetwork?: boolean;
}

const KNOWN_ROLES = ['collector', 'processor', 'dispatcher', 'all'];

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run roles in this process: processor today (collector and dispatcher are not implemented yet); none named = every available role')
    .argument('[roles...]', 'processor | all | collector | dispatcher')
    .option('--config <file>', 'settings file (JSON); environment variables override it')
    .option('--brokers <list>', 'bootstrap brokers host:port,... (env KAFKA_BROKERS; absent = embedded broker)')
    .option('--client <name>', 'Kafka client: platformatic | kafkajs (env KAFKA_CLIENT)')
    .option('--partners <file>', 'partner (tag) configurations, JSON array (env PARTNERS_FILE); required by the processor')
    .option('--allow-private-network', 'development and tests: the executor may reach loopback and private addresses (env EXECUTOR_ALLOW_PRIVATE_NETWORK)')
    .action(async (roles: string[], flags: RunFlags) => runCommand(roles, flags));
}

async function runCommand(roles: string[], flags: RunFlags): Promise<void> {
  for (const r of roles) if (!KNOWN_ROLES.includes(r)) throw new InvalidInputError('roles', `unknown role "${r}" (expected ${KNOWN_ROLES.join(', ')})`);
  const missing = roles.filter((r) => r === 'collector' || r === 'dispatcher');
  if (missing.length > 0) {
    throw new InvalidInputError('roles', `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not implemented yet (available: processor)`);
  }
  const settings = settingsFrom(flags, {
    ...(flags.partners === undefined ? {} : { processor: { partners: flags.partners } }),
    ...(flags.allowPrivateNetwork === true ? { executor: { allowPrivateNetwork: true } } : {}),
  });
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
    executorMetrics(); // registered lazily by the first event; /metrics lists them from the start
    const processor = createProcessorRole({ settings, client, partners, registry: register, logger: root });
    const running = await startRoles([processor], {
      metrics: settings.metrics,
      // The default registry: the executor's metrics live there too (one /metrics for the process).
      registry: register,
      sources: [createBrokerProbe({ client, logger: root.child({ component: 'broker-probe' }) })],
      logger: log,
    });
    // Resolves after SIGTERM/SIGINT stopped everything; rejects (exit 1) when a role failed.
    await running.closed;
  } finally {
    await client.close();
  }
}
