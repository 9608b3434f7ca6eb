/**
 * The console in a real browser (issue 10, DESIGN.md "The console"): the product as `npm start`
 * runs it (every role, the console and the demo on the embedded broker), a visitor's page views
 * in the shop, then the console page: the event's trace shows the visitor's context, each
 * partner's captured requests decoded, their dispatch, the jar diff, and the dry-run replay.
 * Tag data shown there cannot run as HTML.
 */
import { expect } from 'chai';
import type { Browser, Page } from 'puppeteer-core';
import { request } from 'undici';
import { waitFor } from '../runner/helpers.ts';
import { launchBrowser, startProduct, visitor, visitorUa, type RunningProduct } from '../demo/product.ts';

const PARTNERS = ['snowplow', 'posthog', 'plausible', 'pixel'];

interface Summary {
  id: string;
  url: string;
  title?: string;
  partners: { partner: string; status: string }[];
  requests: number;
  delivered: number;
}

async function events(product: RunningProduct): Promise<Summary[]> {
  return ((await (await request(`${product.console}/api/events`)).body.json()) as { events: Summary[] }).events;
}

/** The trace panel's requests as the page shows them. */
async function shownRequests(page: Page) {
  return page.$$eval('#requests .req', (nodes) =>
    nodes.map((n) => ({ partner: n.getAttribute('data-partner'), head: n.querySelector('.req-head')?.textContent ?? '', text: n.textContent ?? '' })),
  );
}

