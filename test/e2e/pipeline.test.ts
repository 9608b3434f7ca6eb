/**
 * The pipeline under failure on the real broker (docs/e2e.md): the collector and the dispatcher in
 * one process, two processor instances in one group (separate processes, static members `p-a` and
 * `p-b`), fake partners on 127.0.0.1, visitors posting page views to the collector's HTTP API.
 * The phases share one pipeline and run in order; each drives its own visitors (URLs tagged by
 * phase) and checks what the partners received for them. Figures are printed as `[e2e] ...`.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { realBroker } from '../helpers/kafka.ts';
import { waitFor } from '../runner/helpers.ts';
import { Pipeline } from './pipeline.ts';
import type { Hit } from './partners.ts';
import type { RoleProcess } from './processes.ts';
import { drive, figures, print, sharedIds, visitors, type DriveResult, type PageView } from './visitors.ts';

/** Longer than a restart takes here (so a restart that waited for it would show), short enough for a bounded suite. */
const SESSION_TIMEOUT_MS = 25_000;
/** Page runs in flight per processor instance (executor.browsers × pagesPerBrowser). */
const IN_FLIGHT_PER_INSTANCE = 4;

async function allDelivered(p: Pipeline, views: PageView[], timeoutMs: number): Promise<void> {
  await waitFor(`deliveries of ${views.length} page views`, () => figures(views, p.inbox.delivered()).lost === 0, timeoutMs, 250);
}

/**
 * The worst wait of these page views from accepted (204) to the last partner's delivery. Over the
 * views accepted after a kill it is the time to recover: a view of the lost member's partitions
 * waits until a member owns them again; the others are not held up.
 */
function worstLatency(p: Pipeline, views: PageView[]): number {
  const last = new Map<string, number>();
  for (const h of p.inbox.delivered()) last.set(h.url, Math.max(last.get(h.url) ?? 0, h.at));
  return Math.max(0, ...views.map((v) => (last.get(v.url) ?? v.acceptedAt) - v.acceptedAt));
}

