import { expect } from 'chai';
import { createExecutor, type Executor } from '../../processors/executor/index.ts';
import { byPath, CHROME_UA, makeEvent, one, startFixtureServer, tagPartner, type FixtureServer } from './helpers.ts';

describe('executor: page runs on a warm pool', function () {
  this.timeout(60_000);
  let srv: FixtureServer;
  let ex: Executor;

  before(async () => {
    srv = await startFixtureServer();
    // Fixture tags are served from 127.0.0.1: private network allowed for this pool only.
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 2, allowPrivateNetwork: true });
  });
  after(async () => {
    await ex?.close();
    await srv?.close();
  });

  it('captures every transport with method, body and transport, and answers them so tags see success', async () => {
    const r = await ex.execute(makeEvent(), null, [tagPartner(srv, 'pa', 'transports')]);
    expect(r.trackers).to.deep.equal([{ partner: 'pa', status: 'ok', durationMs: r.trackers[0]?.durationMs, error: null }]);
    const img = one(r.requests, '/image');
    expect(img).to.include({ partner: 'pa', method: 'GET', transport: 'image', body: null });
    const f = one(r.requests, '/fetch');
    expect(f).to.include({ method: 'POST', transport: 'fetch', body: '{"t":"fetch"}', bodyEncoding: 'utf8' });
    expect(f.headers['x-tag']).to.equal('1');
    expect(one(r.requests, '/keepalive')).to.include({ transport: 'fetch', body: 'k=1' });
    expect(one(r.requests, '/xhr')).to.include({ method: 'POST', transport: 'xhr', body: 'a=1&b=2' });
    expect(one(r.requests, '/beacon')).to.include({ method: 'POST', transport: 'beacon', body: '{"t":"beacon"}' });
    const bin = one(r.requests, '/beacon-bin');
    expect(bin).to.include({ transport: 'beacon', bodyEncoding: 'base64' });
    expect(Buffer.from(bin.body ?? '', 'base64')).to.deep.equal(Buffer.from([0xff, 0xfe, 0x00, 0x01]));
    expect(one(r.requests, '/formdata').body).to.match(/name="field"\r\n\r\nvalue/);
    expect(one(r.requests, '/jsonp')).to.include({ transport: 'script', method: 'GET' });
    expect(one(r.requests, '/iframe')).to.include({ transport: 'iframe' });
    expect(one(r.requests, '/form')).to.include({ transport: 'form', method: 'POST', body: 'q=form+value' });
    // Synthetic answers: CORS with credentials passed (preflight for x-tag answered), XHR got 200.
    expect(one(r.requests, '/fetch-ok').url).to.contain(encodeURIComponent('{}'));
    expect(one(r.requests, '/xhr-ok').url).to.contain('status=200');
    expect(byPath(r.requests, '/script-ok')).to.have.length(1);
    expect(byPath(r.requests, '/fetch-failed')).to.have.length(0);
    // Preflights are answered, not listed.
    expect(r.requests.filter((q) => q.method === 'OPTIONS')).to.have.length(0);
    // The tag script itself loaded through the executor, once.
    expect(srv.hits.filter((h) => h.url === '/tags/transports.js')).to.have.length(1);
  });

  it('runs page time on a fake clock from event.timestamp: setTimeout(3000) costs no wall time', async () => {
    const t = Date.now();
    const r = await ex.execute(makeEvent({ timestamp: '2026-01-15T08:00:00.000Z' }), null, [tagPartner(srv, 'pd', 'delayed')]);
    const wall = Date.now() - t;
    const d = one(r.requests, '/delayed');
    expect(Number(new URL(d.url).searchParams.get('waited'))).to.be.within(3000, 3100);
    expect(d.partner).to.equal('pd');
    expect(wall).to.be.below(2500);
  });

  it('flushes a batcher on its interval and on pagehide (sendBeacon)', async () => {
    const r = await ex.execute(makeEvent(), null, [tagPartner(srv, 'pb', 'batcher', { timeoutMs: 8000 })]);
    const batches = byPath(r.requests, '/batch');
    expect(batches.map((b) => b.transport)).to.deep.equal(['fetch', 'beacon']);
    const first = JSON.parse(batches[0]?.body ?? '{}') as { events: string[]; at: number };
    const last = JSON.parse(batches[1]?.body ?? '{}') as { events: string[]; at: number };
    expect(first.events).to.deep.equal(['view']);
    expect(first.at).to.be.within(5000, 5100);
    expect(last.events).to.deep.equal(['late']);
    expect(last.at).to.be.within(7000, 8100);
  });

  it('shows the tags the visitor: location, referrer, title, dataLayer, clock, device emulation, client hints', async () => {
    const event = makeEvent({
      timestamp: '2026-11-29T10:00:00.000Z',
      page: { url: 'https://shop.example/p/7?x=1#frag', referrer: 'https://www.google.com/search?q=shoes', title: 'Shoes <7>' },
      device: {
        userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.7390.122 Mobile Safari/537.36',
        language: 'de-DE',
        languages: ['de-DE', 'de', 'en'],
        platform: 'Linux armv8l',
        screen: { width: 412, height: 915, colorDepth: 30, pixelRatio: 2.625 },
        viewport: { width: 412, height: 780 },
        timezone: 'America/New_York',
      },
      data: { page_type: 'product', value: 7 },
    });
    const r = await ex.execute(event, null, [tagPartner(srv, 'probe', 'probe')]);
    const req = one(r.requests, '/probe');
    const p = JSON.parse(req.body ?? '{}') as Record<string, unknown>;
    expect(p).to.deep.include({
      userAgent: event.device?.userAgent,
      language: 'de-DE',
      languages: ['de-DE', 'de', 'en'],
      platform: 'Linux armv8l',
      webdriver: false,
      // Not the server's: a common mobile device (no such fields in this event).
      hardwareConcurrency: 8,
      deviceMemory: 4,
      hasDeviceMemory: true,
      timezone: 'America/New_York',
      tzOffset: 300,
      screen: { width: 412, height: 915, colorDepth: 30, pixelDepth: 30 },
      pixelRatio: 2.625,
      viewport: { width: 412, height: 780 },
      url: 'https://shop.example/p/7?x=1#frag',
      referrer: 'https://www.google.com/search?q=shoes',
      title: 'Shoes <7>',
      dataLayer: [{ page_type: 'product', value: 7 }],
      visibility: 'visible',
      outer: [412, 780],
      chrome: 'object',
      nativeLooking: true,
    });
    expect(p.now as number).to.be.within(Date.parse('2026-11-29T10:00:00.000Z'), Date.parse('2026-11-29T10:00:01.000Z'));
    const uaData = p.uaData as { brands: { brand: string; version: string }[]; mobile: boolean; platform: string };
    expect(uaData.mobile).to.equal(true);
    expect(uaData.platform).to.equal('Android');
    expect(uaData.brands.map((b) => b.brand)).to.include('Google Chrome');
    expect(JSON.stringify(uaData)).not.to.match(/headless/i);
    const high = p.uaHigh as { platformVersion: string; model: string; fullVersionList: { brand: string; version: string }[] };
    expect(high.platformVersion).to.equal('14');
    expect(high.model).to.equal('Pixel 8');
    expect(high.fullVersionList.find((b) => b.brand === 'Chromium')?.version).to.equal('141.0.7390.122');
    // The headers a collector would see.
    expect(req.headers['User-Agent']).to.equal(event.device?.userAgent);
    expect(req.headers['Accept-Language']).to.match(/^de-DE,de;q=0\.9/);
    expect(req.headers['sec-ch-ua'] ?? '').to.contain('"Chromium";v="141"').and.not.match(/headless/i);
    expect(req.headers['sec-ch-ua-mobile']).to.equal('?1');
    expect(req.headers['sec-ch-ua-platform']).to.equal('"Android"');
    expect(JSON.stringify(req.headers)).not.to.match(/headless/i);
  });

  it('uses event.device.userAgentData for client hints when the collector sent it', async () => {
    const base = makeEvent();
    const uad = {
      brands: [
        { brand: 'Microsoft Edge', version: '142' },
        { brand: 'Chromium', version: '142' },
        { brand: 'Not_A Brand', version: '99' },
      ],
      mobile: false,
      platform: 'Windows',
      platformVersion: '19.0.0',
      architecture: 'x86',
      model: '',
      fullVersionList: [{ brand: 'Microsoft Edge', version: '142.0.3595.53' }],
    };
    const device = { ...base.device, userAgentData: uad, hardwareConcurrency: 12, deviceMemory: 2 };
    const r = await ex.execute({ ...base, device }, null, [tagPartner(srv, 'probe', 'probe')]);
    const req = one(r.requests, '/probe');
    const p = JSON.parse(req.body ?? '{}') as {
      uaData: { brands: unknown };
      uaHigh: { platformVersion: string; fullVersionList: unknown };
      hardwareConcurrency: number;
      deviceMemory: number;
    };
    // The collector's optional device fields win over the defaults.
    expect([p.hardwareConcurrency, p.deviceMemory]).to.deep.equal([12, 2]);
    expect(p.uaData.brands).to.deep.equal(uad.brands);
    expect(p.uaHigh.platformVersion).to.equal('19.0.0');
    expect(p.uaHigh.fullVersionList).to.deep.equal(uad.fullVersionList);
    expect(req.headers['sec-ch-ua']).to.equal('"Microsoft Edge";v="142", "Chromium";v="142", "Not_A Brand";v="99"');
  });

  it('gives a non-Chromium user agent no client hints', async () => {
    const ua = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:132.0) Gecko/20100101 Firefox/132.0';
    const base = makeEvent();
    const r = await ex.execute({ ...base, device: { ...base.device, userAgent: ua, platform: 'MacIntel' } }, null, [
      tagPartner(srv, 'probe', 'probe'),
    ]);
    const req = one(r.requests, '/probe');
    const p = JSON.parse(req.body ?? '{}') as Record<string, unknown>;
    expect(p.userAgent).to.equal(ua);
    expect(p.uaData).to.equal(null);
    expect(p.chrome).to.equal('undefined');
    expect(p.outer).to.deep.equal([1280, 805]);
    expect(p.platform).to.equal('MacIntel');
    // Firefox has no navigator.deviceMemory; a common desktop core count, not the server's.
    expect(p.hasDeviceMemory).to.equal(false);
    expect(p.deviceMemory).to.equal(undefined);
    expect(p.hardwareConcurrency).to.equal(8);
    expect(Object.keys(req.headers).filter((h) => h.toLowerCase().startsWith('sec-ch-ua'))).to.deep.equal([]);
  });

  it('keeps a cookie visitor id and a localStorage visitor id across page views through the jar', async () => {
    const partners = [tagPartner(srv, 'ck', 'cookie-id'), tagPartner(srv, 'ls', 'ls-id')];
    const first = await ex.execute(makeEvent(), null, partners);
    const id1 = new URL(one(first.requests, '/cookie-id').url).searchParams;
    expect(id1.get('new')).to.equal('1');
    const ls1 = JSON.parse(one(first.requests, '/ls-id').body ?? '{}') as { id: string; new: boolean };
    expect(ls1.new).to.equal(true);
    const cookie = first.jar.cookies.find((c) => c.name === '_tid');
    expect(cookie).to.include({ value: id1.get('id'), domain: 'shop.example', path: '/', sameSite: 'Lax', httpOnly: false, secure: false });
    expect(cookie?.expires).to.be.greaterThan(Date.now() / 1000 + 86400 * 365);
    expect(first.jar.localStorage['https://shop.example']).to.deep.equal({ ls_tid: ls1.id });
    // Both partners ran in one page and are reported separately.
    expect(first.trackers.map((t) => [t.partner, t.status])).to.deep.equal([
      ['ck', 'ok'],
      ['ls', 'ok'],
    ]);

    // Same visitor, next page view, possibly on the other pooled tab.
    const second = await ex.execute(makeEvent({ page: { url: 'https://shop.example/cart' } }), first.jar, partners);
    const id2 = new URL(one(second.requests, '/cookie-id').url).searchParams;
    expect(id2.get('id')).to.equal(id1.get('id'));
    expect(id2.get('new')).to.equal('0');
    const ls2 = JSON.parse(one(second.requests, '/ls-id').body ?? '{}') as { id: string; new: boolean };
    expect(ls2).to.deep.equal({ id: ls1.id, new: false });

    // A different visitor without a jar gets new ids.
    const other = await ex.execute(makeEvent(), null, partners);
    expect(new URL(one(other.requests, '/cookie-id').url).searchParams.get('new')).to.equal('1');
  });

  it('reports a tag that throws as error with its message, others in the page stay ok', async () => {
    const r = await ex.execute(makeEvent(), null, [tagPartner(srv, 'bad', 'throws'), tagPartner(srv, 'good', 'delayed')]);
    const bad = r.trackers.find((t) => t.partner === 'bad');
    expect(bad?.status).to.equal('error');
    expect(bad?.error).to.contain('boom from tag');
    expect(r.trackers.find((t) => t.partner === 'good')?.status).to.equal('ok');
    expect(one(r.requests, '/before-throw').partner).to.equal('bad');
    expect(one(r.requests, '/delayed').partner).to.equal('good');
  });

  it('reports a script that fails to load as error', async () => {
    const r = await ex.execute(makeEvent(), null, [
      { id: 'missing', html: `<script src="${srv.origin}/tags/does-not-exist.js"></script>`, allowHosts: [srv.host] },
    ]);
    expect(r.trackers[0]?.status).to.equal('error');
    expect(r.trackers[0]?.error).to.contain('failed to load');
  });

  it('stops a while(true){} tag at its budget, reports timeout, and keeps serving events', async () => {
    const t = Date.now();
    const r = await ex.execute(makeEvent(), null, [
      { id: 'loop', html: '<script>while(true){}</script>', timeoutMs: 1000 },
      tagPartner(srv, 'after', 'cookie-id'),
    ]);
    expect(Date.now() - t).to.be.below(5000);
    expect(r.trackers.find((x) => x.partner === 'loop')?.status).to.equal('timeout');
    expect(r.trackers.find((x) => x.partner === 'after')?.status).to.equal('ok');
    expect(byPath(r.requests, '/cookie-id')).to.have.length(1);
    // A looping timer callback too.
    const r2 = await ex.execute(makeEvent(), null, [
      { id: 'loop2', html: '<script>setTimeout(function(){ for(;;){} }, 500)</script>', timeoutMs: 1000 },
    ]);
    expect(r2.trackers[0]?.status).to.equal('timeout');
    // ... and one stuck in an event handler, outside any section or timer.
    const r4 = await ex.execute(makeEvent(), null, [
      { id: 'loop3', html: "<script>addEventListener('load', function () { while (true) {} })</script>", timeoutMs: 1000 },
    ]);
    expect(r4.trackers[0]?.status).to.equal('timeout');
    // With several partners, the handler's partner is the one that registered it.
    const r5 = await ex.execute(makeEvent(), null, [
      { id: 'fine', html: "<script>addEventListener('load', function () { new Image().src = 'https://elsewhere.example/fine'; })</script>" },
      { id: 'loop4', html: "<script>addEventListener('load', function () { while (true) {} })</script>", timeoutMs: 1000 },
    ]);
    expect(r5.trackers.map((x) => [x.partner, x.status])).to.deep.equal([
      ['fine', 'ok'],
      ['loop4', 'timeout'],
    ]);
    expect(one(r5.requests, '/fine').partner).to.equal('fine');
    const r3 = await ex.execute(makeEvent(), null, [tagPartner(srv, 'next', 'delayed')]);
    expect(r3.trackers[0]?.status).to.equal('ok');
    expect(byPath(r3.requests, '/delayed')).to.have.length(1);
  });

  it('never loads a partner without consent: zero requests, zero jar changes, skipped', async () => {
    const jar = { cookies: [], localStorage: { 'https://shop.example': { keep: '1' } } };
    const hitsBefore = srv.hits.length;
    const event = makeEvent({ consent: { analytics: true, advertising: false } });
    const r = await ex.execute(event, jar, [
      tagPartner(srv, 'ads', 'cookie-id', { consent: 'advertising' }),
      tagPartner(srv, 'both', 'ls-id', { consent: ['analytics', 'advertising'] }),
      tagPartner(srv, 'stats', 'delayed', { consent: 'analytics' }),
    ]);
    expect(r.trackers.map((t) => [t.partner, t.status, t.durationMs])).to.deep.equal([
      ['ads', 'skipped', 0],
      ['both', 'skipped', 0],
      ['stats', 'ok', r.trackers[2]?.durationMs],
    ]);
    expect(r.requests.map((q) => q.partner)).to.deep.equal(['stats']);
    expect(r.jar.cookies).to.deep.equal([]);
    expect(r.jar.localStorage).to.deep.equal({ 'https://shop.example': { keep: '1' } });
    expect(srv.hits.slice(hitsBefore).filter((h) => /cookie-id|ls-id/.test(h.url))).to.have.length(0);

    const none = await ex.execute(event, jar, [tagPartner(srv, 'ads', 'cookie-id', { consent: 'advertising' })]);
    expect(none).to.deep.equal({ requests: [], jar, trackers: [{ partner: 'ads', status: 'skipped', durationMs: 0, error: null }] });
  });

  it('answers captured requests from `responses` (longest prefix, method) so remote-config tags send', async () => {
    const r = await ex.execute(makeEvent(), null, [
      tagPartner(srv, 'rc', 'remote-config', {
        captureHosts: ['api.t.example'],
        responses: [
          { url: 'https://api.t.example/', status: 200, contentType: 'application/json', body: '{"enabled":false}' },
          { url: 'https://api.t.example/config?site=1', method: 'GET', status: 200, contentType: 'application/json', body: '{"enabled":true,"rate":0.5}' },
        ],
      }),
    ]);
    expect(byPath(r.requests, '/disabled')).to.have.length(0);
    expect(byPath(r.requests, '/config-error')).to.have.length(0);
    expect(one(r.requests, '/config').headers['x-api-key']).to.equal('k');
    expect(one(r.requests, '/collect')).to.include({ method: 'POST', body: '{"sampled":0.5}', partner: 'rc', transport: 'fetch' });
  });

  it('attributes a request to no listed host by the partner script that made it', async () => {
    const r = await ex.execute(makeEvent(), null, [
      { id: 'first', html: `<script async src="${srv.origin}/tags/unlisted.js"></script>`, allowHosts: [`${srv.origin}/tags/unlisted.js`] },
      { id: 'second', html: `<script src="${srv.origin}/tags/delayed.js"></script>`, allowHosts: [`${srv.origin}/tags/delayed.js`], captureHosts: ['collect.t.example'] },
    ]);
    expect(one(r.requests, '/from-unlisted').partner).to.equal('first');
    expect(one(r.requests, '/delayed').partner).to.equal('second');
    const firstOutcome = r.trackers.find((t) => t.partner === 'first');
    expect(firstOutcome?.status).to.equal('ok');
    expect(firstOutcome?.durationMs).to.be.a('number').and.be.at.least(0);
  });

  it('attributes what inline pagehide handlers send to the partner that registered them', async () => {
    const r = await ex.execute(makeEvent(), null, [
      { id: 'p1', html: "<script>addEventListener('pagehide', function () { navigator.sendBeacon('https://elsewhere.example/bye', 'p1'); })</script>" },
      { id: 'p2', html: "<script>document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'hidden') navigator.sendBeacon('https://elsewhere.example/hidden', 'p2'); })</script>" },
    ]);
    expect(one(r.requests, '/bye')).to.include({ partner: 'p1', transport: 'beacon', body: 'p1' });
    expect(one(r.requests, '/hidden')).to.include({ partner: 'p2', transport: 'beacon', body: 'p2' });
  });

  it('attributes pixels written by the parser in a partner\'s section, and GET forms', async () => {
    const shared = { captureHosts: ['shared.t.example'] };
    const r = await ex.execute(makeEvent(), null, [
      { id: 'one', html: '<img src="https://shared.t.example/px?p=1" width="1" height="1">', ...shared },
      {
        id: 'two',
        html:
          '<img src="https://shared.t.example/px?p=2"><iframe name="f2" style="display:none"></iframe>' +
          '<form id="g" action="https://shared.t.example/get-form" target="f2"><input name="a" value="1"></form>' +
          "<script>document.getElementById('g').submit()</script>",
        ...shared,
      },
    ]);
    const px = r.requests.filter((q) => new URL(q.url).pathname === '/px').map((q) => [q.url, q.partner]);
    expect(px).to.have.deep.members([
      ['https://shared.t.example/px?p=1', 'one'],
      ['https://shared.t.example/px?p=2', 'two'],
    ]);
    expect(one(r.requests, '/get-form')).to.include({ url: 'https://shared.t.example/get-form?a=1', transport: 'form', partner: 'two' });
  });

  it('does not fetch the real site: the navigation is fulfilled, the user agent is the visitor\'s', async () => {
    const r = await ex.execute(makeEvent({ device: { userAgent: CHROME_UA } }), null, [
      { id: 'inline', html: "<script>new Image().src='https://collect.t.example/inline?loc='+encodeURIComponent(location.href)</script>" },
    ]);
    expect(one(r.requests, '/inline').url).to.contain(encodeURIComponent('https://shop.example/p/42?utm_source=x'));
    expect(r.requests.every((q) => new URL(q.url).hostname !== 'shop.example')).to.equal(true);
  });
});

