/**
 * Framework overhead (docs/processor.md "Benchmark: framework overhead"): events/s through a topology with a no-op processor,
 * run by the StreamRunner (decode → engine → encode → produce → watermark commit), versus a raw
 * consume → produce → commit loop on the same client, the same broker, in the same run.
 * Target: topology / raw ≥ 0.80.
 *
 *   npm run build; node --max-semi-space-size=32 dist/bench/framework-overhead.js   # compiled, as production runs (docker/Dockerfile runs dist/)
 *   npm run bench:framework                          # the same through tsx (TypeScript transpiled at load: slower per record)
 *   BENCH_EVENTS=20000 BENCH_ROUNDS=5 npm run bench:framework
 *   BENCH_EMBEDDED=1 npm run bench:framework         # also on the embedded broker
 *   KAFKA_BROKERS=host:port npm run bench:framework  # an external broker instead of starting one
 *
 * Both sides read the same pre-filled input topic (each with its own group) and write their own
 * output topic. Time runs from the first record received to the last output acknowledged (group
 * join and the final commit excluded, the same way for both). Rounds alternate which side goes
 * first; the report gives median [min–max] over the rounds of events/s and of process CPU per
 * event (process.cpuUsage over the same window: less sensitive than events/s to a busy machine),
 * and the per-round ratios (the two sides of a round run back to back, under similar load).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { DEFAULT_KAFKA_LIB, startLocalBroker, type LocalBroker } from '../runtime/kafka-local/broker.ts';
import { createKafkaClient } from '../runtime/kafka/index.ts';
import { EmbeddedKafka, createEmbeddedClient } from '../runtime/kafka/embedded/index.ts';
import type { CommitOffset, ConsumedRecord, KafkaClient, ProduceRecord } from '../runtime/kafka/types.ts';
import { createRootLogger } from '../core/log.ts';
import { BatchingProducer } from '../runtime/streams/batching-producer.ts';
import { createRunner } from '../runtime/runner/index.ts';
import { TopologyEngine, topology } from '../topology/index.ts';
import { InMemoryStoreProvider } from '../state/index.ts';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 6);
/** Runner concurrency (its default is 16; a no-op step is latency-bound, so more keys in flight = more throughput). */
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 256);
/** `batching` (default): the processor's BatchingProducer under the runner; `plain`: the runner's own producer. */
const PRODUCER = process.env.BENCH_PRODUCER === 'plain' ? 'plain' : 'batching';
const RUNNER_ONLY = process.env.BENCH_HANDLER === 'runner';
const JSON_ONLY = process.env.BENCH_HANDLER === 'json';
/** Distinct keys (users) the events cycle through. */
const USERS = Number(process.env.BENCH_USERS ?? 1000);
/**
 * Unmeasured rounds of each side before the measured ones (default 1): without it the first
 * topology round runs on cold JIT code (its runner/engine code is used for the first time, while
 * the raw loop's client code was already warmed by the fill), measured ~30 % slower than later rounds.
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const TIMEOUT_MS = 180_000;
const log = createRootLogger({ level: process.env.LOG_LEVEL ?? 'warn' }).child({ component: 'bench' });

interface Measure {
  events: number;
  ms: number;
  perSecond: number;
  /** Process CPU time (user + system) over wall time of the measured window; 1 = one core busy. */
  cpu: number;
  /** Process CPU time per event in µs (less sensitive to a busy machine than events/s). */
  cpuUsPerEvent: number;
  /** Produce requests in the window and records per request (the batching each side achieved). */
  requests: number;
}

/** How this file runs: compiled JavaScript (dist/, as docker/Dockerfile runs the product) or TypeScript through tsx. */
const BUILD = import.meta.url.endsWith('.js') ? 'compiled build (dist/)' : 'tsx (TypeScript transpiled at load)';

