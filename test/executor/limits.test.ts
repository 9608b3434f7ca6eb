import { expect } from 'chai';
import { createExecutor, type Executor } from '../../processors/executor/index.ts';
import { makeEvent, one } from './helpers.ts';

describe('executor: closed limitations', function () {
  this.timeout(60_000);
  let ex: Executor;

  before(async () => {
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1 });
  });
  after(async () => {
    await ex?.close();
  });

  it('reports fetch() from a worker as fetch and XHR from a worker as xhr', async () => {
    const worker =
      "fetch('https://collect.w.example/w-fetch',{method:'POST',body:'f=1'});" +
      "var x=new XMLHttpRequest();x.open('POST','https://collect.w.example/w-xhr');x.send('x=1');";
    const html = `<script>new Worker(URL.createObjectURL(new Blob([${JSON.stringify(worker)}],{type:'text/javascript'})))</script>`;
    const r = await ex.execute(makeEvent(), null, [{ id: 'pw', html, allowHosts: [], captureHosts: ['collect.w.example'] }]);
    expect(one(r.requests, '/w-fetch')).to.include({ partner: 'pw', transport: 'fetch', body: 'f=1' });
    expect(one(r.requests, '/w-xhr')).to.include({ partner: 'pw', transport: 'xhr', body: 'x=1' });
  });
});
