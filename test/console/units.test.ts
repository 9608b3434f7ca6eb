/**
 * The console's pure parts (no broker, no browser): body decoding, the jar diff, and the bounded
 * buffer that the processor's and the dispatcher's observers feed; the demo inbox's decoding.
 */
import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import type { DeliveryOutcome, ExecuteResult, PageViewEvent, RequestRecord } from '../../core/contracts/index.ts';
import { ConsoleBuffer, decodeBody, decodeQuery, diffJars, idempotencyKeys } from '../../runtime/console/index.ts';
import { consoleEnabled, ConsoleSettingsSchema } from '../../runtime/console/settings.ts';
import { decodeInbox } from '../../runtime/demo/inbox-decode.ts';
import { loadSettings } from '../../runtime/config.ts';

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

function event(id: string, userId = 'u1'): PageViewEvent {
  return {
    eventId: id,
    userId,
    timestamp: '2026-12-02T00:00:00.000Z',
    type: 'page_view',
    page: { url: 'https://shop.example/p/1', title: 'P1' },
    device: { userAgent: 'UA' },
    client: { ip: '203.0.113.77' },
    consent: { analytics: true },
    data: {},
  } as unknown as PageViewEvent;
}

function result(requests: { partner: string | null; url: string }[]): ExecuteResult {
  return {
    requests: requests.map((r) => ({ ...r, method: 'GET', headers: {}, body: null, bodyEncoding: 'utf8' as const, transport: 'image' as const })),
    jar: { cookies: [{ name: 'id', value: 'v1', domain: 'shop.example', path: '/', expires: -1, httpOnly: false, secure: false, sameSite: 'Lax' }], localStorage: {} },
    trackers: [{ partner: 'a', status: 'ok', durationMs: 5, error: null }],
  } as ExecuteResult;
}

const partners = [{ id: 'a', html: '', allowHosts: [], captureHosts: ['collect.a.example'], responses: [], timeoutMs: 1000, delivery: { forwardIp: 'truncated' as const, retryWindowMs: 1000, concurrency: 1, timeoutMs: 1000 } }];

describe('console: decoding captured requests', () => {
  it('query strings, with base64 JSON values decoded', () => {
    const q = decodeQuery(`https://c.example/i?e=pv&cx=${encodeURIComponent(b64('{"schema":"iglu:x"}'))}`);
    expect(q[0]).to.deep.equal({ name: 'e', value: 'pv' });
    expect(q[1]?.decoded).to.deep.equal({ via: ['base64', 'json'], value: { schema: 'iglu:x' } });
  });
  it('JSON, form (with a base64 JSON field), gzip + JSON, base64 JSON, text, binary', () => {
    expect(decodeBody('{"a":1}', 'utf8')).to.deep.equal({ kind: 'json', via: ['json'], value: { a: 1 } });
    const form = decodeBody(`data=${encodeURIComponent(b64('[{"event":"$pageview"}]'))}&ver=1`, 'utf8');
    expect(form.kind).to.equal('form');
    expect(form.kind === 'form' && form.fields[0]?.decoded?.value).to.deep.equal([{ event: '$pageview' }]);
    expect(decodeBody(b64(gzipSync('[{"event":"$pageleave"}]')), 'base64')).to.deep.equal({ kind: 'json', via: ['gzip', 'json'], value: [{ event: '$pageleave' }] });
    expect(decodeBody(b64('{"n":"pageview"}'), 'utf8')).to.deep.equal({ kind: 'json', via: ['base64', 'json'], value: { n: 'pageview' } });
    expect(decodeBody('hello world', 'utf8')).to.deep.equal({ kind: 'text', via: [], text: 'hello world' });
    expect(decodeBody(b64(Buffer.from([0xff, 0xfe, 0x00, 0x01])), 'base64').kind).to.equal('binary');
    expect(decodeBody(null, 'utf8')).to.deep.equal({ kind: 'none' });
  });
  it('a gzip body that expands past the bound is summarised, not inflated', () => {
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x41));
    expect(decodeBody(b64(bomb), 'base64').kind).to.equal('binary');
  });
});

