/**
 * POST /collect against the real broker (DESIGN.md "The first-party tag and the collector"):
 * every malformed body is answered 400/413 naming the field and nothing is produced; the visitor
 * cookie, the server-side fields, X-Forwarded-For, CORS, bots, /health, /ready and the graceful stop.
 */
import { expect } from 'chai';
import { request } from 'undici';
import { realBroker } from '../helpers/kafka.ts';
import { BROWSER_UA, cookiePair, pageView, post, startTestCollector, type TestCollector } from './helpers.ts';

describe('collector: POST /collect on the real broker', function () {
  this.timeout(60_000);
  let c: TestCollector;

  before(async () => {
    c = await startTestCollector(realBroker().brokers, {
      allowedOrigins: ['https://www.shop.example'],
      trustedProxies: ['127.0.0.1/32'],
      cookieDomain: 'shop.example',
      bodyLimitBytes: 4096,
    });
  });
  after(async () => c?.close());

  describe('malformed bodies: 400/413 with the field, nothing produced', () => {
    const deep = (n: number): unknown => (n === 0 ? 'x' : { d: deep(n - 1) });
    const cases: { name: string; body: string | Buffer; status: number; field: string }[] = [
      { name: 'invalid JSON', body: '{"page":', status: 400, field: 'body' },
      { name: 'an empty body', body: '', status: 400, field: 'body' },
      { name: 'an array instead of an object', body: '[{"page":{"url":"https://a.example/"}}]', status: 400, field: 'body' },
      { name: 'a string instead of an object', body: '"page"', status: 400, field: 'body' },
      { name: 'a missing page.url', body: JSON.stringify({ page: { title: 't' } }), status: 400, field: 'page.url' },
      { name: 'a non-http(s) URL', body: JSON.stringify(pageView({ page: { url: 'javascript:alert(1)' } })), status: 400, field: 'page.url' },
      { name: 'a relative URL', body: JSON.stringify(pageView({ page: { url: '/p/42' } })), status: 400, field: 'page.url' },
      { name: 'a wrong type (screen.width a string)', body: JSON.stringify(pageView({ device: { screen: { width: '1920', height: 1080 } } })), status: 400, field: 'device.screen.width' },
      { name: 'a wrong type (consent not boolean)', body: JSON.stringify(pageView({ consent: { analytics: 'yes' } })), status: 400, field: 'consent.analytics' },
      { name: 'data an array', body: JSON.stringify(pageView({ data: [1, 2] })), status: 400, field: 'data' },
      { name: 'deeply nested data', body: JSON.stringify(pageView({ data: deep(30) })), status: 400, field: 'data.d.d.d.d.d.d.d.d.d' },
      { name: 'a control character in a string', body: JSON.stringify(pageView({ page: { url: 'https://a.example/', title: 'a\u0000b' } })), status: 400, field: 'page.title' },
      { name: 'a control character in the URL', body: JSON.stringify(pageView({ page: { url: 'https://a.example/\u0007x' } })), status: 400, field: 'page.url' },
      { name: 'a 10k-character value', body: JSON.stringify(pageView({ data: { v: 'x'.repeat(10_000) } })), status: 413, field: 'body' },
      { name: 'a __proto__ key', body: '{"page":{"url":"https://a.example/"},"data":{"__proto__":{"polluted":1}}}', status: 400, field: 'data.__proto__' },
      { name: 'a control record type', body: JSON.stringify(pageView({ type: 'erase' })), status: 400, field: 'type' },
      { name: 'an oversized body', body: Buffer.alloc(8192, 0x20), status: 413, field: 'body' },
    ];
    for (const t of cases) {
      it(`${t.name}: ${t.status} naming ${t.field}`, async () => {
        const answer = await post(c.url, t.body);
        expect(answer.status, answer.body).to.equal(t.status);
        const error = (JSON.parse(answer.body) as { error: { code: string; field: string; reason: string } }).error;
        expect(error.code).to.equal('ERR_INVALID_INPUT');
        expect(error.field).to.equal(t.field);
        expect(error.reason).to.be.a('string').and.not.equal('');
      });
    }

    it('a 10k-character value within the size limit is 400 on its field', async () => {
      const big = await startTestCollector(realBroker().brokers, { bodyLimitBytes: 64 * 1024 });
      try {
        const answer = await post(big.url, JSON.stringify(pageView({ data: { v: 'x'.repeat(10_000) } })));
        expect(answer.status).to.equal(400);
        expect(JSON.parse(answer.body).error.field).to.equal('data.v');
        expect(await big.produced()).to.have.length(0);
      } finally {
        await big.close();
      }
    });

    it('none of them reached the topic', async () => {
      expect(await c.produced()).to.deep.equal([]);
    });
  });

  describe('accepted events', () => {
    it('204 after the broker acknowledged: server fields added, keyed by the cookie id, cookie set once and read back', async () => {
      const first = await post(c.url, JSON.stringify(pageView({ eventId: 'forged', timestamp: '2000-01-01T00:00:00Z', client: { ip: '6.6.6.6' } })));
      expect(first.status, first.body).to.equal(204);
      const setCookie = String(first.headers['set-cookie']);
      expect(setCookie).to.match(/^tsuid=[0-9a-f-]{36}; Max-Age=34128000; Domain=shop\.example; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
      const pair = cookiePair(first)!;
      const second = await post(c.url, JSON.stringify(pageView()), { cookie: pair });
      expect(second.status).to.equal(204);
      expect(second.headers['set-cookie'], 'no new cookie when the visitor has one').to.equal(undefined);
      const uid = pair.split('=')[1];
      const mine = (await c.produced()).filter((r) => r.key === uid);
      expect(mine).to.have.length(2);
      for (const { value } of mine) {
        expect(value.userId).to.equal(uid);
        expect(value.eventId).to.match(/^[0-9a-f-]{36}$/).and.not.equal('forged');
        expect(Date.now() - Date.parse(value.timestamp as string)).to.be.within(0, 60_000);
        expect(value.client).to.deep.equal({ ip: '127.0.0.1' });
        expect((value.page as { url: string }).url).to.equal('https://www.shop.example/p/42');
      }
      expect(mine[0]!.value.eventId).to.not.equal(mine[1]!.value.eventId);
    });

    it('a userId in the body wins over the cookie, and no cookie is set', async () => {
      const answer = await post(c.url, JSON.stringify(pageView({ userId: 'site-own-42' })), { cookie: 'tsuid=0123456789abcdef0123' });
      expect(answer.status).to.equal(204);
      expect(answer.headers['set-cookie']).to.equal(undefined);
      expect((await c.produced()).filter((r) => r.key === 'site-own-42')).to.have.length(1);
    });

    // (A bot's user agent in the body would not be produced at all: a real browser's.)
    const SAFARI_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
    it("a body without device.userAgent / language takes the request's User-Agent and first Accept-Language tag; the body's own win", async () => {
      const fromHeader = await post(c.url, JSON.stringify(pageView({ userId: 'ua-from-header' })), { 'accept-language': 'de-CH,de;q=0.9' });
      const fromBody = await post(c.url, JSON.stringify(pageView({ userId: 'ua-from-body', device: { userAgent: SAFARI_UA, language: 'it-IT' } })), { 'accept-language': 'de-CH' });
      expect([fromHeader.status, fromBody.status], fromHeader.body + fromBody.body).to.deep.equal([204, 204]);
      const produced = await c.produced();
      const device = (key: string): unknown => (produced.find((r) => r.key === key)?.value as { device?: unknown } | undefined)?.device;
      expect(device('ua-from-header')).to.deep.include({ userAgent: BROWSER_UA, language: 'de-CH' });
      expect(device('ua-from-body')).to.deep.include({ userAgent: SAFARI_UA, language: 'it-IT' });
    });

    it('X-Forwarded-For is believed from a trusted proxy only: the right-most untrusted address wins', async () => {
      await post(c.url, JSON.stringify(pageView({ userId: 'xff-trusted' })), { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 127.0.0.1' });
      const untrusted = await startTestCollector(realBroker().brokers, { trustedProxies: ['10.0.0.0/8'] });
      try {
        await post(untrusted.url, JSON.stringify(pageView({ userId: 'xff-spoofed' })), { 'x-forwarded-for': '203.0.113.7' });
        expect((await untrusted.produced())[0]!.value.client).to.deep.equal({ ip: '127.0.0.1' });
      } finally {
        await untrusted.close();
      }
      const trusted = (await c.produced()).find((r) => r.key === 'xff-trusted')!;
      expect(trusted.value.client).to.deep.equal({ ip: '203.0.113.7' });
    });

    it('without the consent the id cookie needs: no cookie, a one-off id', async () => {
      const consented = await startTestCollector(realBroker().brokers, { idConsent: 'analytics' });
      try {
        const denied = await post(consented.url, JSON.stringify(pageView({ consent: { analytics: false } })), { cookie: 'tsuid=0123456789abcdef0123' });
        const absent = await post(consented.url, JSON.stringify(pageView()));
        const granted = await post(consented.url, JSON.stringify(pageView({ consent: { analytics: true } })));
        expect([denied.status, absent.status, granted.status]).to.deep.equal([204, 204, 204]);
        expect(denied.headers['set-cookie']).to.equal(undefined);
        expect(absent.headers['set-cookie']).to.equal(undefined);
        expect(cookiePair(granted)).to.match(/^tsuid=/);
        const keys = (await consented.produced()).map((r) => r.key);
        expect(keys).to.have.length(3);
        expect(keys).to.not.include('0123456789abcdef0123');
        expect(new Set(keys).size).to.equal(3);
      } finally {
        await consented.close();
      }
    });
  });

  describe('CORS, bots, probes', () => {
    it('CORS with credentials for a configured origin; a refused origin gets no CORS headers and is not produced', async () => {
      const preflight = await request(`${c.url}/collect`, { method: 'OPTIONS', headers: { origin: 'https://www.shop.example', 'access-control-request-method': 'POST' } });
      await preflight.body.dump();
      expect(preflight.headers['access-control-allow-origin']).to.equal('https://www.shop.example');
      expect(preflight.headers['access-control-allow-credentials']).to.equal('true');
      const allowed = await post(c.url, JSON.stringify(pageView({ userId: 'cors-allowed' })), { origin: 'https://www.shop.example' });
      expect(allowed.status).to.equal(204);
      expect(allowed.headers['access-control-allow-origin']).to.equal('https://www.shop.example');
      expect(allowed.headers['access-control-allow-credentials']).to.equal('true');
      const refused = await post(c.url, JSON.stringify(pageView({ userId: 'cors-refused' })), { origin: 'https://evil.example' });
      expect(refused.status).to.equal(403);
      expect(refused.headers['access-control-allow-origin']).to.equal(undefined);
      expect(JSON.parse(refused.body).error.field).to.equal('origin');
      const refusedPreflight = await request(`${c.url}/collect`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
      await refusedPreflight.body.dump();
      expect(refusedPreflight.headers['access-control-allow-origin']).to.equal(undefined);
      const keys = (await c.produced()).map((r) => r.key);
      expect(keys).to.include('cors-allowed').and.not.include('cors-refused');
    });

    it('a known bot is answered 204, not produced, and counted by reason', async () => {
      const googlebot = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
      const byHeader = await post(c.url, JSON.stringify(pageView({ userId: 'bot-header' })), { 'user-agent': googlebot });
      const byBody = await post(c.url, JSON.stringify(pageView({ userId: 'bot-body', device: { userAgent: 'HeadlessChrome/131.0' } })));
      expect([byHeader.status, byBody.status]).to.deep.equal([204, 204]);
      expect((await c.produced()).map((r) => r.key)).to.not.include.members(['bot-header', 'bot-body']);
      const metrics = await c.registry.metrics();
      expect(metrics).to.match(/tagstream_collector_requests_total\{outcome="bot"\} 2/);
      expect(metrics).to.match(/tagstream_collector_bots_total\{reason="[^"]+"\} 1/);
    });

    it('/health and /ready on the collector port', async () => {
      const health = await request(`${c.url}/health`);
      expect(health.statusCode).to.equal(200);
      expect(await health.body.json()).to.deep.equal({ status: 'ok' });
      const ready = await request(`${c.url}/ready`);
      expect(ready.statusCode).to.equal(200);
      expect(await ready.body.json()).to.deep.equal({ status: 'ready' });
    });
  });

  it('graceful stop: /ready 503 at once, a request in flight finishes with 204', async () => {
    const g = await startTestCollector(realBroker().brokers);
    // A request whose body arrives slowly is in flight when the stop begins.
    const body = JSON.stringify(pageView({ userId: 'in-flight' }));
    const { Readable } = await import('node:stream');
    const stream = new Readable({ read() {} });
    const push = (chunk: string | null): boolean => stream.push(chunk);
    const pending = request(`${g.url}/collect`, { method: 'POST', body: stream, headers: { 'content-type': 'text/plain', 'user-agent': BROWSER_UA, 'content-length': String(body.length) } });
    push(body.slice(0, 10));
    await new Promise((r) => setTimeout(r, 200));
    const stopped = g.role.stop(5000);
    expect(g.role.readiness().ready).to.equal(false);
    expect(g.role.readiness().reasons).to.deep.equal(['collector: draining']);
    push(body.slice(10));
    push(null);
    const answer = await pending;
    expect(answer.statusCode).to.equal(204);
    await answer.body.dump();
    await stopped;
    expect((await g.produced()).map((r) => r.key)).to.deep.equal(['in-flight']);
    await g.client.close();
  });
});
