import { expect } from 'chai';
import { createExecutor, type Executor } from '../../processors/executor/index.ts';
import { makeEvent, one, startFixtureServer, type FixtureServer } from './helpers.ts';

describe('executor: closed limitations', function () {
  this.timeout(60_000);
  let ex: Executor;
  let srv: FixtureServer;

  before(async () => {
    srv = await startFixtureServer();
    // A partner frame: keeps its own visitor id in its (third-party) localStorage and sends it.
    srv.routes.push((req, res) => {
      if (!req.url?.startsWith('/frame.html')) return false;
      res.writeHead(200, { 'content-type': 'text/html' }).end(
        "<script>var id=localStorage.getItem('fid');if(!id){id='F'+Math.random().toString(36).slice(2);" +
          "localStorage.setItem('fid',id)}new Image().src='https://collect.f.example/fid?id='+id</script>",
      );
      return true;
    });
    // One tab: every visit below goes through the same pooled tab.
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true });
  });
  after(async () => {
    await ex?.close();
    await srv?.close();
  });

  it('reports fetch() from a worker as fetch and XHR from a worker as xhr', async () => {
    const worker =
      "fetch('https://collect.w.example/w-fetch?hc='+navigator.hardwareConcurrency+'&dm='+navigator.deviceMemory,{method:'POST',body:'f=1'});" +
      "var x=new XMLHttpRequest();x.open('POST','https://collect.w.example/w-xhr');x.send('x=1');";
    const html = `<script>new Worker(URL.createObjectURL(new Blob([${JSON.stringify(worker)}],{type:'text/javascript'})))</script>`;
    const r = await ex.execute(makeEvent(), null, [{ id: 'pw', html, allowHosts: [], captureHosts: ['collect.w.example'] }]);
    expect(one(r.requests, '/w-fetch')).to.include({ partner: 'pw', transport: 'fetch', body: 'f=1' });
    expect(one(r.requests, '/w-xhr')).to.include({ partner: 'pw', transport: 'xhr', body: 'x=1' });
    // The worker's navigator is the visitor's too (defaults for a desktop Chrome user agent).
    expect(one(r.requests, '/w-fetch').url).to.match(/\?hc=8&dm=8$/);
  });

  it('captures and restores a partner iframe\'s own localStorage by origin; the next visitor does not see it', async () => {
    const partners = [
      { id: 'pf', html: `<iframe src="${srv.origin}/frame.html"></iframe>`, allowHosts: [srv.host], captureHosts: ['collect.f.example'] },
    ];
    const fid = (r: { requests: readonly { url: string }[] }) => new URL(one(r.requests as never, '/fid').url).searchParams.get('id');
    const r1 = await ex.execute(makeEvent({ userId: 'u-frame' }), null, partners);
    const id1 = fid(r1);
    expect(id1).to.match(/^F/);
    expect(r1.jar.localStorage[srv.origin]).to.deep.equal({ fid: id1 });
    const r2 = await ex.execute(makeEvent({ userId: 'u-frame' }), r1.jar, partners);
    expect(fid(r2)).to.equal(id1);
    expect(r2.jar.localStorage[srv.origin]).to.deep.equal({ fid: id1 });
    const r3 = await ex.execute(makeEvent({ userId: 'u-other' }), null, partners);
    expect(fid(r3)).to.match(/^F/).and.not.equal(id1);
    expect(r3.jar.localStorage[srv.origin]).to.deep.equal({ fid: fid(r3) });
    // A fresh tab of another pool (as on another processor) gives the id back too.
    const ex2 = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true });
    try {
      const r4 = await ex2.execute(makeEvent({ userId: 'u-frame' }), r2.jar, partners);
      expect(fid(r4)).to.equal(id1);
    } finally {
      await ex2.close();
    }
  });

  it('keeps a removed partner frame\'s localStorage on a site whose storage partition it has not learned (github.io)', async () => {
    // The iframe removes itself once loaded: Chromium cannot be asked for its storage key, and
    // `shop.github.io` is its own site (github.io is a public suffix): the two-label guess is wrong.
    const html =
      `<script>var f=document.createElement('iframe');f.src=${JSON.stringify(`${srv.origin}/frame.html`)};` +
      `f.onload=function(){f.remove()};document.body.appendChild(f)</script>`;
    const partners = [{ id: 'pf', html, allowHosts: [srv.host], captureHosts: ['collect.f.example'] }];
    const page = { url: 'https://shop.github.io/p/1', referrer: '', title: 'p' };
    const fid = (r: { requests: readonly { url: string }[] }) => new URL(one(r.requests as never, '/fid').url).searchParams.get('id');
    const r1 = await ex.execute(makeEvent({ page }), null, partners);
    const id1 = fid(r1);
    expect(r1.jar.localStorage[srv.origin]).to.deep.equal({ fid: id1 });
    const r2 = await ex.execute(makeEvent({ page }), r1.jar, partners);
    expect(fid(r2)).to.equal(id1);
    const r3 = await ex.execute(makeEvent({ page }), null, partners);
    expect(fid(r3)).to.match(/^F/).and.not.equal(id1);
  });
});
