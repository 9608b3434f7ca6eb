/**
 * The whole way through, as an operator runs it on the embedded default: `run --allow-private-network`
 * (collector, processor, dispatcher in one process), a visitor's POST /collect, the partner's own tag
 * run in Chromium, its pixel captured, published, and delivered by the dispatcher to the partner — a
 * local HTTP server on 127.0.0.1 standing in for it — with the visitor's user agent.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { waitFor } from '../runner/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const VISITOR_UA = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';

describe('the pipeline end to end: run on the embedded default (collector → processor → dispatcher)', function () {
  this.timeout(120_000);

  it("a POST /collect reaches the partner: its tag runs, its pixel is delivered with the visitor's user agent", async () => {
    const hits: IncomingMessage[] = [];
    const partner: Server = createServer((req, res) => {
      hits.push(req);
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => partner.listen(0, '127.0.0.1', () => r()));
    const partnerPort = (partner.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'pipeline-'));
    const partners = join(dir, 'partners.json');
    writeFileSync(
      partners,
      JSON.stringify([
        {
          id: 'local-pixel',
          consent: 'analytics',
          captureHosts: [`127.0.0.1:${partnerPort}`],
          html: `<script>new Image().src='http://127.0.0.1:${partnerPort}/p?id=v1&page='+encodeURIComponent(location.pathname)</script>`,
          timeoutMs: 2000,
        },
      ]),
    );
    const metricsPort = await freePort();
    const collectorPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'runtime/cli/main.ts', 'run', '--partners', partners, '--allow-private-network'], {
      cwd: root,
      env: { ...process.env, KAFKA_BROKERS: '', METRICS_HOST: '127.0.0.1', METRICS_PORT: String(metricsPort), COLLECTOR_HOST: '127.0.0.1', COLLECTOR_PORT: String(collectorPort), STATE_STORE: 'memory', PARTNERS_FILE: '', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor('/ready 200', async () => {
        try {
          return (await request(`http://127.0.0.1:${metricsPort}/ready`)).statusCode === 200;
        } catch {
          return false;
        }
      }, 60_000, 200);
      const answer = await request(`http://127.0.0.1:${collectorPort}/collect`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'user-agent': VISITOR_UA },
        body: JSON.stringify({ page: { url: 'https://www.shop.example/p/42' }, consent: { analytics: true } }),
      });
      expect(answer.statusCode, await answer.body.text()).to.equal(204);
      await waitFor('the partner got its pixel', () => hits.length >= 1, 60_000, 100);
      expect(hits.map((h) => h.url)).to.deep.equal(['/p?id=v1&page=%2Fp%2F42']);
      expect(hits[0]?.headers['user-agent']).to.equal(VISITOR_UA);
      // Loopback, truncated (IPv4 /24) as `delivery.forwardIp` defaults.
      expect(hits[0]?.headers['x-forwarded-for']).to.equal('127.0.0.0');
      const metrics = await (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body.text();
      expect(metrics).to.match(/tagstream_dispatcher_requests_total\{partner="local-pixel",outcome="delivered"\} 1/);
    } finally {
      child.kill('SIGTERM');
      partner.closeAllConnections();
      partner.close();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await exited, stderr.slice(-1500)).to.equal(0);
  });
});