async function jarRows(page: Page): Promise<string[][]> {
  return page.$$eval('#jar-diff tr', (rows) => rows.slice(1).map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

describe('console: the trace of a page view in a real browser', function () {
  this.timeout(240_000);
  let product: RunningProduct;
  let browser: Browser;

  before(async () => {
    product = await startProduct();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    const code = await product?.stop();
    expect(code, 'exit code after SIGTERM').to.equal(0);
  });

  it('shows each partner’s captured requests decoded, their delivery, the jar diff and a dry-run replay', async () => {
    const { context, page: shop } = await visitor(browser, 1);
    try {
      await shop.goto(`${product.shop}/`, { waitUntil: 'load' });
      await shop.click('#accept-all');
      await waitFor('the home page view delivered to every partner', async () => {
        const home = (await events(product)).find((e) => new URL(e.url).pathname === '/');
        return home !== undefined && home.partners.filter((p) => p.status === 'ok').length === 4 && home.delivered === home.requests;
      }, 60_000, 250);
      await shop.goto(`${product.shop}/product/mug`, { waitUntil: 'load' });
      await waitFor('the product page view delivered', async () => {
        const view = (await events(product)).find((e) => new URL(e.url).pathname === '/product/mug');
        return view !== undefined && view.requests > 0 && view.delivered === view.requests;
      }, 60_000, 250);
    } finally {
      await context.close();
    }

    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    const errors: string[] = [];
    page.on('pageerror', (e: unknown) => errors.push(e instanceof Error ? e.message : String(e)));
    await page.goto(`${product.console}/`, { waitUntil: 'load' });
    // The first page view: everything the partners set is new.
    await page.waitForFunction(() => document.querySelectorAll('#events li').length >= 2);
    const items = await page.$$('#events li');
    await items[items.length - 1]!.click(); // the oldest: the home page
    await page.waitForSelector('#requests .req');
    await page.waitForFunction(() => !document.querySelector('#requests')?.textContent?.includes('not delivered yet'));

    const visitorText = await page.$eval('#trace table.kv', (t) => t.textContent ?? '');
    expect(visitorText).to.contain(`${product.shop}/`);
    expect(visitorText).to.contain(visitorUa(1));
    expect(visitorText).to.contain('"analytics":true');

    const partnersTable = await page.$$eval('#trace h3 + table tr', (rows) => rows.map((r) => r.textContent ?? ''));
    for (const p of PARTNERS) expect(partnersTable.some((r) => r.startsWith(p) && r.includes('ok') && /\d+ ms/.test(r)), `${p} ok with a duration`).to.equal(true);

    // Open every request's details: decoded bodies and dispatch attempts.
    await page.$$eval('#requests details', (ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
    const requests = await shownRequests(page);
    for (const p of PARTNERS) expect(requests.some((r) => r.partner === p), `a captured request of ${p}`).to.equal(true);
    for (const r of requests) {
      expect(r.head, `${r.partner}: delivered`).to.match(/delivered (200|202)/);
      // The attempts: one, answered.
      expect(r.text, `${r.partner}: its dispatch attempts`).to.match(/Dispatchatstatuserror\d{1,2}:\d{2}:\d{2}( [AP]M)?(200|202)/);
    }
    const snowplow = requests.find((r) => r.partner === 'snowplow')!;
    expect(snowplow.text).to.contain('/com.snowplowanalytics.snowplow/tp2').and.contain('"e": "pv"').and.contain('"duid"');
    // Snowplow's `cx` (base64 JSON) decoded one level further: the web_page context.
    expect(snowplow.text).to.contain('iglu:com.snowplowanalytics.snowplow/web_page');
    const posthog = requests.filter((r) => r.partner === 'posthog').map((r) => r.text).join('\n');
    expect(posthog).to.match(/gzip → json|base64 → json/);
    expect(posthog).to.contain('"event": "$pageview"');
    const pixel = requests.find((r) => r.partner === 'pixel')!;
    expect(pixel.text).to.contain('Query string').and.contain('uid').and.contain('PageView');
    const plausible = requests.find((r) => r.partner === 'plausible')!;
    expect(plausible.text).to.contain('"n": "pageview"');

    let rows = await jarRows(page);
    const pxFirst = rows.find((r) => r[2] === '_px_uid');
    expect(pxFirst?.[0], "the pixel's cookie on the first view").to.equal('added');
    expect(rows.some((r) => r[2]?.startsWith('_sp_id.') && r[0] === 'added'), "snowplow's id cookie added").to.equal(true);
    expect(rows.some((r) => r[1] === 'localStorage' && r[0] === 'added'), 'localStorage written (posthog)').to.equal(true);

    // The second page view of the same visitor: the ids the partners set are kept (before = after).
    const itemsNow = await page.$$('#events li');
    await itemsNow[itemsNow.length - 2]!.click();
    await page.waitForFunction(() => document.querySelector('#trace table.kv')?.textContent?.includes('/product/mug'));
    rows = await jarRows(page);
    const pxSecond = rows.find((r) => r[2] === '_px_uid');
    // Its value is kept; its expiry moves when the tag sets it again a second later (max-age).
    expect(pxSecond?.[0], "the pixel's cookie on the second view").to.be.oneOf(['same', 'changed']);
    expect(pxSecond?.[4], 'before = what the first view left').to.equal(pxFirst?.[5]);
    expect(pxSecond?.[5]?.startsWith(pxFirst?.[5] ?? '?'), 'after: the same id').to.equal(true);
    if (pxSecond?.[0] === 'changed') expect(pxSecond[5]).to.contain('(expires changed)');

    // Dry-run replay of this event: per-partner diff against what was captured.
    await page.click('#replay');
    await page.waitForSelector('#replay-result table', { timeout: 60_000 });
    const replay = await page.$eval('#replay-result', (n) => n.textContent ?? '');
    for (const p of PARTNERS) expect(replay, `the replay lists ${p}`).to.contain(p);
    // The pixel: at most its timestamp parameter differs (page time runs with wall time between
    // the clock's jumps, so it may or may not have moved), nothing else of it.
    const pixelRows = await page.$$eval('#replay-result table tr', (trs) => {
      const out: { result: string; params: string[] }[] = [];
      let partner = '';
      for (const tr of trs) {
        const cells = [...tr.querySelectorAll('td')];
        if ((cells[0]?.textContent ?? '') !== '') partner = cells[0]?.textContent ?? '';
        else if (partner === 'pixel') out.push({ result: cells[1]?.textContent ?? '', params: [...(cells[4]?.querySelectorAll('div > div.mono') ?? [])].map((d) => d.textContent ?? '') });
      }
      return out;
    });
    for (const row of pixelRows) {
      expect(row.result, 'the pixel sends the same requests').to.equal('changed');
      for (const param of row.params) expect(param).to.match(/^query:ts: /);
    }

    const counters = await page.$$eval('#counters tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    for (const p of PARTNERS) {
      const row = counters.find((r) => r[0] === p);
      expect(Number(row?.[1]), `${p}: ran ok twice`).to.equal(2);
      expect(Number(row?.[6]), `${p}: delivered`).to.be.at.least(2);
    }
    expect(errors).to.deep.equal([]);
    await page.close();
  });

  it('renders tag data as text: HTML in a title or a URL never runs', async () => {
    const title = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
    const url = `${product.shop}/product/mug?q=%22%3E%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D3%3E`;
    const res = await request(`${product.collector}/collect`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'user-agent': visitorUa(3), origin: product.shop },
      body: JSON.stringify({ page: { url, title }, consent: { analytics: true, advertising: true } }),
    });
    expect(res.statusCode, await res.body.text()).to.equal(204);
    let id = '';
    await waitFor('the hostile event in the console', async () => {
      const found = (await events(product)).find((e) => e.title === title);
      if (found === undefined || found.requests === 0) return false;
      id = found.id;
      return true;
    }, 60_000, 250);
    const page = await browser.newPage();
    try {
      await page.goto(`${product.console}/#event=${encodeURIComponent(id)}`, { waitUntil: 'load' });
      await page.waitForSelector('#requests .req');
      await page.$$eval('#requests details', (ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
      const shown = await page.$eval('#trace table.kv', (t) => t.textContent ?? '');
      expect(shown).to.contain(title);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).to.equal(undefined);
      expect(await page.$$eval('#trace img, #trace script, #events img', (n) => n.length)).to.equal(0);
    } finally {
      await page.close();
    }
  });
});
