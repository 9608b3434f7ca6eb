import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createExecutor, type CapturedRequest, type Executor } from '../../processors/executor/index.ts';
import { makeEvent, startFixtureServer, type FixtureServer } from './helpers.ts';
import { posthogSnippet } from './posthog-snippet.ts';

interface PosthogEvent {
  event: string;
  properties: Record<string, unknown>;
}

function events(r: CapturedRequest): PosthogEvent[] {
  // Bodies are kept as sent: gzip (base64 in the output) or form-encoded base64 JSON.
  const text =
    r.bodyEncoding === 'base64'
      ? gunzipSync(Buffer.from(r.body ?? '', 'base64')).toString('utf8')
      : Buffer.from(decodeURIComponent((r.body ?? '').replace(/^data=/, '')), 'base64').toString('utf8');
  const parsed = JSON.parse(text) as PosthogEvent | PosthogEvent[] | { batch: PosthogEvent[] };
  if (Array.isArray(parsed)) return parsed;
  return 'batch' in parsed ? parsed.batch : [parsed];
}

describe('executor with a real tracker SDK (posthog-js array.js, vendored)', function () {
  this.timeout(60_000);
  let srv: FixtureServer;
  let ex: Executor;
  before(async () => {
    srv = await startFixtureServer();
    const sdk = readFileSync(new URL('./fixtures/vendor/posthog-array.js', import.meta.url));
    srv.routes.push((req, res) => {
      if (req.url !== '/static/array.js') return false;
      res.writeHead(200, { 'content-type': 'application/javascript', etag: '"ph-1.449.2"' }).end(sdk);
      return true;
    });
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true });
  });
  after(async () => {
    await ex?.close();
    await srv?.close();
  });

  it('captures $pageview and the pagehide $pageleave beacon, and keeps distinct_id through the jar', async () => {
    // One host serves the SDK (URL prefix, allowed) and receives its events (host, captured).
    const partner = {
      id: 'posthog',
      consent: 'analytics',
      html: posthogSnippet(srv.origin),
      allowHosts: [`${srv.origin}/static/`],
      captureHosts: [srv.host],
    };
    const event = makeEvent();
    const r = await ex.execute(event, null, [partner]);
    expect(r.trackers).to.have.length(1);
    expect(r.trackers[0]).to.include({ partner: 'posthog', status: 'ok', error: null });
    expect(r.requests.every((q) => q.partner === 'posthog')).to.equal(true);
    const sent = r.requests.filter((q) => new URL(q.url).pathname === '/e/').flatMap(events);
    const pageview = sent.find((e) => e.event === '$pageview');
    const pageleave = sent.find((e) => e.event === '$pageleave');
    expect(pageview, JSON.stringify(r.requests.map((q) => q.url))).to.not.equal(undefined);
    expect(pageview?.properties).to.deep.include({
      $current_url: 'https://shop.example/p/42?utm_source=x',
      $referrer: 'https://www.google.com/',
      $timezone: 'Europe/Paris',
      $browser_language: 'fr-FR',
      $screen_width: 1920,
      $viewport_width: 1280,
      utm_source: 'x',
    });
    expect(pageleave).to.not.equal(undefined);
    expect(r.requests.find((q) => q.url.includes('/e/?compression'))?.transport).to.equal('beacon');
    const distinctId = pageview?.properties.distinct_id;
    expect(distinctId).to.be.a('string');
    expect(r.jar.cookies.find((c) => c.name === 'ph_phc_test_posthog')?.value).to.contain(String(distinctId));
    expect(r.jar.localStorage['https://shop.example']?.ph_phc_test_posthog).to.contain(String(distinctId));
    // The SDK loaded once from the fixture server (then from the executor's cache).
    const again = await ex.execute(makeEvent({ page: { url: 'https://shop.example/cart' } }), r.jar, [partner]);
    const pv2 = again.requests.filter((q) => new URL(q.url).pathname === '/e/').flatMap(events).find((e) => e.event === '$pageview');
    expect(pv2?.properties.distinct_id).to.equal(distinctId);
    expect(pv2?.properties.$current_url).to.equal('https://shop.example/cart');
    expect(srv.hits.filter((h) => h.url === '/static/array.js')).to.have.length(1);
  });
});
