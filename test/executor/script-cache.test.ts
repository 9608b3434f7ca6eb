import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { EgressDeniedError, ScriptCache } from '../../processors/executor/index.ts';
import { startFixtureServer, type FixtureServer } from './helpers.ts';

describe('executor script cache', () => {
  let srv: FixtureServer;
  let body = 'console.log(1)';
  let conditional = 0;
  before(async () => {
    srv = await startFixtureServer();
    srv.routes.push((req, res) => {
      if (req.url !== '/p.js') return false;
      const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
      if (req.headers['if-none-match'] === etag) {
        conditional++;
        res.writeHead(304, { etag }).end();
        return true;
      }
      res.writeHead(200, { etag, 'content-type': 'application/javascript', 'set-cookie': 'cdn=1' }).end(body);
      return true;
    });
  });
  after(async () => {
    await srv?.close();
  });

  it('fetches once, revalidates with ETag after the TTL, records each version hash and counts changes', async () => {
    const cache = new ScriptCache({ allowPrivateNetwork: true, ttlMs: 50 });
    try {
      const url = `${srv.origin}/p.js`;
      const a = await cache.get(url);
      expect(a).to.include({ status: 200, fromCache: false });
      expect(a.body.toString()).to.equal(body);
      expect(a.headers['set-cookie']).to.equal(undefined);
      const [b, c] = await Promise.all([cache.get(url), cache.get(url)]);
      expect(b?.fromCache && c?.fromCache).to.equal(true);
      expect(srv.hits.filter((h) => h.url === '/p.js')).to.have.length(1);

      await new Promise((r) => setTimeout(r, 80));
      const d = await cache.get(url);
      expect(d.fromCache).to.equal(true);
      expect(conditional).to.equal(1);
      expect(cache.stats.revalidated).to.equal(1);

      body = 'console.log(2)';
      await new Promise((r) => setTimeout(r, 80));
      const e = await cache.get(url);
      expect(e.body.toString()).to.equal(body);
      expect(cache.stats.changed).to.equal(1);
      const versions = cache.versions(url);
      expect(versions.map((v) => v.sha256)).to.deep.equal([
        createHash('sha256').update('console.log(1)').digest('hex'),
        createHash('sha256').update('console.log(2)').digest('hex'),
      ]);
    } finally {
      await cache.close();
    }
  });

  it('refuses loopback targets unless private networks are allowed', async () => {
    const cache = new ScriptCache({ allowPrivateNetwork: false });
    try {
      let err: unknown;
      await cache.get(`${srv.origin}/p.js`).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(EgressDeniedError);
      err = undefined;
      await cache.get(`http://localhost:${new URL(srv.origin).port}/p.js`).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(EgressDeniedError);
    } finally {
      await cache.close();
    }
  });
});
