/**
 * Fake partners for the dispatcher's tests: HTTPS servers on 127.0.0.1 with a certificate made at
 * test time (openssl) for the partners' names, so DISPATCHER_RESOLVE-style routing is exercised
 * with TLS verified by name. Each server can answer, fail, stall, throttle and set cookies.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  key: string;
  cert: string;
}

/** A self-signed certificate for `names` (it is its own CA). */
export function makeCert(names: readonly string[]): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'dispatcher-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=tagstream test partner',
      '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Hit {
  method: string;
  host: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** What the server does with one request (after reading it): answer, or never answer (stall). */
export type Behaviour = (hit: Hit, n: number) => { status: number; headers?: Record<string, string | string[]>; delayMs?: number } | 'stall';

export interface FakePartner {
  readonly port: number;
  readonly hits: Hit[];
  /** Hits answered 2xx, by the `k` query parameter (the test's request id). */
  delivered(): Map<string, number>;
  behaviour: Behaviour;
  close(): Promise<void>;
}

export const ok: Behaviour = () => ({ status: 204 });

export async function fakePartner(cert: TestCert, behaviour: Behaviour = ok): Promise<FakePartner> {
  const hits: Hit[] = [];
  const answered = new Map<string, number>();
  const stalled = new Set<ServerResponse>();
  const state = { behaviour };
  const server: Server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit: Hit = { method: req.method ?? '', host: req.headers.host ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      hits.push(hit);
      const decision = state.behaviour(hit, hits.length);
      if (decision === 'stall') {
        stalled.add(res);
        res.on('close', () => stalled.delete(res));
        return;
      }
      const answer = (): void => {
        if (decision.status >= 200 && decision.status < 300) {
          const k = new URL(hit.path, 'https://x').searchParams.get('k') ?? '';
          answered.set(k, (answered.get(k) ?? 0) + 1);
        }
        res.writeHead(decision.status, decision.headers ?? {});
        res.end();
      };
      if (decision.delayMs === undefined) answer();
      else setTimeout(answer, decision.delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    delivered: () => answered,
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(b: Behaviour) {
      state.behaviour = b;
    },
    async close() {
      for (const res of stalled) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A request record as the processor publishes it (core/contracts/request.ts). */
export function requestRecord(k: string, partner: string | null, url: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const userId = `u-${k.split('-').slice(-1)[0] ?? k}`;
  return {
    partner,
    method: 'GET',
    url: `${url}${url.includes('?') ? '&' : '?'}k=${encodeURIComponent(k)}`,
    headers: { accept: 'image/*', referer: 'https://shop.example/p/1', connection: 'keep-alive' },
    body: null,
    bodyEncoding: 'utf8',
    transport: 'image',
    eventId: `e-${k}`,
    userId,
    idempotencyKey: `e-${k}:${partner ?? '-'}:0`,
    eventTimestamp: new Date().toISOString(),
    visitor: { ip: '203.0.113.77', userAgent: 'Mozilla/5.0 (test visitor)', acceptLanguage: 'fr-FR,fr;q=0.9' },
    ...over,
  };
}
