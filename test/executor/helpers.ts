/**
 * Test fixtures for the executor: an HTTP server on 127.0.0.1 serving the fixture tags of
 * ./fixtures/tags (the only real network target tests ever use), plus event/partner builders.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { CapturedRequest, PageViewEventInput, PartnerConfigInput } from '../../processors/executor/index.ts';

const TAGS = fileURLToPath(new URL('./fixtures/tags/', import.meta.url));

export interface Hit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export interface FixtureServer {
  origin: string;
  host: string;
  hits: Hit[];
  /** Extra routes: return true when handled. */
  routes: ((req: IncomingMessage, res: ServerResponse) => boolean)[];
  close(): Promise<void>;
}

/** Serves /tags/<name>.js (optionally ?delay=ms) and records every request. */
export async function startFixtureServer(host = '127.0.0.1'): Promise<FixtureServer> {
  const hits: Hit[] = [];
  const routes: FixtureServer['routes'] = [];
  const server: Server = createServer((req, res) => {
    hits.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    for (const r of routes) if (r(req, res)) return;
    const u = new URL(req.url ?? '/', 'http://x');
    const m = /^\/tags\/([a-z0-9-]+\.js)$/.exec(u.pathname);
    if (!m?.[1]) {
      res.writeHead(404).end();
      return;
    }
    const delay = Number(u.searchParams.get('delay') ?? 0);
    readFile(TAGS + m[1]).then(
      (body) =>
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/javascript', 'cache-control': 'no-cache' }).end(body);
        }, delay),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const hostPort = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return {
    origin: `http://${hostPort}`,
    host: hostPort,
    hits,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const CHROME_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36';

let seq = 0;
export function makeEvent(overrides: Partial<PageViewEventInput> = {}): PageViewEventInput {
  seq++;
  return {
    eventId: `evt-${seq}`,
    userId: `user-${seq}`,
    timestamp: '2026-11-29T10:00:00.000Z',
    type: 'page_view',
    page: { url: 'https://shop.example/p/42?utm_source=x', referrer: 'https://www.google.com/', title: 'Product 42' },
    device: {
      userAgent: CHROME_UA,
      language: 'fr-FR',
      languages: ['fr-FR', 'fr'],
      platform: 'Win32',
      screen: { width: 1920, height: 1080, colorDepth: 24, pixelRatio: 1 },
      viewport: { width: 1280, height: 720 },
      timezone: 'Europe/Paris',
    },
    client: { ip: '203.0.113.7' },
    consent: { analytics: true, advertising: false },
    data: { product: 42 },
    ...overrides,
  };
}

/** A partner whose html loads fixture tag `name` from the fixture server. */
export function tagPartner(
  srv: FixtureServer,
  id: string,
  name: string,
  extra: Partial<PartnerConfigInput> = {},
): PartnerConfigInput {
  return {
    id,
    html: `<script src="${srv.origin}/tags/${name}.js"></script>`,
    allowHosts: [srv.host],
    captureHosts: ['collect.t.example'],
    ...extra,
  };
}

/** A partner tag writing 4 MB of localStorage and 60 cookies of 3 KB (far over the jar budget). */
export const HOG_HTML =
  "<script>var s='x'.repeat(1048576);for(var i=0;i<4;i++)localStorage.setItem('k'+i,s);" +
  "for(var j=0;j<60;j++)document.cookie='c'+j+'='+'z'.repeat(3000)+'; path=/; max-age=3600';</script>";

export function byPath(requests: readonly CapturedRequest[], path: string): CapturedRequest[] {
  return requests.filter((r) => new URL(r.url).pathname === path);
}

export function one(requests: readonly CapturedRequest[], path: string): CapturedRequest {
  const found = byPath(requests, path);
  if (found.length !== 1) {
    throw new Error(`expected one request to ${path}, got ${found.length}: ${requests.map((r) => r.url).join(' ')}`);
  }
  return found[0] as CapturedRequest;
}
