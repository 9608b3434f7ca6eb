/**
 * Runner under load on the real broker (platformatic, the default client): scaling 1 → 3 → 1 while
 * events flow, and a slow step over thousands of events. Every loop is bounded in count and time;
 * the whole file stays under ~2 minutes.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { KafkaAdmin, KafkaClient, ProduceRecord } from '../../runtime/kafka/types.ts';
import { StreamRunner, type RunnerOptions } from '../../runtime/runner/index.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { MapChangelog, eventRecord, parseEvent, readAll, waitFor } from './helpers.ts';

async function lag(admin: KafkaAdmin, groupId: string, topic: string): Promise<number> {
  const [ends, committed] = await Promise.all([admin.listEndOffsets(topic), admin.listCommittedOffsets(groupId, topic)]);
  const done = new Map(committed.map((c) => [c.partition, c.offset]));
  return ends.reduce((n, e) => n + e.offset - Math.max(0, done.get(e.partition) ?? 0), 0);
}

/** onAssigned / onRevoked as the runner counts them (tagstream_runner_partitions_rebalanced_total). */
async function rebalances(r: StreamRunner): Promise<{ assigned: number; revoked: number }> {
  const text = await r.metrics.registry.getSingleMetricAsString('tagstream_runner_partitions_rebalanced_total');
  const count = (kind: string): number => Number(new RegExp(`kind="${kind}"[^\\n]* (\\d+)`).exec(text)?.[1] ?? 0);
  return { assigned: count('assigned'), revoked: count('revoked') };
}

