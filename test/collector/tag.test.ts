/**
 * The tag in a real Chromium (DESIGN.md "The first-party tag and the collector"): a page on
 * 127.0.0.1 includes GET /tag.js from a running collector on another port; the events that reach
 * the topic carry what the page's own navigator, screen, Intl and document report (read in the
 * same page), the consent pushed before the tag loaded, the dataLayer, a custom event and an event
 * pushed before load ahead of the consent (it carries none: pushes are applied in order).
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { Browser } from 'puppeteer-core';
import { realBroker } from '../helpers/kafka.ts';
import { BROWSER_UA, startTestCollector, type TestCollector } from './helpers.ts';
import { eventually, launchTestBrowser } from './browser.ts';

function sitePage(collectorUrl: string): string {
  return `<!doctype html><html><head><title>Product 42 — Shop</title>
<script>window.dataLayer = [{ pageType: 'product', sku: 'P42' }];
window.tagstream = window.tagstream || [];
tagstream.push(['event', 'before_consent', { early: true }]);
tagstream.push(['consent', { analytics: true, advertising: false }]);</script>
<script async src="${collectorUrl}/tag.js"></script></head><body><h1>Product 42</h1></body></html>`;
}

describe('collector: the tag in a real Chromium', function () {
  this.timeout(90_000);
  let c: TestCollector;
  let site: Server;
  let siteUrl: string;
  let browser: Browser;

  before(async () => {
    site = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(sitePage(c.url)));
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    c = await startTestCollector(realBroker().brokers, { allowedOrigins: [siteUrl] });
    browser = await launchTestBrowser();
  });
  after(async () => {
    await browser?.close();
    await c?.close();
    site?.close();
  });

  it('GET /tag.js: JavaScript, gzip, ETag and 304 on revalidation', async () => {
    const res = await request(`${c.url}/tag.js`, { headers: { 'accept-encoding': 'gzip' } });
    const bytes = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).to.equal(200);
    expect(res.headers['content-type']).to.equal('application/javascript; charset=utf-8');
    expect(res.headers['content-encoding']).to.equal('gzip');
    expect(bytes.length).to.be.below(2048);
    expect(res.headers['cache-control']).to.match(/max-age=\d+/);
    const etag = String(res.headers.etag);
    const again = await request(`${c.url}/tag.js`, { headers: { 'if-none-match': etag } });
    await again.body.dump();
    expect(again.statusCode).to.equal(304);
  });

  it('the page view and a custom event carry what the page itself reports', async () => {
    const page = await browser.newPage();
    try {
      // A browser's user agent (HeadlessChrome is a bot to isbot) and French languages, as a visitor's.
      const cdp = await page.createCDPSession();
      await cdp.send('Emulation.setUserAgentOverride', { userAgent: BROWSER_UA, acceptLanguage: 'fr-FR,fr' });
      await page.emulateTimezone('Europe/Paris');
      await page.setViewport({ width: 1111, height: 777, deviceScaleFactor: 2 });
      await page.goto(`${siteUrl}/p/42?utm_source=x`, { referer: `${siteUrl}/search?q=42`, waitUntil: 'load' });
      const pageView = await eventually(20_000, async () => (await c.produced()).find((r) => r.value.type === 'page_view'));
      expect(pageView, 'no page_view reached the topic').to.not.equal(undefined);
      await page.evaluate(() => (window as unknown as { tagstream: { push(c: unknown): void } }).tagstream.push(['event', 'add_to_cart', { qty: 2 }]));
      const custom = await eventually(20_000, async () => (await c.produced()).find((r) => r.value.type === 'add_to_cart'));
      expect(custom, 'no custom event reached the topic').to.not.equal(undefined);

      const seen = await page.evaluate(async () => {
        const uaData = (navigator as unknown as { userAgentData?: { getHighEntropyValues(h: string[]): Promise<Record<string, unknown>> } }).userAgentData;
        const high = uaData ? await uaData.getHighEntropyValues(['platformVersion', 'architecture', 'model', 'fullVersionList', 'bitness']) : undefined;
        return {
          url: location.href,
          referrer: document.referrer,
          title: document.title,
          userAgent: navigator.userAgent,
          language: navigator.language,
          languages: [...navigator.languages],
          platform: navigator.platform,
          screen: { width: screen.width, height: screen.height, colorDepth: screen.colorDepth, pixelRatio: devicePixelRatio },
          viewport: { width: innerWidth, height: innerHeight },
          timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
          hardwareConcurrency: navigator.hardwareConcurrency,
          high,
        };
      });
      const event = pageView!.value as Record<string, Record<string, unknown>>;
      expect(event.page).to.deep.equal({ url: seen.url, referrer: seen.referrer, title: seen.title });
      expect(seen.referrer).to.equal(`${siteUrl}/search?q=42`);
      const device = event.device!;
      expect(device).to.deep.include({
        userAgent: seen.userAgent,
        language: seen.language,
        languages: seen.languages,
        platform: seen.platform,
        screen: seen.screen,
        viewport: seen.viewport,
        timezone: seen.timezone,
        hardwareConcurrency: seen.hardwareConcurrency,
      });
      // The emulation took: these are not Chromium's defaults, so the values come from the page.
      expect([device.timezone, device.language, device.languages, (device.screen as { pixelRatio: number }).pixelRatio]).to.deep.equal(['Europe/Paris', 'fr-FR', ['fr-FR', 'fr'], 2]);
      expect(device.viewport).to.deep.equal({ width: 1111, height: 777 });
      const hints = device.userAgentData as Record<string, unknown>;
      expect(seen.high, 'the page offers client hints').to.not.equal(undefined);
      for (const key of ['platformVersion', 'architecture', 'fullVersionList', 'bitness', 'brands', 'mobile', 'platform']) {
        expect(hints[key], key).to.deep.equal(seen.high![key]);
      }
      expect(event.consent).to.deep.equal({ analytics: true, advertising: false });
      expect(event.data).to.deep.equal({ pageType: 'product', sku: 'P42' });
      expect(pageView!.value.userId).to.be.a('string');
      expect(event.client).to.deep.equal({ ip: '127.0.0.1' });
      const customEvent = custom!.value as Record<string, Record<string, unknown>>;
      expect(customEvent.data).to.deep.equal({ pageType: 'product', sku: 'P42', qty: 2 });
      expect(customEvent.consent).to.deep.equal({ analytics: true, advertising: false });
      expect((await c.produced()).filter((r) => r.value.type === 'page_view'), 'exactly one page view').to.have.length(1);
      // Pushed before the tag loaded and before the consent: applied in order, so it carries none.
      const early = await eventually(20_000, async () => (await c.produced()).find((r) => r.value.type === 'before_consent'));
      expect(early, 'the event pushed before load').to.not.equal(undefined);
      expect((early!.value as Record<string, unknown>).consent).to.deep.equal({});
      expect((early!.value as Record<string, unknown>).data).to.deep.equal({ pageType: 'product', sku: 'P42', early: true });
    } finally {
      await page.close();
    }
  });
});
