/**
 * The broker stopped and restarted in the middle of a run (docs/e2e.md): a dedicated broker for this
 * suite (the shared one stays untouched), restarted on the same port and data dir. The roles are
 * not told anything: they must reconnect by themselves, and every page view the collector accepted
 * (204) must still reach its partners exactly once. While the broker is away the collector answers
 * 503 and the visitors retry, as a next page view would.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startLocalBroker, type LocalBroker } from '../../runtime/kafka-local/broker.ts';
import { waitFor } from '../runner/helpers.ts';
import { Pipeline } from './pipeline.ts';
import { drive, figures, print, visitors } from './visitors.ts';

const DOWN_MS = 10_000;

describe('end to end: the broker stopped and restarted mid-run', function () {
  this.timeout(600_000);
  let broker: LocalBroker | undefined;
  let p: Pipeline | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'tagstream-e2e-broker-'));

  before(async function () {
    this.timeout(240_000);
    broker = await startLocalBroker({ dataDir });
    p = await Pipeline.start({ brokers: broker.brokers, processors: ['p-a', 'p-b'], sessionTimeoutMs: 25_000 });
  });

  after(async function () {
    this.timeout(90_000);
    await p?.close();
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed' || !p) return;
    for (const role of [p.edge, ...p.processors.values()]) {
      const file = join(tmpdir(), `tagstream-e2e-${role.name.replace(/\W+/g, '-')}.log`);
      writeFileSync(file, role.log);
      console.log(`--- ${role.name}: its log is in ${file}; the last 2 KB:\n${role.log.slice(-2000)}`);
    }
  });

  it('the roles reconnect by themselves and nothing accepted is lost', async () => {
    const pipeline = p!;
    const port = Number(broker!.brokers[0]!.split(':')[1]);
    const running = drive(visitors(24, 500), { collector: pipeline.collector, run: 'broker', views: 4, parallel: 8, thinkMs: 300, retryForMs: 120_000, deadlineMs: 180_000 });
    await waitFor('a third of the page views delivered', () => pipeline.inbox.delivered().filter((h) => h.url.includes('/broker/')).length > 60, 120_000, 100);
    const stoppedAt = Date.now();
    await broker!.stop();
    console.log(`      [e2e] broker stopped (${Date.now() - stoppedAt} ms)`);
    await sleep(DOWN_MS);
    broker = await startLocalBroker({ dataDir, port });
    const restartedAt = Date.now();
    console.log(`      [e2e] broker restarted on port ${port} (away ${restartedAt - stoppedAt} ms)`);
    const result = await running;
    console.log(`      [e2e] visitors done: ${result.accepted.length} accepted, ${result.refused} refused`);
    await waitFor('deliveries after the restart', () => figures(result.accepted, pipeline.inbox.delivered()).lost === 0, 150_000, 250);
    await sleep(1500);
    const f = figures(result.accepted, pipeline.inbox.delivered());
    const mine = pipeline.inbox.delivered().filter((h) => h.url.includes('/broker/'));
    const last = Math.max(...mine.map((h) => h.at));
    // At least once: a delivery whose idempotency record (and offset commit) could not be written
    // because the broker was going or gone is sent again once it is back. Every duplicate must be
    // of such a request: first delivered in the last seconds before the stop or while it was away.
    const first = new Map<string, number>();
    const count = new Map<string, number>();
    for (const h of mine) {
      const k = `${h.partner} ${h.url}`;
      first.set(k, Math.min(first.get(k) ?? Infinity, h.at));
      count.set(k, (count.get(k) ?? 0) + 1);
    }
    const unexplained = [...count].filter(([k, n]) => n > 1 && (first.get(k) ?? 0) < stoppedAt - 5_000).length;
    print('broker stopped and restarted', f, { 'broker away ms': restartedAt - stoppedAt, 'refused (503 until the visitor gave up)': result.refused, 'last delivery after the restart ms': last - restartedAt, 'duplicates of deliveries made before the stop': unexplained, 'consumer streams reopened': [pipeline.edge, ...pipeline.processors.values()].reduce((n, r) => n + r.log.split('consumer stream opened again').length - 1, 0) });
    expect(f).to.deep.include({ lost: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(unexplained, 'duplicates of requests delivered well before the broker stopped').to.equal(0);
    expect(result.refused).to.equal(0);
    // Still the same processes, all ready again: nobody had to restart a role.
    for (const role of [pipeline.edge, ...pipeline.processors.values()]) await role.ready(60_000);
  });
});
