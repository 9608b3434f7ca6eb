/**
 * `npm run kafka [-- --port 9092 --data-dir ./.infra/kafka-data]`: a real single-node broker for
 * local runs, in the foreground; Ctrl-C stops it. Export KAFKA_BROKERS=<printed address> to point
 * the product or the test suite at it.
 */
import { Command } from 'commander';
import { startLocalBroker } from './broker.ts';

const program = new Command('kafka')
  .description('start a local single-node Kafka (KRaft) broker on 127.0.0.1')
  .option('--port <port>', 'broker port (default: a free port)', (v) => Number.parseInt(v, 10))
  .option('--data-dir <dir>', 'keep data in this folder (default: a temp dir removed on exit)')
  .option('--heap-mb <mb>', 'JVM max heap in MiB', (v) => Number.parseInt(v, 10), 768)
  .parse();

const opts = program.opts<{ port?: number; dataDir?: string; heapMb: number }>();
const broker = await startLocalBroker({ port: opts.port, dataDir: opts.dataDir, heapMb: opts.heapMb });
process.stderr.write(`Apache Kafka ${broker.version} (KRaft) listening on ${broker.brokers.join(',')}; log: ${broker.logFile}\n`);
process.stdout.write(`KAFKA_BROKERS=${broker.brokers.join(',')}\n`);
let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  broker.stop().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
