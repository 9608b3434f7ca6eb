/**
 * `run [roles...]` (DESIGN.md "Commands"): the named roles in this process, behind one HTTP
 * endpoint (/health, /ready, /metrics on metrics.host:metrics.port), composed by
 * runtime/roles/compose.ts: collector, processor, dispatcher. Whatever order they are named in,
 * the collector starts last and stops first: intake ends before the roles behind it drain.
 *
 * Everything that can be wrong with the input fails before a broker or a browser starts; then the
 * topics are created (embedded broker) or verified (a cluster), then the roles start.
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../../core/errors.ts';
import { createRootLogger } from '../../../core/log.ts';
import { executorMetrics } from '../../../processors/executor/index.ts';
import { createBrokerProbe } from '../../roles/broker-probe.ts';
import { startRoles } from '../../roles/compose.ts';
import { loadPartners } from '../../roles/partners.ts';
import { startRunExtras, type RunExtras } from '../../demo/launch.ts';
import { createProcessorRole } from '../../roles/processor.ts';
import { createDispatcherRole } from '../../roles/dispatcher.ts';
import { createCollectorRole } from '../../roles/collector/index.ts';
import type { RunningRoles } from '../../roles/compose.ts';
import type { Role } from '../../roles/role.ts';
import { createTopics, verifyTopics } from '../../topics.ts';
import { clientFor, settingsFrom } from './kafka.ts';
import { createProcessRegistry } from '../../metrics/registry.ts';
import { startLagMetrics, type LagMetrics, type LagTarget } from '../../metrics/lag.ts';
import { dispatcherTopics, retryGroupOf } from '../../roles/dispatcher-settings.ts';

interface RunFlags {
  config?: string;
  brokers?: string;
  client?: string;
  partners?: string;
  allowPrivateNetwork?: boolean;
  collectorPort?: string;
  demo?: boolean;
  instanceId?: string;
}

const KNOWN_ROLES = ['collector', 'processor', 'dispatcher', 'all'];
/** The roles that exist, in start order (the collector last: it stops first). */
const AVAILABLE_ROLES = ['processor', 'dispatcher', 'collector'] as const;
type AvailableRole = (typeof AVAILABLE_ROLES)[number];

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run roles in this process: collector, processor, dispatcher; none named = all of them')
    .argument('[roles...]', 'collector | processor | all | dispatcher')
    .option('--config <file>', 'settings file (JSON); environment variables override it')
    .option('--brokers <list>', 'bootstrap brokers host:port,... (env KAFKA_BROKERS; absent = embedded broker)')
    .option('--client <name>', 'Kafka client: platformatic | kafkajs (env KAFKA_CLIENT)')
    .option('--partners <file>', 'partner (tag) configurations, JSON array (env PARTNERS_FILE); required by the processor and the dispatcher')
    .option('--collector-port <n>', 'port of the collector (env COLLECTOR_PORT; default 8080; 0 = a free port, printed in the log)')
    .option('--instance-id <name>', 'stable name of this process: static membership in the consumer groups, so a restart resumes its partitions at once (env INSTANCE_ID; platformatic client)')
    .option('--demo', 'the demo of npm start: a demo shop, demo partners (real tracker SDKs from npm) and a partner inbox on 127.0.0.1, with loopback allowed (env DEMO_ENABLED; docs/console.md)')
    .option('--allow-private-network', 'development and tests: the executor and the dispatcher may reach loopback and private addresses (env EXECUTOR_ALLOW_PRIVATE_NETWORK, DISPATCHER_ALLOW_PRIVATE_NETWORK)')
    .action(async (roles: string[], flags: RunFlags) => runCommand(roles, flags));
}

