import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { request } from 'undici';
import { startMetricsServer } from '../../runtime/metrics-server.ts';
import { freePort } from '../../runtime/kafka-local/broker.ts';

async function get(url: string): Promise<{ status: number; body: string; type: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text(), type: String(res.headers['content-type'] ?? '') };
}

describe('metrics endpoint (runtime/metrics-server.ts)', function () {
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

  it('`run` on the embedded broker exposes runner and executor metrics, and stops on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', '--partners', 'examples/partners.example.json'], {
      env: { ...process.env, KAFKA_BROKERS: '', METRICS_HOST: '127.0.0.1', METRICS_PORT: String(port), STATE_STORE: 'memory', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      let body = '';
      const deadline = Date.now() + 45_000;
      while (Date.now() < deadline) {
        try {
          const res = await get(`http://127.0.0.1:${port}/metrics`);
          if (res.status === 200 && /tagstream_runner_/.test(res.body)) {
            body = res.body;
            break;
          }
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(body, `no metrics; stderr: ${stderr.slice(-500)}`).to.match(/^tagstream_runner_in_flight[ {]/m);
      expect(body).to.match(/tagstream_executor_/);
      expect(body).to.match(/^nodejs_eventloop_lag_seconds /m);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr.slice(-500)).to.equal(0);
  });
});
