/**
 * The dispatcher's pure parts and its delivery decisions with a fake sender (no broker, no
 * network): headers, failure classes, routing to captureHosts, cookies, breaker, throttle.
 * Run alone with TAGSTREAM_NO_BROKER=1.
 */
import { expect } from 'chai';
import { parsePartners, type PartnerConfigInput, type RequestRecord } from '../../core/contracts/index.ts';
import { parseRequestRecord } from '../../core/contracts/index.ts';
import { TimeoutError } from '../../core/errors.ts';
import {
  backoffDelay,
  classifyStatus,
  cookiesFromResponse,
  createDeliver,
  deliveryHeaders,
  forwardedIp,
  indexPartners,
  parseResolve,
  PartnerPolicies,
  retryAfterMs,
  routeRequest,
  type Sender,
  type SendRequest,
  type SendResponse,
} from '../../processors/dispatcher/index.ts';
import { dispatcherTopics, parseDispatcherSettings } from '../../runtime/roles/dispatcher-settings.ts';
import { requestRecord } from './helpers.ts';

const partner = (id: string, hosts: string[], delivery: Record<string, unknown> = {}): PartnerConfigInput => ({ id, html: '', captureHosts: hosts, delivery });
const PARTNERS = parsePartners([
  partner('pa', ['collect.partner-a.example']),
  partner('pb', ['collect.partner-b.example', 'shared.example'], { forwardIp: 'full' }),
  partner('pc', ['shared.example'], { forwardIp: 'none', retryWindowMs: 1000 }),
]);

function req(k: string, p: string | null, url: string, over: Record<string, unknown> = {}): RequestRecord {
  return parseRequestRecord(requestRecord(k, p, url, over));
}

/** A sender that answers from a script and records what it was asked. */
function scriptedSender(answer: (r: SendRequest, n: number) => Promise<SendResponse> | SendResponse): Sender & { calls: SendRequest[] } {
  const calls: SendRequest[] = [];
  return {
    calls,
    send: async (r) => {
      calls.push(r);
      return answer(r, calls.length);
    },
    close: () => Promise.resolve(),
  };
}
const status = (s: number, retryAfter?: string): SendResponse => ({ status: s, setCookie: [], retryAfter });
const fast = { inMemoryAttempts: 3, inMemoryBudgetMs: 2_000, inMemoryBackoff: { baseMs: 5, maxMs: 20 }, topicBackoff: { baseMs: 1_000, maxMs: 10_000 } };
const signal = new AbortController().signal;