describe('console: the jar diff', () => {
  it('added, changed (value or attributes), removed and unchanged cookies and localStorage', () => {
    const c = (name: string, value: string, expires = -1) => ({ name, value, domain: 'shop.example', path: '/', expires, httpOnly: false, secure: false, sameSite: 'Lax' as const });
    const d = diffJars(
      { cookies: [c('keep', '1'), c('gone', 'x'), c('val', 'a'), c('exp', 'e', 10)], localStorage: { 'https://shop.example': { k: '1', old: 'o' } } },
      { cookies: [c('keep', '1'), c('val', 'b'), c('exp', 'e', 20), c('new', 'n')], localStorage: { 'https://shop.example': { k: '2', added: 'a' } } },
    );
    expect(d.cookies.map((x) => [x.change, x.name])).to.deep.equal([['added', 'new'], ['changed', 'val'], ['changed', 'exp'], ['removed', 'gone'], ['same', 'keep']]);
    expect(d.cookies.find((x) => x.name === 'exp')?.attributes).to.deep.equal(['expires']);
    expect(d.localStorage.map((x) => [x.change, x.key])).to.deep.equal([['added', 'added'], ['changed', 'k'], ['removed', 'old']]);
    expect(diffJars(null, { cookies: [c('a', '1')], localStorage: {} }).cookies[0]?.change).to.equal('added');
  });
});

describe('console: the buffer', () => {
  it('keeps the last `size` events, newest first, and matches deliveries by idempotency key', () => {
    let now = Date.parse('2026-12-02T00:00:30Z');
    const buffer = new ConsoleBuffer({ size: 2, partners, now: () => now });
    for (const id of ['e1', 'e2', 'e3']) buffer.recordExecution({ event: event(id), jarBefore: null, startedAt: now, durationMs: 10, result: result([{ partner: 'a', url: 'https://collect.a.example/p?x=1' }, { partner: 'a', url: 'https://collect.a.example/p?x=2' }]) });
    expect(buffer.list().map((e) => e.id)).to.deep.equal(['e3', 'e2']);
    expect(buffer.trace('e1')).to.equal(undefined);
    const [k0, k1] = idempotencyKeys('e3', result([{ partner: 'a', url: 'u' }, { partner: 'a', url: 'u' }]));
    expect([k0, k1]).to.deep.equal(['e3:a:0', 'e3:a:1']);
    const req = (key: string): RequestRecord => ({ partner: 'a', method: 'GET', url: 'https://collect.a.example/p', headers: {}, body: null, bodyEncoding: 'utf8', transport: 'image', eventId: 'e3', userId: 'u1', idempotencyKey: key });
    const attempt = { at: '2026-12-02T00:00:31Z', status: 503 };
    buffer.recordDelivery(req('e3:a:1'), { kind: 'retry', partner: 'a', attempts: [attempt], firstAttemptAt: attempt.at, notBefore: '2026-12-02T00:01:00Z', rounds: 1 } as DeliveryOutcome);
    now += 1000;
    buffer.recordDelivery(req('e3:a:0'), { kind: 'delivered', partner: 'a', status: 204, attempts: [{ at: attempt.at, status: 204 }], cookies: [] });
    const trace = buffer.trace('e3')!;
    expect(trace.requests.map((r) => [r.key, r.dispatch.state, r.dispatch.status])).to.deep.equal([['e3:a:0', 'delivered', 204], ['e3:a:1', 'retry', 503]]);
    expect(trace.visitor.ip).to.equal('203.0.113.0');
    expect(trace.jar.diff.cookies[0]).to.include({ change: 'added', name: 'id' });
    const a = buffer.counters().partners.find((p) => p.partner === 'a')!;
    expect(a.total).to.include({ ok: 3, captured: 6, delivered: 1, retry: 1 });
  });
  it('lists undeclared hosts once per partner and host, bounded', () => {
    const buffer = new ConsoleBuffer({ size: 10, partners, maxHosts: 2 });
    const r = result([{ partner: 'a', url: 'https://evil.example/x' }, { partner: 'a', url: 'https://evil.example/y' }, { partner: null, url: 'https://other.example/' }, { partner: 'a', url: 'https://third.example/' }, { partner: 'a', url: 'https://collect.a.example/ok' }]);
    buffer.recordExecution({ event: event('e1'), jarBefore: null, startedAt: 0, durationMs: 1, result: r });
    expect(buffer.undeclaredHosts().map((h) => [h.host, h.partner, h.reason, h.count])).to.deep.equal([['evil.example', 'a', 'undeclared-host', 2], ['other.example', null, 'unattributed-host', 1]]);
  });
  it('a replayed run is its own trace beside the first one', () => {
    const buffer = new ConsoleBuffer({ size: 10, partners });
    buffer.recordExecution({ event: event('e1'), jarBefore: null, startedAt: 0, durationMs: 1, result: result([]) });
    const replayed = { ...event('e1'), replay: { partners: ['a'], requestedAt: '2026-12-02T01:00:00Z' } } as PageViewEvent;
    buffer.recordExecution({ event: replayed, jarBefore: null, startedAt: 0, durationMs: 1, result: result([]) });
    expect(buffer.list().map((e) => [e.id, e.replayed])).to.deep.equal([['e1~replay-2026-12-02T01:00:00Z', true], ['e1', false]]);
  });
});

