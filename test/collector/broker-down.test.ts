/**
 * The broker goes away under the collector (DESIGN.md: "503 quickly when the broker is
 * unavailable (bounded wait, bounded memory, never an unbounded buffer)"). A broker of this suite
 * (never the shared one): stopped while 2,000 requests arrive, then started again on the same
 * port and data. Every answer while it is down is 503 with the bounded wait; memory stays bounded;
 * once it is back the collector answers 204 again, and every 204 is on the topic.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startLocalBroker, type LocalBroker } from '../../runtime/kafka-local/broker.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { eventually } from './browser.ts';
import { pageView, post, readTopic, startTestCollector, type TestCollector } from './helpers.ts';

const PRODUCE_TIMEOUT_MS = 1000;
const MAX_IN_FLIGHT = 200;
const REQUESTS = 2000;
const CONCURRENCY = 50;

describe('collector: broker down and back', function () {
  this.timeout(240_000);
  let dataDir: string;
  let port: number;
  let broker: LocalBroker | undefined;
  let c: TestCollector | undefined;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'collector-broker-'));
    port = await freePort();
    broker = await startLocalBroker({ dataDir, port, heapMb: 384 });
  });
  after(async () => {
    await c?.close().catch(() => undefined);
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('503 within the bound and bounded memory while down; 204 again once back; nothing accepted lost', async () => {
    c = await startTestCollector(broker!.brokers, { produceTimeoutMs: PRODUCE_TIMEOUT_MS, maxInFlight: MAX_IN_FLIGHT }, { connectTimeoutMs: 1000, requestTimeoutMs: 2000 });
    const accepted: string[] = [];
    const send = async (userId: string): Promise<number> => {
      const answer = await post(c!.url, JSON.stringify(pageView({ userId })));
      if (answer.status === 204) accepted.push(userId);
      return answer.status;
    };
    for (let i = 0; i < 20; i++) expect(await send(`before-${i}`)).to.equal(204);

    await broker!.stop();
    broker = undefined;
    const rssBefore = process.memoryUsage().rss;
    let rssMax = rssBefore;
    const statuses = new Map<number, number>();
    const reasons = new Set<string>();
    const mismatched: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < REQUESTS) {
        const i = next++;
        const answer = await post(c!.url, JSON.stringify(pageView({ userId: `down-${i}`, data: { pad: 'x'.repeat(1000) } })));
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 204) accepted.push(`down-${i}`);
        else {
          const { code, reason } = (JSON.parse(answer.body) as { error: { code: string; reason: string } }).error;
          reasons.add(reason);
          // Shed by the collector's own bound, or the broker's silence: the code tells which.
          if (code !== (reason.startsWith('too many events waiting') ? 'ERR_COLLECTOR_OVERLOADED' : 'ERR_KAFKA_BROKER_UNREACHABLE')) mismatched.push(`${code}: ${reason}`);
        }
        if (i % 50 === 0) rssMax = Math.max(rssMax, process.memoryUsage().rss);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const metrics = await c.registry.getSingleMetricAsString('tagstream_collector_produce_seconds');
    const growthMb = (rssMax - rssBefore) / 2 ** 20;
    console.log(`      while down: ${JSON.stringify(Object.fromEntries(statuses))}, RSS +${growthMb.toFixed(1)} MiB, reasons: ${[...reasons].join(' | ')}`);
    expect(statuses.get(503)).to.equal(REQUESTS);
    expect(mismatched, 'answers whose code does not match their reason').to.deep.equal([]);
    expect([...reasons].every((r) => /did not acknowledge within 1000 ms|too many events waiting|refused or could not be reached/.test(r))).to.equal(true);
    // The bound, as the collector measured it: no wait for the broker went past the bucket above produceTimeoutMs.
    const over = (le: string): number => Number(new RegExp(`_bucket\\{le="${le}",result="timeout"\\} (\\d+)`).exec(metrics)?.[1] ?? '0');
    const inf = Number(/_bucket\{le="\+Inf",result="timeout"\} (\d+)/.exec(metrics)?.[1] ?? '0');
    expect(inf - over('2.5'), 'timed-out waits beyond 2.5 s').to.equal(0);
    expect(growthMb, 'RSS growth while 2,000 requests met a dead broker').to.be.below(150);
    expect(c.role.readiness().ready || c.role.readiness().reasons[0] === 'collector: too many events waiting for the broker').to.equal(true);

    broker = await startLocalBroker({ dataDir, port, heapMb: 384 });
    let n = 0;
    const back = await eventually(90_000, async () => ((await send(`back-${n++}`)) === 204 ? true : undefined));
    expect(back, 'the collector answered 204 again after the broker came back').to.equal(true);
    for (let i = 0; i < 20; i++) expect(await send(`after-${i}`)).to.equal(204);

    const reader = createKafkaClient('platformatic', { brokers: broker.brokers, clientId: 'collector-down-reader' });
    try {
      const onTopic = new Set((await readTopic(reader, c.topic, 2)).map((r) => r.key));
      const lost = accepted.filter((id) => !onTopic.has(id));
      expect(lost, 'answered 204 but not on the topic').to.deep.equal([]);
      expect(accepted.length).to.be.at.least(41);
    } finally {
      await reader.close();
    }
  });
});
