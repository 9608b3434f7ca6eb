/**
 * In-page capture (inject/capture.js, Router.fromPage): a plain fetch or sendBeacon is taken in
 * the page instead of going through Chromium's network stack. What a user depends on is that the
 * captured record is the one Chromium's own request gives, so every case here runs twice, in-page
 * capture off (every send through the browser, paused and captured there) and on, and the records
 * are compared field by field.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createExecutor, type CapturedRequest, type ExecuteResult, type Executor, type PartnerConfigInput } from '../../processors/executor/index.ts';
import { refererFor } from '../../processors/executor/page/router.ts';
import { demoPartners } from '../../runtime/demo/partners.ts';
import { loadSdks } from '../../runtime/demo/sdks.ts';
import { makeEvent, startFixtureServer, type FixtureServer } from './helpers.ts';

const POLICIES = ['no-referrer', 'no-referrer-when-downgrade', 'origin', 'origin-when-cross-origin', 'same-origin', 'strict-origin', 'strict-origin-when-cross-origin', 'unsafe-url'];

// Every kind of body, header list, referrer policy and destination (cross-origin https, http
// loopback from an https page, same origin, relative), and the cases that must stay with the
// browser (a stream body, no-cors, an explicit referrer, a configured response).
const MATRIX = `<script>
fetch('https://c.t.example/text', {method:'POST', body: JSON.stringify({a:1})});
fetch('https://c.t.example/get?q=1');
fetch(new URL('https://c.t.example/url-object#frag'));
fetch('http://127.0.0.1:9/loopback', {method:'POST', body:'a'});
fetch('https://shop.example/same', {method:'POST', body:'a'});
fetch('https://shop.example/same-get');
fetch('/relative', {method:'POST', body:'r'});
fetch('https://c.t.example/headers-object', {method:'POST', headers: new Headers({'X-Bar':'1','content-type':'text/plain'}), body:'a'});
fetch('https://c.t.example/headers-record', {method:'POST', headers: {'Accept':'application/json','User-Agent':'me','Cookie':'a=1','X-Case':'V'}, body: new Blob(['x'])});
fetch('https://c.t.example/headers-pairs', {method:'POST', headers: [['X-Pair','1']], body: new URLSearchParams({a:'1', b:'é'}), keepalive: true, credentials: 'include'});
fetch('https://c.t.example/bytes', {method:'POST', body: new Uint8Array([0,1,2,255])});
fetch('https://c.t.example/json', {method:'POST', body: JSON.stringify({x:'ü'}), headers: {'Content-Type':'application/json'}});
var fd = new FormData(); fd.append('k', 'v'); fetch('https://c.t.example/form', {method:'POST', body: fd});
${JSON.stringify(POLICIES)}.forEach(function (p) {
  fetch('https://c.t.example/rp-' + p, {method:'POST', body:'x', referrerPolicy: p});
  fetch('http://127.0.0.1:9/rp-' + p, {referrerPolicy: p});
  fetch('https://shop.example/rp-' + p, {referrerPolicy: p});
});
fetch(new Request('https://c.t.example/request', {method:'POST', headers: new Headers({'Content-Type':'application/json; charset=UTF-8','SP-Anonymous':'*'}), body:'{"a":1}', keepalive: true}));
fetch(new Request('https://c.t.example/request-get'));
navigator.sendBeacon('https://c.t.example/beacon-text', 'hello');
navigator.sendBeacon('https://c.t.example/beacon-json', new Blob(['{}'], {type:'application/json'}));
navigator.sendBeacon('https://c.t.example/beacon-params', new URLSearchParams({z:'1'}));
navigator.sendBeacon('https://c.t.example/beacon-empty');
navigator.sendBeacon('https://c.t.example/beacon-blob', new Blob(['x']));
fetch('https://c.t.example/stream', {method:'POST', body: new ReadableStream({start: function (c) { c.enqueue(new Uint8Array([65])); c.close(); }}), duplex: 'half'}).catch(function () {});
fetch('https://c.t.example/no-cors', {method:'POST', body:'n', mode:'no-cors'});
fetch('https://c.t.example/referrer', {method:'POST', body:'r', referrer: ''});
fetch('https://c.t.example/configured', {method:'POST', body:'c'}).then(function (r) { return r.text(); }).then(function (t) { navigator.sendBeacon('https://c.t.example/configured-said?' + encodeURIComponent(t)); });
fetch('https://shop.example/answer-same').then(function (r) { navigator.sendBeacon('https://c.t.example/answered-same?' + r.type); });
fetch('https://c.t.example/big-keepalive', {method:'POST', body: new Uint8Array(70000), keepalive: true}).catch(function (e) { navigator.sendBeacon('https://c.t.example/big-refused?' + e.name); });
fetch('https://c.t.example/answer').then(function (r) { return r.json().then(function (j) { navigator.sendBeacon('https://c.t.example/answered?' + [r.status, r.ok, r.type, r.url, typeof j].join(',')); }); });
</script>`;

const PARTNER: PartnerConfigInput = {
  id: 'p',
  html: MATRIX,
  captureHosts: ['c.t.example', '127.0.0.1:9', 'shop.example'],
  responses: [{ url: 'https://c.t.example/configured', status: 200, contentType: 'text/plain', body: 'from-config' }],
};

/** A record without what differs per run: its time, and a multipart body's random boundary. */
function comparable(r: CapturedRequest): Record<string, unknown> {
  const boundary = (s: string): string => s.replace(/WebKitFormBoundary\w+/g, 'B');
  return {
    ...r,
    at: 0,
    body: r.body === null ? null : boundary(r.body),
    headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, boundary(v)])),
  };
}