describe('executor: visitors sharing a pooled tab', function () {
  this.timeout(60_000);
  let srv: FixtureServer;
  let ex: Executor;
  before(async () => {
    srv = await startFixtureServer();
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true });
  });
  after(async () => {
    await ex?.close();
    await srv?.close();
  });

  it('leaks nothing: cookies, localStorage, sessionStorage, window.name, IndexedDB, Cache Storage, history', async () => {
    for (let i = 0; i < 3; i++) {
      const a = await ex.execute(makeEvent(), null, [tagPartner(srv, 'polluter', 'polluter')]);
      expect(byPath(a.requests, '/polluted')).to.have.length(1);
      expect(a.requests[0]?.url).not.to.contain('cacheError');
      expect(a.jar.cookies.map((c) => c.name)).to.deep.equal(['leak_cookie']);
      const b = await ex.execute(makeEvent(), null, [tagPartner(srv, 'probe', 'probe')]);
      const p = JSON.parse(one(b.requests, '/probe').body ?? '{}') as Record<string, unknown>;
      expect(p).to.deep.include({
        cookies: '',
        localStorageKeys: [],
        sessionStorageKeys: [],
        windowName: '',
        idbFresh: true,
        cacheKeys: [],
        // about:blank-free: the visitor's page is the tab's second entry, never more (pushState reset).
        historyLength: 2,
      });
      expect(b.jar).to.deep.equal({ cookies: [], localStorage: {} });
    }
    expect(ex.stats().browsers).to.equal(1);
  });
});
