/**
 * The process's one HTTP endpoint (DESIGN.md "The first-party tag and the collector"): every role
 * of a `run` process is behind it.
 *
 * - GET /health  → 200 {"status":"ok"} as long as the event loop answers (liveness: restart me if not);
 * - GET /ready   → 200 {"status":"ready"} when `readiness()` says so, else
 *                  503 {"status":"not-ready","reasons":[…]} (a load balancer routes only to ready ones);
 * - GET /metrics → the prom-client registry in Prometheus text format, process metrics included.
 *
 * node:http is enough for three routes; the collector will register its own routes on its own port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { MetricsListenError } from '../../core/errors.ts';
import { READY, type HttpRoute, type Readiness } from '../roles/role.ts';
import { collectNodeDefaults } from '../metrics/registry.ts';

export interface HttpServerOptions {
  host: string;
  /** 0 = a free port (tests); the bound one is in `address`. */
  port: number;
  /** What GET /ready reports; called on every probe, so it must be cheap. Default: always ready. */
  readiness?: () => Readiness;
  /** Further GET routes by path prefix (a role's, e.g. the processor's /jars/ when couchbase.httpReads is on). */
  routes?: readonly HttpRoute[];
}

export interface HttpServer {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startHttpServer(registry: Registry, options: HttpServerOptions): Promise<HttpServer> {
  // Process metrics (CPU, memory, event-loop lag, GC) beside the product's: the dashboards need both.
  // Once per registry: a second collectDefaultMetrics on the same registry throws (duplicate names).
  collectNodeDefaults(registry);
  const readiness = options.readiness ?? (() => READY);
  const server: Server = createServer((req, res) => route(req, res, registry, readiness, options.routes ?? []));
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new MetricsListenError(options.host, options.port, err.code ?? err.message)));
    server.listen(options.port, options.host, () => resolveListen());
  });
  const bound = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      (closing ??= new Promise<void>((resolveClose) => {
        // Probes and scrapes keep connections alive: without this, close() would wait for their timeout.
        server.closeAllConnections();
        server.close(() => resolveClose());
      })),
  };
}

function route(req: IncomingMessage, res: ServerResponse, registry: Registry, readiness: () => Readiness, routes: readonly HttpRoute[]): void {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const head = req.method === 'HEAD';
  switch (path) {
    case '/metrics':
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(head ? undefined : text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics collection failed: ${String(err)}\n`),
      );
      return;
    case '/health':
      json(res, 200, { status: 'ok' }, head);
      return;
    case '/ready': {
      const state = safeReadiness(readiness);
      if (state.ready) json(res, 200, { status: 'ready' }, head);
      else json(res, 503, { status: 'not-ready', reasons: state.reasons }, head);
      return;
    }
    default: {
      const extra = routes.find((r) => path?.startsWith(r.prefix));
      if (extra !== undefined && path !== undefined) {
        extra.handle(req, res, path.slice(extra.prefix.length));
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: /health, /ready and /metrics are served\n');
    }
  }
}

/** A check that throws must turn into "not ready" with its reason, not into a dropped connection. */
function safeReadiness(readiness: () => Readiness): Readiness {
  try {
    return readiness();
  } catch (error) {
    return { ready: false, reasons: [`readiness check failed: ${error instanceof Error ? error.message : String(error)}`] };
  }
}

function json(res: ServerResponse, status: number, body: Record<string, unknown>, head: boolean): void {
  // Probes must see the state of now, never a cached answer from a proxy.
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(head ? undefined : JSON.stringify(body) + '\n');
}
