/**
 * One server of the collector benchmark, in its own process (autocannon must not share its CPU):
 *   bare       fastify answering POST /collect with 204, nothing else (the ceiling);
 *   validate   the collector's app with a producer that acknowledges at once (all but Kafka);
 *   collector  the collector role on the broker of KAFKA_BROKERS (topic BENCH_TOPIC).
 * Prints `{"port":N}` on stdout once listening; SIGTERM stops it.
 */
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { silentLogger } from '../../core/log.ts';
import { loadSettings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { buildCollectorApp, createCollectorRole } from '../../runtime/roles/collector/index.ts';
import type { EventProducer } from '../../runtime/roles/collector/produce.ts';

const mode = process.argv[2] ?? 'bare';
const settings = loadSettings({
  env: {},
  flags: { brokers: (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean), topics: { events: process.env.BENCH_TOPIC ?? 'tracking.events' }, collector: { host: '127.0.0.1', port: 0, allowedOrigins: ['https://www.shop.example'] } },
});

async function main(): Promise<() => Promise<void>> {
  if (mode === 'bare') {
    const app = Fastify({ logger: false });
    app.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.post('/collect', async (_req, reply) => reply.code(204).send());
    await app.listen({ host: '127.0.0.1', port: 0 });
    print((app.server.address() as AddressInfo).port);
    return () => app.close();
  }
  if (mode === 'validate') {
    const producer = { inFlight: 0, produce: async () => ({ ok: true as const }) } as unknown as EventProducer;
    const app = await buildCollectorApp({ settings: settings.collector, producer, readiness: () => ({ ready: true, reasons: [] }), registry: new Registry(), logger: silentLogger() });
    await app.listen({ host: '127.0.0.1', port: 0 });
    print((app.server.address() as AddressInfo).port);
    return () => app.close();
  }
  const client = createKafkaClient('platformatic', { brokers: settings.brokers, clientId: 'bench-collector' });
  const role = createCollectorRole({ settings, client, registry: new Registry(), logger: silentLogger() });
  await role.start();
  print(role.address!.port);
  return async () => {
    await role.stop(5000);
    await client.close();
  };
}

function print(port: number): void {
  process.stdout.write(JSON.stringify({ port }) + '\n');
}

const stop = await main();
process.once('SIGTERM', () => {
  void stop().finally(() => process.exit(0));
});