async function runCommand(roles: string[], flags: RunFlags): Promise<void> {
  for (const r of roles) if (!KNOWN_ROLES.includes(r)) throw new InvalidInputError('roles', `unknown role "${r}" (expected ${KNOWN_ROLES.join(', ')})`);
  const all = roles.length === 0 || roles.includes('all');
  const wanted: AvailableRole[] = AVAILABLE_ROLES.filter((r) => all || roles.includes(r));
  const given = settingsFrom(flags, {
    ...(flags.partners === undefined ? {} : { processor: { partners: flags.partners } }),
    ...(flags.allowPrivateNetwork === true ? { executor: { allowPrivateNetwork: true }, dispatcher: { allowPrivateNetwork: true } } : {}),
    ...(flags.collectorPort === undefined ? {} : { collector: { port: Number(flags.collectorPort) } }),
    ...(flags.demo === true ? { demo: { enabled: true } } : {}),
    ...(flags.instanceId === undefined ? {} : { instanceId: flags.instanceId }),
  });
  const partnersFile = given.processor.partners;
  const needsPartners = wanted.includes('processor') || wanted.includes('dispatcher');
  if (needsPartners && partnersFile === undefined && !given.demo.enabled) {
    throw new InvalidInputError('--partners', `the ${wanted.includes('processor') ? 'processor' : 'dispatcher'} needs the partner configurations: --partners partners.json (or PARTNERS_FILE)`);
  }
  const root = createRootLogger();
  const log = root.child({ component: 'run' });
  // The demo (--demo) and the console start before the roles (runtime/demo/launch.ts).
  const extras: RunExtras = await startRunExtras(given, { logger: root, partners: async () => (partnersFile === undefined || !needsPartners ? [] : loadPartners(partnersFile)) });
  const { settings, partners } = extras;

  const client = clientFor(settings);
  // The process's one registry, passed to every role and served on /metrics (docs/metrics.md).
  const registry = createProcessRegistry();
  let lag: LagMetrics | undefined;
  try {
    const admin = await client.admin();
    try {
      // The demo on a cluster creates what is missing, as on the embedded broker (`npm start -- --brokers …`).
      if (client.kind === 'embedded' || settings.demo.enabled) await createTopics(admin, settings);
      else await verifyTopics(admin, settings);
    } finally {
      await admin.close();
    }
    log.info(
      { kafka: client.kind, brokers: settings.brokers, topics: settings.topics, partners: partners.map((p) => p.id) },
      client.kind === 'embedded' ? 'started on the embedded in-process broker' : 'connected to Kafka',
    );
    // Filled once the composition exists: the collector's port asks it for the process's readiness.
    const composed: { running?: RunningRoles } = {};
    const started: Role[] = wanted.map((name) => {
      if (name === 'collector') {
        // This port's /ready is the process's (broker probe, other roles, draining), as the metrics port's.
        return createCollectorRole({ settings, client, registry, logger: root, readiness: () => composed.running?.readiness() });
      }
      if (name === 'dispatcher') return createDispatcherRole({ settings, client, partners, registry, logger: root, ...extras.dispatcher });
      executorMetrics(registry); // registered lazily by the first event; /metrics lists them from the start
      return createProcessorRole({ settings, client, partners, registry, logger: root, ...extras.processor });
    });
    // Consumer lag of the groups this process runs, computed on scrape (runtime/metrics/lag.ts).
    lag = startLagMetrics({ registry, client, targets: lagTargets(settings, wanted), lagSeconds: client.kind !== 'kafkajs', logger: root.child({ component: 'lag' }) });
    const running = await startRoles(started, {
      metrics: settings.metrics,
      registry,
      sources: [createBrokerProbe({ client, logger: root.child({ component: 'broker-probe' }) })],
      logger: log,
    });
    composed.running = running;
    extras.announce(running.address, () => running.readiness());
    // Resolves after SIGTERM/SIGINT stopped everything; rejects (exit 1) when a role failed.
    await running.closed;
  } finally {
    await lag?.close();
    await client.close();
    await extras.close();
  }
}

/** The groups and topics whose lag this process exports: those of the roles it runs. */
function lagTargets(settings: ReturnType<typeof settingsFrom>, roles: readonly AvailableRole[]): LagTarget[] {
  const targets: LagTarget[] = [];
  if (roles.includes('processor')) targets.push({ group: settings.groups.processor, topic: settings.topics.events });
  if (roles.includes('dispatcher')) {
    targets.push({ group: settings.groups.dispatcher, topic: settings.topics.requests });
    // The retry consumer's lag is what waits for its time (by design), apart from the backlog.
    targets.push({ group: retryGroupOf(settings.groups.dispatcher), topic: dispatcherTopics(settings.topics.requests, settings.dispatcher).retry });
  }
  return targets;
}
