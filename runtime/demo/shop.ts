/**
 * The demo shop (`run --demo`): home, product and cart pages on loopback that include nothing but
 * the first-party tag (`/tag.js` from the collector) and a consent banner. The tag loads once the
 * visitor chose (the choice is remembered in localStorage and pushed with
 * `tagstream.push(['consent', {...}])` before the tag), so the first page view already carries it.
 */
import { createServer } from 'node:http';
import { listen, type Listening } from '../http/listen.ts';
import { esc } from './html.ts';

export interface ShopOptions {
  host: string;
  port: number;
  /** The collector's origin as the visitor's browser reaches it (`http://127.0.0.1:8080`); read per page. */
  collectorUrl: () => string;
}

interface Product {
  slug: string;
  name: string;
  price: string;
  colour: string;
  blurb: string;
}

export const PRODUCTS: readonly Product[] = [
  { slug: 'mug', name: 'Kafka mug', price: '12.00', colour: '#f2b134', blurb: 'Holds one partition of coffee. Compacted daily.' },
  { slug: 'tee', name: 'Stream tee', price: '24.00', colour: '#5b8def', blurb: 'Soft cotton, ordered per key.' },
  { slug: 'socks', name: 'Idempotent socks', price: '9.00', colour: '#4bb58c', blurb: 'Put them on twice: still one pair.' },
];

export async function startShop(options: ShopOptions): Promise<Listening> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://shop.invalid').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
    const page = route(path);
    if (page === undefined) return void res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Not found</title><p>Not found. <a href="/">Home</a></p>');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(layout(page, options.collectorUrl()));
  });
  return listen(server, options.host, options.port, 'the demo shop', 'demo.shopPort (DEMO_SHOP_PORT)');
}

interface Page {
  title: string;
  dataLayer: Record<string, unknown>;
  body: string;
}

function route(path: string): Page | undefined {
  if (path === '/') {
    return {
      title: 'Demo Shop — home',
      dataLayer: { pageType: 'home' },
      body: `<h1>Welcome to the demo shop</h1><p class="lead">Every page here sends one first-party event. The partners' own tags run on the server, not in this browser: open the <b>partner inbox</b> to see what they received.</p>
<div class="grid">${PRODUCTS.map((p) => `<a class="card" href="/product/${p.slug}"><div class="swatch" style="background:${p.colour}"></div><b>${esc(p.name)}</b><span>€${p.price}</span></a>`).join('')}</div>`,
    };
  }
  const m = /^\/product\/([a-z]+)$/.exec(path);
  const product = m === null ? undefined : PRODUCTS.find((p) => p.slug === m[1]);
  if (product !== undefined) {
    return {
      title: `${product.name} — Demo Shop`,
      dataLayer: { pageType: 'product', sku: product.slug, price: Number(product.price) },
      body: `<div class="product"><div class="swatch big" style="background:${product.colour}"></div><div><h1>${esc(product.name)}</h1><p>${esc(product.blurb)}</p><p class="price">€${product.price}</p>
<button id="add" data-sku="${product.slug}" data-name="${esc(product.name)}" data-price="${product.price}">Add to cart</button> <a href="/cart">Go to cart →</a></div></div>`,
    };
  }
  if (path === '/cart') {
    return { title: 'Your cart — Demo Shop', dataLayer: { pageType: 'cart' }, body: `<h1>Your cart</h1><ul id="cart-items"></ul><p><a href="/">Continue shopping</a></p>` };
  }
  return undefined;
}

