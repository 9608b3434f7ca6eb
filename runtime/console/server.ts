/**
 * The console's web page and its JSON (DESIGN.md "The console"; docs/console.md), on its own
 * listener (`console.host`, loopback by default: it shows visitors' context and partners' cookie
 * values, which the metrics port — on every interface — must not).
 *
 *   GET  /                         the page (static HTML; app.js renders with textContent only)
 *   GET  /api/events               recent events, newest first
 *   GET  /api/events/:id           one event's trace
 *   GET  /api/counters             per-partner counters per minute
 *   GET  /api/hosts                hosts tags tried to reach that no partner declares
 *   POST /api/events/:id/replay    the event again through the executor, dry-run: what would differ
 *
 * Tag data is untrusted (a partner or a visitor can put HTML in a URL or a title): the page never
 * builds HTML from data, and a strict Content-Security-Policy forbids inline script. Requests
 * whose Host is not this listener's are refused (DNS rebinding would otherwise let a web page read
 * the API through the visitor's browser); POST needs a header a cross-origin form cannot send.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../../core/log.ts';
import { listen, type Listening } from '../http/listen.ts';
import type { ConsoleBuffer } from './buffer.ts';

/** The replay action: runs the buffered event again without publishing; resolves with the diff to show. */
export type ConsoleReplay = (eventId: string) => Promise<unknown>;

export interface ConsoleServerOptions {
  buffer: ConsoleBuffer;
  host: string;
  port: number;
  /** Absent: the page shows the replay button disabled and POST answers 501. */
  replay?: ConsoleReplay;
  /** Shown in the page's header (the shop's and inbox's URLs in the demo). */
  links?: { label: string; url: string }[];
  logger?: Logger;
}

export type ConsoleServer = Listening;

import { APP_CSS, INDEX_HTML } from './page/assets.ts';

const asset = (name: string): Buffer => readFileSync(new URL(`./page/${name}`, import.meta.url));
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export async function startConsoleServer(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const assets = { html: Buffer.from(INDEX_HTML), js: asset('app.js'), css: Buffer.from(APP_CSS) };
  const { buffer } = options;
  let allowedHosts: Set<string> | undefined;
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      options.logger?.warn({ err: error }, 'console request failed');
      if (!res.headersSent) json(res, 500, { error: { code: 'ERR_CONSOLE', reason: 'the console could not answer' } });
      else res.end();
    });
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (allowedHosts !== undefined && !allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('misdirected request: this console answers on its own address only\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    if (req.method === 'POST') {
      const m = /^\/api\/events\/([^/]+)\/replay$/.exec(path);
      if (m === null) return void json(res, 404, { error: { code: 'ERR_NOT_FOUND', reason: 'no such action' } });
      if (req.headers['x-tagstream-console'] !== '1') return void json(res, 403, { error: { code: 'ERR_FORBIDDEN', reason: 'the replay action needs the x-tagstream-console header (sent by the console page)' } });
      if (options.replay === undefined) return void json(res, 501, { error: { code: 'ERR_NOT_AVAILABLE', reason: 'replay (dry-run) is not available in this build' } });
      const id = safeDecode(m[1] as string);
      if (buffer.event(id) === undefined) return void json(res, 404, { error: { code: 'ERR_NOT_FOUND', reason: 'event not in the console buffer (older than its size, or never seen here)' } });
      try {
        json(res, 200, { eventId: id, dryRun: await options.replay(id) });
      } catch (error) {
        json(res, 500, { error: { code: (error as { code?: string }).code ?? 'ERR_REPLAY', reason: error instanceof Error ? error.message : String(error) } });
      }
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD, POST' }).end();
      return;
    }
    switch (path) {
      case '/':
      case '/index.html':
        return void send(res, 'text/html; charset=utf-8', assets.html);
      case '/app.js':
        return void send(res, 'application/javascript; charset=utf-8', assets.js);
      case '/app.css':
        return void send(res, 'text/css; charset=utf-8', assets.css);
      case '/api/config':
        return void json(res, 200, { replay: options.replay !== undefined, links: options.links ?? [], bufferSize: buffer.size });
      case '/api/events': {
        const limit = Math.min(500, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
        return void json(res, 200, { events: buffer.list(limit) });
      }
      case '/api/counters':
        return void json(res, 200, buffer.counters());
      case '/api/hosts':
        return void json(res, 200, { hosts: buffer.undeclaredHosts() });
      default: {
        const m = /^\/api\/events\/([^/]+)$/.exec(path);
        const trace = m === null ? undefined : buffer.trace(safeDecode(m[1] as string));
        if (trace !== undefined) return void json(res, 200, trace);
        json(res, 404, { error: { code: 'ERR_NOT_FOUND', reason: m === null ? 'not found' : 'event not in the console buffer' } });
      }
    }
  };

  const listening = await listen(server, options.host, options.port, 'the console', 'console.port (CONSOLE_PORT)');
  // Loopback: only this listener's own names. Configured elsewhere: the operator chose who reaches it.
  if (LOOPBACK.has(options.host) || options.host.startsWith('127.')) {
    const p = listening.address.port;
    allowedHosts = new Set([`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`, `${options.host}:${p}`]);
  }
  return listening;
}

function send(res: ServerResponse, type: string, body: Buffer): void {
  res.writeHead(200, { 'content-type': type, 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' }).end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

/** A malformed escape in a path is an unknown id, not a server error. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
