import { expect } from 'chai';
import { createServer } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { request } from 'undici';
import { startHttpServer as startMetricsServer } from '../../runtime/http/server.ts';
import type { Readiness } from '../../runtime/roles/role.ts';

async function get(url: string): Promise<{ status: number; body: string; type: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text(), type: String(res.headers['content-type'] ?? '') };
}

describe('HTTP endpoint (runtime/http/server.ts)', function () {
  this.timeout(60_000);

  it('serves the registry in Prometheus text format with process metrics, and /health', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'tagstream_test_things_total', help: 'things', registers: [registry] });
    c.inc(3);
    const server = await startMetricsServer(registry, { host: '127.0.0.1', port: 0 });
    try {
      const base = `http://127.0.0.1:${server.address.port}`;
      const metrics = await get(`${base}/metrics`);
      expect(metrics.status).to.equal(200);
      expect(metrics.type).to.match(/^text\/plain; version=0\.0\.4/);
      expect(metrics.body).to.match(/^tagstream_test_things_total 3$/m);
      expect(metrics.body).to.match(/^process_cpu_user_seconds_total /m);
      expect((await get(`${base}/health`)).status).to.equal(200);
      expect((await get(`${base}/other`)).status).to.equal(404);
    } finally {
      await server.close();
    }
  });

  it('a port already in use is a clear error naming the setting', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await startMetricsServer(new Registry(), { host: '127.0.0.1', port }).then(
        () => expect.fail('should not listen'),
        (err: { code: string; message: string }) => {
          expect(err.code).to.equal('ERR_METRICS_LISTEN');
          expect(err.message).to.match(/EADDRINUSE.*METRICS_PORT/);
        },
      );
    } finally {
      blocker.close();
    }
  });

  it('/ready: 200 {"status":"ready"} when the check is ready, 503 with its reasons otherwise; HEAD has no body', async () => {
    let state: Readiness = { ready: false, reasons: ['processor: 2 of 6 partitions restoring', 'kafka: broker unreachable (ECONNREFUSED)'] };
    const server = await startMetricsServer(new Registry(), { host: '127.0.0.1', port: 0, readiness: () => state });
    try {
      const base = `http://127.0.0.1:${server.address.port}`;
      const notReady = await get(`${base}/ready`);
      expect(notReady.status).to.equal(503);
      expect(notReady.type).to.equal('application/json');
      expect(JSON.parse(notReady.body)).to.deep.equal({ status: 'not-ready', reasons: state.reasons });
      state = { ready: true, reasons: [] };
      const ready = await get(`${base}/ready`);
      expect(ready.status).to.equal(200);
      expect(JSON.parse(ready.body)).to.deep.equal({ status: 'ready' });
      const health = await get(`${base}/health`);
      expect(JSON.parse(health.body)).to.deep.equal({ status: 'ok' });
      const head = await request(`${base}/ready`, { method: 'HEAD' });
      expect(head.statusCode).to.equal(200);
      expect(await head.body.text()).to.equal('');
      const post = await request(`${base}/ready`, { method: 'POST' });
      await post.body.dump();
      expect(post.statusCode).to.equal(405);
    } finally {
      await server.close();
    }
  });

  it('/ready: a check that throws is "not ready" with the error as reason, not a dropped connection', async () => {
    const server = await startMetricsServer(new Registry(), {
      host: '127.0.0.1',
      port: 0,
      readiness: () => {
        throw new Error('boom');
      },
    });
    try {
      const res = await get(`http://127.0.0.1:${server.address.port}/ready`);
      expect(res.status).to.equal(503);
      expect(JSON.parse(res.body)).to.deep.equal({ status: 'not-ready', reasons: ['readiness check failed: boom'] });
    } finally {
      await server.close();
    }
  });

  it('without a readiness check /ready is 200 (an endpoint of metrics only)', async () => {
    const server = await startMetricsServer(new Registry(), { host: '127.0.0.1', port: 0 });
    try {
      expect((await get(`http://127.0.0.1:${server.address.port}/ready`)).status).to.equal(200);
    } finally {
      await server.close();
    }
  });
});