/** BENCH_PROFILE=file.cpuprofile: a CPU profile of the topology's measured window only. */
async function profiler(): Promise<{ start(): void; stop(): Promise<void> }> {
  const file = process.env.BENCH_PROFILE;
  if (!file) return { start: () => undefined, stop: async () => undefined };
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  return {
    start: () => void session.post('Profiler.start'),
    stop: async () => {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** CPU of this process between two points (the broker is another process), in ms. */
function cpuMeter(): { start(): void; stop(): number } {
  let at = process.cpuUsage();
  return {
    start: () => {
      at = process.cpuUsage();
    },
    stop: () => {
      const d = process.cpuUsage(at);
      return (d.user + d.system) / 1000;
    },
  };
}

function measure(events: number, ms: number, cpuMs: number, requests: number): Measure {
  return { events, ms, perSecond: (events / ms) * 1000, cpu: cpuMs / ms, cpuUsPerEvent: (cpuMs * 1000) / events, requests };
}

function eventValue(i: number): string {
  // About the size of a real page-view event's envelope (DESIGN.md "Contracts"), trimmed.
  return JSON.stringify({
    eventId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    userId: `user-${i % USERS}`,
    timestamp: new Date(1_795_900_000_000 + i).toISOString(),
    type: 'page_view',
    page: { url: `https://shop.example/p/${i % 500}?utm_source=bench`, referrer: 'https://www.google.com/', title: 'Product' },
    consent: { analytics: true, advertising: false },
  });
}

async function fill(client: KafkaClient, topic: string): Promise<void> {
  const producer = await client.producer();
  try {
    for (let sent = 0; sent < EVENTS; ) {
      const batch: ProduceRecord[] = [];
      for (let j = 0; j < 1000 && sent < EVENTS; j += 1, sent += 1) batch.push({ topic, key: `user-${sent % USERS}`, value: eventValue(sent) });
      await producer.send(batch);
    }
  } finally {
    await producer.close();
  }
}

/** The baseline: what one would write by hand with the same client. */
async function raw(client: KafkaClient, input: string, output: string, groupId: string): Promise<Measure> {
  const producer = await client.producer();
  const consumer = client.consumer({ groupId, topics: [input], autoOffsetReset: 'earliest' });
  let first = 0;
  let done = 0;
  let last = 0;
  const cpu = cpuMeter();
  let cpuMs = 0;
  let requests = 0;
  try {
    await consumer.start({
      onRecords: async (records: ConsumedRecord[]) => {
        if (first === 0) {
          first = performance.now();
          cpu.start();
        }
        // One produce request per delivery (up to 500 records): the batching a hand-written loop gets for free.
        if (last === 0) requests += 1;
        await producer.send(records.map((r) => ({ topic: output, key: r.key, value: r.value })));
        const next = new Map<number, number>();
        for (const r of records) next.set(r.partition, r.offset + 1);
        const offsets: CommitOffset[] = [...next].map(([partition, offset]) => ({ topic: input, partition, offset }));
        done += records.length;
        if (done >= EVENTS && last === 0) {
          last = performance.now();
          cpuMs = cpu.stop();
        }
        await consumer.commit(offsets);
      },
    });
    const deadline = Date.now() + TIMEOUT_MS;
    while (done < EVENTS && Date.now() < deadline) await sleep(5);
    if (done < EVENTS) throw new Error(`raw loop: ${done}/${EVENTS} events in ${TIMEOUT_MS} ms`);
  } finally {
    await consumer.close();
    await producer.close();
  }
  return measure(done, last - first, cpuMs, requests);
}

/** The framework: a topology with a no-op process() step, run by the StreamRunner. */
async function framework(client: KafkaClient, input: string, output: string, groupId: string): Promise<Measure> {
  const b = topology();
  b.stream<unknown>(input)
    .process('noop', (value) => Promise.resolve(value), { concurrency: CONCURRENCY })
    .to(output);
  const engine = new TopologyEngine(b.build(), { stores: new InMemoryStoreProvider() });
  let first = 0;
  const cpu = cpuMeter();
  const prof = await profiler();
  let cpuMs = 0;
  let requestsAtStart = 0;
  const producer = PRODUCER === 'batching' ? new BatchingProducer(await client.producer(), { maxInFlight: Number(process.env.BENCH_IN_FLIGHT ?? 1) }) : undefined;
  const runner = createRunner({
    client,
    ...(producer === undefined ? {} : { producer }),
    groupId,
    topic: input,
    concurrency: CONCURRENCY,
    ...(process.env.BENCH_COMMIT_INTERVAL_MS === undefined ? {} : { commitIntervalMs: Number(process.env.BENCH_COMMIT_INTERVAL_MS) }),
    ...(process.env.BENCH_MAX_BUFFERED === undefined ? {} : { maxBuffered: Number(process.env.BENCH_MAX_BUFFERED) }),
    registry: new Registry(),
    logger: log,
    handler: (record) => {
      if (first === 0) {
        first = performance.now();
        cpu.start();
        prof.start();
        requestsAtStart = producer?.stats.requests ?? 0;
      }
      // BENCH_HANDLER=runner: the runner alone (bytes passed through), to split runner and engine costs.
      if (RUNNER_ONLY) return [{ topic: output, key: record.key, value: record.value }];
      // BENCH_HANDLER=json: the runner plus the JSON decode/encode the topology's serdes do.
      if (JSON_ONLY) return [{ topic: output, key: record.key, value: JSON.stringify(JSON.parse(record.value!.toString('utf8'))) }];
      return engine.handle(record);
    },
  });
  let last = 0;
  let requests = NaN;
  try {
    await runner.start();
    const debug = process.env.BENCH_DEBUG === '1' ? setInterval(() => {
      const st = runner.status();
      process.stderr.write(`  processed ${st.processed} inFlight ${st.inFlight} buffered ${st.buffered} paused ${st.pausedPartitions.length} batch ${st.peak.batch}\n`);
    }, 100) : undefined;
    const deadline = Date.now() + TIMEOUT_MS;
    // status().processed counts records whose outputs were acknowledged.
    while (Date.now() < deadline) {
      if (runner.status().processed >= EVENTS) {
        last = performance.now();
        cpuMs = cpu.stop();
        if (producer) requests = producer.stats.requests - requestsAtStart;
        await prof.stop();
        break;
      }
      await sleep(5); // coarse on purpose: polling is CPU the topology side would pay for (≤ 5 ms of a multi-second window)
    }
    if (debug) clearInterval(debug);
    if (last === 0) throw new Error(`topology: ${runner.status().processed}/${EVENTS} events in ${TIMEOUT_MS} ms`);
  } finally {
    await runner.stop(5000);
    engine.close();
    await producer?.close();
  }
  return measure(EVENTS, last - first, cpuMs, requests);
}

interface Result {
  /** Every round of each side, in round order (round r of raw and of topology ran back to back). */
  raws: Measure[];
  topos: Measure[];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** "median [min–max]" of a series. */
function spread(values: readonly number[], digits = 0): string {
  if (values.length === 0) return 'n/a';
  return `${median(values).toFixed(digits)} [${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}]`;
}

/** Ratios of round r topology / round r raw (each pair ran back to back, so under similar load). */
function pairedRatios(r: Result, of: (m: Measure) => number): number[] {
  const n = Math.min(r.raws.length, r.topos.length);
  return Array.from({ length: n }, (_, i) => of(r.topos[i]!) / of(r.raws[i]!));
}

async function benchOn(name: string, client: KafkaClient, createTopics: (names: string[]) => Promise<void>): Promise<Result> {
  const tag = `${Date.now().toString(36)}`;
  const input = `bench-in-${tag}`;
  const names = [input];
  for (let r = 0; r < ROUNDS; r += 1) names.push(`bench-raw-${tag}-${r}`, `bench-topo-${tag}-${r}`);
  for (let w = 0; w < WARMUP; w += 1) names.push(`bench-raw-${tag}-w${w}`, `bench-topo-${tag}-w${w}`);
  await createTopics(names);
  process.stderr.write(`[${name}] filling ${input} with ${EVENTS} events…\n`);
  await fill(client, input);
  for (let w = 0; w < WARMUP; w += 1) {
    // Same work as a round, not measured: both sides run their code hot in every measured round.
    const warmRaw = await raw(client, input, `bench-raw-${tag}-w${w}`, `bench-raw-${tag}-w${w}`);
    const warmTopo = await framework(client, input, `bench-topo-${tag}-w${w}`, `bench-topo-${tag}-w${w}`);
    process.stderr.write(`[${name}] warm-up ${w + 1} (not counted): raw ${warmRaw.perSecond.toFixed(0)}, topology ${warmTopo.perSecond.toFixed(0)} events/s\n`);
  }
  const raws: Measure[] = [];
  const topos: Measure[] = [];
  for (let r = 0; r < ROUNDS; r += 1) {
    // Alternate which side goes first, so that a warming JIT or page cache favours neither.
    const order = r % 2 === 0 ? (['raw', 'topology'] as const) : (['topology', 'raw'] as const);
    // BENCH_ONLY=topology|raw: one side alone (profiling with node --cpu-prof).
    for (const side of order.filter((x) => process.env.BENCH_ONLY === undefined || process.env.BENCH_ONLY === x)) {
      const m =
        side === 'raw'
          ? await raw(client, input, `bench-raw-${tag}-${r}`, `bench-raw-${tag}-${r}`)
          : await framework(client, input, `bench-topo-${tag}-${r}`, `bench-topo-${tag}-${r}`);
      (side === 'raw' ? raws : topos).push(m);
      process.stderr.write(
        `[${name}] round ${r + 1} ${side.padEnd(8)} ${m.perSecond.toFixed(0).padStart(7)} events/s (${m.ms.toFixed(0)} ms, CPU ${(100 * m.cpu).toFixed(0)}% = ${m.cpuUsPerEvent.toFixed(1)} µs/event, ${(m.events / m.requests).toFixed(0)} records/produce request)\n`,
      );
    }
  }
  return { raws, topos };
}

function table(rows: Array<{ broker: string } & Result>): string {
  const header = ['broker/client', 'rounds', 'raw events/s', 'topology events/s', 'topology/raw events/s (paired)', 'raw CPU µs/event', 'topology CPU µs/event', 'raw/topology CPU per event (paired)'];
  const body = rows.map((r) => [
    r.broker,
    String(Math.min(r.raws.length, r.topos.length)),
    spread(r.raws.map((m) => m.perSecond)),
    spread(r.topos.map((m) => m.perSecond)),
    spread(pairedRatios(r, (m) => m.perSecond), 2),
    spread(r.raws.map((m) => m.cpuUsPerEvent), 1),
    spread(r.topos.map((m) => m.cpuUsPerEvent), 1),
    spread(pairedRatios(r, (m) => 1 / m.cpuUsPerEvent), 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const rows: Array<{ broker: string } & Result> = [];
  let broker: LocalBroker | undefined;
  const external = process.env.KAFKA_BROKERS;
  try {
    // BENCH_KAFKA=0 with BENCH_EMBEDDED=1: the embedded broker alone (quick experiments).
    if (process.env.BENCH_KAFKA !== '0') {
    let brokers: string[];
    let version = 'external';
    if (external) {
      brokers = external.split(',').map((s) => s.trim());
    } else {
      // Compiled, broker.js sits in dist/ and looks for the jars under dist/.infra: use the project's.
      const projectLib = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '.infra', 'kafka', 'lib');
      broker = await startLocalBroker({ libDir: existsSync(DEFAULT_KAFKA_LIB) ? DEFAULT_KAFKA_LIB : projectLib });
      brokers = broker.brokers;
      version = broker.version;
    }
    const client = createKafkaClient('platformatic', { brokers, clientId: 'bench' });
    try {
      const admin = await client.admin();
      const created: string[] = [];
      const result = await benchOn(`kafka ${version}/platformatic`, client, async (names) => {
        await admin.createTopics(names.map((name) => ({ name, partitions: PARTITIONS })));
        created.push(...names);
      });
      // An external broker outlives the run: leave it as it was.
      if (external) await admin.deleteTopics(created).catch(() => undefined);
      await admin.close();
      rows.push({ broker: `Kafka ${version} / platformatic`, ...result });
    } finally {
      await client.close();
    }
    }
    if (process.env.BENCH_EMBEDDED === '1') {
      const embedded = new EmbeddedKafka();
      const eclient = createEmbeddedClient(embedded);
      try {
        const result = await benchOn('embedded', eclient, async (names) => {
          embedded.createTopics(names.map((name) => ({ name, partitions: PARTITIONS })));
        });
        rows.push({ broker: 'embedded', ...result });
      } finally {
        await eclient.close();
      }
    }
  } finally {
    await broker?.stop();
  }
  process.stdout.write(
    `\nframework overhead: ${EVENTS} events, ${PARTITIONS} partitions, ${USERS} keys, runner concurrency ${CONCURRENCY}, ${PRODUCER} producer, ${ROUNDS} rounds after ${WARMUP} unmeasured warm-up round(s) per side, ${BUILD}, Node ${process.version}\n`,
  );
  process.stdout.write('cells: median [min–max] over the rounds; ratios are per round (raw and topology of a round run back to back)\n\n');
  process.stdout.write(`${table(rows)}\n\n`);
  const main = rows[0];
  if (main === undefined || main.raws.length === 0 || main.topos.length === 0) return;
  const ratios = pairedRatios(main, (m) => m.perSecond);
  const ofMedians = median(main.topos.map((m) => m.perSecond)) / median(main.raws.map((m) => m.perSecond));
  const cpuRatio = median(main.raws.map((m) => m.cpuUsPerEvent)) / median(main.topos.map((m) => m.cpuUsPerEvent));
  process.stdout.write(
    `throughput topology/raw = ${median(ratios).toFixed(2)} median of rounds (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)}; ratio of median events/s ${ofMedians.toFixed(2)}) — target ≥ 0.80: ${median(ratios) >= 0.8 ? 'met' : 'NOT met'} (median), ${Math.min(...ratios) >= 0.8 ? 'met' : 'NOT met'} (every round)\n`,
  );
  process.stdout.write(`CPU per event raw/topology = ${cpuRatio.toFixed(2)} (medians: the topology spends ${(1 / cpuRatio).toFixed(2)}× the raw loop's CPU per event)\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
