/**
 * The deployed shape (DESIGN.md "The first-party tag and the collector"): the collector behind a
 * TLS front on the site's own domain (`collect.shop.localhost`), the page on another subdomain of
 * the same site (`www.shop.localhost`), in a real Chromium. The `tsuid` cookie is first-party:
 * set on the site's domain with HttpOnly, Secure and SameSite=Lax, sent back on the next page view
 * (same userId), visible to the site's own server. *.localhost resolves to loopback in Chromium;
 * the certificate is self-signed, made here with the openssl binary.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { realBroker } from '../helpers/kafka.ts';
import { BROWSER_UA, startTestCollector, type TestCollector } from './helpers.ts';
import { eventually, launchTestBrowser } from './browser.ts';

function selfSignedCert(dir: string): { key: Buffer; cert: Buffer } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', key, '-out', cert, '-subj', '/CN=shop.localhost', '-addext', 'subjectAltName=DNS:shop.localhost,DNS:*.shop.localhost',
  ], { stdio: 'ignore' });
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('collector: first-party cookie behind a TLS front', function () {
  this.timeout(90_000);
  let dir: string;
  let c: TestCollector;
  let front: Server;
  let site: Server;
  let browser: Browser;
  const siteCookies: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'collector-tls-'));
    const tls = selfSignedCert(dir);
    // The site: its pages include the tag from the collector's subdomain.
    let collectOrigin = '';
    site = createHttpsServer(tls, (req, res) => {
      siteCookies.push(req.headers.cookie ?? '');
      res.writeHead(200, { 'content-type': 'text/html' }).end(
        `<!doctype html><title>page ${req.url}</title><script>window.tagstream=[['consent',{analytics:true}]]</script><script async src="${collectOrigin}/tag.js"></script>`,
      );
    });
    const sitePort = await listen(site);
    const siteOrigin = `https://www.shop.localhost:${sitePort}`;
    c = await startTestCollector(realBroker().brokers, { allowedOrigins: [siteOrigin], trustedProxies: ['127.0.0.1/32'], cookieDomain: 'shop.localhost', idConsent: 'analytics' });
    const upstream = new URL(c.url);
    // The TLS front: terminates TLS, appends the peer to X-Forwarded-For, keeps Host, as a load balancer does.
    front = createHttpsServer(tls, (req, res) => {
      const xff = [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', ');
      const out = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, 'x-forwarded-for': xff, 'x-forwarded-proto': 'https' } }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      out.on('error', () => res.writeHead(502).end());
      req.pipe(out);
    });
    collectOrigin = `https://collect.shop.localhost:${await listen(front)}`;
    browser = await launchTestBrowser(['--ignore-certificate-errors']);
  });
  after(async () => {
    await browser?.close();
    await c?.close();
    front?.close();
    site?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tsuid is set on the site domain, sent back on the next page view and seen by the site itself', async () => {
    const page = await browser.newPage();
    try {
      const cdp = await page.createCDPSession();
      await cdp.send('Emulation.setUserAgentOverride', { userAgent: BROWSER_UA });
      const siteOrigin = `https://www.shop.localhost:${(site.address() as AddressInfo).port}`;
      await page.goto(`${siteOrigin}/first`, { waitUntil: 'load' });
      const first = await eventually(20_000, async () => (await c.produced()).find((r) => (r.value.page as { url: string }).url.endsWith('/first')));
      expect(first, 'the first page view reached the topic').to.not.equal(undefined);

      const { cookies } = await cdp.send('Network.getAllCookies');
      const tsuid = cookies.find((k) => k.name === 'tsuid');
      expect(tsuid, 'the browser stored tsuid').to.not.equal(undefined);
      expect(tsuid).to.include({ domain: '.shop.localhost', path: '/', httpOnly: true, secure: true, sameSite: 'Lax', value: first!.key });
      expect(tsuid!.expires * 1000 - Date.now()).to.be.above(390 * 86_400_000);

      await page.goto(`${siteOrigin}/second`, { waitUntil: 'load' });
      const second = await eventually(20_000, async () => (await c.produced()).find((r) => (r.value.page as { url: string }).url.endsWith('/second')));
      expect(second, 'the second page view reached the topic').to.not.equal(undefined);
      expect(second!.key, 'same visitor on the next page view').to.equal(first!.key);
      expect(second!.value.client).to.deep.equal({ ip: '127.0.0.1' });
      expect(siteCookies.at(-1), 'the site\'s own server sees the first-party cookie').to.contain(`tsuid=${first!.key}`);
    } finally {
      await page.close();
    }
  });
});
