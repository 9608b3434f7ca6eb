/**
 * A pooled tab's next visit navigates away from the previous visitor's document, and that
 * commit fires the old document's real `pagehide`/`unload`: what the previous visitor's tags send
 * then must not be captured in the next visitor's run (it would be delivered with the next
 * visitor's IP and user agent). Found with PostHog, whose `$pageleave` of view N turned up in
 * view N+1 (2026-12-02).
 */
import { expect } from 'chai';
import { createExecutor, type Executor } from '../../processors/executor/index.ts';
import { makeEvent } from './helpers.ts';

// Every way to send, from every unload of the page, each naming the page it came from.
const LEAVER =
  '<script>function all(n){var p=encodeURIComponent(location.pathname);' +
  "navigator.sendBeacon('https://c.leave.example/b-'+n+'?from='+p,'x');" +
  "fetch('https://c.leave.example/f-'+n+'?from='+p,{method:'POST',body:'x',keepalive:true});" +
  "var x=new XMLHttpRequest();x.open('POST','https://c.leave.example/x-'+n+'?from='+p);x.send('x');" +
  "new Image().src='https://c.leave.example/i-'+n+'?from='+p}\n" +
  "addEventListener('pagehide',function(){all('pagehide')});addEventListener('unload',function(){all('unload')});</script>";

describe('executor: the next visitor of a pooled tab', function () {
  this.timeout(60_000);
  for (const inPageCapture of [true, false]) {
    describe(`in-page capture ${inPageCapture ? 'on' : 'off'}`, () => {
      let ex: Executor;
      before(async () => {
        // One tab: consecutive events reuse it.
        ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, inPageCapture });
      });
      after(async () => {
        await ex?.close();
      });

      it("gets none of what the previous visitor's page sends when the tab navigates away from it", async () => {
        for (let i = 0; i < 3; i++) {
          const ev = makeEvent();
          ev.page.url = `https://shop.example/view-${i}`;
          const r = await ex.execute(ev, null, [{ id: 'p', html: LEAVER, captureHosts: ['c.leave.example'] }]);
          const from = r.requests.map((q) => new URL(q.url).searchParams.get('from'));
          expect(from.length, `view ${i}`).to.be.greaterThan(0);
          expect([...new Set(from)], `view ${i}: sent from`).to.deep.equal([`/view-${i}`]);
          // This view's own leave sends are there (the dispatched pagehide and unload).
          expect(r.requests.map((q) => new URL(q.url).pathname).sort(), `view ${i}`).to.include.members(['/b-pagehide', '/f-pagehide', '/b-unload']);
        }
      });
    });
  }
});
