/**
 * Runner scenarios shared by the embedded suite and the real-broker suite (docs/runner.md "Tests").
 * Every loop is bounded in count and time.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { TopologyMismatchError } from '../../core/errors.ts';
import type { ConsumedRecord, KafkaAdmin, KafkaClient } from '../../runtime/kafka/types.ts';
import { StreamRunner, type RunnerOptions } from '../../runtime/runner/index.ts';
import { MapChangelog, eventRecord, parseEvent, readAll, sorted, waitFor, type RunnerTestEnv } from './helpers.ts';

export interface ScenarioOptions {
  /** Events of the slow-step scenario. */
  slowEvents: number;
  /** Largest delivery expected with fetchMaxBytes 256 (~9 test events). */
  maxBatch: number;
}

async function committedTotal(admin: KafkaAdmin, groupId: string, topic: string): Promise<Map<number, number>> {
  const offsets = await admin.listCommittedOffsets(groupId, topic);
  return new Map(offsets.map((o) => [o.partition, o.offset]));
}

async function lag(admin: KafkaAdmin, groupId: string, topic: string): Promise<number> {
  const [ends, committed] = await Promise.all([admin.listEndOffsets(topic), committedTotal(admin, groupId, topic)]);
  let total = 0;
  for (const end of ends) total += end.offset - Math.max(0, committed.get(end.partition) ?? 0);
  return total;
}

