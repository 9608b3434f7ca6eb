/**
 * The real sender (undici) against a fake partner on 127.0.0.1: DISPATCHER_RESOLVE routing with
 * TLS verified by the partner's name, and the egress policy (processors/executor/egress.ts) on
 * what would be connected to. Only loopback is ever contacted; a refused case must reach nobody.
 */
import { expect } from 'chai';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { guardedLookup } from '../../processors/executor/egress.ts';
import { createSender, isNetworkError, parseResolve } from '../../processors/dispatcher/index.ts';
import { fakePartner, makeCert, type FakePartner, type TestCert } from './helpers.ts';

const NAME = 'collect.partner-a.example';

describe('dispatcher: sender, DISPATCHER_RESOLVE and the egress policy', function () {
  this.timeout(20_000);
  let cert: TestCert;
  let server: FakePartner;
  before(async () => {
    cert = makeCert([NAME]);
    server = await fakePartner(cert, () => ({ status: 200, headers: { 'set-cookie': ['a=1; Secure', 'b=2'] } }));
  });
  after(() => server.close());

  const get = (url: string) => ({ method: 'GET', url, headers: {}, body: undefined, timeoutMs: 2_000 });

  it('routes host:port to 127.0.0.1 and verifies the certificate against the host name', async () => {
    const sender = createSender({ allowPrivateNetwork: true, resolve: parseResolve(`${NAME}:443=127.0.0.1:${server.port}`), ca: cert.cert });
    try {
      const res = await sender.send(get(`https://${NAME}/hit?k=1`));
      expect(res.status).to.equal(200);
      expect(res.setCookie).to.deep.equal(['a=1; Secure', 'b=2']);
      expect(server.hits.at(-1)?.host).to.equal(NAME);
    } finally {
      await sender.close();
    }
  });

  it('a name the certificate does not cover fails TLS (a network error, retried as transient)', async () => {
    const before = server.hits.length;
    const sender = createSender({ allowPrivateNetwork: true, resolve: parseResolve(`other.partner.example:443=127.0.0.1:${server.port}`), ca: cert.cert });
    try {
      const error = await sender.send(get('https://other.partner.example/hit')).then(() => null, (e: unknown) => e);
      expect(isNetworkError(error), String(error)).to.equal(true);
      expect(server.hits.length).to.equal(before);
    } finally {
      await sender.close();
    }
  });

  it('without the allowance: 127.0.0.1, a resolve entry to loopback, *.localhost and a name resolving to loopback are refused before connecting', async () => {
    const before = server.hits.length;
    const sender = createSender({ allowPrivateNetwork: false, resolve: parseResolve(`${NAME}:443=127.0.0.1:${server.port}`), ca: cert.cert });
    try {
      const urls = [`https://127.0.0.1:${server.port}/x`, `https://${NAME}/x`, `https://partner.localhost:${server.port}/x`, `https://[::ffff:127.0.0.1]:${server.port}/x`];
      const local = hostname();
      const resolvesPrivately = await lookup(local).then((a) => a.address.startsWith('127.') || a.address === '::1', () => false);
      if (resolvesPrivately) urls.push(`https://${local}:${server.port}/x`);
      for (const url of urls) {
        const error = await sender.send(get(url)).then(() => null, (e: unknown) => e);
        expect((error as { code?: string } | null)?.code, url).to.equal('ERR_EGRESS_DENIED');
      }
      expect(server.hits.length, 'nothing reached the server').to.equal(before);
    } finally {
      await sender.close();
    }
  });

  it("the resolved-address check itself: guardedLookup refuses a name whose address is private", async function () {
    const local = hostname();
    const address = await lookup(local).then((a) => a.address, () => undefined);
    if (address === undefined || !(address.startsWith('127.') || address === '::1')) this.skip();
    const error = await new Promise<unknown>((resolve) => {
      guardedLookup({ allowPrivateNetwork: false })(local, {}, (err) => resolve(err));
    });
    expect((error as { code?: string }).code).to.equal('ERR_EGRESS_DENIED');
  });
});