function medianLatency(p: Pipeline, views: PageView[]): number {
  const last = new Map<string, number>();
  for (const h of p.inbox.delivered()) last.set(h.url, Math.max(last.get(h.url) ?? 0, h.at));
  const sorted = views.map((v) => (last.get(v.url) ?? v.acceptedAt) - v.acceptedAt).sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Drives a phase, kill -9s `victim` once a third of it is delivered, restarts it at once if asked; the figures. */
async function killDuring(p: Pipeline, victim: RoleProcess, run: string, offset: number, restart: boolean): Promise<{ result: DriveResult; killedAt: number; readyAt: number }> {
  const running = drive(visitors(24, offset), { collector: p.collector, run, views: 4, parallel: 8, thinkMs: 300 });
  await waitFor('a third of the page views delivered', () => p.inbox.delivered().filter((h) => h.url.includes(`/${run}/`)).length > 60, 120_000, 100);
  const killedAt = Date.now();
  await victim.kill9();
  let readyAt = 0;
  if (restart) {
    victim.start();
    await victim.ready();
    readyAt = Date.now();
  }
  const result = await running;
  await allDelivered(p, result.accepted, 240_000);
  await sleep(1500);
  return { result, killedAt, readyAt };
}

describe('end to end on the real broker: collector → 2 processors → dispatcher → partners', function () {
  this.timeout(600_000);
  let p: Pipeline;

  before(async function () {
    this.timeout(180_000);
    p = await Pipeline.start({ brokers: realBroker().brokers, processors: ['p-a', 'p-b'], sessionTimeoutMs: SESSION_TIMEOUT_MS });
  });

  after(async function () {
    this.timeout(60_000);
    await p?.close();
  });

  it('every accepted page view reaches every consented partner exactly once, with the visitor context, ids stable per visitor', async () => {
    const people = visitors(40);
    const run = await drive(people, { collector: p.collector, run: 'base', views: 4, parallel: 10 });
    expect(run.refused).to.equal(0);
    await allDelivered(p, run.accepted, 120_000);
    await sleep(1500); // a late duplicate would arrive now
    const f = figures(run.accepted, p.inbox.delivered());
    print('exactly once', f, { 'wrong context': f.wrongContext, 'unstable ids': f.unstableIds });
    expect(f).to.deep.include({ sent: 160, expected: 400, delivered: 400, duplicates: 0, lost: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(sharedIds(run.accepted, p.inbox.delivered()), 'an id shared by two visitors').to.equal(0);
    // The first view of each visitor made the ids; the later ones found them in the jar.
    const base = new Set(run.accepted.map((v) => v.url));
    const fresh = p.inbox.delivered().filter((h) => base.has(h.url) && h.fresh);
    expect(fresh.every((h) => h.url.endsWith('/p0')), 'an id created after the first view').to.equal(true);
    // The visitor's IP, truncated as delivery.forwardIp defaults (loopback → 127.0.0.0).
    expect(new Set(p.inbox.delivered().filter((h) => base.has(h.url)).map((h) => h.forwardedFor))).to.deep.equal(new Set(['127.0.0.0']));
  });

  it('kill -9 of one processor and an immediate restart with the same instance id: its partitions resume at once, nothing lost', async () => {
    const a = p.processor('p-a');
    const assignedToA = await a.metric('tagstream_runner_partitions_rebalanced_total', /kind="assigned"/);
    const { result, killedAt, readyAt } = await killDuring(p, p.processor('p-b'), 'restart', 100, true);
    const f = figures(result.accepted, p.inbox.delivered());
    const recovered = worstLatency(p, result.accepted.filter((v) => v.acceptedAt >= killedAt));
    print('kill -9 + restart (same instance id)', f, { 'restart to ready ms': readyAt - killedAt, 'time to recover ms': recovered, 'median latency ms': medianLatency(p, result.accepted), 'session timeout ms': SESSION_TIMEOUT_MS });
    expect(f).to.deep.include({ lost: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(f.duplicates, 'partner-side duplicates').to.be.at.most(IN_FLIGHT_PER_INSTANCE * 3);
    // Static membership: the restarted member took its own partitions back, the other was not rebalanced.
    expect(await a.metric('tagstream_runner_partitions_rebalanced_total', /kind="assigned"/), 'partitions assigned to p-a meanwhile').to.equal(assignedToA);
  });

  it('Chromium killed under load (kill -9 of a processor\'s browser): it is replaced, nothing lost', async () => {
    const people = visitors(24, 200);
    const a = p.processor('p-a');
    const replacedBefore = await a.metric('tagstream_executor_browsers_replaced_total');
    const running = drive(people, { collector: p.collector, run: 'chromium', views: 4, parallel: 8, thinkMs: 200 });
    await waitFor('a third of the page views delivered', () => p.inbox.delivered().filter((h) => h.url.includes('/chromium/')).length > 60, 120_000, 100);
    const browsers = a.browserPids();
    expect(browsers.length, 'the browser processes of p-a').to.be.at.least(1);
    for (const pid of browsers) process.kill(pid, 'SIGKILL');
    const result = await running;
    await allDelivered(p, result.accepted, 180_000);
    await sleep(1500);
    const f = figures(result.accepted, p.inbox.delivered());
    const replaced = (await a.metric('tagstream_executor_browsers_replaced_total')) - replacedBefore;
    const deadLetters = (await p.read(p.settings.topics.eventsDlq)).length;
    print('Chromium kill -9', f, { 'browsers killed': browsers.length, 'browsers replaced': replaced, 'events dead-lettered': deadLetters });
    expect(f).to.deep.include({ lost: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(replaced).to.be.at.least(1);
    expect(f.duplicates).to.be.at.most(IN_FLIGHT_PER_INSTANCE * 3);
    expect(deadLetters).to.equal(0);
  });

  it('a partner down for a while: its requests retry, then arrive; the others are unaffected; only permanent failures are dead-lettered', async () => {
    const people = visitors(24, 300);
    const refusedVisitor = '/outage/v300/'; // advertising consent (even index): pc refuses its hits for good
    const outage = { from: 0, to: 0 };
    p.inbox.answer = (hit) => {
      if (hit.partner === 'pc' && hit.url.includes(refusedVisitor)) return 400;
      if (hit.partner === 'pb' && outage.to === 0) return 503;
      return 204;
    };
    outage.from = Date.now();
    const running = drive(people, { collector: p.collector, run: 'outage', views: 4, parallel: 8, thinkMs: 200 });
    await sleep(8_000);
    outage.to = Date.now();
    const result = await running;
    const permanent = (view: PageView, partner: string): boolean => partner === 'pc' && view.url.includes(refusedVisitor);
    await waitFor('deliveries after the outage', () => figures(result.accepted, p.inbox.delivered(), permanent).lost === 0, 180_000, 250);
    await sleep(1500);
    p.inbox.answer = () => 204;
    const f = figures(result.accepted, p.inbox.delivered(), permanent);
    const mine = p.inbox.hits.filter((h) => h.url.includes('/outage/'));
    const failedB = mine.filter((h) => h.partner === 'pb' && h.status === 503).length;
    const othersDuringOutage = mine.filter((h) => h.partner !== 'pb' && h.status === 204 && h.at < outage.to).length;
    const dlq = (await p.read(p.settings.topics.requestsDlq)).filter((d) => decodeURIComponent(String((d.request as { url?: string } | null)?.url)).includes('/outage/'));
    print('partner pb down 8 s', f, { 'pb 503 answers': failedB, 'pa+pc delivered during the outage': othersDuringOutage, 'requests dead-lettered': dlq.length });
    expect(f).to.deep.include({ lost: 0, duplicates: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(failedB, 'pb requests refused during the outage').to.be.at.least(1);
    expect(othersDuringOutage, 'pa and pc deliveries while pb was down').to.be.at.least(1);
    expect(dlq.map((d) => [d.partner, d.reason])).to.deep.equal(Array.from({ length: 4 }, () => ['pc', 'permanent-failure']));
  });

  it('graceful stop (SIGTERM) of a static member: it leaves the group, its partitions move at once, nothing lost', async () => {
    const a = p.processor('p-a');
    const b = p.processor('p-b');
    const assignedToA = await a.metric('tagstream_runner_partitions_rebalanced_total', /kind="assigned"/);
    const running = drive(visitors(24, 800), { collector: p.collector, run: 'sigterm', views: 4, parallel: 8, thinkMs: 300 });
    await waitFor('a third of the page views delivered', () => p.inbox.delivered().filter((h) => h.url.includes('/sigterm/')).length > 60, 120_000, 100);
    const stoppedAt = Date.now();
    expect(await b.stop(), 'exit code of p-b after SIGTERM').to.equal(0);
    const drainedIn = Date.now() - stoppedAt;
    const result = await running;
    await allDelivered(p, result.accepted, 180_000);
    await sleep(1500);
    const f = figures(result.accepted, p.inbox.delivered());
    const taken = (await a.metric('tagstream_runner_partitions_rebalanced_total', /kind="assigned"/)) - assignedToA;
    print('SIGTERM of a static member', f, { 'drain and exit ms': drainedIn, 'time to recover ms': worstLatency(p, result.accepted.filter((v) => v.acceptedAt >= stoppedAt)), 'session timeout ms': SESSION_TIMEOUT_MS, 'partitions taken over': taken });
    expect(f).to.deep.include({ lost: 0, duplicates: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(taken, 'partitions p-a took from p-b').to.be.at.least(1);
    b.start();
    await b.ready();
  });

  it('replay of an outage range (pb refused everything: dead-lettered) delivers what is missing, once', async () => {
    const people = visitors(16, 700);
    p.inbox.answer = (hit) => (hit.partner === 'pb' ? 400 : 204);
    const from = new Date(Date.now() - 500).toISOString();
    const result = await drive(people, { collector: p.collector, run: 'replay', views: 4, parallel: 8 });
    const onlyPb = (_v: PageView, partner: string): boolean => partner !== 'pb';
    const notPb = (_v: PageView, partner: string): boolean => partner === 'pb';
    const mine = (): Hit[] => p.inbox.hits.filter((h) => h.url.includes('/replay/'));
    await waitFor('pa and pc delivered, pb refused', () => figures(result.accepted, p.inbox.delivered(), notPb).lost === 0 && mine().filter((h) => h.partner === 'pb').length >= result.accepted.length, 120_000, 250);
    const to = new Date(Date.now() + 500).toISOString();
    p.inbox.answer = () => 204;
    const missing = figures(result.accepted, p.inbox.delivered(), onlyPb).lost;
    const replay = await p.cli(['replay', '--from', from, '--to', to, '--partner', 'pb', '--format', 'json', '--wait-timeout', '2m']);
    expect(replay.code, replay.stderr.slice(-2000)).to.equal(0);
    await waitFor('pb deliveries after the replay', () => figures(result.accepted, p.inbox.delivered(), onlyPb).lost === 0, 120_000, 250);
    await sleep(1500);
    const f = figures(result.accepted, p.inbox.delivered());
    print('replay of the outage range (--partner pb)', f, { 'pb missing before the replay': missing, 'replayed events': String((JSON.parse(replay.stdout) as { events?: { replayed?: number } }).events?.replayed) });
    expect(missing, 'pb requests missing before the replay').to.equal(result.accepted.length);
    expect(f).to.deep.include({ lost: 0, duplicates: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
  });

  it('kill -9 of one processor for good: the other takes its partitions after the session timeout, restores their jars, nothing lost', async () => {
    const a = p.processor('p-a');
    const assignedToA = await a.metric('tagstream_runner_partitions_rebalanced_total', /kind="assigned"/);
    const { result, killedAt } = await killDuring(p, p.processor('p-b'), 'loss', 400, false);
    const f = figures(result.accepted, p.inbox.delivered());
    const recovered = worstLatency(p, result.accepted.filter((v) => v.acceptedAt >= killedAt));
    const taken = (await a.metric('tagstream_runner_partitions_rebalanced_total', /kind="assigned"/)) - assignedToA;
    print('kill -9 for good (permanent loss)', f, { 'time to recover ms': recovered, 'session timeout ms': SESSION_TIMEOUT_MS, 'partitions taken over': taken });
    // ids stable across the takeover: p-a restored the jars of p-b's partitions from the changelog.
    expect(f).to.deep.include({ lost: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(f.duplicates).to.be.at.most(IN_FLIGHT_PER_INSTANCE * 3);
    expect(taken, 'partitions p-a took from p-b').to.be.at.least(1);
  });

  it('for comparison, a dynamic member (no instance id) restarted after kill -9: its partitions wait for its old session', async () => {
    const c = await p.addProcessor('p-c', undefined);
    const { result, killedAt, readyAt } = await killDuring(p, c, 'dynamic', 600, true);
    const f = figures(result.accepted, p.inbox.delivered());
    print('kill -9 + restart (dynamic member)', f, { 'restart to ready ms': readyAt - killedAt, 'time to recover ms': worstLatency(p, result.accepted.filter((v) => v.acceptedAt >= killedAt)), 'session timeout ms': SESSION_TIMEOUT_MS });
    expect(f).to.deep.include({ lost: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 });
    expect(f.duplicates).to.be.at.most(IN_FLIGHT_PER_INSTANCE * 3);
  });
});
