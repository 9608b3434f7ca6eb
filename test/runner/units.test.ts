/**
 * Unit cases of the runner: the watermark, the per-key scheduler, and runner behaviour on the
 * embedded client (failures, acknowledged outputs before commit, awaited revocation, shutdown,
 * metrics). No network.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { EmbeddedKafka, createEmbeddedClient } from '../../runtime/kafka/embedded/index.ts';
import type { KafkaAdmin, KafkaClient, KafkaProducer, ProduceRecord, RecordMetadata } from '../../runtime/kafka/types.ts';
import {
  KeyScheduler,
  OffsetTracker,
  RecordFailedError,
  RunnerSettingsSchema,
  StreamRunner,
  onShutdownSignals,
  type KeyedJob,
  type RunnerOptions,
} from '../../runtime/runner/index.ts';
import { InMemoryStoreProvider, changelogRestorer } from '../../state/index.ts';
import { BrokerUnreachableError } from '../../core/errors.ts';
import type { ChangelogBinding } from '../../runtime/runner/index.ts';
import { MapChangelog, eventRecord, parseEvent, sorted, waitFor } from './helpers.ts';

describe('runner: OffsetTracker', () => {
  it('commits only up to the lowest unfinished offset, whatever the completion order', () => {
    const t = new OffsetTracker();
    expect(t.watermark()).to.equal(undefined);
    for (const o of [5, 6, 7, 9]) expect(t.track(o)).to.equal(true); // 8: compacted away
    expect(t.watermark()).to.equal(5);
    t.complete(7);
    t.complete(6);
    expect(t.watermark()).to.equal(5);
    t.complete(5);
    expect(t.watermark()).to.equal(9);
    t.complete(9);
    expect(t.watermark()).to.equal(10);
    expect(t.outstanding).to.equal(0);
  });

  it('refuses offsets at or below what was already taken (redelivery)', () => {
    const t = new OffsetTracker();
    t.track(3);
    expect(t.track(3)).to.equal(false);
    expect(t.track(2)).to.equal(false);
    expect(t.track(4)).to.equal(true);
    expect(t.next).to.equal(5);
  });

  it('stays correct over many records (prefix compaction)', () => {
    const t = new OffsetTracker();
    for (let o = 0; o < 5000; o += 1) t.track(o);
    for (let o = 4999; o >= 1; o -= 1) t.complete(o);
    expect(t.watermark()).to.equal(0);
    t.complete(0);
    expect(t.watermark()).to.equal(5000);
    for (let o = 5000; o < 7000; o += 1) {
      t.track(o);
      t.complete(o);
    }
    expect(t.watermark()).to.equal(7000);
  });
});

describe('runner: KeyScheduler', () => {
  const job = (key: string, partition: number, log: string[], ms: number, active: Set<string>, violations: string[]): KeyedJob => ({
    key,
    partition,
    async run() {
      if (active.has(key)) violations.push(key);
      active.add(key);
      await sleep(ms);
      active.delete(key);
      log.push(key);
    },
  });

  it('runs at most `concurrency` jobs, one per key at a time, in order per key', async () => {
    let peak = 0;
    const s: KeyScheduler = new KeyScheduler(3, () => {
      peak = Math.max(peak, s.inFlight);
    });
    const log: string[] = [];
    const active = new Set<string>();
    const violations: string[] = [];
    const order = new Map<string, number[]>();
    for (let i = 0; i < 40; i += 1) {
      const key = `k${i % 5}`;
      const seq = i;
      s.add({
        key,
        partition: 0,
        run: async () => {
          await job(key, 0, log, 1 + (i % 3), active, violations).run();
          order.set(key, [...(order.get(key) ?? []), seq]);
        },
      });
    }
    expect(s.inFlight + s.buffered).to.equal(40);
    await waitFor('all jobs', () => log.length === 40, 5000, 5);
    expect(violations).to.deep.equal([]);
    expect(peak).to.equal(3);
    for (const [, seqs] of order) expect(seqs).to.deep.equal([...seqs].sort((a, b) => a - b));
  });

  it('drops the not-started jobs of given partitions and reports idleness per partition', async () => {
    const s = new KeyScheduler(1);
    const log: string[] = [];
    const active = new Set<string>();
    const violations: string[] = [];
    s.add(job('a', 0, log, 20, active, violations));
    s.add(job('b', 1, log, 1, active, violations));
    s.add(job('c', 0, log, 1, active, violations));
    expect(s.drop(new Set([1]))).to.equal(1);
    expect(s.buffered).to.equal(1);
    expect(s.inFlightOf(0)).to.equal(1);
    await s.whenIdle(0);
    expect(log).to.deep.equal(['a']);
    await s.whenIdle();
    await sleep(5);
    expect(log).to.deep.equal(['a', 'c']);
  });

  it('validates its settings', () => {
    expect(() => new KeyScheduler(0)).to.throw(RangeError);
    expect(() => RunnerSettingsSchema.parse({ maxBuffered: 10, resumeBelow: 10 })).to.throw(/resumeBelow/);
    expect(RunnerSettingsSchema.parse({})).to.include({ concurrency: 16, maxBuffered: 1000, revokeTimeoutMs: 10_000 });
  });
});

describe('runner: behaviour on the embedded client', () => {
  let broker: EmbeddedKafka;
  let client: KafkaClient;
  let admin: KafkaAdmin;
  let runners: StreamRunner[];
  let n = 0;
  const name = (prefix: string): string => `${prefix}-${(n += 1)}`;
  const runner = (options: Omit<RunnerOptions, 'client'>): StreamRunner => {
    const r = new StreamRunner({ client: createEmbeddedClient(broker), registry: new Registry(), ...options });
    runners.push(r);
    return r;
  };
  const committed = async (groupId: string, topic: string): Promise<number[]> =>
    (await admin.listCommittedOffsets(groupId, topic)).sort((a, b) => a.partition - b.partition).map((o) => o.offset);

  beforeEach(async () => {
    broker = new EmbeddedKafka();
    client = createEmbeddedClient(broker);
    admin = await client.admin();
    runners = [];
  });

  afterEach(async () => {
    await Promise.allSettled(runners.map((r) => r.stop(500)));
    await client.close();
  });

  it('a failing record without onError stops the runner; the commit stays below it', async () => {
    const source = name('fail');
    const groupId = name('g');
    broker.createTopics([{ name: source, partitions: 1 }]);
    const producer = await client.producer();
    await producer.send(Array.from({ length: 10 }, (_, i) => eventRecord(source, `u${i}`, i)));
    const r = runner({
      groupId,
      topic: source,
      concurrency: 1,
      commitIntervalMs: 0,
      handler: (record) => {
        if (parseEvent(record).seq === 4) throw new Error('boom');
      },
    });
    await r.start();
    let error: unknown;
    await r.closed.catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(RecordFailedError);
    expect((error as RecordFailedError).context).to.deep.equal({ topic: source, partition: 0, offset: 4 });
    expect(r.status().state).to.equal('failed');
    expect(await committed(groupId, source)).to.deep.equal([4]);
  });

  it('onError takes responsibility for a failure: processing goes on, counted as outcome=error', async () => {
    const source = name('onerror');
    const groupId = name('g');
    broker.createTopics([{ name: source, partitions: 1 }]);
    const producer = await client.producer();
    await producer.send(Array.from({ length: 6 }, (_, i) => eventRecord(source, `u${i}`, i)));
    const handled: number[] = [];
    const r = runner({
      groupId,
      topic: source,
      commitIntervalMs: 0,
      handler: (record) => {
        if (parseEvent(record).seq % 2 === 1) return Promise.reject(new Error('odd'));
      },
      onError: (_error, record) => {
        handled.push(record.offset);
      },
    });
    await r.start();
    await waitFor('6 processed', () => r.status().processed === 6, 5000);
    expect(sorted(handled)).to.deep.equal([1, 3, 5]);
    await waitFor('committed to the end', async () => (await committed(groupId, source))[0] === 6, 5000);
    const text = await r.metrics.registry.getSingleMetricAsString('tagstream_runner_records_processed_total');
    expect(text).to.match(/outcome="error"[^\n]* 3/);
    expect(text).to.match(/outcome="ok"[^\n]* 3/);
  });

  it('a record counts as done only once its outputs are acknowledged (returned and sent through the context)', async () => {
    const source = name('acks');
    const out = name('acks-out');
    const groupId = name('g');
    broker.createTopics([{ name: source, partitions: 1 }, { name: out, partitions: 1 }]);
    const base = await client.producer();
    await base.send(Array.from({ length: 3 }, (_, i) => eventRecord(source, `u${i}`, i)));
    // A producer whose acknowledgements the test releases by hand.
    const gates: Array<{ key: string; release: () => void }> = [];
    const gated: KafkaProducer = {
      async send(records: readonly ProduceRecord[]): Promise<RecordMetadata[]> {
        await new Promise<void>((release) => gates.push({ key: String(records[0]?.key), release }));
        return base.send(records);
      },
      close: () => Promise.resolve(),
    };
    const r = runner({
      groupId,
      topic: source,
      producer: gated,
      concurrency: 4,
      commitIntervalMs: 0,
      handler: async (record, context) => {
        void context.send([{ topic: out, key: record.key, value: 'side' }]);
        return [{ topic: out, key: record.key, value: 'main' }];
      },
    });
    await r.start();
    await waitFor('6 sends waiting', () => gates.length === 6, 5000, 5);
    await sleep(30);
    expect(r.status().processed).to.equal(0);
    expect(await committed(groupId, source)).to.deep.equal([-1]);
    // Acknowledge record 1's and 2's outputs first: record 0 is still pending, nothing can be committed.
    for (const gate of gates.filter((g) => g.key !== 'u0')) gate.release();
    await waitFor('2 processed', () => r.status().processed === 2, 5000, 5);
    await sleep(30);
    expect(r.status().partitions[0]?.watermark).to.equal(0);
    expect(await committed(groupId, source)).to.deep.equal([-1]);
    for (const gate of gates.filter((g) => g.key === 'u0')) gate.release();
    await waitFor('committed 3', async () => (await committed(groupId, source))[0] === 3, 5000);
  });

  it('while no broker is reachable no new record starts (its work would be done again); once a produce gets through, the rest run, none lost', async () => {
    const source = name('away');
    const out = name('away-out');
    const groupId = name('g');
    broker.createTopics([{ name: source, partitions: 1 }, { name: out, partitions: 1 }]);
    const base = await client.producer();
    await base.send(Array.from({ length: 30 }, (_, i) => eventRecord(source, `u${i}`, i)));
    // The broker is "away" until the test brings it back: every produce fails as an unreachable one does.
    let away = false;
    const flaky: KafkaProducer = {
      send: (records) => (away ? Promise.reject(new BrokerUnreachableError(['127.0.0.1:9'], 100)) : base.send(records)),
      close: () => Promise.resolve(),
    };
    let started = 0;
    const r = runner({
      groupId,
      topic: source,
      producer: flaky,
      concurrency: 4,
      commitIntervalMs: 0,
      brokerRetryMs: 30_000,
      handler: async (record) => {
        started += 1;
        if (parseEvent(record).seq === 5) away = true;
        await sleep(5);
        return [{ topic: out, key: record.key, value: 'x' }];
      },
    });
    await r.start();
    await waitFor('the first produce failed', () => started >= 6, 5000, 5);
    await sleep(600); // several retry rounds (250 ms, 500 ms)
    const whileAway = started;
    await sleep(400);
    expect(started, 'no record started while the broker stayed away').to.equal(whileAway);
    expect(whileAway, 'at most the records running when it went away (concurrency 4) after the 6th').to.be.at.most(6 + 4);
    away = false;
    await waitFor('all 30 processed', () => r.status().processed === 30, 10_000);
    expect(started, 'each record ran once').to.equal(30);
    await waitFor('committed to the end', async () => (await committed(groupId, source))[0] === 30, 5000);
  });

  it('rebalance with an awaited revoke: in-flight work finishes and is committed before the hand-off; no record runs twice', async () => {
    const source = name('rebal');
    const cookies = name('rebal-cookies');
    const groupId = name('g');
    broker.createTopics([
      { name: source, partitions: 4 },
      { name: cookies, partitions: 4, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = await client.producer();
    const total = 80;
    await producer.send(Array.from({ length: total }, (_, i) => eventRecord(source, `u${i % 16}`, i)));
    const runs = new Map<string, number>();
    const make = (changelog: MapChangelog): StreamRunner =>
      runner({
        groupId,
        topic: source,
        changelog,
        concurrency: 4,
        maxBuffered: 8,
        commitIntervalMs: 10_000, // only the revoke and the shutdown commit
        handler: async (record) => {
          const id = `${record.partition}@${record.offset}`;
          runs.set(id, (runs.get(id) ?? 0) + 1);
          if (!changelog.stores.has(record.partition)) throw new Error(`p${record.partition} not restored`);
          await sleep(5);
        },
      });
    const log1 = new MapChangelog(cookies);
    const first = make(log1);
    await first.start();
    await waitFor('first member busy', () => first.status().processed >= 10, 5000, 2);
    const log2 = new MapChangelog(cookies);
    const second = make(log2);
    await second.start();
    await waitFor('all processed', () => first.status().processed + second.status().processed >= total, 20_000);
    const mine1 = first.status().partitions.map((p) => p.partition);
    const mine2 = second.status().partitions.map((p) => p.partition);
    expect(sorted([...mine1, ...mine2])).to.deep.equal([0, 1, 2, 3]);
    expect(log1.open()).to.deep.equal(sorted(mine1));
    expect(log2.open()).to.deep.equal(sorted(mine2));
    expect(sorted(log1.closed), 'the first member closed what it gave away').to.deep.equal(sorted(mine2));
    expect([...runs.values()].every((c) => c === 1), 'no record processed twice').to.equal(true);
    expect(runs.size).to.equal(total);
  });

  it('a partition revoked while restoring: the restore is aborted, nothing of it is processed, its state is closed after', async () => {
    const source = name('revrestore');
    const cookies = name('revrestore-cookies');
    const groupId = name('g');
    broker.createTopics([
      { name: source, partitions: 4 },
      { name: cookies, partitions: 4, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = await client.producer();
    await producer.send(Array.from({ length: 40 }, (_, i) => eventRecord(source, `u${i % 8}`, i)));
    const processedBy = (changelog: MapChangelog, out: Set<number>): StreamRunner =>
      runner({
        groupId,
        topic: source,
        changelog,
        handler: (record) => {
          out.add(record.partition);
        },
      });
    const slow = new MapChangelog(cookies);
    slow.restoreDelayMs = 60_000; // only an abort ends it
    const done1 = new Set<number>();
    const first = processedBy(slow, done1);
    await first.start();
    await waitFor('first member restoring 4 partitions', () => first.restoreProgress().length === 4, 5000, 5);
    const fast = new MapChangelog(cookies);
    const done2 = new Set<number>();
    const second = processedBy(fast, done2);
    await second.start();
    await waitFor('second member processed its partitions', () => done2.size === second.status().partitions.length && done2.size > 0, 5000);
    const moved = second.status().partitions.map((p) => p.partition);
    await waitFor('first member closed the moved partitions', () => moved.every((p) => slow.closed.includes(p)), 5000);
    expect(done1.size, 'the first member processed nothing: its restores never ended').to.equal(0);
    expect(slow.open()).to.deep.equal([]);
    expect(sorted(first.status().partitions.map((p) => p.partition))).to.deep.equal(sorted([0, 1, 2, 3].filter((p) => !moved.includes(p))));
    expect(first.status().partitions.every((p) => p.state === 'restoring')).to.equal(true);
  });

  it('stop() drains in-flight work, commits, closes the states and leaves; a hung step is abandoned at the timeout', async () => {
    const source = name('stop');
    const cookies = name('stop-cookies');
    const groupId = name('g');
    broker.createTopics([
      { name: source, partitions: 2 },
      { name: cookies, partitions: 2, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = await client.producer();
    await producer.send(Array.from({ length: 6 }, (_, i) => eventRecord(source, `u${i}`, i)));
    const changelog = new MapChangelog(cookies);
    let aborted = 0;
    let hung = { partition: -1, offset: -1 };
    const r = runner({
      groupId,
      topic: source,
      changelog,
      concurrency: 6,
      commitIntervalMs: 60_000,
      handler: async (record, context) => {
        if (parseEvent(record).seq === 5) {
          hung = { partition: record.partition, offset: record.offset };
          // Never finishes on its own: only the abort ends it.
          await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
          aborted += 1;
          return;
        }
        await sleep(50);
      },
    });
    await r.start();
    await waitFor('all 6 started', () => r.status().inFlight === 6, 5000, 2);
    const started = Date.now();
    await r.stop(300);
    const took = Date.now() - started;
    expect(took).to.be.within(250, 2000);
    expect(aborted).to.equal(1);
    expect(r.status().state).to.equal('stopped');
    expect(r.status().processed).to.equal(5);
    expect(changelog.open()).to.deep.equal([]);
    expect(sorted(changelog.closed)).to.deep.equal([0, 1]);
    const offsets = await admin.listCommittedOffsets(groupId, source);
    const ends = await admin.listEndOffsets(source);
    // Everything but the hung record (the last of its partition) is committed: its partition stops
    // right below it (no commit at all when it was the partition's first record).
    for (const { partition, offset } of offsets) {
      const end = ends.find((e) => e.partition === partition)!.offset;
      const expected = partition !== hung.partition ? end : hung.offset > 0 ? hung.offset : -1;
      expect(offset, `p${partition}`).to.equal(expected);
    }
  });

  it("plugs in state/'s changelogRestorer: restore before process, and the jar written to the changelog is what the next owner restores", async () => {
    const source = name('state');
    const cookies = name('state-cookies');
    const groupId = name('g');
    broker.createTopics([
      { name: source, partitions: 2 },
      { name: cookies, partitions: 2, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = await client.producer();
    await producer.send([{ topic: cookies, key: 'alice', value: JSON.stringify({ visits: 1 }) }]);
    await producer.send([eventRecord(source, 'alice', 0), eventRecord(source, 'alice', 1)]);
    const member = (stores: InMemoryStoreProvider, seen: number[]): StreamRunner => {
      const changelog: ChangelogBinding = changelogRestorer({ topic: cookies, storeName: 'jars', stores });
      return runner({
        groupId,
        topic: source,
        changelog,
        commitIntervalMs: 0,
        handler: (record) => {
          const store = stores.store('jars', record.partition);
          const key = record.key!.toString();
          const jar = (store.get(key) as { visits: number } | undefined) ?? { visits: 0 };
          seen.push(jar.visits);
          const next = { visits: jar.visits + 1 };
          store.put(key, next); // read-your-writes for the next record of the key
          return [{ topic: cookies, key, value: JSON.stringify(next), partition: record.partition }];
        },
      });
    };
    const seen1: number[] = [];
    const first = member(new InMemoryStoreProvider(), seen1);
    await first.start();
    await waitFor('2 processed', () => first.status().processed === 2, 5000);
    expect(seen1).to.deep.equal([1, 2]);
    await first.stop(1000);
    await producer.send([eventRecord(source, 'alice', 2)]);
    const seen2: number[] = [];
    const second = member(new InMemoryStoreProvider(), seen2);
    await second.start();
    await waitFor('1 processed', () => second.status().processed === 1, 5000);
    expect(seen2, 'restored from the changelog the first member wrote').to.deep.equal([3]);
    const restored = second.restoreProgress().find((p) => p.remaining === 0 && p.endOffset === 3);
    expect(restored, JSON.stringify(second.restoreProgress())).to.not.equal(undefined);
  });

  it('exposes its metrics on the registry passed in', async () => {
    const source = name('metrics');
    const cookies = name('metrics-cookies');
    broker.createTopics([
      { name: source, partitions: 2 },
      { name: cookies, partitions: 2, configs: { 'cleanup.policy': 'compact' } },
    ]);
    const producer = await client.producer();
    await producer.send([{ topic: cookies, key: 'a', value: 'jar' }]);
    await producer.send(Array.from({ length: 4 }, (_, i) => eventRecord(source, `u${i}`, i)));
    const registry = new Registry();
    const r = runner({ groupId: name('g'), topic: source, changelog: new MapChangelog(cookies), registry, commitIntervalMs: 0, handler: () => undefined });
    await r.start();
    await waitFor('4 processed', () => r.status().processed === 4, 5000);
    await waitFor('a commit', async () => (await registry.getSingleMetricAsString('tagstream_runner_commits_total')).includes('outcome="ok"'), 5000);
    const text = await registry.metrics();
    for (const metric of [
      'tagstream_runner_records_processed_total',
      'tagstream_runner_in_flight',
      'tagstream_runner_buffered',
      'tagstream_runner_paused_partitions',
      'tagstream_runner_restore_remaining_records',
      'tagstream_runner_restored_records_total',
      'tagstream_runner_commit_duration_seconds_count',
    ]) {
      expect(text).to.include(metric);
    }
    expect(text).to.match(/tagstream_runner_records_processed_total\{[^}]*outcome="ok"\} 4/);
    expect(text).to.match(/tagstream_runner_restored_records_total\{[^}]*\} 1/);
    expect(text).to.match(/tagstream_runner_in_flight\{[^}]*\} 0/);
  });
});

describe('runner: shutdown signals', () => {
  it('the first signal stops gracefully then exits 0; a second one exits 130 at once', async () => {
    const exits: number[] = [];
    let release!: () => void;
    const stops: string[] = [];
    const dispose = onShutdownSignals(
      (signal) => {
        stops.push(signal);
        return new Promise<void>((resolve) => (release = resolve));
      },
      { signals: ['SIGUSR2'], exit: (code) => exits.push(code) },
    );
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      expect(stops).to.deep.equal(['SIGUSR2']);
      expect(exits).to.deep.equal([]);
      process.emit('SIGUSR2', 'SIGUSR2');
      expect(exits).to.deep.equal([130]);
      release();
      await sleep(1);
      expect(exits).to.deep.equal([130, 0]);
      expect(stops).to.have.length(1);
    } finally {
      dispose();
    }
    expect(process.listenerCount('SIGUSR2')).to.equal(0);
  });
});
