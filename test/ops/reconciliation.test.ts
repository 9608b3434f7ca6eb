/**
 * Reconciliation (docs/metrics.md "Reconciliation"): N page views posted to the collector of a
 * `run` process on the real broker go through the processor (real Chromium) and the dispatcher to
 * fake partners on loopback. The stage counters `tagstream_pipeline_stage_total` must agree with
 * what is on the topics and with what the partners received, partner by partner.
 */
import { expect } from 'chai';
import type { ConsumedRecord } from '../../runtime/kafka/types.ts';
import { readAll, waitFor } from '../runner/helpers.ts';
import { fakeServer, PARTITIONS, postPageView, sample, startStack, total, type FakeServer, type Stack } from './stack.ts';

const N = 30;

describe('reconciliation: the pipeline stage counters agree with the topics and the partners', function () {
  this.timeout(240_000);
  let alpha: FakeServer;
  let beta: FakeServer;
  let stack: Stack | undefined;

  before(async function () {
    this.timeout(120_000);
    alpha = await fakeServer();
    // beta's script comes from its CDN (allowHosts, through the script cache); it sends a beacon and a pixel.
    beta = await fakeServer((hit) =>
      hit.path === '/beta.js'
        ? { status: 200, headers: { 'content-type': 'application/javascript' }, body: `navigator.sendBeacon('http://127.0.0.1:${betaPort()}/collect?p='+encodeURIComponent(location.pathname), JSON.stringify({t:document.title}));new Image().src='http://127.0.0.1:${betaPort()}/px?p='+encodeURIComponent(location.pathname);` }
        : { status: 204 },
    );
    const betaPort = (): number => beta.port;
    stack = await startStack({
      partners: [
        { id: 'alpha', consent: 'analytics', captureHosts: [alpha.host], timeoutMs: 2000, html: `<script>new Image().src='http://${alpha.host}/a?p='+encodeURIComponent(location.pathname)</script>` },
        { id: 'beta', consent: 'analytics', allowHosts: [`http://${beta.host}/beta.js`], captureHosts: [beta.host], timeoutMs: 2000, html: `<script src="http://${beta.host}/beta.js"></script>` },
        // No consent for advertising in these page views: never runs, never captured.
        { id: 'gamma', consent: 'advertising', captureHosts: [alpha.host], timeoutMs: 2000, html: `<script>new Image().src='http://${alpha.host}/g'</script>` },
      ],
    });
  });

  after(async function () {
    this.timeout(60_000);
    await stack?.stop();
    await Promise.allSettled([alpha?.close(), beta?.close()]);
  });

  it(`${N} page views: collected = events on the topic, captured = request records per partner, delivered = accepted = what each partner received`, async () => {
    const s = stack!;
    const statuses: number[] = [];
    for (let i = 0; i < N; i += 1) statuses.push(await postPageView(s, i));
    expect(statuses.every((c) => c === 204), `answers ${statuses.join(',')}`).to.equal(true);

    // Bounded: every partner got its requests (1 per page view for alpha, 2 for beta) and the
    // groups committed everything.
    await waitFor('every partner request delivered', () => alpha.hits.length >= N && beta.hits.filter((h) => h.path !== '/beta.js').length >= 2 * N, 150_000, 250);
    let text = '';
    await waitFor('stage counters and lag settled', async () => {
      text = await s.metrics();
      return (
        total(text, 'tagstream_pipeline_stage_total', { stage: 'accepted' }) >= 3 * N &&
        total(text, 'kafka_consumergroup_lag', { consumergroup: s.settings.groups.processor }) === 0 &&
        total(text, 'kafka_consumergroup_lag', { consumergroup: s.settings.groups.dispatcher, topic: s.settings.topics.requests }) === 0
      );
    }, 60_000, 500);

    const stage = (st: string, partner = ''): number | undefined => sample(text, 'tagstream_pipeline_stage_total', { stage: st, partner });
    const events: ConsumedRecord[] = await readAll(s.client, s.settings.topics.events, PARTITIONS);
    const requests = (await readAll(s.client, s.settings.topics.requests, PARTITIONS)).map((r) => JSON.parse(r.value!.toString('utf8')) as { partner: string | null; url: string });
    const onTopic = (p: string): number => requests.filter((r) => r.partner === p).length;
    const received = (server: FakeServer, prefix = '/'): number => server.hits.filter((h) => h.path.startsWith(prefix) && h.path !== '/beta.js').length;

    // collected: what the collector had acknowledged, and what is on the events topic.
    expect(events).to.have.length(N);
    expect(stage('collected')).to.equal(N);
    expect(sample(text, 'tagstream_collector_requests_total', { outcome: 'accepted' })).to.equal(N);
    // executed: every page view once, each consented partner once per page view, gamma never.
    expect(stage('executed')).to.equal(N);
    expect(stage('executed', 'alpha')).to.equal(N);
    expect(stage('executed', 'beta')).to.equal(N);
    expect(stage('executed', 'gamma')).to.equal(0);
    expect(sample(text, 'tagstream_executor_partner_outcomes_total', { partner: 'gamma', status: 'skipped' })).to.equal(N);
    // captured: the request records on the requests topic, partner by partner.
    expect(onTopic('alpha')).to.equal(N);
    expect(onTopic('beta')).to.equal(2 * N);
    expect(stage('captured', 'alpha')).to.equal(onTopic('alpha'));
    expect(stage('captured', 'beta')).to.equal(onTopic('beta'));
    expect(stage('captured', 'gamma')).to.equal(0);
    expect(requests).to.have.length(onTopic('alpha') + onTopic('beta'));
    // delivered and accepted: what each partner's server received (each request once: idempotent).
    expect(received(alpha, '/a?')).to.equal(N);
    expect(received(beta)).to.equal(2 * N);
    expect(stage('delivered', 'alpha')).to.equal(received(alpha, '/a?'));
    expect(stage('accepted', 'alpha')).to.equal(received(alpha, '/a?'));
    expect(stage('delivered', 'beta')).to.equal(received(beta));
    expect(stage('accepted', 'beta')).to.equal(received(beta));
    expect(sample(text, 'tagstream_dispatcher_requests_total', { partner: 'beta', outcome: 'delivered' })).to.equal(2 * N);
    // Every page view visits distinct pages: the partners saw each of them.
    expect(new Set(alpha.hits.map((h) => new URL(h.path, 'http://x').searchParams.get('p'))).size).to.equal(N);
    // The streams layer counted the same records.
    expect(sample(text, 'tagstream_runner_records_processed_total', { group: s.settings.groups.processor, topic: s.settings.topics.events, outcome: 'ok' })).to.equal(N);
    expect(total(text, 'tagstream_runner_records_processed_total', { group: s.settings.groups.dispatcher, topic: s.settings.topics.requests })).to.equal(requests.length);
    // beta's script came through the script cache: fetched from its CDN once (the tabs' own HTTP
    // caches may serve later page views without asking the script cache at all).
    expect(sample(text, 'tagstream_executor_script_cache_total', { partner: 'beta', result: 'miss' })).to.equal(1);
    expect(beta.hits.filter((h) => h.path === '/beta.js')).to.have.length(1);
  });
});
