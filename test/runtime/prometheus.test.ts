/**
 * A real Prometheus server (Debian's package) scrapes the product's metrics endpoint on 127.0.0.1:
 * the format is what Prometheus accepts, not only what prom-client prints, with the process
 * registry `run` creates (Node defaults included). Every dashboard query and alert on a running
 * product: test/ops/prometheus-queries.test.ts.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter } from 'prom-client';
import { request } from 'undici';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { startHttpServer as startMetricsServer, type HttpServer as MetricsServer } from '../../runtime/http/server.ts';
import { createProcessRegistry } from '../../runtime/metrics/registry.ts';

interface QueryResult {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe('Prometheus scrapes the metrics endpoint', function () {
  this.timeout(60_000);
  let dir = '';
  let prometheus: ChildProcess | undefined;
  let server: MetricsServer | undefined;

  after(async () => {
    prometheus?.kill('SIGKILL');
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('up == 1 and the product\'s series are stored, the Node defaults with them', async () => {
    const registry = createProcessRegistry();
    new Counter({ name: 'tagstream_scrape_probe_total', help: 'probe', labelNames: ['role'], registers: [registry] }).inc({ role: 'processor' }, 5);
    server = await startMetricsServer(registry, { host: '127.0.0.1', port: 0 });
    dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tagstream\n    static_configs:\n      - targets: ['127.0.0.1:${server.address.port}']\n`,
    );
    const webPort = await freePort();
    prometheus = spawn(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    prometheus.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-2000)));

    const query = async (q: string): Promise<QueryResult | undefined> => {
      try {
        const res = await request(`http://127.0.0.1:${webPort}/api/v1/query?query=${encodeURIComponent(q)}`);
        return res.statusCode === 200 ? ((await res.body.json()) as QueryResult) : undefined;
      } catch {
        return undefined;
      }
    };
    let up: QueryResult | undefined;
    let probe: QueryResult | undefined;
    let lag: QueryResult | undefined;
    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline) {
      up = await query('up{job="tagstream"}');
      probe = await query('tagstream_scrape_probe_total');
      lag = await query('nodejs_eventloop_lag_p99_seconds');
      if (up?.data.result[0]?.value[1] === '1' && probe?.data.result.length && lag?.data.result.length) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(up?.data.result[0]?.value[1], `prometheus log: ${log}`).to.equal('1');
    expect(probe?.data.result[0]?.metric.role).to.equal('processor');
    expect(probe?.data.result[0]?.value[1]).to.equal('5');
    expect(Number(lag?.data.result[0]?.value[1])).to.be.at.least(0);
  });
});
