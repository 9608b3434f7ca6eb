/**
 * Every request of the page pauses in the CDP Fetch domain and is routed here: the synthetic
 * navigation and the executor's own exchanges are answered; `allowHosts` GET/HEAD loads go
 * through the script cache (and the egress policy); preflights are answered; everything else is
 * captured and answered synthetically (the configured `responses`, else a default). Non-http(s)
 * requests are failed. Chromium itself never connects anywhere.
 */
import type { CDPSession, Protocol } from 'puppeteer-core';
import { z } from 'zod';
import type { Logger } from '../../../core/log.ts';
import { EgressDeniedError, longestMatch, type PolicyEntry } from '../egress.ts';
import { referrerPolicyNames } from '../inject/capture.js';
import type { ScriptCache } from '../script-cache.ts';
import type { PartnerConfig, Transport } from '../schemas.ts';
import type { Slot } from '../slot.ts';
import type { Captured } from './attribution.ts';
import type { FrameExchange } from './frame-storage.ts';

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const EMPTY = Buffer.alloc(0);
const NO_STORE = { name: 'Cache-Control', value: 'no-store' };
const utf8 = new TextDecoder('utf-8', { fatal: true });
const REFERRER_POLICIES = referrerPolicyNames();

/** What inject/capture.js reports of a send it took (page input: validated like any other). */
const pageSendSchema = z.object({
  url: z.string().regex(/^https?:\/\//i),
  method: z.enum(['GET', 'POST']),
  headers: z.array(z.tuple([z.string(), z.string()])).max(200),
  contentType: z.string().nullable(),
  body: z.string().nullable(),
  transport: z.enum(['fetch', 'beacon']),
  referrerPolicy: z.string().refine((p) => REFERRER_POLICIES.includes(p), 'not a referrer policy in-page capture takes'),
});
type PageSend = z.infer<typeof pageSendSchema>;

/**
 * The Referer Chromium sends from `page` to `url` under `policy` ('' = the document's default,
 * strict-origin-when-cross-origin); a downgrade is an https page sending to anything but https
 * (Chromium counts http loopback as one). Null: no Referer.
 */
export function refererFor(page: URL, url: URL, policy: string): string | null {
  const full = page.href.split('#')[0] ?? page.href;
  const origin = `${page.origin}/`;
  const same = page.origin === url.origin;
  const downgrade = page.protocol === 'https:' && url.protocol !== 'https:';
  switch (policy) {
    case 'no-referrer':
      return null;
    case 'unsafe-url':
      return full;
    case 'origin':
      return origin;
    case 'same-origin':
      return same ? full : null;
    case 'origin-when-cross-origin':
      return same ? full : origin;
    case 'no-referrer-when-downgrade':
      return downgrade ? null : full;
    case 'strict-origin':
      return downgrade ? null : origin;
    default:
      return downgrade ? null : same ? full : origin;
  }
}

/** Every active partner's allowHosts and captureHosts, in configuration order. */
export function policyOf(active: readonly PartnerConfig[]): PolicyEntry[] {
  const policy: PolicyEntry[] = [];
  for (const p of active) {
    for (const e of p.allowHosts) policy.push({ partner: p.id, kind: 'allow', entry: e });
    for (const e of p.captureHosts) policy.push({ partner: p.id, kind: 'capture', entry: e });
  }
  return policy;
}

export function stripHash(url: string): string {
  const i = url.indexOf('#');
  return i < 0 ? url : url.slice(0, i);
}

export function header(headers: Record<string, string>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

export function corsHeaders(reqHeaders: Record<string, string>): Protocol.Fetch.HeaderEntry[] {
  const origin = header(reqHeaders, 'origin');
  if (!origin) return [];
  // What a real collector answers: the echoed origin with credentials, so tags using
  // `credentials: 'include'` or withCredentials see a success and do not retry.
  return [
    { name: 'Access-Control-Allow-Origin', value: origin },
    { name: 'Access-Control-Allow-Credentials', value: 'true' },
    { name: 'Access-Control-Expose-Headers', value: '*' },
    { name: 'Vary', value: 'Origin' },
  ];
}

export function transportOf(ev: Pick<Protocol.Fetch.RequestPausedEvent, 'resourceType' | 'request' | 'frameId'>, mainFrameId: string): Transport {
  switch (ev.resourceType) {
    case 'Image':
      return 'image';
    case 'Fetch':
      return 'fetch';
    case 'XHR':
      return 'xhr';
    case 'Ping':
      return 'beacon';
    case 'Script':
      return 'script';
    case 'Document':
      if (ev.request.method === 'POST') return 'form';
      return ev.frameId === mainFrameId ? 'other' : 'iframe';
    default:
      return 'other';
  }
}

/** The request body as text when it is valid UTF-8, else base64 (gzip bodies stay as sent). */
export function bodyOf(req: Pick<Protocol.Network.Request, 'postData' | 'postDataEntries'>): { body: string | null; bodyEncoding: 'utf8' | 'base64' } {
  let buf: Buffer | null = null;
  if (req.postDataEntries && req.postDataEntries.length > 0) {
    buf = Buffer.concat(req.postDataEntries.map((e) => (e.bytes ? Buffer.from(e.bytes, 'base64') : EMPTY)));
  } else if (req.postData !== undefined) {
    buf = Buffer.from(req.postData, 'utf8');
  }
  if (buf === null) return { body: null, bodyEncoding: 'utf8' };
  try {
    return { body: utf8.decode(buf), bodyEncoding: 'utf8' };
  } catch {
    return { body: buf.toString('base64'), bodyEncoding: 'base64' };
  }
}

/** The configured answer for a captured request: the longest `url` prefix, `method` narrowing it. */
export function responseFor(active: readonly PartnerConfig[], url: string, method: string): PartnerConfig['responses'][number] | null {
  let best: PartnerConfig['responses'][number] | null = null;
  for (const p of active) {
    for (const r of p.responses) {
      if (!url.startsWith(r.url)) continue;
      if (r.method && r.method.toUpperCase() !== method) continue;
      if (!best || r.url.length > best.url.length) best = r;
    }
  }
  return best;
}

/** The default answer to a captured request, by what asked for it. */
function defaultAnswer(ev: Protocol.Fetch.RequestPausedEvent, mainFrameId: string, cors: Protocol.Fetch.HeaderEntry[]): [number, Protocol.Fetch.HeaderEntry[], Buffer] {
  const type = (value: string) => ({ name: 'Content-Type', value });
  switch (ev.resourceType) {
    case 'Image':
      return [200, [type('image/gif'), NO_STORE, ...cors], GIF];
    case 'Script':
      return [200, [type('application/javascript'), NO_STORE, ...cors], EMPTY];
    case 'Stylesheet':
      return [200, [type('text/css'), NO_STORE, ...cors], EMPTY];
    case 'Document':
      // A main-frame navigation away from the visitor's page is answered 204: Chromium then
      // stays on the page, as if the partner's redirect had been followed elsewhere.
      return ev.frameId === mainFrameId ? [204, [NO_STORE], EMPTY] : [200, [type('text/html'), NO_STORE], EMPTY];
    case 'Fetch':
    case 'XHR':
      return [200, [type('application/json'), NO_STORE, ...cors], Buffer.from('{}')];
    default:
      return [204, [NO_STORE, ...cors], EMPTY];
  }
}

export interface RouterOptions {
  slot: Slot;
  active: readonly PartnerConfig[];
  policy: readonly PolicyEntry[];
  /** The visitor's page URL without its fragment: its navigation gets `documentHtml`. */
  navUrl: string;
  barrierUrl: string;
  /** The closing tab's navigation (page/leave.ts): held, then answered with an empty document. */
  leaveUrl: string;
  documentHtml: Buffer;
  frames: FrameExchange;
  userAgent: string;
  cache: ScriptCache;
  log: Logger;
  /** Counts the sends taken in the page. */
  onPageCapture: (transport: 'fetch' | 'beacon') => void;
}

/** One visit's routing of the tab's paused requests (install `handle` as the slot's handler). */
export class Router {
  readonly #o: RouterOptions;
  readonly #send: CDPSession;
  #navFulfilled = false;
  /** The visitor document's request: the headers Chromium puts on every request of the visit. */
  #navHeaders: Record<string, string> = {};
  /** The visitor's page URL (the referrer of its requests). */
  readonly #page: URL;
  /** Captured requests, in arrival order. */
  readonly captured: Captured[] = [];
  /** Origins whose documents loaded in the page (the page's own first). */
  readonly frameOrigins: Set<string>;
  /** allowHosts loads in flight. */
  inflightLoads = 0;

  constructor(opts: RouterOptions) {
    this.#o = opts;
    this.#send = opts.slot.session;
    this.#page = new URL(opts.navUrl);
    this.frameOrigins = new Set([this.#page.origin]);
  }

  /** URLs of every paused request of the visit (page/leave.ts waits for the closing tab's). */
  readonly seen = new Set<string>();
  /** Called when the closing tab's navigation is paused: beforeunload has run. */
  onLeave: ((requestId: string) => void) | null = null;

  /** Lets the closing tab's navigation commit: the page's pagehide and unload run. */
  releaseLeave(requestId: string): void {
    this.#fulfill(requestId, 200, [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }, NO_STORE], EMPTY);
  }

  readonly handle = (ev: Protocol.Fetch.RequestPausedEvent): void => {
    const { request } = ev;
    const url = request.url;
    const o = this.#o;
    this.seen.add(url);
    if (url === o.leaveUrl && ev.resourceType === 'Document' && ev.frameId === o.slot.targetId) {
      if (this.onLeave) this.onLeave(ev.requestId);
      else this.releaseLeave(ev.requestId);
      return;
    }
    if (!this.#navFulfilled && ev.resourceType === 'Document' && ev.frameId === o.slot.targetId && stripHash(url) === o.navUrl) {
      this.#navFulfilled = true;
      this.#navHeaders = request.headers;
      this.#fulfill(ev.requestId, 200, [{ name: 'Content-Type', value: 'text/html; charset=utf-8' }, NO_STORE], o.documentHtml);
      return;
    }
    if (url === o.barrierUrl) {
      this.#fulfill(ev.requestId, 204, [NO_STORE], EMPTY);
      return;
    }
    const frame = o.frames.answer(url, request.method, () => bodyOf(request).body);
    if (frame) {
      const headers = frame.json ? [{ name: 'Content-Type', value: 'application/json' }, NO_STORE] : [NO_STORE];
      this.#fulfill(ev.requestId, frame.status, headers, frame.json ?? EMPTY);
      return;
    }
    if (!/^https?:/i.test(url)) {
      this.#fail(ev.requestId, 'BlockedByClient');
      return;
    }
    const method = request.method.toUpperCase();
    if (ev.resourceType === 'Preflight' || (method === 'OPTIONS' && header(request.headers, 'access-control-request-method'))) {
      this.#preflight(ev);
      return;
    }
    // http(s) URLs from Chromium always parse.
    const found = longestMatch(o.policy, new URL(url));
    if (found.match?.kind === 'allow' && (method === 'GET' || method === 'HEAD')) {
      this.#load(ev, found.match);
      return;
    }
    this.#capture(ev, method, found);
  };

  /**
   * A send the page took itself (inject/capture.js): the record Chromium's request would have
   * given, with the headers Chromium adds on the way out (User-Agent, Accept-Language and client
   * hints as on the visitor's document request; Accept; Origin by the fetch rules, and the Referer
   * of the request's referrer policy), names sorted as CDP reports them.
   */
  readonly fromPage = (payload: string): void => {
    let m: PageSend;
    try {
      m = pageSendSchema.parse(JSON.parse(payload));
    } catch (err) {
      this.#o.log.warn({ err: String(err).slice(0, 200) }, 'unreadable in-page capture');
      return;
    }
    const url = new URL(m.url);
    const found = longestMatch(this.#o.policy, url);
    this.#o.onPageCapture(m.transport);
    this.seen.add(m.url.split('#')[0] ?? m.url);
    const headers: Record<string, string> = {};
    const own = new Set(m.headers.map(([k]) => k.toLowerCase()));
    const nav = this.#navHeaders;
    const page = this.#page;
    const sameOrigin = url.origin === page.origin;
    const copy = (name: string): void => {
      const v = header(nav, name);
      if (v !== undefined) headers[name] = v;
    };
    if (!own.has('accept')) headers.Accept = '*/*';
    copy('Accept-Language');
    if (m.contentType !== null && !own.has('content-type')) headers['Content-Type'] = m.contentType;
    if (!sameOrigin || m.method !== 'GET') headers.Origin = page.origin;
    const referer = refererFor(page, url, m.referrerPolicy);
    if (referer !== null) headers.Referer = referer;
    copy('User-Agent');
    for (const [k, v] of m.headers) headers[k] = v;
    for (const k of ['sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform']) copy(k);
    const sorted: Record<string, string> = {};
    for (const k of Object.keys(headers).sort()) sorted[k] = headers[k] as string;
    const body = m.body === null ? { body: null, bodyEncoding: 'utf8' as const } : bodyOf({ postDataEntries: [{ bytes: m.body }] });
    this.captured.push({
      partner: found.match && !found.shared ? found.match.partner : null,
      method: m.method,
      url: m.url,
      headers: sorted,
      body: body.body,
      bodyEncoding: body.bodyEncoding,
      transport: m.transport,
      at: Date.now(),
      fromPolicy: found.match !== null,
    });
  };

  #fulfill(requestId: string, status: number, headers: Protocol.Fetch.HeaderEntry[], body: Buffer): void {
    const params: Protocol.Fetch.FulfillRequestRequest = { requestId, responseCode: status, responseHeaders: headers };
    if (body.length > 0) params.body = body.toString('base64');
    this.#send.send('Fetch.fulfillRequest', params).catch((err: unknown) => this.#o.log.debug({ err: String(err) }, 'fulfill failed'));
  }

  #fail(requestId: string, reason: Protocol.Network.ErrorReason): void {
    this.#send.send('Fetch.failRequest', { requestId, errorReason: reason }).catch(() => undefined);
  }

  /** Answered, not captured: a preflight is the browser's question, not something a tag sent. */
  #preflight(ev: Protocol.Fetch.RequestPausedEvent): void {
    const h = ev.request.headers;
    const reqHeaders = header(h, 'access-control-request-headers');
    const headers = [
      ...corsHeaders(h),
      { name: 'Access-Control-Allow-Methods', value: header(h, 'access-control-request-method') ?? 'GET, POST' },
      { name: 'Access-Control-Max-Age', value: '86400' },
    ];
    if (reqHeaders) headers.push({ name: 'Access-Control-Allow-Headers', value: reqHeaders });
    this.#fulfill(ev.requestId, 204, headers, EMPTY);
  }

  #capture(ev: Protocol.Fetch.RequestPausedEvent, method: string, found: { match: PolicyEntry | null; shared: boolean }): void {
    const { request } = ev;
    const entry = found.match;
    const { body, bodyEncoding } = bodyOf(request);
    this.captured.push({
      // An entry several partners list (a shared CDN or collector) names none of them.
      partner: entry && !found.shared ? entry.partner : null,
      method,
      url: request.url + (request.urlFragment ?? ''),
      headers: { ...request.headers },
      body,
      bodyEncoding,
      transport: transportOf(ev, this.#o.slot.targetId),
      at: Date.now(),
      fromPolicy: entry !== null,
    });
    const cors = corsHeaders(request.headers);
    const configured = responseFor(this.#o.active, request.url + (request.urlFragment ?? ''), method);
    if (configured) {
      const headers = [{ name: 'Content-Type', value: configured.contentType }, ...cors];
      for (const [k, v] of Object.entries(configured.headers ?? {})) headers.push({ name: k, value: v });
      this.#fulfill(ev.requestId, configured.status, headers, Buffer.from(configured.body, 'utf8'));
      return;
    }
    const [status, headers, body2] = defaultAnswer(ev, this.#o.slot.targetId, cors);
    this.#fulfill(ev.requestId, status, headers, body2);
  }

  #load(ev: Protocol.Fetch.RequestPausedEvent, entry: PolicyEntry): void {
    const o = this.#o;
    this.inflightLoads++;
    o.cache
      .get(ev.request.url, o.userAgent)
      .then(
        (res) => {
          const headers: Protocol.Fetch.HeaderEntry[] = Object.entries(res.headers)
            .filter(([k]) => !/^(access-control-|cache-control$|expires$|pragma$|etag$|last-modified$|vary$)/i.test(k))
            .map(([name, value]) => ({ name, value }));
          headers.push(...corsHeaders(ev.request.headers));
          // The tab's own HTTP cache may keep a partner script for the script cache's TTL: the
          // renderer then reuses its compiled code (measured: 154 -> 117 ms CPU per view with a
          // 380 KB SDK). Its cache is partitioned by site and holds nothing of a visitor.
          if (res.status === 200 && ev.request.method === 'GET') {
            headers.push({ name: 'Cache-Control', value: `private, max-age=${Math.floor(o.cache.ttlMs / 1000)}` });
            if (!headers.some((h) => h.name === 'Vary')) headers.push({ name: 'Vary', value: 'Origin' });
          } else {
            headers.push(NO_STORE);
          }
          if (ev.resourceType === 'Document') this.frameOrigins.add(new URL(ev.request.url).origin);
          this.#fulfill(ev.requestId, res.status, headers, res.body);
        },
        (err: unknown) => {
          if (err instanceof EgressDeniedError) {
            o.log.warn({ partner: entry.partner, target: err.context.target, reason: err.context.reason }, 'egress denied');
            this.#fail(ev.requestId, 'BlockedByClient');
          } else {
            o.log.warn({ partner: entry.partner, url: ev.request.url.split('?')[0], err: String(err) }, 'partner resource failed to load');
            this.#fail(ev.requestId, 'Failed');
          }
        },
      )
      .finally(() => this.inflightLoads--);
  }
}
