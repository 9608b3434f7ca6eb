/**
 * The collector's pure parts, without broker or browser (TAGSTREAM_NO_BROKER=1 runs them):
 * client address resolution, the visitor id decision, the body checks, the served tag and the
 * `collector.*` settings with their environment variables.
 */
import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import { loadSettings } from '../../runtime/config.ts';
import { checkShape, parseBody, toEvent } from '../../runtime/roles/collector/body.ts';
import { clientIp, maskIp, parseCidr, trustedProxies } from '../../runtime/roles/collector/client-ip.ts';
import { visitorId } from '../../runtime/roles/collector/ids.ts';
import { originAllowed } from '../../runtime/roles/collector/routes.ts';
import { loadTag } from '../../runtime/roles/collector/tag.ts';
import { EventProducer } from '../../runtime/roles/collector/produce.ts';
import { buildCollectorApp } from '../../runtime/roles/collector/server.ts';
import { silentLogger } from '../../core/log.ts';
import type { KafkaClient, KafkaProducer } from '../../runtime/kafka/types.ts';
import { Registry } from 'prom-client';

describe('collector units', () => {
  describe('client address', () => {
    const trusted = trustedProxies(['127.0.0.1/32', '10.0.0.0/8', '::1']);
    it('parses addresses and CIDRs, refuses the rest', () => {
      expect(parseCidr('10.0.0.0/8')).to.deep.equal({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
      expect(parseCidr('::1')).to.deep.equal({ address: '::1', prefix: 128, family: 'ipv6' });
      for (const bad of ['10.0.0.0/33', 'localhost', '1.2.3.4/8/1', '1.2.3.4/x', '']) expect(parseCidr(bad), bad).to.equal(undefined);
    });
    it('the socket address when the peer is not trusted, whatever the header says', () => {
      expect(clientIp('198.51.100.9', '203.0.113.7', trusted)).to.equal('198.51.100.9');
      expect(clientIp('::ffff:198.51.100.9', undefined, trusted)).to.equal('198.51.100.9');
    });
    it('from a trusted peer: the right-most untrusted entry, ports and v4-mapped forms removed', () => {
      expect(clientIp('127.0.0.1', '6.6.6.6, 203.0.113.7, 10.1.2.3', trusted)).to.equal('203.0.113.7');
      expect(clientIp('::ffff:127.0.0.1', ['6.6.6.6', '203.0.113.7:5100'], trusted)).to.equal('203.0.113.7');
      expect(clientIp('::1', '[2001:db8::7]:443', trusted)).to.equal('2001:db8::7');
      expect(clientIp('127.0.0.1', '10.0.0.1, 10.0.0.2', trusted), 'all trusted: the left-most').to.equal('10.0.0.1');
      expect(clientIp('127.0.0.1', '203.0.113.7, garbage, 10.0.0.2', trusted), 'garbage ends the walk').to.equal('10.0.0.2');
    });
    it('masks addresses for logs', () => {
      expect(maskIp('203.0.113.7')).to.equal('203.0.113.0');
      expect(maskIp('2001:db8:85a3:1::7')).to.equal('2001:db8:85a3::');
    });
  });

  describe('visitor id', () => {
    const policy = { cookieName: 'tsuid', idConsent: 'analytics' };
    it('body wins, then a valid cookie, else a new id to set', () => {
      expect(visitorId(policy, 'own', 'abcdefabcdefabcdef', { analytics: true })).to.deep.equal({ userId: 'own', setCookie: undefined, source: 'body' });
      expect(visitorId(policy, undefined, 'abcdefabcdefabcdef', { analytics: true }).source).to.equal('cookie');
      const fresh = visitorId(policy, undefined, 'tampered;value', { analytics: true });
      expect(fresh.source).to.equal('new');
      expect(fresh.setCookie).to.equal(fresh.userId);
    });
    it('without the consent: a one-off id, the cookie neither read nor set', () => {
      const id = visitorId(policy, undefined, 'abcdefabcdefabcdef', { analytics: false });
      expect(id.source).to.equal('one-off');
      expect(id.userId).to.not.equal('abcdefabcdefabcdef');
      expect(id.setCookie).to.equal(undefined);
      expect(visitorId({ cookieName: 'tsuid' }, undefined, undefined, {}).source, 'no idConsent configured').to.equal('new');
    });
  });

  describe('body', () => {
    const limits = { maxDepth: 10, maxStringLength: 100 };
    it('the server fields are the server\'s: eventId, timestamp and client replaced', () => {
      const parsed = parseBody({ page: { url: 'https://a.example/' }, eventId: 'x', timestamp: 'y', client: { ip: '6.6.6.6' } });
      if (!('body' in parsed)) throw new Error('expected a body');
      const event = toEvent(parsed.body, { userId: 'u1', ip: undefined, receivedAt: Date.UTC(2026, 10, 29, 10) });
      expect(event.eventId).to.not.equal('x');
      expect(event.timestamp).to.equal('2026-11-29T10:00:00.000Z');
      expect(event).to.not.have.property('client');
      expect(event.userId).to.equal('u1');
    });
    it('limits string length, depth and control characters with the path', () => {
      expect(checkShape({ a: 'x'.repeat(101) }, limits)).to.deep.equal({ field: 'a', reason: 'longer than 100 characters' });
      expect(checkShape({ data: { list: [1, 'a\u001bb'] } }, limits)?.field).to.equal('data.list[1]');
      expect(checkShape({ page: { title: 'line\nbreak\ttab' } }, limits)).to.equal(undefined);
      expect(checkShape({ page: { url: 'https://a.example/ x' } }, limits)?.field).to.equal('page.url');
    });
  });

  describe('tag', () => {
    it('is under 2 KB gzipped, and has a content ETag', () => {
      const tag = loadTag();
      const size = gzipSync(tag.text, { level: 9 }).length;
      console.log(`      tag.js: ${tag.text.length} bytes, ${size} bytes gzipped`);
      expect(size).to.be.below(2048);
      expect(tag.gzip.length).to.equal(size);
      expect(tag.etag).to.match(/^"[A-Za-z0-9_-]{22}"$/);
      expect(() => new Function(tag.text)).to.not.throw();
    });
  });

  describe('shedding load', () => {
    // A broker that takes produce requests and never answers them: only the collector's own
    // bound can refuse the next event (the broker-down suite runs this against a stopped broker).
    const silentBroker = { producer: async () => ({ send: () => new Promise(() => undefined), close: async () => undefined }) as unknown as KafkaProducer } as unknown as KafkaClient;

    it('past collector.maxInFlight: 503 at once with ERR_COLLECTOR_OVERLOADED, while the waiting ones time out as ERR_KAFKA_BROKER_UNREACHABLE', async () => {
      const settings = loadSettings({ env: {}, flags: { collector: { maxInFlight: 3, produceTimeoutMs: 300, allowedOrigins: [] } } }).collector;
      const producer = new EventProducer({ client: silentBroker, topic: 't', produceTimeoutMs: 300, maxInFlight: 3, logger: silentLogger() });
      const app = await buildCollectorApp({ settings, producer, readiness: () => ({ ready: true, reasons: [] }), registry: new Registry(), logger: silentLogger() });
      try {
        const post = (i: number) => app.inject({ method: 'POST', url: '/collect', headers: { 'content-type': 'text/plain', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' }, payload: JSON.stringify({ type: 'page_view', userId: `u-${i}`, page: { url: 'https://www.shop.example/' } }) });
        const waiting = [post(0), post(1), post(2)];
        await new Promise((r) => setTimeout(r, 50));
        const started = Date.now();
        const shed = await post(3);
        expect(Date.now() - started, 'refused without waiting for the broker').to.be.below(250);
        expect(shed.statusCode).to.equal(503);
        expect(shed.headers['retry-after']).to.equal('1');
        expect(shed.json()).to.deep.equal({ error: { code: 'ERR_COLLECTOR_OVERLOADED', field: 'collector', reason: 'too many events waiting for the broker (collector.maxInFlight 3)' } });
        for (const answer of await Promise.all(waiting)) {
          expect(answer.statusCode).to.equal(503);
          expect((answer.json() as { error: { code: string; reason: string } }).error).to.include({ code: 'ERR_KAFKA_BROKER_UNREACHABLE', reason: 'the broker did not acknowledge within 300 ms' });
        }
        // The timed-out records are still the producer's: they hold memory, so they still count.
        expect(producer.inFlight).to.equal(3);
        expect((await post(4)).json()).to.have.nested.property('error.code', 'ERR_COLLECTOR_OVERLOADED');
      } finally {
        await app.close();
      }
    });
  });

  describe('settings', () => {
    it('collector.* from the environment, validated with the variable named', () => {
      const s = loadSettings({
        env: {
          COLLECTOR_PORT: '0',
          COLLECTOR_ALLOWED_ORIGINS: 'https://www.shop.example, https://shop.example',
          COLLECTOR_TRUSTED_PROXIES: '127.0.0.1/32,10.0.0.0/8',
          COLLECTOR_COOKIE_DOMAIN: 'shop.example',
          COLLECTOR_ID_CONSENT: 'analytics',
          COLLECTOR_DROP_BOTS: 'false',
        },
      });
      expect(s.collector).to.include({ port: 0, cookieDomain: 'shop.example', idConsent: 'analytics', dropBots: false, produceTimeoutMs: 2000, cookieName: 'tsuid' });
      expect(s.collector.allowedOrigins).to.deep.equal(['https://www.shop.example', 'https://shop.example']);
      expect(s.collector.trustedProxies).to.deep.equal(['127.0.0.1/32', '10.0.0.0/8']);
      expect(loadSettings({ env: {} }).collector.port).to.equal(8080);
      expect(() => loadSettings({ env: { COLLECTOR_ALLOWED_ORIGINS: 'https://www.shop.example/' } })).to.throw(/collector\.allowedOrigins\.0 \(COLLECTOR_ALLOWED_ORIGINS\): must be an origin/);
      expect(() => loadSettings({ env: { COLLECTOR_TRUSTED_PROXIES: '10.0.0.0/40' } })).to.throw(/COLLECTOR_TRUSTED_PROXIES/);
      expect(() => loadSettings({ env: { COLLECTOR_PORT: 'abc' } })).to.throw(/collector\.port \(COLLECTOR_PORT\)/);
    });
    it('origins: the configured ones and the collector\'s own host', () => {
      expect(originAllowed('https://www.shop.example', 'collect.shop.example', ['https://www.shop.example'])).to.equal(true);
      expect(originAllowed('https://collect.shop.example', 'collect.shop.example', [])).to.equal(true);
      expect(originAllowed('https://evil.example', 'collect.shop.example', ['https://www.shop.example'])).to.equal(false);
      expect(originAllowed('null', 'collect.shop.example', [])).to.equal(false);
    });
  });
});