describe('dispatcher: pure parts', () => {
  it('X-Forwarded-For per forwardIp: full, truncated (IPv4 /24, IPv6 /48), none', () => {
    expect(forwardedIp('203.0.113.77', 'full')).to.equal('203.0.113.77');
    expect(forwardedIp('203.0.113.77', 'truncated')).to.equal('203.0.113.0');
    expect(forwardedIp('2001:db8:85a3:8d3:1319:8a2e:370:7348', 'truncated')).to.equal('2001:db8:85a3::');
    expect(forwardedIp('2001:db8::1', 'truncated')).to.equal('2001:db8:0::');
    expect(forwardedIp('::ffff:198.51.100.9', 'truncated')).to.equal('198.51.100.0');
    expect(forwardedIp('203.0.113.77', 'none')).to.equal(undefined);
    expect(forwardedIp('not-an-ip', 'full')).to.equal(undefined);
  });

  it("headers: the visitor's User-Agent and Accept-Language, XFF, no hop-by-hop headers", () => {
    const h = deliveryHeaders(req('1', 'pa', 'https://collect.partner-a.example/p'), 'truncated');
    expect(h).to.include({ 'user-agent': 'Mozilla/5.0 (test visitor)', 'accept-language': 'fr-FR,fr;q=0.9', 'x-forwarded-for': '203.0.113.0', referer: 'https://shop.example/p/1' });
    expect(h).to.not.have.property('connection');
  });

  it('failure classes, Retry-After and backoff with jitter', () => {
    expect([200, 204, 302, 400, 404, 408, 429, 500, 503].map(classifyStatus)).to.deep.equal(['delivered', 'delivered', 'delivered', 'permanent', 'permanent', 'transient', 'throttled', 'transient', 'transient']);
    expect(retryAfterMs('2', 0)).to.equal(2000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).to.equal(6000);
    expect(retryAfterMs('soon', 0)).to.equal(undefined);
    for (let i = 0; i < 50; i += 1) {
      const d = backoffDelay(3, { baseMs: 100, maxMs: 500 });
      expect(d).to.be.within(250, 500);
    }
  });

  it('routing: only declared captureHosts; partner null → the only partner declaring the host', () => {
    const idx = indexPartners(PARTNERS);
    expect(routeRequest(idx, 'pa', 'https://collect.partner-a.example/x')).to.include({ ok: true });
    expect(routeRequest(idx, 'pa', 'https://evil.example/x')).to.include({ ok: false, reason: 'undeclared-host' });
    expect(routeRequest(idx, 'pa', 'https://collect.partner-b.example/x')).to.include({ ok: false, reason: 'undeclared-host' });
    const owned = routeRequest(idx, null, 'https://collect.partner-b.example/x');
    expect(owned.ok && owned.partner.id).to.equal('pb');
    expect(routeRequest(idx, null, 'https://shared.example/x')).to.include({ ok: false, reason: 'ambiguous-host' });
    expect(routeRequest(idx, null, 'https://nobody.example/x')).to.include({ ok: false, reason: 'unattributed-host' });
    expect(routeRequest(idx, 'zz', 'https://collect.partner-a.example/x')).to.include({ ok: false, reason: 'unknown-partner' });
    expect(routeRequest(idx, 'pa', 'ftp://collect.partner-a.example/x')).to.include({ ok: false, reason: 'invalid-url' });
  });

  it('DISPATCHER_RESOLVE parsing and the settings schema', () => {
    const m = parseResolve('collect.partner-a.example:443=127.0.0.1:8443, b.example:80=[::1]:8080');
    expect(m.get('collect.partner-a.example:443')).to.deep.equal({ address: '127.0.0.1', port: 8443 });
    expect(m.get('b.example:80')).to.deep.equal({ address: '::1', port: 8080 });
    expect(() => parseResolve('nope')).to.throw(/host:port=address:port/);
    const s = parseDispatcherSettings({ resolve: 'a.example:443=127.0.0.1:1' });
    expect(s.resolve).to.deep.equal(['a.example:443=127.0.0.1:1']);
    expect(s.dedupeWindowMs).to.equal(48 * 3_600_000);
    // Unset: derived from the requests topic (DESIGN's names by default, apart for renamed deployments).
    expect(dispatcherTopics('tracking.requests', s)).to.deep.equal({ retry: 'tracking.requests.retry', delivered: 'tracking.requests.delivered' });
    expect(dispatcherTopics('shop.requests', s)).to.deep.equal({ retry: 'shop.requests.retry', delivered: 'shop.requests.delivered' });
    expect(dispatcherTopics('shop.requests', parseDispatcherSettings({ topics: { retry: 'r' } }))).to.deep.equal({ retry: 'r', delivered: 'shop.requests.delivered' });
    expect(() => parseDispatcherSettings({ concurrency: 0 })).to.throw(/dispatcher\.concurrency/);
  });

  it('Set-Cookie parsed as a browser would: domain, host-only, path, expiry, SameSite, Secure; refused ones counted', async () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    const { cookies, rejected } = await cookiesFromResponse(
      [
        'pid=abc; Domain=partner-a.example; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=None',
        'host=1',
        'gone=; Max-Age=0',
        'strict=1; SameSite=Strict; Path=/c',
        'nosecure=1; SameSite=None',
        'evil=1; Domain=other.example',
        'psl=1; Domain=example',
      ],
      'https://collect.partner-a.example/c/hit',
      now,
    );
    expect(rejected).to.equal(3);
    expect(cookies).to.deep.equal([
      { name: 'pid', value: 'abc', domain: '.partner-a.example', path: '/', expires: now / 1000 + 3600, httpOnly: true, secure: true, sameSite: 'None' },
      { name: 'host', value: '1', domain: 'collect.partner-a.example', path: '/c', expires: -1, httpOnly: false, secure: false, sameSite: 'Lax' },
      { name: 'gone', value: '', domain: 'collect.partner-a.example', path: '/c', expires: 0, httpOnly: false, secure: false, sameSite: 'Lax' },
      { name: 'strict', value: '1', domain: 'collect.partner-a.example', path: '/c', expires: -1, httpOnly: false, secure: false, sameSite: 'Strict' },
    ]);
  });

  it('Set-Cookie of a cross-site request (the Referer is another site): only SameSite=None; Secure cookies, as Chromium keeps them', async () => {
    const now = Date.parse('2026-12-01T00:00:00Z');
    const lines = ['none=1; Domain=partner-a.example; Secure; SameSite=None', 'lax=1; SameSite=Lax', 'strict=1; SameSite=Strict', 'unset=1', 'insecure=1; SameSite=None'];
    const url = 'https://collect.partner-a.example/hit';
    const cross = await cookiesFromResponse(lines, url, now, 'https://shop.example/p/1');
    expect(cross.cookies.map((c) => c.name)).to.deep.equal(['none']);
    expect(cross.rejected, 'Lax, Strict, Lax by default and None without Secure').to.equal(4);
    // Same site (schemeful: scheme and registrable domain): all but the insecure None.
    const same = await cookiesFromResponse(lines, url, now, 'https://www.partner-a.example/');
    expect(same.cookies.map((c) => c.name)).to.deep.equal(['none', 'lax', 'strict', 'unset']);
    expect((await cookiesFromResponse(lines, url, now, 'http://www.partner-a.example/')).cookies.map((c) => c.name), 'http page: another site').to.deep.equal(['none']);
    expect((await cookiesFromResponse(lines, url, now)).cookies, 'no Referer: context unknown, no same-site rule').to.have.length(4);
  });
});

