import { expect } from 'chai';
import { createExecutor, type Executor } from '../../processors/executor/index.ts';
import { byPath, makeEvent, one } from './helpers.ts';

// Each beacon names the event, whether the browser fired it, its rank and the page's visibility.
const PROBE =
  "<script>var i=0;function b(n,e){navigator.sendBeacon('https://collect.probe.example/'+n+'-trusted'+e.isTrusted+" +
  "'?i='+(++i)+'&v='+document.visibilityState+(e.persisted!==undefined?'&p='+e.persisted:''),'x')}\n" +
  "document.addEventListener('visibilitychange',function(e){b('vis-'+document.visibilityState,e)});\n" +
  "document.addEventListener('freeze',function(e){b('freeze',e)});\n" +
  "['load','beforeunload','pagehide','unload'].forEach(function(n){window.addEventListener(n,function(e){b(n,e)})});\n" +
  "window.addEventListener('unload',function(){fetch('https://collect.probe.example/unload-keepalive',{method:'POST',body:'k',keepalive:true})});</script>";

// Batches until the page is left, and flushes only on a hidden visibilitychange the browser fired.
const TRUSTED_BATCHER =
  "<script>var q=['view'];setTimeout(function(){q.push('scrolled')},2000);\n" +
  "document.addEventListener('visibilitychange',function(e){if(!e.isTrusted||document.visibilityState!=='hidden')return;" +
  "navigator.sendBeacon('https://rum.probe.example/batch',JSON.stringify(q));q=[]});</script>";

// Leaves state while going away: localStorage on pagehide, a cookie on unload.
const LEAVER =
  "<script>addEventListener('pagehide',function(){localStorage.setItem('left','yes');sessionStorage.setItem('s','1')});\n" +
  "addEventListener('unload',function(){document.cookie='bye=1; path=/; max-age=3600'});</script>";

// What the next visitor of the same tab sees at its start.
const READER =
  "<script>navigator.sendBeacon('https://collect.probe.example/seen',JSON.stringify({vis:document.visibilityState," +
  "hidden:document.hidden,focus:document.hasFocus(),ls:Object.keys(localStorage),ss:Object.keys(sessionStorage),cookie:document.cookie," +
  "binding:'__tagstream_leave' in window,history:history.length}))</script>";

describe('executor: the end of a page run is a closing tab', function () {
  this.timeout(60_000);
  let ex: Executor;
  before(async () => {
    // One tab: consecutive events reuse it.
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, trustedClose: true });
  });
  after(async () => {
    await ex?.close();
  });

  it('fires beforeunload, visibilitychange (hidden), pagehide and unload, trusted and in order, and captures what each sends', async () => {
    const r = await ex.execute(makeEvent(), null, [{ id: 'probe', html: PROBE, captureHosts: ['collect.probe.example'] }]);
    const beacons = r.requests
      .filter((q) => q.transport === 'beacon')
      .map((q) => new URL(q.url))
      .sort((a, b) => Number(a.searchParams.get('i')) - Number(b.searchParams.get('i')));
    expect(beacons.map((u) => u.pathname)).to.deep.equal([
      '/load-trustedtrue',
      '/beforeunload-trustedtrue',
      '/vis-hidden-trustedtrue',
      '/pagehide-trustedtrue',
      '/unload-trustedtrue',
    ]);
    expect(beacons.map((u) => u.searchParams.get('v'))).to.deep.equal(['visible', 'visible', 'hidden', 'hidden', 'hidden']);
    expect(beacons[3]?.searchParams.get('p')).to.equal('false');
    // A closed tab is not frozen first (freeze is for kept pages: bfcache, background discard).
    expect(r.requests.filter((q) => q.url.includes('/freeze'))).to.have.length(0);
    expect(one(r.requests, '/unload-keepalive')).to.include({ partner: 'probe', transport: 'fetch', body: 'k' });
    expect(r.requests.every((q) => q.partner === 'probe')).to.equal(true);
    expect(r.trackers[0]?.status).to.equal('ok');
  });

  it('captures the batch of a tag that flushes only on a trusted hidden visibilitychange', async () => {
    const r = await ex.execute(makeEvent(), null, [{ id: 'rum', html: TRUSTED_BATCHER, captureHosts: ['rum.probe.example'] }]);
    expect(one(r.requests, '/batch')).to.include({ partner: 'rum', transport: 'beacon', body: '["view","scrolled"]' });
  });

  it('keeps what the page writes while it goes away, and hands the next visitor a clean, visible tab', async () => {
    const host = { captureHosts: ['collect.probe.example'] };
    for (let i = 0; i < 2; i++) {
      const a = await ex.execute(makeEvent(), null, [{ id: 'leaver', html: LEAVER }]);
      expect(a.jar.localStorage['https://shop.example']).to.deep.equal({ left: 'yes' });
      expect(a.jar.cookies.map((c) => c.name)).to.deep.equal(['bye']);
      const b = await ex.execute(makeEvent(), null, [{ id: 'reader', html: READER, ...host }]);
      expect(JSON.parse(one(b.requests, '/seen').body ?? '{}')).to.deep.equal({
        vis: 'visible',
        hidden: false,
        focus: true,
        ls: [],
        ss: [],
        cookie: '',
        binding: false,
        history: 2,
      });
      expect(byPath(b.requests, '/seen')).to.have.length(1);
      expect(b.jar).to.deep.equal({ cookies: [], localStorage: {} });
    }
    expect(ex.stats().browsers).to.equal(1);
  });
});
