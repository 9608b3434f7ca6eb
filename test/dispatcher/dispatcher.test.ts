/**
 * The dispatcher role on the real broker (platformatic) against fake HTTPS partners on 127.0.0.1,
 * reached through DISPATCHER_RESOLVE-style routing with TLS verified by name. Counts, not times.
 */
import { expect } from 'chai';
import type { JarMergeRecord, PartnerConfigInput, RequestDeadLetter } from '../../core/contracts/index.ts';
import type { KafkaClient } from '../../runtime/kafka/types.ts';
import type { DispatcherSettingsInput } from '../../runtime/roles/dispatcher.ts';
import { waitFor } from '../runner/helpers.ts';
import { fakePartner, makeCert, ok, requestRecord, type Behaviour, type FakePartner, type TestCert } from './helpers.ts';
import { createDispatcherTopics, dispatcherSettings, FAST, Harness, names, readJson, type DispatcherTopics } from './setup.ts';

const A = 'collect.partner-a.example';
const B = 'collect.partner-b.example';

describe('dispatcher role (real broker)', function () {
  this.timeout(90_000);
  let cert: TestCert;
  let a: FakePartner;
  let b: FakePartner;
  let h: Harness;
  let topics: DispatcherTopics;
  let group: string;
  let admin: KafkaClient;

  before(() => {
    cert = makeCert([A, B]);
  });
  beforeEach(async () => {
    h = new Harness();
    a = await fakePartner(cert);
    b = await fakePartner(cert);
    ({ topics, group } = names());
    admin = h.client();
    await createDispatcherTopics(admin, topics);
  });
  afterEach(async function () {
    this.timeout(30_000);
    await h.close();
    await Promise.all([a.close(), b.close()]);
  });

  const partners = (aDelivery: Record<string, unknown> = {}): PartnerConfigInput[] => [
    { id: 'pa', html: '', captureHosts: [A], delivery: { timeoutMs: 300, ...aDelivery } },
    { id: 'pb', html: '', captureHosts: [B], delivery: { forwardIp: 'full', timeoutMs: 2_000 } },
  ];
  const resolve = (): string[] => [`${A}:443=127.0.0.1:${a.port}`, `${B}:443=127.0.0.1:${b.port}`];
  const start = (over: DispatcherSettingsInput = {}, aDelivery: Record<string, unknown> = {}, groupId = group) =>
    h.start(dispatcherSettings(topics, groupId), partners(aDelivery), { ...FAST, resolve: resolve(), topics: { retry: topics.retry, delivered: topics.delivered }, ...over }, cert.cert);
  const produce = async (records: Array<Record<string, unknown>>): Promise<void> => {
    const producer = await admin.producer();
    try {
      await producer.send(records.map((r) => ({ topic: topics.requests, key: String(r.userId), value: JSON.stringify(r) })));
    } finally {
      await producer.close();
    }
  };
  const batch = (prefix: string, n: number, partner: string | null, host: string, path = '/hit') =>
    Array.from({ length: n }, (_, i) => requestRecord(`${prefix}-${i}`, partner, `https://${host}${path}`));
  const total = (p: FakePartner): number => [...p.delivered().values()].reduce((s, n) => s + n, 0);

  it('happy path: each request delivered once with the visitor headers; Set-Cookie → jar-merge; replay, republish and restart deliver nothing twice', async () => {
    b.behaviour = () => ({ status: 200, headers: { 'set-cookie': ['pbid=xyz; Domain=partner-b.example; Path=/; Max-Age=3600; Secure; SameSite=None'] } });
    const first = await start();
    const records = [...batch('a', 20, 'pa', A), ...batch('b', 20, null, B)];
    await produce(records);
    await waitFor('40 delivered', () => total(a) + total(b) >= 40, 30_000);
    const hitA = a.hits[0];
    const hitB = b.hits[0];
    expect(hitA?.headers).to.include({ host: A, 'user-agent': 'Mozilla/5.0 (test visitor)', 'accept-language': 'fr-FR,fr;q=0.9', 'x-forwarded-for': '203.0.113.0', referer: 'https://shop.example/p/1' });
    expect(hitB?.headers['x-forwarded-for'], 'pb forwards the full IP').to.equal('203.0.113.77');

    await waitFor('jar-merge records', async () => (await readJson<JarMergeRecord>(admin, topics.events)).length >= 20, 20_000);
    const merges = await readJson<JarMergeRecord>(admin, topics.events);
    expect(merges[0]?.value).to.deep.include({ type: 'jar-merge', partner: 'pb' });
    expect(merges[0]?.value.cookies[0]).to.deep.include({ name: 'pbid', value: 'xyz', domain: '.partner-b.example', secure: true, sameSite: 'None' });
    expect(merges.map((m) => m.key).sort()).to.deep.equal(records.filter((r) => r.partner === null).map((r) => String(r.userId)).sort());

    // Republished (a replay of the same events) on the running dispatcher: skipped.
    await produce(records.slice(0, 10));
    await waitFor('duplicates skipped', () => first.stats().duplicates >= 10, 20_000);
    await first.stop(5_000);
    // A restart in the same group and a new group reading everything again (stores restored from the changelog).
    const again = await start();
    const replay = await start({}, {}, `${group}-replay`);
    await waitFor('replay group read everything', () => replay.stats().duplicates >= 50, 30_000);
    expect(again.stats().delivered + replay.stats().delivered).to.equal(0);
    expect([...a.delivered().values(), ...b.delivered().values()].every((n) => n === 1), 'each request once at the partner').to.equal(true);
    expect(total(a) + total(b)).to.equal(40);
  });

  it('A answers 503 for a while, B is healthy: B delivers everything meanwhile, A after it recovers, nothing dead-lettered', async () => {
    a.behaviour = () => ({ status: 503 });
    const d = await start();
    await produce([...batch('a', 15, 'pa', A), ...batch('b', 15, 'pb', B)]);
    await waitFor('B delivered all', () => total(b) >= 15, 30_000);
    expect(total(a), 'A delivered nothing while failing').to.equal(0);
    await waitFor('A retried through the retry topic', () => d.stats().retried >= 5, 20_000);
    a.behaviour = ok;
    await waitFor('A delivered all after recovering', () => a.delivered().size >= 15, 40_000);
    expect(d.stats().deadLettered).to.equal(0);
    expect(await readJson(admin, topics.dlq)).to.have.length(0);
  });

  it('A down longer than its retry delay: its retry records wait in the retry consumer, not in the dispatcher; the same visitors\' requests to B go out meanwhile', async () => {
    a.behaviour = () => ({ status: 503 });
    // A minute before any retry of A is due: the test ends long before.
    const d = await start({ retryBaseDelayMs: 60_000, retryMaxDelayMs: 60_000 });
    // a-i and b-i are one visitor's page view (batch keys both by u-i).
    await produce([...batch('a', 15, 'pa', A), ...batch('b', 15, 'pb', B)]);
    await waitFor('B delivered all', () => total(b) >= 15, 30_000);
    await waitFor('A\'s 15 requests wait in the retry consumer', () => d.retry.status().inFlight === 15, 30_000);
    await waitFor('the dispatcher holds nothing of A', () => d.status().inFlight === 0 && d.status().buffered === 0, 10_000);
    expect(total(a)).to.equal(0);
    expect(d.stats().retried).to.equal(15);
    // Stopping gives the waiting records up at once: uncommitted, read again by the next owner.
    await d.stop(2_000);
    const restarted = await start({ retryBaseDelayMs: 60_000, retryMaxDelayMs: 60_000 });
    await waitFor('the retry records are read again after the restart', () => restarted.retry.status().inFlight === 15, 30_000);
    expect(total(b), 'nothing delivered twice').to.equal(15);
  });

  it('A stalls: its breaker opens (few calls reach it), B is unaffected, A is retried later', async () => {
    a.behaviour = () => 'stall';
    const d = await start({ breakerThreshold: 3, halfOpenAfterMs: 1_000 }, { concurrency: 4 });
    await produce([...batch('a', 20, 'pa', A), ...batch('b', 20, 'pb', B)]);
    await waitFor('B delivered all', () => total(b) >= 20, 30_000);
    await waitFor('A requests went round the retry topic twice', () => d.stats().retried >= 40, 30_000);
    // Without the breaker, 2 rounds × 20 requests × 2 in-memory attempts (80 calls) would reach A.
    expect(a.hits.length, 'the open breaker spared the stalled partner').to.be.lessThan(20);
    expect(total(b)).to.equal(20);
    a.behaviour = ok;
    await waitFor('A delivered all later', () => a.delivered().size >= 20, 40_000);
  });

  it('429 with Retry-After: 2 slows that partner only', async () => {
    let throttledUntil = 0;
    a.behaviour = (): ReturnType<Behaviour> => {
      if (throttledUntil === 0) throttledUntil = Date.now() + 2_000;
      return Date.now() < throttledUntil ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 };
    };
    const d = await start({ inMemoryBudgetMs: 5_000 }, { concurrency: 2 });
    await produce([...batch('a', 10, 'pa', A), ...batch('b', 10, 'pb', B)]);
    await waitFor('B delivered all', () => total(b) >= 10, 30_000);
    await waitFor('A delivered all', () => a.delivered().size >= 10, 30_000);
    const throttled = a.hits.length - total(a);
    expect(throttled, 'A was called again only after its Retry-After (at most its concurrency got 429)').to.be.within(1, 2);
    expect(d.stats().deadLettered).to.equal(0);
  });

  it('400 → DLQ at once with status and attempts; retry window spent → DLQ; an undeclared host is not sent', async () => {
    a.behaviour = (hit) => (hit.path.startsWith('/bad') ? { status: 400 } : { status: 503 });
    const d = await start();
    const old = requestRecord('old-1', 'pa', `https://${A}/flaky`, { eventTimestamp: new Date(Date.now() - 5 * 3_600_000).toISOString() });
    await produce([requestRecord('bad-1', 'pa', `https://${A}/bad`), old, requestRecord('evil-1', 'pa', 'https://evil.example/x'), requestRecord('nobody-1', null, 'https://nobody.example/x')]);
    await waitFor('2 dead letters', async () => (await readJson(admin, topics.dlq)).length >= 2, 30_000);
    const letters = (await readJson<RequestDeadLetter>(admin, topics.dlq)).map((l) => l.value);
    const bad = letters.find((l) => l.request?.idempotencyKey === 'e-bad-1:pa:0');
    expect(bad).to.deep.include({ reason: 'permanent-failure' });
    expect(bad?.attempts.map((x) => x.status)).to.deep.equal([400]);
    const spent = letters.find((l) => l.request?.idempotencyKey === 'e-old-1:pa:0');
    expect(spent?.reason).to.equal('retry-window-exhausted');
    expect(spent?.attempts.map((x) => x.status)).to.deep.equal([503, 503]);
    await waitFor('not-sent counted', () => d.stats().notSent >= 2, 10_000);
    expect(a.hits.filter((x) => x.path.startsWith('/bad'))).to.have.length(1);
  });
});