describe('console: settings', () => {
  it('on by default with the embedded broker or the demo, off with a cluster, loopback unless configured', () => {
    const s = ConsoleSettingsSchema.parse({});
    expect(s.host).to.equal('127.0.0.1');
    expect(consoleEnabled(s, { embedded: true, demo: false })).to.equal(true);
    expect(consoleEnabled(s, { embedded: false, demo: false })).to.equal(false);
    expect(consoleEnabled(s, { embedded: false, demo: true })).to.equal(true);
    expect(consoleEnabled({ ...s, enabled: false }, { embedded: true, demo: true })).to.equal(false);
    const env = loadSettings({ env: { CONSOLE_ENABLED: 'true', CONSOLE_HOST: '0.0.0.0', CONSOLE_PORT: '0', CONSOLE_BUFFER_SIZE: '50', DEMO_ENABLED: '1' } });
    expect(env.console).to.include({ enabled: true, host: '0.0.0.0', port: 0, bufferSize: 50 });
    expect(env.demo.enabled).to.equal(true);
    expect(() => loadSettings({ env: { CONSOLE_BUFFER_SIZE: '0' } })).to.throw(/console\.bufferSize \(CONSOLE_BUFFER_SIZE\)/);
  });
});

describe('demo: the inbox decodes what each partner receives', () => {
  const headers = { 'user-agent': 'UA-1', 'x-forwarded-for': '127.0.0.0' };
  it('snowplow payload_data, posthog gzip batches, plausible (hash of domain, IP, UA), the pixel query', () => {
    const sp = decodeInbox('snowplow', { method: 'POST', url: '/c/snowplow/com.snowplowanalytics.snowplow/tp2', headers: { ...headers, 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ schema: 'iglu:x', data: [{ e: 'pv', url: 'http://s/', page: 'Home', duid: 'd-1', sid: 's-1' }] })) });
    expect(sp).to.have.length(1);
    expect(sp[0]).to.include({ name: 'pv', pageView: true, page: 'http://s/', visitorId: 'd-1', sessionId: 's-1' });
    const ph = decodeInbox('posthog', { method: 'POST', url: '/c/posthog/e/?compression=gzip-js', headers, body: gzipSync(JSON.stringify([{ event: '$pageview', properties: { distinct_id: 'p-1', $current_url: 'http://s/cart' } }])) });
    expect(ph[0]).to.include({ name: '$pageview', pageView: true, visitorId: 'p-1', page: 'http://s/cart' });
    expect(decodeInbox('posthog', { method: 'POST', url: '/c/posthog/flags/?v=2', headers, body: Buffer.from('{}') })[0]?.pageView).to.equal(false);
    const body = Buffer.from(JSON.stringify({ n: 'pageview', u: 'http://s/', d: 'shop.demo' }));
    const pl1 = decodeInbox('plausible', { method: 'POST', url: '/c/plausible/api/event', headers, body }, '2026-12-02')[0]!;
    const pl2 = decodeInbox('plausible', { method: 'POST', url: '/c/plausible/api/event', headers: { ...headers, 'user-agent': 'UA-2' }, body }, '2026-12-02')[0]!;
    expect(pl1.pageView).to.equal(true);
    expect(pl1.visitorId).to.match(/^[0-9a-f]{16}$/);
    expect(pl1.visitorId).to.equal(decodeInbox('plausible', { method: 'POST', url: '/c/plausible/api/event', headers, body }, '2026-12-02')[0]!.visitorId);
    expect(pl2.visitorId).to.not.equal(pl1.visitorId);
    const px = decodeInbox('pixel', { method: 'GET', url: '/c/pixel/tr?ev=PageView&uid=px-1&dl=http%3A%2F%2Fs%2F', headers, body: Buffer.alloc(0) });
    expect(px[0]).to.include({ name: 'PageView', pageView: true, visitorId: 'px-1', page: 'http://s/' });
  });
});

