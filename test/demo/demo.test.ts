/**
 * `npm start` as a newcomer uses it (issue 10): the product with `--demo` — here against the real
 * broker (`npm start -- --brokers …`, topics created by the demo) — and two visitors in two
 * browser contexts clicking through the shop. The partner inbox must show each partner (three
 * real SDKs from npm and an image pixel) receiving every page view, with an id that stays the
 * same across one visitor's pages and differs between the two visitors.
 */
import { expect } from 'chai';
import type { Browser } from 'puppeteer-core';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { waitFor } from '../runner/helpers.ts';
import { inboxEntries, launchBrowser, startProduct, visitor, visitorUa, type InboxEntryJson, type RunningProduct } from './product.ts';

const PARTNERS = ['snowplow', 'posthog', 'plausible', 'pixel'];
const PAGES = ['/', '/product/mug', '/cart'];

/** partner → visitor's user agent → the page views it received (page URL, visitor id). */
function pageViews(entries: InboxEntryJson[], partner: string, ua: string): { page?: string; visitorId?: string }[] {
  return entries.filter((e) => e.partner === partner && e.userAgent === ua).flatMap((e) => e.events.filter((ev) => ev.pageView));
}

describe('demo: npm start (shop, partners from npm, inbox) on the real broker', function () {
  this.timeout(240_000);
  let product: RunningProduct;
  let browser: Browser;

  before(async () => {
    const t = uniqueTopic('demo');
    product = await startProduct({
      KAFKA_BROKERS: realBroker().brokers.join(','),
      TOPIC_EVENTS: `${t}.events`,
      TOPIC_COOKIES: `${t}.cookies`,
      TOPIC_REQUESTS: `${t}.requests`,
      TOPIC_REQUESTS_DLQ: `${t}.requests.dlq`,
      TOPIC_EVENTS_DLQ: `${t}.events.dlq`,
      GROUP_PROCESSOR: `${t}-processor`,
      GROUP_DISPATCHER: `${t}-dispatcher`,
      TOPIC_PARTITIONS: '2',
      TOPIC_REQUEST_PARTITIONS: '2',
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    const code = await product?.stop();
    expect(code, 'run --demo exit code after SIGTERM').to.equal(0);
  });

  it('prints the shop, the inbox and the console', () => {
    const out = product.stdout();
    expect(out).to.contain(`demo shop      ${product.shop}/`);
    expect(out).to.contain(`partner inbox  ${product.inbox}/`);
    expect(out).to.contain(`console        ${product.console}/`);
    expect(out).to.contain('Kafka at');
  });

  it('two visitors click through the shop: each partner gets every page view, ids stable per visitor and different across them', async () => {
    for (const n of [1, 2]) {
      const { context, page } = await visitor(browser, n);
      try {
        await page.goto(`${product.shop}/`, { waitUntil: 'load' });
        // The banner is up until the visitor chooses; the tag loads with the choice.
        await page.waitForSelector('#consent', { visible: true });
        await page.click('#accept-all');
        // Wait for this page's view to reach every partner before the next page, as a reader would.
        await waitFor(`visitor ${n}: the home page view at every partner`, async () => {
          const entries = await inboxEntries(product.inbox);
          return PARTNERS.every((p) => pageViews(entries, p, visitorUa(n)).length >= 1);
        }, 60_000, 250);
        await page.click('a[href="/product/mug"]');
        await page.waitForSelector('#add');
        await page.click('#add');
        await page.click('a[href="/cart"]');
        await page.waitForSelector('#cart-items li');
        await waitFor(`visitor ${n}: three page views at every partner`, async () => {
          const entries = await inboxEntries(product.inbox);
          return PARTNERS.every((p) => pageViews(entries, p, visitorUa(n)).length >= PAGES.length);
        }, 90_000, 250);
      } finally {
        await context.close();
      }
    }
    const entries = await inboxEntries(product.inbox);
    for (const partner of PARTNERS) {
      const ids = [1, 2].map((n) => {
        const views = pageViews(entries, partner, visitorUa(n));
        expect(views.map((v) => new URL(v.page ?? 'http://x/').pathname), `${partner}, visitor ${n}: pages`).to.deep.equal(PAGES);
        const distinct = new Set(views.map((v) => v.visitorId));
        expect(distinct.size, `${partner}, visitor ${n}: one id across the pages (${[...distinct].join(', ')})`).to.equal(1);
        const [id] = distinct;
        expect(id, `${partner}, visitor ${n}: an id`).to.be.a('string').and.not.equal('');
        return id;
      });
      expect(ids[0], `${partner}: the two visitors' ids`).to.not.equal(ids[1]);
    }
  });

  it('the inbox page lists each partner with its visitors and their page views', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${product.inbox}/`, { waitUntil: 'load' });
      const sections = await page.$$eval('section[data-partner]', (nodes) =>
        nodes.map((s) => ({
          partner: s.getAttribute('data-partner'),
          rows: [...s.querySelectorAll('tr.view')].map((r) => ({ visitor: r.getAttribute('data-visitor'), page: r.getAttribute('data-page') })),
        })),
      );
      expect(sections.map((s) => s.partner)).to.deep.equal(PARTNERS);
      for (const s of sections) {
        expect(s.rows, `${s.partner}: page views shown`).to.have.length(6);
        expect(new Set(s.rows.map((r) => r.visitor)).size, `${s.partner}: two visitor ids shown`).to.equal(2);
      }
    } finally {
      await page.close();
    }
  });
});
