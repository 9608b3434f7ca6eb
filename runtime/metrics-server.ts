/**
 * The Prometheus endpoint of a `run` process: GET /metrics (prom-client's text format, every
 * component registers on the same registry) and GET /health. Nothing else is served.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { MetricsListenError } from '../core/errors.ts';

export interface MetricsServer {
  /** The bound address (the port is the real one when 0 was asked for in tests). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

const defaultsCollected = new WeakSet<Registry>();

export async function startMetricsServer(registry: Registry, options: { host: string; port: number }): Promise<MetricsServer> {
  // Process metrics (CPU, memory, event-loop lag, GC) beside the product's: the dashboards need both.
  if (!defaultsCollected.has(registry)) {
    collectDefaultMetrics({ register: registry });
    defaultsCollected.add(registry);
  }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${String(err)}\n`);
        },
      );
      return;
    }
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /metrics and /health are served\n');
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MetricsListenError(options.host, options.port, err.code ?? err.message),
      ),
    );
    server.listen(options.port, options.host, () => resolveListen());
  });
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}