describe('demo: examples/partners.demo.json', () => {
  it('is what `run --demo` configures on the default ports (the file documents it; the demo makes it at start)', async () => {
    const { readFile } = await import('node:fs/promises');
    const { demoPartners } = await import('../../runtime/demo/partners.ts');
    const file = JSON.parse(await readFile(new URL('../../examples/partners.demo.json', import.meta.url), 'utf8')) as unknown;
    expect(file).to.deep.equal(demoPartners('http://127.0.0.1:8082'));
  });
});

describe('console: its HTTP surface', () => {
  it('serves the page under a strict CSP, refuses foreign Host headers, guards the replay action', async () => {
    const { startConsoleServer } = await import('../../runtime/console/server.ts');
    const { request } = await import('undici');
    const buffer = new ConsoleBuffer({ size: 5, partners });
    buffer.recordExecution({ event: event('e1'), jarBefore: null, startedAt: 0, durationMs: 1, result: result([]) });
    const server = await startConsoleServer({ buffer, host: '127.0.0.1', port: 0 });
    try {
      const page = await request(`${server.url}/`);
      expect(page.statusCode).to.equal(200);
      expect(String(page.headers['content-security-policy'])).to.contain("script-src 'self'").and.not.contain('unsafe-inline');
      expect(await page.body.text()).to.contain('<script defer src="/app.js"></script>');
      const js = await request(`${server.url}/app.js`);
      expect(js.statusCode).to.equal(200);
      expect(await js.body.text()).to.contain('textContent');
      const trace = await request(`${server.url}/api/events/e1`);
      expect(((await trace.body.json()) as { eventId: string }).eventId).to.equal('e1');
      const missing = await request(`${server.url}/api/events/%E0%A4%A`);
      await missing.body.dump();
      expect(missing.statusCode).to.equal(404);
      const rebound = await request(`${server.url}/api/events`, { headers: { host: `attacker.example:${server.address.port}` } });
      await rebound.body.dump();
      expect(rebound.statusCode).to.equal(421);
      const noHeader = await request(`${server.url}/api/events/e1/replay`, { method: 'POST' });
      await noHeader.body.dump();
      expect(noHeader.statusCode).to.equal(403);
      const unavailable = await request(`${server.url}/api/events/e1/replay`, { method: 'POST', headers: { 'x-tagstream-console': '1' } });
      expect(unavailable.statusCode).to.equal(501);
      expect(((await unavailable.body.json()) as { error: { reason: string } }).error.reason).to.contain('not available');
    } finally {
      await server.close();
    }
  });
});