export function defineRunnerScenarios(makeEnv: () => Promise<RunnerTestEnv>, scenario: ScenarioOptions): void {
  let env: RunnerTestEnv;
  let runners: StreamRunner[] = [];
  let admin: KafkaAdmin;
  let client: KafkaClient;

  const runner = (options: Omit<RunnerOptions, 'client' | 'registry'> & { client?: KafkaClient }): StreamRunner => {
    const r = new StreamRunner({ client: options.client ?? env.client(), registry: new Registry(), sessionTimeoutMs: 10_000, ...options });
    runners.push(r);
    return r;
  };

  beforeEach(async function () {
    this.timeout(30_000);
    env = await makeEnv();
    client = env.client();
    admin = await client.admin();
    runners = [];
  });

  afterEach(async function () {
    this.timeout(60_000);
    await Promise.allSettled(runners.map((r) => r.stop(2000)));
    await admin.close();
    await env.close();
  });

  it('same-key records never run concurrently and run in offset order; keys run in parallel', async function () {
    this.timeout(60_000);
    const source = env.topic('order');
    await env.createTopics([{ name: source, partitions: 3 }]);
    const producer = await client.producer();
    const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
    const perUser = 25;
    const records = [];
    for (let seq = 0; seq < perUser; seq += 1) for (const user of users) records.push(eventRecord(source, user, seq));
    await producer.send(records);

    const active = new Set<string>();
    const seen = new Map<string, number[]>();
    const violations: string[] = [];
    let concurrent = 0;
    let peakConcurrent = 0;
    const r = runner({
      groupId: env.topic('g-order'),
      topic: source,
      concurrency: 8,
      maxBuffered: 50,
      handler: async (record) => {
        const { user, seq } = parseEvent(record);
        if (active.has(user)) violations.push(`${user} ran concurrently at seq ${seq}`);
        active.add(user);
        concurrent += 1;
        peakConcurrent = Math.max(peakConcurrent, concurrent);
        await sleep(1 + (seq % 4));
        const list = seen.get(user) ?? [];
        list.push(seq);
        seen.set(user, list);
        concurrent -= 1;
        active.delete(user);
      },
    });
    await r.start();
    await waitFor('all records processed', () => r.status().processed >= users.length * perUser, 40_000);
    expect(violations).to.deep.equal([]);
    for (const user of users) expect(seen.get(user), user).to.deep.equal(Array.from({ length: perUser }, (_, i) => i));
    expect(peakConcurrent).to.be.greaterThan(1).and.at.most(8);
    await producer.close();
  });

  it('a slow step at concurrency 4: in-flight never above 4, buffered bounded, fetching pauses, lag drains, no rebalance', async function () {
    this.timeout(90_000);
    const source = env.topic('slow');
    const groupId = env.topic('g-slow');
    await env.createTopics([{ name: source, partitions: 3 }]);
    const producer = await client.producer();
    const maxBuffered = 12;
    let running = 0;
    let peakRunning = 0;
    const r = runner({
      groupId,
      topic: source,
      concurrency: 4,
      maxBuffered,
      fetchMaxBytes: 256,
      commitIntervalMs: 200,
      handler: async (record) => {
        running += 1;
        peakRunning = Math.max(peakRunning, running);
        await sleep(100 + (record.offset % 3) * 50);
        running -= 1;
      },
    });
    await r.start();
    // Trickled in while the step lags, so deliveries are small and the pause is what bounds the buffer.
    const total = scenario.slowEvents;
    let pausedSeen = 0;
    let sent = 0;
    const watch = setInterval(() => {
      pausedSeen = Math.max(pausedSeen, r.status().pausedPartitions.length);
    }, 10);
    try {
      for (let i = 0; sent < total && i < 1000; i += 1) {
        const batch = [];
        for (let j = 0; j < 8 && sent < total; j += 1, sent += 1) batch.push(eventRecord(source, `u${sent % 40}`, sent));
        await producer.send(batch);
        await sleep(40);
      }
      await waitFor('all slow records processed', () => r.status().processed >= total, 80_000, 50);
    } finally {
      clearInterval(watch);
    }
    const status = r.status();
    expect(peakRunning, 'handler concurrency').to.be.at.most(4);
    expect(status.peak.inFlight, 'runner in-flight').to.be.at.most(4);
    // Delivered records are never recalled: the bound is maxBuffered plus one delivery batch.
    expect(status.peak.buffered, `buffered ${JSON.stringify(status.peak)}`).to.be.at.most(maxBuffered + status.peak.batch);
    expect(status.peak.batch, `deliveries kept small by fetchMaxBytes ${JSON.stringify(status.peak)}`).to.be.at.most(scenario.maxBatch);
    expect(status.peak.buffered, 'buffered').to.be.lessThan(total / 2);
    expect(pausedSeen, 'fetching paused at some point').to.be.greaterThan(0);
    await waitFor('lag drained (watermarks committed)', async () => (await lag(admin, groupId, source)) === 0, 10_000, 100);
    const revoked = (await r.metrics.registry.getSingleMetricAsString('tagstream_runner_partitions_rebalanced_total')).match(/kind="revoked"[^\n]* (\d+)/);
    expect(revoked?.[1] ?? '0', 'no partition revoked while the step lagged').to.equal('0');
    await producer.close();
  });

  it('at-least-once: after a crash, a new member processes the uncommitted records again and nothing is lost', async function () {
    this.timeout(60_000);
    const source = env.topic('alo');
    const out = env.topic('alo-out');
    const groupId = env.topic('g-alo');
    await env.createTopics([{ name: source, partitions: 2 }, { name: out, partitions: 2 }]);
    const producer = await client.producer();
    const total = 120;
    await producer.send(Array.from({ length: total }, (_, i) => eventRecord(source, `u${i % 17}`, i)));

    const first = runner({
      groupId,
      topic: source,
      concurrency: 4,
      maxBuffered: 16,
      commitIntervalMs: 50,
      handler: async (record) => {
        await sleep(10);
        return [{ topic: out, key: record.key, value: record.value }];
      },
    });
    await first.start();
    await waitFor('some records processed', () => first.status().processed >= 40, 30_000, 5);
    // Let a commit land, then crash with work in flight: nothing more is committed.
    await sleep(120);
    const before = first.status();
    expect(before.inFlight + before.buffered, 'work in flight at the crash').to.be.greaterThan(0);
    await first.abandon();
    const committed = await committedTotal(admin, groupId, source);
    const committedCount = [...committed.values()].reduce((a, o) => a + Math.max(0, o), 0);
    expect(committedCount, 'something was committed').to.be.greaterThan(0);
    expect(committedCount, 'not everything was committed').to.be.lessThan(total);

    const processed2: ConsumedRecord[] = [];
    const second = runner({
      groupId,
      topic: source,
      concurrency: 4,
      handler: (record) => {
        processed2.push(record);
        return [{ topic: out, key: record.key, value: record.value }];
      },
    });
    await second.start();
    await waitFor('the rest processed', () => processed2.length >= total - committedCount, 30_000);
    await sleep(200);
    // Only the uncommitted records are processed again, each once.
    for (const record of processed2) {
      expect(record.offset, `p${record.partition}@${record.offset} was committed`).to.be.at.least(committed.get(record.partition) ?? 0);
    }
    expect(processed2.length).to.equal(total - committedCount);
    // No loss: every input has at least one output.
    const outputs = await readAll(client, out, 2);
    const seqs = new Set(outputs.map((o) => parseEvent(o).seq));
    expect(seqs.size).to.equal(total);
    expect(outputs.length, 'duplicates only from the crash').to.be.at.least(total);
    await producer.close();
  });

  it('2 topics × 6 partitions × 3 members: each member restores exactly the changelog partitions of its source partitions', async function () {
    this.timeout(90_000);
    const source = env.topic('copart');
    const cookies = env.topic('copart-cookies');
    const groupId = env.topic('g-copart');
    await env.createTopics([
      { name: source, partitions: 6 },
      { name: cookies, partitions: 6, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = await client.producer();
    const members = [0, 1, 2].map(() => {
      const changelog = new MapChangelog(cookies);
      const violations: string[] = [];
      const processedPartitions = new Set<number>();
      const r = runner({
        groupId,
        topic: source,
        changelog,
        concurrency: 4,
        handler: (record) => {
          if (!changelog.stores.has(record.partition)) violations.push(`p${record.partition}@${record.offset} before its restore`);
          processedPartitions.add(record.partition);
        },
      });
      return { r, changelog, violations, processedPartitions };
    });
    for (const m of members) await m.r.start();
    const active = (m: (typeof members)[number]): number[] => sorted(m.r.status().partitions.filter((p) => p.state === 'active').map((p) => p.partition));
    await waitFor(
      'a stable, complete, co-partitioned assignment',
      () => {
        const owned = members.map(active);
        const all = owned.flat();
        return (
          all.length === 6 &&
          new Set(all).size === 6 &&
          members.every((m, i) => m.changelog.open().join() === owned[i]!.join() && m.r.status().partitions.length === owned[i]!.length)
        );
      },
      60_000,
      50,
    );
    const owned = members.map(active);
    for (const [i, m] of members.entries()) {
      expect(m.changelog.open(), `member ${i}: open stores = owned source partitions`).to.deep.equal(owned[i]);
      expect(m.r.restoreProgress().every((p) => p.done && p.remaining === 0)).to.equal(true);
    }
    expect(owned.every((o) => o.length > 0), `every member owns partitions: ${JSON.stringify(owned)}`).to.equal(true);
    // Records of every partition are processed by their owner, after its restore.
    await producer.send(Array.from({ length: 6 }, (_, p) => ({ topic: source, key: `k${p}`, value: 'x', partition: p })));
    await waitFor('one record per partition processed', () => members.reduce((n, m) => n + m.processedPartitions.size, 0) >= 6, 20_000);
    for (const [i, m] of members.entries()) {
      expect(m.violations).to.deep.equal([]);
      for (const p of m.processedPartitions) expect(owned[i], `member ${i} processed p${p}`).to.include(p);
    }
    await producer.close();
  });

  it('scale 1 → 2 → 1 while events flow: every event yields its output, restores precede processing', async function () {
    this.timeout(90_000);
    const source = env.topic('scale');
    const cookies = env.topic('scale-cookies');
    const out = env.topic('scale-out');
    const groupId = env.topic('g-scale');
    await env.createTopics([
      { name: source, partitions: 4 },
      { name: cookies, partitions: 4, configs: { 'cleanup.policy': 'compact' } },
      { name: out, partitions: 4 },
    ]);
    const producer = await client.producer();
    const seen = new Map<number, number>();
    const violations: string[] = [];
    const member = (): { r: StreamRunner; changelog: MapChangelog } => {
      const changelog = new MapChangelog(cookies);
      const r = runner({
        groupId,
        topic: source,
        changelog,
        concurrency: 4,
        maxBuffered: 32,
        revokeTimeoutMs: 5000,
        handler: async (record) => {
          if (!changelog.stores.has(record.partition)) violations.push(`p${record.partition}@${record.offset} before its restore`);
          const { seq } = parseEvent(record);
          seen.set(seq, (seen.get(seq) ?? 0) + 1);
          await sleep(3);
          return [{ topic: out, key: record.key, value: record.value }];
        },
      });
      return { r, changelog };
    };
    const a = member();
    await a.r.start();
    const total = 240;
    const b = member();
    let sent = 0;
    for (let i = 0; sent < total && i < 100; i += 1) {
      const batch = [];
      for (let j = 0; j < 10 && sent < total; j += 1, sent += 1) batch.push(eventRecord(source, `u${sent % 30}`, sent));
      await producer.send(batch);
      if (sent === 80) await b.r.start();
      if (sent === 160) await a.r.stop(5000);
      await sleep(30);
    }
    await waitFor('every event processed', () => seen.size === total, 60_000, 50);
    expect(violations).to.deep.equal([]);
    // The survivor owns everything and has exactly those stores open.
    await waitFor('the survivor owns all partitions', () => b.r.status().partitions.filter((p) => p.state === 'active').length === 4, 30_000);
    expect(b.changelog.open()).to.deep.equal([0, 1, 2, 3]);
    await waitFor('outputs acknowledged', () => b.r.status().inFlight + b.r.status().buffered === 0, 10_000);
    const outputs = await readAll(client, out, 4);
    const outSeqs = new Set(outputs.map((o) => parseEvent(o).seq));
    expect(outSeqs.size, 'no event lost').to.equal(total);
    const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
    const awaited = env.name === 'embedded';
    if (awaited) expect(duplicates, 'awaited revoke: no duplicates').to.equal(0);
    else expect(duplicates, 'duplicates only from work in flight at a rebalance').to.be.lessThan(total / 2);
    this.test!.title += ` [${duplicates} duplicates]`;
    await producer.close();
  });

  it('fails at start with TopologyMismatchError when source and changelog partition counts differ, or the changelog is not compacted', async function () {
    this.timeout(30_000);
    const source = env.topic('mm');
    const cookies = env.topic('mm-cookies');
    const plain = env.topic('mm-plain');
    await env.createTopics([
      { name: source, partitions: 6 },
      { name: cookies, partitions: 4, configs: { 'cleanup.policy': 'compact' } },
      { name: plain, partitions: 6 },
    ]);
    const mismatch = runner({ groupId: env.topic('g-mm'), topic: source, changelog: new MapChangelog(cookies), handler: () => undefined });
    let error: unknown;
    await mismatch.start().catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(TopologyMismatchError);
    expect((error as TopologyMismatchError).code).to.equal('ERR_TOPOLOGY_MISMATCH');
    expect((error as TopologyMismatchError).context).to.deep.include({ source: { topic: source, partitions: 6 }, changelog: { topic: cookies, partitions: 4 } });
    expect(mismatch.status().state).to.equal('failed');

    const uncompacted = runner({ groupId: env.topic('g-mm2'), topic: source, changelog: new MapChangelog(plain), handler: () => undefined });
    error = undefined;
    await uncompacted.start().catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(TopologyMismatchError);
    expect((error as Error).message).to.match(/compacted/);
  });

  it('cold start: the first record of a key sees the value already in the changelog (restore before process)', async function () {
    this.timeout(30_000);
    const source = env.topic('cold');
    const cookies = env.topic('cold-cookies');
    await env.createTopics([
      { name: source, partitions: 3 },
      { name: cookies, partitions: 3, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = await client.producer();
    await producer.send([
      { topic: cookies, key: 'alice', value: 'jar-v1' },
      { topic: cookies, key: 'bob', value: 'jar-old' },
      { topic: cookies, key: 'alice', value: 'jar-v2' },
      { topic: cookies, key: 'bob', value: null },
    ]);
    await producer.send([eventRecord(source, 'alice', 0), eventRecord(source, 'bob', 0), eventRecord(source, 'alice', 1)]);
    const changelog = new MapChangelog(cookies);
    changelog.restoreDelayMs = 150; // a slow restore: records must wait for it
    const seen: Array<[string, number, string | null]> = [];
    const r = runner({
      groupId: env.topic('g-cold'),
      topic: source,
      changelog,
      handler: (record) => {
        const { user, seq } = parseEvent(record);
        seen.push([user, seq, changelog.stores.get(record.partition)?.get(user) ?? null]);
      },
    });
    await r.start();
    await waitFor('3 records processed', () => r.status().processed >= 3, 20_000);
    expect(seen.filter(([u]) => u === 'alice')).to.deep.equal([
      ['alice', 0, 'jar-v2'],
      ['alice', 1, 'jar-v2'],
    ]);
    expect(seen.filter(([u]) => u === 'bob')).to.deep.equal([['bob', 0, null]]);
    // Partitions without events may still be restoring: that is allowed, wait for them.
    await waitFor('every restore done', () => r.restoreProgress().length === 3 && r.restoreProgress().every((p) => p.done), 10_000);
    const progress = r.restoreProgress();
    for (const p of progress) expect(p).to.include({ topic: cookies, done: true, remaining: 0 });
    expect(progress.reduce((n, p) => n + p.endOffset, 0)).to.equal(4);
    await producer.close();
  });
}