function layout(page: Page, collector: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(page.title)}</title>
<style>
body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#222;background:#fffdf8}
nav{display:flex;gap:18px;padding:12px 24px;background:#222;color:#fff} nav a{color:#fff;text-decoration:none} nav .brand{font-weight:700;margin-right:auto}
main{max-width:860px;margin:24px auto;padding:0 20px} .lead{color:#555}
.grid{display:grid;grid-template-columns:repeat(3,1fr);gap:16px} .card{display:flex;flex-direction:column;gap:4px;padding:12px;border:1px solid #eee;border-radius:8px;color:#222;text-decoration:none;background:#fff}
.swatch{height:110px;border-radius:6px} .swatch.big{width:240px;height:240px} .product{display:flex;gap:28px} .price{font-size:22px;font-weight:600}
button{font:inherit;padding:8px 14px;border-radius:6px;border:1px solid #222;background:#222;color:#fff;cursor:pointer}
#consent{position:fixed;left:0;right:0;bottom:0;background:#fff;border-top:3px solid #222;padding:14px 24px;display:none;gap:12px;align-items:center;flex-wrap:wrap;box-shadow:0 -4px 20px #0002}
#consent p{margin:0;flex:1 1 300px} #consent button.secondary{background:#fff;color:#222}
footer{max-width:860px;margin:40px auto;padding:0 20px;color:#888;font-size:13px} footer a{color:#888}
</style>
<script>
window.dataLayer = [${JSON.stringify(page.dataLayer).replace(/</g, '\\u003c')}];
window.tagstream = window.tagstream || [];
(function () {
  var COLLECTOR = ${JSON.stringify(collector).replace(/</g, '\\u003c')};
  var loaded = false;
  function loadTag() {
    if (loaded) return;
    loaded = true;
    var s = document.createElement('script');
    s.async = true;
    s.src = COLLECTOR + '/tag.js';
    document.head.appendChild(s);
  }
  function choose(consent) {
    localStorage.setItem('demo-consent', JSON.stringify(consent));
    tagstream.push(['consent', consent]);
    document.getElementById('consent').style.display = 'none';
    loadTag();
  }
  var saved = null;
  try { saved = JSON.parse(localStorage.getItem('demo-consent') || 'null'); } catch (e) {}
  if (saved) { tagstream.push(['consent', saved]); loadTag(); }
  document.addEventListener('DOMContentLoaded', function () {
    var banner = document.getElementById('consent');
    if (!saved) banner.style.display = 'flex';
    document.getElementById('accept-all').onclick = function () { choose({ analytics: true, advertising: true }); };
    document.getElementById('analytics-only').onclick = function () { choose({ analytics: true, advertising: false }); };
    document.getElementById('reject').onclick = function () { choose({ analytics: false, advertising: false }); };
    document.getElementById('privacy').onclick = function (e) { e.preventDefault(); banner.style.display = 'flex'; };
    var add = document.getElementById('add');
    if (add) add.onclick = function () {
      var cart = JSON.parse(localStorage.getItem('demo-cart') || '[]');
      cart.push({ sku: add.dataset.sku, name: add.dataset.name, price: add.dataset.price });
      localStorage.setItem('demo-cart', JSON.stringify(cart));
      add.textContent = 'Added (' + cart.length + ' in cart)';
    };
    var items = document.getElementById('cart-items');
    if (items) {
      var cart = JSON.parse(localStorage.getItem('demo-cart') || '[]');
      if (cart.length === 0) items.appendChild(document.createTextNode('Your cart is empty.'));
      cart.forEach(function (i) { var li = document.createElement('li'); li.textContent = i.name + ' — €' + i.price; items.appendChild(li); });
    }
  });
})();
</script></head><body>
<nav><a class="brand" href="/">Demo Shop</a><a href="/">Home</a>${PRODUCTS.map((p) => `<a href="/product/${p.slug}">${esc(p.name)}</a>`).join('')}<a href="/cart" id="cart-link">Cart</a></nav>
<main>${page.body}</main>
<footer>This page includes one script: <code>${esc(collector)}/tag.js</code>. <a href="#" id="privacy">Privacy settings</a></footer>
<div id="consent" role="dialog" aria-label="Cookie consent"><p><b>Cookies & partners.</b> May our partners measure your visit? Analytics: Snowplow, PostHog, Plausible. Advertising: an ad pixel.</p>
<button id="accept-all">Accept all</button><button class="secondary" id="analytics-only">Analytics only</button><button class="secondary" id="reject">Reject all</button></div>
</body></html>`;
}