interface Run {
  results: ExecuteResult[];
  /** tagstream_executor_in_page_captures_total of the run. */
  taken: number;
}

async function run(inPageCapture: boolean, partners: PartnerConfigInput[], views = 1): Promise<Run> {
  const registry = new Registry();
  const ex: Executor = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true, inPageCapture, registry });
  try {
    const results: ExecuteResult[] = [];
    for (let i = 0; i < views; i++) results.push(await ex.execute(makeEvent(), null, partners));
    const metric = await registry.getSingleMetric('tagstream_executor_in_page_captures_total')?.get();
    return { results, taken: (metric?.values ?? []).reduce((n, v) => n + v.value, 0) };
  } finally {
    await ex.close();
  }
}

describe('executor: in-page capture of fetch and sendBeacon', function () {
  this.timeout(120_000);
  let srv: FixtureServer;
  before(async () => {
    srv = await startFixtureServer();
  });
  after(async () => {
    await srv?.close();
  });

  it('captures every kind of fetch and beacon exactly as Chromium sends it', async () => {
    const [netRun, pageRun] = await Promise.all([run(false, [PARTNER]), run(true, [PARTNER])]);
    const off = netRun.results[0]?.requests ?? [];
    const on = pageRun.results[0]?.requests ?? [];
    // Taken in the page: all but the stream, no-cors, referrer and configured sends (and the
    // Request object cases count too); none with the option off.
    expect(netRun.taken).to.equal(0);
    expect(pageRun.taken).to.be.greaterThan(40);
    const byUrl = (rs: CapturedRequest[]) => new Map(rs.map((r) => [r.url, comparable(r)]));
    const a = byUrl(off);
    const b = byUrl(on);
    // Every send of the matrix, once (the stream body is Chromium's to refuse over HTTP/1.1).
    expect(off.length).to.equal(a.size);
    expect(off.length).to.be.greaterThan(45);
    expect([...b.keys()].sort()).to.deep.equal([...a.keys()].sort());
    for (const [url, rec] of a) {
      const mine = b.get(url) as Record<string, unknown> & { headers: Record<string, string> };
      if (url.endsWith('/request') || url.endsWith('/request-get')) {
        // The one difference: a Request object's header names in lower case (the page cannot
        // read their spelling; HTTP names are case-insensitive).
        const lower = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
        expect({ ...mine, headers: lower(mine.headers) }, url).to.deep.equal({ ...rec, headers: lower((rec as typeof mine).headers) });
      } else {
        expect(mine, url).to.deep.equal(rec);
      }
    }
    // The page saw the answers a tag expects: the configured one for its URL, the default JSON.
    expect(on.map((r) => r.url)).to.include('https://c.t.example/configured-said?from-config');
    // …and read it as the browser's answer (status, ok, type, url): the same record both ways above.
    expect(on.map((r) => r.url)).to.include('https://c.t.example/answered?200,true,cors,https://c.t.example/answer,object');
    expect(on.map((r) => r.url)).to.include('https://c.t.example/answered-same?basic');
  });

  it('gives three real SDKs the same requests either way, every tracker ok', async () => {
    const sdks = loadSdks();
    srv.routes.push((req, res) => {
      const sdk = sdks.find((x) => x.path === req.url);
      if (!sdk) return false;
      res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'access-control-allow-origin': '*' }).end(sdk.body);
      return true;
    });
    const partners = demoPartners(srv.origin).filter((p) => p.id !== 'pixel');
    const shape = (rs: CapturedRequest[]) => rs.map((r) => `${r.partner} ${r.transport} ${r.method} ${r.url.replace(/[?#].*/, '')}`).sort();
    const [netRun, pageRun] = await Promise.all([run(false, partners, 3), run(true, partners, 3)]);
    // Snowplow's, Plausible's and most of PostHog's sends (7 of 9 per view) were taken in the page.
    expect(pageRun.taken).to.be.at.least(18);
    for (const r of [...netRun.results, ...pageRun.results]) expect(r.trackers.map((t) => `${t.partner}:${t.status}`)).to.deep.equal(['snowplow:ok', 'posthog:ok', 'plausible:ok']);
    for (let i = 1; i < 3; i++) {
      const a = netRun.results[i]?.requests ?? [];
      const b = pageRun.results[i]?.requests ?? [];
      expect(shape(b), `view ${i}`).to.deep.equal(shape(a));
      // Header values are the browser's in both (names compared case-insensitively: Snowplow
      // sends a Request object). Content-Type aside: PostHog picks the encoding of each batch
      // (gzip as text/plain, or base64 as a form) by when its sends happen, either way.
      const headers = (rs: CapturedRequest[]) =>
        rs.map((r) => JSON.stringify(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]).filter(([k]) => k !== 'content-type').sort())).sort();
      expect(headers(b), `view ${i}`).to.deep.equal(headers(a));
    }
  });

  it('applies each referrer policy as Chromium does (the rule behind the records above)', () => {
    const page = new URL('https://shop.example/p/42?utm=x#top');
    const cross = new URL('https://c.t.example/e');
    const insecure = new URL('http://127.0.0.1:9/e');
    const same = new URL('https://shop.example/e');
    expect(refererFor(page, cross, '')).to.equal('https://shop.example/');
    expect(refererFor(page, insecure, '')).to.equal(null);
    expect(refererFor(page, same, '')).to.equal('https://shop.example/p/42?utm=x');
    expect(refererFor(page, insecure, 'origin')).to.equal('https://shop.example/');
    expect(refererFor(page, cross, 'unsafe-url')).to.equal('https://shop.example/p/42?utm=x');
    expect(refererFor(page, cross, 'same-origin')).to.equal(null);
    expect(refererFor(page, cross, 'no-referrer')).to.equal(null);
  });
});