describe('runner under load (real broker, platformatic)', () => {
  let clients: KafkaClient[] = [];
  let runners: StreamRunner[] = [];
  let created: string[] = [];
  let admin: KafkaAdmin;
  let client: KafkaClient;

  const newClient = (): KafkaClient => {
    const c = createKafkaClient('platformatic', { brokers: realBroker().brokers, clientId: 'runner-load' });
    clients.push(c);
    return c;
  };
  const runner = (options: Omit<RunnerOptions, 'client' | 'registry'>): StreamRunner => {
    const r = new StreamRunner({ client: newClient(), registry: new Registry(), sessionTimeoutMs: 10_000, ...options });
    runners.push(r);
    return r;
  };

  beforeEach(async () => {
    clients = [];
    runners = [];
    created = [];
    client = newClient();
    admin = await client.admin();
  });

  afterEach(async function () {
    this.timeout(30_000);
    await Promise.allSettled(runners.map((r) => r.stop(2000)));
    if (created.length > 0) await admin.deleteTopics(created).catch(() => undefined);
    await admin.close();
    await Promise.allSettled(clients.map((c) => c.close()));
  });

  it('scale 1 → 3 → 1 while events flow: every event yields its output at least once; duplicates only from work in flight at a rebalance', async function () {
    this.timeout(75_000);
    const source = uniqueTopic('load-scale');
    const cookies = `${source}-cookies`;
    const out = `${source}-out`;
    const groupId = `${source}-g`;
    const partitions = 6;
    await admin.createTopics([
      { name: source, partitions },
      { name: cookies, partitions, configs: { 'cleanup.policy': 'compact' } },
      { name: out, partitions },
    ]);
    created.push(source, cookies, out);
    const producer = await client.producer();
    /** seq → how many times it was processed (any member). */
    const seen = new Map<number, number>();
    const violations: string[] = [];
    const member = (): { r: StreamRunner; changelog: MapChangelog } => {
      const changelog = new MapChangelog(cookies);
      const r = runner({
        groupId,
        topic: source,
        changelog,
        concurrency: 8,
        maxBuffered: 64,
        fetchMaxBytes: 4096,
        revokeTimeoutMs: 5000,
        handler: async (record) => {
          if (!changelog.stores.has(record.partition)) violations.push(`p${record.partition}@${record.offset} before its restore`);
          const { seq } = parseEvent(record);
          seen.set(seq, (seen.get(seq) ?? 0) + 1);
          await sleep(4);
          return [{ topic: out, key: record.key, value: record.value }];
        },
      });
      return { r, changelog };
    };
    const a = member();
    await a.r.start();
    const b = member();
    const c = member();
    const total = 1800;
    let sent = 0;
    let membersActive = 0;
    const pending: Promise<void>[] = [];
    const started = Date.now();
    for (let i = 0; sent < total && i < 200 && Date.now() - started < 30_000; i += 1) {
      const batch: ProduceRecord[] = [];
      for (let j = 0; j < 30 && sent < total; j += 1, sent += 1) batch.push(eventRecord(source, `u${sent % 97}`, sent));
      await producer.send(batch);
      // Scale out early, scale back in late, without stopping the flow of events.
      if (sent === 300) pending.push(b.r.start(), c.r.start());
      if (sent === 1200) {
        await Promise.all(pending.splice(0));
        pending.push(b.r.stop(5000), c.r.stop(5000));
      }
      const owners = [a, b, c].filter((m) => m.r.status().partitions.some((p) => p.state === 'active')).length;
      membersActive = Math.max(membersActive, owners);
      await sleep(100);
    }
    await Promise.all(pending);
    await waitFor('every event processed', () => seen.size === total, 45_000, 50);
    await waitFor('the survivor owns all partitions', () => a.r.status().partitions.filter((p) => p.state === 'active').length === partitions, 30_000, 50);
    await waitFor('outputs acknowledged', () => a.r.status().inFlight + a.r.status().buffered === 0, 10_000);
    expect(violations).to.deep.equal([]);
    expect(membersActive, 'three members owned partitions at the same time').to.equal(3);
    expect(a.changelog.open()).to.deep.equal([0, 1, 2, 3, 4, 5]);

    const outputs = await readAll(client, out, partitions);
    const outSeqs = new Set(outputs.map((o) => parseEvent(o).seq));
    expect(outSeqs.size, 'no event lost').to.equal(total);
    const duplicates = [...seen.values()].reduce((n, k) => n + k - 1, 0);
    // Non-awaitable revoke (platformatic): the next owner restarts from the last commit while the
    // old one finishes what it had in flight/buffered. Per revoked member that is at most its
    // in-flight + buffered bound (maxBuffered) plus one delivery.
    const revocations = (await Promise.all([a, b, c].map((m) => rebalances(m.r)))).reduce((n, x) => n + (x.revoked > 0 ? 1 : 0), 0);
    const peakBatch = Math.max(...[a, b, c].map((m) => m.r.status().peak.batch));
    const bound = Math.max(1, revocations) * (64 + peakBatch) + 3 * (64 + peakBatch);
    expect(duplicates, `duplicates (revoking members ${revocations}, peak delivery ${peakBatch})`).to.be.at.most(bound);
    // A duplicate run abandoned before its produce (revoke timeout) leaves no output: at most equal.
    expect(outputs.length - total, 'output duplicates come from processing duplicates').to.be.at.most(duplicates);
    await waitFor('lag drained', async () => (await lag(admin, groupId, source)) === 0, 15_000, 200);
    this.test!.title += ` [${total} events, ${duplicates} duplicates (${((100 * duplicates) / total).toFixed(1)}%), bound ${bound}]`;
    await producer.close();
  });

  it('a 100 ms step at concurrency 4 over 2,000 events: in-flight ≤ 4, buffered bounded, memory flat, no rebalance, lag drains', async function () {
    this.timeout(90_000);
    const source = uniqueTopic('load-slow');
    const groupId = `${source}-g`;
    const partitions = 3;
    await admin.createTopics([{ name: source, partitions }]);
    created.push(source);
    const producer = await client.producer();
    const total = 2000;
    // Small sends make small record batches, so that one fetch delivers few records (fetchMaxBytes
    // cannot split a batch): the buffer bound is then maxBuffered plus a small delivery.
    for (let sent = 0, i = 0; sent < total && i < 1000; i += 1) {
      const batch: ProduceRecord[] = [];
      for (let j = 0; j < 20 && sent < total; j += 1, sent += 1) batch.push(eventRecord(source, `u${sent % 50}`, sent));
      await producer.send(batch);
    }
    const maxBuffered = 40;
    let running = 0;
    let peakRunning = 0;
    const r = runner({
      groupId,
      topic: source,
      concurrency: 4,
      maxBuffered,
      fetchMaxBytes: 2048,
      handler: async () => {
        running += 1;
        peakRunning = Math.max(peakRunning, running);
        await sleep(100);
        running -= 1;
      },
    });
    global.gc?.();
    const base = process.memoryUsage();
    const peak = { rss: base.rss, heap: base.heapUsed };
    let pausedSeen = 0;
    const watch = setInterval(() => {
      const m = process.memoryUsage();
      peak.rss = Math.max(peak.rss, m.rss);
      peak.heap = Math.max(peak.heap, m.heapUsed);
      pausedSeen = Math.max(pausedSeen, r.status().pausedPartitions.length);
    }, 100);
    const started = Date.now();
    try {
      await r.start();
      // 2,000 × 100 ms / 4 = 50 s of work.
      await waitFor('all records processed', () => r.status().processed >= total, 80_000, 100);
    } finally {
      clearInterval(watch);
    }
    const elapsed = Date.now() - started;
    const status = r.status();
    expect(peakRunning, 'handler concurrency').to.be.at.most(4);
    expect(status.peak.inFlight, 'runner in-flight').to.be.at.most(4);
    expect(status.peak.buffered, `buffered ${JSON.stringify(status.peak)}`).to.be.at.most(maxBuffered + status.peak.batch);
    expect(status.peak.batch, `deliveries ${JSON.stringify(status.peak)}`).to.be.at.most(200);
    expect(pausedSeen, 'fetching paused').to.be.greaterThan(0);
    const rssGrowthMb = (peak.rss - base.rss) / 2 ** 20;
    const heapGrowthMb = (peak.heap - base.heapUsed) / 2 ** 20;
    expect(rssGrowthMb, 'RSS growth (MiB)').to.be.below(200);
    expect(heapGrowthMb, 'heap growth (MiB)').to.be.below(100);
    const counts = await rebalances(r);
    expect(counts, 'one assignment, no revocation while the step lagged').to.deep.equal({ assigned: partitions, revoked: 0 });
    await waitFor('lag drained (watermarks committed)', async () => (await lag(admin, groupId, source)) === 0, 15_000, 200);
    this.test!.title += ` [${elapsed} ms, peak in-flight ${status.peak.inFlight}, buffered ${status.peak.buffered}, batch ${status.peak.batch}, RSS +${rssGrowthMb.toFixed(0)} MiB, heap +${heapGrowthMb.toFixed(0)} MiB]`;
    await producer.close();
  });
});
