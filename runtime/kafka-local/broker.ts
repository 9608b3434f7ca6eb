/**
 * A real single-node Apache Kafka broker (KRaft, combined broker+controller) for tests and local
 * development, run from the jars that scripts/install-infra.sh resolves from Maven Central into
 * .infra/kafka/lib. Listens on 127.0.0.1 only, on free ports, with a small heap.
 *
 * Lifecycle guarantees: `stop()` sends SIGTERM, then SIGKILL after a grace period; a watchdog
 * process kills the JVM if this Node process dies without calling stop() (crash, kill -9,
 * interrupted test run), so no broker outlives its owner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBrokerError } from '../../core/errors.ts';

// Compiled, this file sits in dist/runtime/kafka-local: the jars are still the project's.
const HERE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROJECT_ROOT = basename(HERE_ROOT) === 'dist' ? dirname(HERE_ROOT) : HERE_ROOT;
export const DEFAULT_KAFKA_LIB = join(PROJECT_ROOT, '.infra', 'kafka', 'lib');

export interface LocalBrokerOptions {
  /** Folder with the Kafka jars. Default: .infra/kafka/lib of the project. */
  libDir?: string;
  /** Data folder; default a fresh temp dir, removed on stop. A given folder is kept (and reused). */
  dataDir?: string;
  /** Broker port on 127.0.0.1; default a free port. */
  port?: number;
  /** JVM max heap in MiB. Default 768. */
  heapMb?: number;
  /** Budget for the broker to report it started. Default 90 s (a cold JVM on 2 busy cores). */
  startTimeoutMs?: number;
  /** Extra broker settings (server.properties keys). */
  overrides?: Record<string, string>;
}

export interface LocalBroker {
  /** Bootstrap list, e.g. ['127.0.0.1:39092']. */
  brokers: string[];
  /** Apache Kafka version from the jar names, e.g. '4.1.1'. */
  version: string;
  dataDir: string;
  logFile: string;
  pid: number;
  stop(): Promise<void>;
}

export { LocalBrokerError };

export function kafkaVersion(libDir: string = DEFAULT_KAFKA_LIB): string {
  if (!existsSync(libDir)) {
    throw new LocalBrokerError(`Kafka jars not found in ${libDir}: run \`npm run infra\` (Maven Central) first`, { libDir });
  }
  const jar = readdirSync(libDir).find((f) => /^kafka_2\.13-.+\.jar$/.test(f));
  if (!jar) throw new LocalBrokerError(`no kafka_2.13-*.jar in ${libDir}: run \`npm run infra\``, { libDir });
  return jar.replace(/^kafka_2\.13-/, '').replace(/\.jar$/, '');
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

function brokerProperties(dataDir: string, port: number, controllerPort: number, overrides: Record<string, string>): string {
  const props: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': join(dataDir, 'data'),
    // A single node: every internal topic has one replica.
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '8',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'share.coordinator.state.topic.replication.factor': '1',
    'share.coordinator.state.topic.min.isr': '1',
    'num.partitions': '1',
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    // Tests create many groups; nobody waits for stragglers on one node.
    'group.initial.rebalance.delay.ms': '0',
    // Compacted topics (tracking.cookies) must really be compacted: cleaner on, small buffer.
    'log.cleaner.enable': 'true',
    'log.cleaner.dedupe.buffer.size': String(8 * 1024 * 1024),
    'log.cleaner.threads': '1',
    'log.cleaner.backoff.ms': '1000',
    'auto.create.topics.enable': 'false',
    'delete.topic.enable': 'true',
    'num.network.threads': '2',
    'num.io.threads': '4',
    ...overrides,
  };
  return Object.entries(props).map(([k, v]) => `${k}=${v}`).join('\n') + '\n';
}

const LOG4J2_PROPERTIES = `
status = error
name = tagstream-local-kafka
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = \${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = INFO
`;

function runJava(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('java', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, output }));
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolveConnect) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolveConnect(true);
    });
    socket.once('error', () => resolveConnect(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolveConnect(false);
    });
  });
}

/** Kills `pid` with SIGKILL as soon as this process's end of the pipe closes (we died). */
function spawnWatchdog(pid: number): ChildProcess {
  const watchdog = spawn('sh', ['-c', `cat >/dev/null; kill -9 ${pid} 2>/dev/null`], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
  });
  watchdog.unref();
  return watchdog;
}

export async function startLocalBroker(options: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const libDir = options.libDir ?? DEFAULT_KAFKA_LIB;
  const version = kafkaVersion(libDir);
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tagstream-kafka-'));
  mkdirSync(dataDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const controllerPort = await freePort();
  const propsFile = join(dataDir, 'server.properties');
  const log4jFile = join(dataDir, 'log4j2.properties');
  const logFile = join(dataDir, 'server.log');
  writeFileSync(propsFile, brokerProperties(dataDir, port, controllerPort, options.overrides ?? {}));
  writeFileSync(log4jFile, LOG4J2_PROPERTIES);

  const heap = options.heapMb ?? 768;
  const jvm = [
    `-Xms128m`,
    `-Xmx${heap}m`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${log4jFile}`,
    `-Dkafka.logs.dir=${dataDir}`,
    '-cp',
    `${libDir}/*`,
  ];

  const metaProps = join(dataDir, 'data', 'meta.properties');
  if (!existsSync(metaProps)) {
    const clusterId = randomBytes(16).toString('base64url').slice(0, 22);
    // `--cluster-id=ID`, not `--cluster-id ID`: an id starting with '-' (1 in 64) would parse as a flag.
    const format = await runJava([...jvm, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '--config', propsFile, '--ignore-formatted'], dataDir);
    if (format.code !== 0) {
      throw new LocalBrokerError(`formatting KRaft storage failed (exit ${format.code}): ${format.output.trim().slice(0, 600)}`, { dataDir });
    }
  }

  const child = spawn('java', [...jvm, 'kafka.Kafka', propsFile], { cwd: dataDir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const pid = child.pid;
  if (pid === undefined) throw new LocalBrokerError('could not spawn java (is a JDK 17+ on the PATH?)');
  const watchdog = spawnWatchdog(pid);

  let exited = false;
  const exitPromise = new Promise<void>((resolveExit) => {
    child.once('exit', () => {
      exited = true;
      resolveExit();
    });
  });
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exitPromise;
      clearTimeout(timer);
    }
    watchdog.stdin?.end();
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new LocalBrokerError(`Kafka broker exited during start-up: ${stderr.trim().slice(-800)}`, { logFile });
    }
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    if (/Kafka Server started|\[KafkaRaftServer nodeId=1\] Kafka Server started/.test(log) && (await canConnect(port))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new LocalBrokerError(`Kafka broker did not start within ${options.startTimeoutMs ?? 90_000} ms`, { logFile, tail: log.slice(-800) });
    }
    await new Promise((r) => setTimeout(r, 250));
  }

  return { brokers: [`127.0.0.1:${port}`], version, dataDir, logFile, pid, stop };
}
