/**
 * Dispatcher benchmark (issue 15 "Benchmark"): requests/s delivered to local HTTPS sinks by the
 * dispatcher on the real broker, against a raw loop of undici requests to the same sink in the
 * same run (same concurrency, same TLS); and the healthy partners' rate with one of three
 * partners down (answering 503) against all three up.
 *
 *   node --import tsx bench/dispatcher/run.ts              # starts a local broker
 *   KAFKA_BROKERS=127.0.0.1:9092 node --import tsx bench/dispatcher/run.ts
 *   env: BENCH_REQUESTS (3000), BENCH_ROUNDS (2), BENCH_CONCURRENCY (64)
 */
import { Agent, request } from 'undici';
import type { LookupFunction } from 'node:net';
import { Registry } from 'prom-client';
import { parsePartners, type PartnerConfigInput } from '../../core/contracts/index.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { startLocalBroker, type LocalBroker } from '../../runtime/kafka-local/broker.ts';
import { startDispatcher } from '../../runtime/roles/dispatcher.ts';
import { fakePartner, makeCert, requestRecord, type FakePartner, type TestCert } from '../../test/dispatcher/helpers.ts';
import { createDispatcherTopics, dispatcherSettings, names } from '../../test/dispatcher/setup.ts';

const N = Number(process.env.BENCH_REQUESTS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const HOSTS = ['collect.partner-a.example', 'collect.partner-b.example', 'collect.partner-c.example'] as const;

/** Delivered per second between the first and the last 2xx of `sinks`, polled until `count` arrived. */
async function rateOf(sinks: FakePartner[], count: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let first = 0;
  for (;;) {
    const n = sinks.reduce((s, p) => s + p.delivered().size, 0);
    if (n > 0 && first === 0) first = Date.now();
    if (n >= count) return Math.round((n / Math.max(1, Date.now() - first)) * 1000);
    if (Date.now() - started > timeoutMs) throw new Error(`only ${n} of ${count} delivered`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function raw(cert: TestCert, sink: FakePartner): Promise<number> {
  const lookup: LookupFunction = (_h, o, cb) => (o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4));
  const agent = new Agent({ connect: { ca: cert.cert, lookup }, connections: 32 });
  let next = 0;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) {
      const i = next++;
      const res = await request(`https://${HOSTS[0]}:${sink.port}/hit?k=raw-${i}`, { dispatcher: agent, headers: { 'user-agent': 'bench' } });
      await res.body.dump();
    }
  }));
  const rps = Math.round((N / (Date.now() - t0)) * 1000);
  await agent.close();
  return rps;
}

async function dispatcherRun(brokers: string[], cert: TestCert, sinks: FakePartner[], healthyCount: number): Promise<number> {
  const { topics, group } = names(`bench-disp-${Date.now().toString(36)}`);
  const client = createKafkaClient('platformatic', { brokers, clientId: 'bench-dispatcher' });
  await createDispatcherTopics(client, topics);
  const partners: PartnerConfigInput[] = sinks.map((_, i) => ({ id: `p${i}`, html: '', captureHosts: [HOSTS[i] ?? ''], delivery: { concurrency: CONCURRENCY, timeoutMs: 2_000 } }));
  const producer = await client.producer();
  const records = Array.from({ length: N }, (_, i) => requestRecord(`r-${i}`, `p${i % sinks.length}`, `https://${HOSTS[i % sinks.length]}/hit`));
  for (let i = 0; i < records.length; i += 500) {
    await producer.send(records.slice(i, i + 500).map((r) => ({ topic: topics.requests, key: String(r.userId), value: JSON.stringify(r) })));
  }
  await producer.close();
  const d = await startDispatcher({
    settings: dispatcherSettings(topics, group),
    dispatcher: { allowPrivateNetwork: true, concurrency: CONCURRENCY * 2, resolve: sinks.map((s, i) => `${HOSTS[i]}:443=127.0.0.1:${s.port}`), topics: { retry: topics.retry, delivered: topics.delivered }, inMemoryBudgetMs: 500, inMemoryAttempts: 2 },
    client,
    partners: parsePartners(partners),
    ca: cert.cert,
    registry: new Registry(),
  });
  try {
    const healthy = sinks.slice(0, healthyCount);
    const expected = records.filter((_, i) => i % sinks.length < healthyCount).length;
    return await rateOf(healthy, expected, 120_000);
  } finally {
    await d.stop(5_000);
    await client.close();
  }
}

async function main(): Promise<void> {
  let broker: LocalBroker | undefined;
  let brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
  if (brokers.length === 0) {
    broker = await startLocalBroker();
    brokers = broker.brokers;
  }
  const cert = makeCert([...HOSTS]);
  const rows: string[] = [];
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      const fresh = async (): Promise<FakePartner[]> => Promise.all(HOSTS.map(() => fakePartner(cert)));
      let sinks = await fresh();
      const rawRps = await raw(cert, sinks[0] as FakePartner);
      await Promise.all(sinks.map((s) => s.close()));
      sinks = [await fakePartner(cert)];
      const single = await dispatcherRun(brokers, cert, sinks, 1);
      await Promise.all(sinks.map((s) => s.close()));
      sinks = await fresh();
      const allUp = await dispatcherRun(brokers, cert, sinks, 2);
      await Promise.all(sinks.map((s) => s.close()));
      sinks = await fresh();
      (sinks[2] as FakePartner).behaviour = () => ({ status: 503 });
      const oneDown = await dispatcherRun(brokers, cert, sinks, 2);
      await Promise.all(sinks.map((s) => s.close()));
      rows.push(`| ${round + 1} | ${rawRps} | ${single} | ${(single / rawRps).toFixed(2)} | ${allUp} | ${oneDown} | ${(oneDown / allUp).toFixed(2)} |`);
      process.stderr.write(`${rows.at(-1) ?? ''}\n`);
    }
  } finally {
    await broker?.stop();
  }
  console.log(`dispatcher benchmark ${new Date().toISOString()}: ${N} requests, concurrency ${CONCURRENCY}`);
  console.log('| round | raw undici req/s | dispatcher req/s | ratio | healthy A+B req/s, all up | healthy A+B req/s, C down (503) | ratio |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