describe('dispatcher: delivery decisions (fake sender)', () => {
  const deliverWith = (sender: Sender, policies = new PartnerPolicies({ breakerThreshold: 3, halfOpenAfterMs: 60_000 }), now?: () => number) =>
    createDeliver({ partners: PARTNERS, sender, policies, ...fast, ...(now === undefined ? {} : { now }) });

  it('2xx → delivered with the cookies; 400 → dead at once with the status and one attempt', async () => {
    const sender = scriptedSender((r) => (r.url.includes('/bad') ? status(400) : { status: 200, setCookie: ['id=1; Domain=partner-a.example; Secure; SameSite=None', 'lax=1; Domain=partner-a.example'], retryAfter: undefined }));
    const deliver = deliverWith(sender);
    const good = await deliver({ request: req('1', 'pa', 'https://collect.partner-a.example/hit'), attempts: [] }, signal);
    expect(good).to.include({ kind: 'delivered', status: 200 });
    expect(good.kind === 'delivered' && good.cookies.map((c) => c.domain)).to.deep.equal(['.partner-a.example']);
    const bad = await deliver({ request: req('2', 'pa', 'https://collect.partner-a.example/bad'), attempts: [] }, signal);
    expect(bad).to.include({ kind: 'dead', reason: 'permanent-failure' });
    expect(bad.kind === 'dead' && bad.attempts.map((a) => a.status)).to.deep.equal([400]);
    expect(sender.calls).to.have.length(2);
  });

  it('5xx/408/timeouts → retried in memory, then the retry topic with notBefore; the window spent → dead', async () => {
    const sender = scriptedSender((_r, n) => {
      if (n % 3 === 0) throw new TimeoutError('delivery', 100);
      return status(n % 2 === 0 ? 408 : 503);
    });
    const deliver = deliverWith(sender, new PartnerPolicies({ breakerThreshold: 100 }));
    const t0 = Date.now();
    const out = await deliver({ request: req('1', 'pa', 'https://collect.partner-a.example/hit'), attempts: [] }, signal);
    expect(out.kind).to.equal('retry');
    if (out.kind !== 'retry') return;
    expect(out.attempts.map((a) => a.status ?? a.code)).to.deep.equal([503, 408, 'ERR_TIMEOUT']);
    expect(Date.parse(out.notBefore)).to.be.greaterThan(t0);
    expect(out.rounds).to.equal(1);
    // pc has a 1 s window counted from the event: an event 2 s old has spent it.
    const old = await deliver({ request: req('2', 'pc', 'https://shared.example/hit', { eventTimestamp: new Date(Date.now() - 2000).toISOString() }), attempts: [] }, signal);
    expect(old).to.include({ kind: 'dead', reason: 'retry-window-exhausted' });
    expect(old.kind === 'dead' && old.attempts.length).to.equal(3);
  });

  for (const [what, failure] of [['stalled (timeouts)', 'timeout'], ['answering 503', '503']] as const) it(`the breaker opens after consecutive failures: a partner ${what} is no longer called, the others are`, async () => {
    const sender = scriptedSender((r) => {
      if (r.url.includes('partner-a')) {
        if (failure === 'timeout') throw new TimeoutError('delivery', 100);
        return status(503);
      }
      return status(204);
    });
    const deliver = deliverWith(sender, new PartnerPolicies({ breakerThreshold: 3, halfOpenAfterMs: 60_000 }));
    const outcomes = [];
    for (let i = 0; i < 5; i += 1) outcomes.push(await deliver({ request: req(`a${i}`, 'pa', 'https://collect.partner-a.example/hit'), attempts: [] }, signal));
    const toA = sender.calls.filter((c) => c.url.includes('partner-a')).length;
    expect(toA, 'three failures open the breaker; later requests fail fast').to.equal(3);
    expect(outcomes.every((o) => o.kind === 'retry')).to.equal(true);
    const b = await deliver({ request: req('b1', 'pb', 'https://collect.partner-b.example/hit'), attempts: [] }, signal);
    expect(b.kind).to.equal('delivered');
  });

  it('429 with Retry-After slows that partner only', async () => {
    let throttled = true;
    const sender = scriptedSender((r) => (r.url.includes('partner-a') && throttled ? ((throttled = false), status(429, '1')) : status(204)));
    const deliver = deliverWith(sender);
    const a = deliver({ request: req('a1', 'pa', 'https://collect.partner-a.example/hit'), attempts: [] }, signal);
    const bs = await Promise.all([1, 2, 3].map((i) => deliver({ request: req(`b${i}`, 'pb', 'https://collect.partner-b.example/hit'), attempts: [] }, signal)));
    expect(bs.every((o) => o.kind === 'delivered')).to.equal(true);
    const callsToAWhileBDelivered = sender.calls.filter((c) => c.url.includes('partner-a')).length;
    expect(callsToAWhileBDelivered, 'A waits out its Retry-After').to.equal(1);
    expect((await a).kind).to.equal('delivered');
    expect(sender.calls.filter((c) => c.url.includes('partner-a'))).to.have.length(2);
  });

  it('SSRF: undeclared host and unattributed requests are never handed to the sender', async () => {
    const sender = scriptedSender(() => status(204));
    const deliver = deliverWith(sender);
    const outs = await Promise.all([
      deliver({ request: req('1', 'pa', 'https://evil.example/steal'), attempts: [] }, signal),
      deliver({ request: req('2', 'pa', 'http://169.254.169.254/latest/meta-data'), attempts: [] }, signal),
      deliver({ request: req('3', null, 'https://nobody.example/x'), attempts: [] }, signal),
    ]);
    expect(outs.map((o) => o.kind === 'not-sent' && o.reason)).to.deep.equal(['undeclared-host', 'undeclared-host', 'unattributed-host']);
    expect(sender.calls).to.have.length(0);
  });
});
