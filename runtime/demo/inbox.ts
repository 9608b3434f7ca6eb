/**
 * The partner inbox (`run --demo`): stands in for the demo partners' CDNs and collection
 * endpoints on loopback.
 *
 *   GET  /sdk/<partner>/…     the partner's SDK bundle from npm (the executor loads it: allowHosts)
 *   ANY  /c/<partner>/…       the partner's collection endpoint (the dispatcher delivers here: captureHosts)
 *   GET  /                    what each partner received, decoded, with its visitor ids
 *   GET  /api/received        the same as JSON (tests, scripts)
 *
 * Bounded: the last `max` requests are kept.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { listen, type Listening } from '../http/listen.ts';
import { decodeInbox, type InboxEvent } from './inbox-decode.ts';
import { renderInbox } from './inbox-page.ts';
import type { Sdk } from './sdks.ts';

export interface InboxEntry {
  seq: number;
  at: string;
  partner: string;
  method: string;
  path: string;
  userAgent?: string;
  forwardedFor?: string;
  events: InboxEvent[];
}

export interface Inbox extends Listening {
  entries(): InboxEntry[];
}

export interface InboxOptions {
  host: string;
  port: number;
  sdks: readonly Sdk[];
  partners: readonly string[];
  /** Requests kept. Default 2000. */
  max?: number;
  /** Shown in the page's header. */
  links?: () => { label: string; url: string }[];
}

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const MAX_BODY = 1024 * 1024;

export async function startInbox(options: InboxOptions): Promise<Inbox> {
  const max = options.max ?? 2000;
  const entries: InboxEntry[] = [];
  let seq = 0;
  const sdks = new Map(options.sdks.map((s) => [s.path, { sdk: s, etag: `"${createHash('sha1').update(s.body).digest('hex').slice(0, 16)}"` }]));

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://inbox.invalid');
    const collect = /^\/c\/([a-z0-9-]+)(\/|$)/.exec(url.pathname);
    if (collect !== null) {
      void receive(req, res, collect[1] as string);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405).end();
    const served = sdks.get(url.pathname);
    if (served !== undefined) {
      if (req.headers['if-none-match'] === served.etag) return void res.writeHead(304, { etag: served.etag }).end();
      res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'access-control-allow-origin': '*', 'cache-control': 'public, max-age=300', etag: served.etag }).end(served.sdk.body);
      return;
    }
    if (url.pathname === '/api/received') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ seq, entries }));
      return;
    }
    if (url.pathname === '/') {
      const html = renderInbox({ entries, seq, partners: options.partners, sdks: options.sdks, links: options.links?.() ?? [] });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });

  const receive = async (req: IncomingMessage, res: ServerResponse, partner: string): Promise<void> => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return void res.writeHead(413).end();
      chunks.push(chunk as Buffer);
    }
    const path = req.url ?? '/';
    let events: InboxEvent[];
    try {
      events = decodeInbox(partner, { method: req.method ?? 'GET', url: path, headers: req.headers, body: Buffer.concat(chunks) });
    } catch {
      events = [{ partner, name: '(undecodable)', pageView: false, idName: 'id', payload: null }];
    }
    seq += 1;
    entries.push({
      seq,
      at: new Date().toISOString(),
      partner,
      method: req.method ?? 'GET',
      path,
      ...(typeof req.headers['user-agent'] === 'string' ? { userAgent: req.headers['user-agent'] } : {}),
      ...(typeof req.headers['x-forwarded-for'] === 'string' ? { forwardedFor: req.headers['x-forwarded-for'] } : {}),
      events,
    });
    if (entries.length > max) entries.splice(0, entries.length - max);
    answer(res, partner, path);
  };

  const listening = await listen(server, options.host, options.port, 'the demo partner inbox', 'demo.inboxPort (DEMO_INBOX_PORT)');
  return { ...listening, url: listening.url, address: listening.address, close: listening.close, entries: () => [...entries] };
}

/** What each partner's real endpoint answers. */
function answer(res: ServerResponse, partner: string, path: string): void {
  if (partner === 'pixel') return void res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(GIF);
  if (partner === 'plausible') return void res.writeHead(202, { 'content-type': 'text/plain' }).end('ok');
  if (partner === 'posthog') return void res.writeHead(200, { 'content-type': 'application/json' }).end(path.includes('/flags') ? '{"featureFlags":{}}' : '{"status":1}');
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
}
