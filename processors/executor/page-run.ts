/**
 * One event on one pooled tab, through a lean CDP session (no Network domain: the prototypes
 * measured ~80 CDP messages per view with Puppeteer's Page against ~10 raw commands here, and
 * CDP traffic is most of the per-view cost).
 *
 * Sequence: emulation (only what changed since the tab's previous event) → the jar's cookies →
 * Page.navigate to event.page.url, whose request is fulfilled with the synthetic document →
 * wait for load → settle page time (fake clock, see bootstrap.ts) → hidden + pagehide → barrier →
 * collect → (after the result is returned) wipe the visitor's state from the tab.
 *
 * Every request of the page pauses in the Fetch domain and is either loaded by the executor
 * (allowHosts, through the script cache and the egress policy), answered synthetically and
 * captured, or failed. Chromium itself never connects anywhere.
 */
import { randomUUID } from 'node:crypto';
import type { CDPSession, Protocol } from 'puppeteer-core';
import type { Logger } from '../../core/log.ts';
import { BOOTSTRAP_SOURCE } from './bootstrap.ts';
import { emulationFor } from './emulation.ts';
import { EgressDeniedError, matchPolicy, type PolicyEntry } from './egress.ts';
import type { ScriptCache } from './script-cache.ts';
import { executorMetrics } from './metrics.ts';
import {
  consentGranted,
  type CapturedRequest,
  type ExecuteResult,
  type Jar,
  type JarCookie,
  type PageViewEvent,
  type PartnerConfig,
  type TrackerOutcome,
  type Transport,
} from './schemas.ts';

export interface Slot {
  readonly id: string;
  readonly targetId: string;
  readonly browserContextId: string;
  readonly session: CDPSession;
  readonly browserSession: CDPSession;
  /** Rejects when the browser or this tab's renderer is lost. */
  readonly lost: Promise<never>;
  /** Emulation already applied to the tab, by kind, to skip identical commands. */
  readonly applied: Map<string, string>;
  handler: ((ev: Protocol.Fetch.RequestPausedEvent) => void) | null;
  uses: number;
  /** Must be replaced before its next event (error, terminated script, renderer hang). */
  dirty: boolean;
  /** BOOTSTRAP_INJECTION is registered on the tab: documents call it instead of inlining it. */
  bootstrapInjected: boolean;
  /** Called with the URL of each fetch() a dedicated worker of the current visit makes. */
  workerFetch: ((url: string) => void) | null;
  /** Secret path segment of the frame storage exchange (FRAME_STORAGE_INJECTION). */
  readonly frameToken: string;
  /** The current visit's navigator values for its workers. */
  workerEnv: { hardwareConcurrency: number; deviceMemory: number | null } | null;
}

/**
 * Registered once per tab with a per-tab token: each new document of a cross-origin http(s)
 * frame (a partner iframe) fetches its origin's localStorage from the jar synchronously before
 * any of its scripts run (the executor answers `…/in`; nothing is there between visits, so a
 * previous visitor's storage is cleared), and sends a snapshot on `pagehide` (`…/out`: a frame
 * removed from the page). Neither request leaves the browser or is listed.
 */
export function frameStorageInjection(token: string): string {
  return (
    `(function(){if(window===window.top)return;try{if(window.top.location.href)return}catch(e){}` +
    `if(!/^https?:$/.test(location.protocol))return;var base=location.origin+'/__tagstream_frame_${token}/';` +
    `var ls;try{ls=window.localStorage}catch(e){return}` +
    `try{var x=new XMLHttpRequest();x.open('GET',base+'in',false);x.send();ls.clear();` +
    `var d=x.status===200?JSON.parse(x.responseText):null;if(d&&typeof d==='object')for(var k in d)ls.setItem(k,String(d[k]))}catch(e){try{ls.clear()}catch(e2){}}` +
    `var nb=Navigator.prototype.sendBeacon,st=JSON.stringify;window.addEventListener('pagehide',function(){try{var s={};` +
    `for(var i=0;i<ls.length;i++){var k=ls.key(i);s[k]=ls.getItem(k)}nb.call(navigator,base+'out',st(s))}catch(e){}},true)})()`
  );
}

/** CDP binding a worker's fetch hook reports through (removed from the worker's global). */
export const WORKER_BINDING = '__tagstream_wfetch';
/**
 * Evaluated in each dedicated worker before its script runs: the Fetch domain reports a worker's
 * fetch() and XHR both as `XHR`, so fetch() calls are reported by URL; and the worker's
 * navigator shows the visitor's core count and memory, as the page's does. A Proxy keeps `fetch`
 * reading as native code.
 */
export function workerHook(env: { hardwareConcurrency: number; deviceMemory: number | null } | null): string {
  return (
    `(function(g,env){var b=g.${WORKER_BINDING};delete g.${WORKER_BINDING};` +
    `if(env&&typeof WorkerNavigator==='function'){var P=WorkerNavigator.prototype;` +
    `try{Object.defineProperty(P,'hardwareConcurrency',{configurable:true,enumerable:true,get:function(){return env.hardwareConcurrency}})}catch(e){}` +
    `try{if(env.deviceMemory===null)delete P.deviceMemory;else Object.defineProperty(P,'deviceMemory',{configurable:true,enumerable:true,get:function(){return env.deviceMemory}})}catch(e){}}` +
    `if(typeof b!=='function'||typeof g.fetch!=='function')return;` +
    `g.fetch=new Proxy(g.fetch,{apply:function(t,self,args){try{var i=args[0];` +
    `b(new URL(i&&typeof i==='object'&&'url' in i?i.url:String(i),g.location.href).href)}catch(e){}` +
    `return Reflect.apply(t,self,args)}})})(self,${JSON.stringify(env)})`
  );
}

export interface RunSettings {
  /**
   * `fake-timers` (default): the injected clock of bootstrap.ts. `cdp-virtual-time`: Chromium's
   * virtual time policy (experimental, kept to compare both as issue 4 asks).
   */
  clock: 'fake-timers' | 'cdp-virtual-time';
  quietWindowMs: number;
  /** Real time the page must stay quiet before an event ends (promise chains outside timers). */
  idleRealMs: number;
  allowPrivateNetwork: boolean;
  cache: ScriptCache;
  logger: Logger;
}

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const EMPTY = Buffer.alloc(0);
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Hint {
  url: string;
  partner: string | null;
  transport: Transport;
}

interface PageReport {
  origin: string;
  localStorage: Record<string, string>;
  errors: { partner: string | null; message: string }[];
  marks: Record<string, { begin: number; end: number }>;
  hints: Hint[];
  timedOut: Record<string, boolean>;
  loadedAt: number;
  cookieWrites: number;
  cookieStoreUsed: boolean;
  storageUsed: boolean;
  historyUsed: boolean;
}

class Timeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number, lost: Promise<never>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`timed out after ${ms} ms`)), Math.max(1, ms));
  });
  return Promise.race([p, t, lost]).finally(() => clearTimeout(timer));
}

function jsonForScript(value: unknown): string {
  // Inside <script>, "</script>" or "<!--" in a string would end or confuse the element.
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function stripHash(url: string): string {
  const i = url.indexOf('#');
  return i < 0 ? url : url.slice(0, i);
}

function header(headers: Record<string, string>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function corsHeaders(reqHeaders: Record<string, string>): Protocol.Fetch.HeaderEntry[] {
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

function transportOf(ev: Protocol.Fetch.RequestPausedEvent, mainFrameId: string): Transport {
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

function bodyOf(req: Protocol.Network.Request): { body: string | null; bodyEncoding: 'utf8' | 'base64' } {
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

// Whole-line comments and indentation cost parse time on every view; the source stays readable.
const BOOTSTRAP_COMPACT = BOOTSTRAP_SOURCE.split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('//'))
  .join('\n');

/**
 * Registered once per tab (Page.addScriptToEvaluateOnNewDocument, see pool.ts): defines the
 * bootstrap as a hidden function of each new top-level document, which the synthetic document's
 * first script takes away and calls with the visit's config. The 21 KB bootstrap then crosses
 * CDP once per tab instead of once per view, the HTML parser no longer scans it, and V8 finds
 * its compiled code in the isolate's cache (same source every time, unlike an inline script
 * carrying the visit's config). Frames (partner iframes) get nothing.
 */
export const BOOTSTRAP_INJECTION =
  `if(window===window.top)Object.defineProperty(window,'__tagstream_boot',{configurable:true,value:${BOOTSTRAP_COMPACT}})`;

export function synthesizeDocument(
  event: PageViewEvent,
  active: readonly PartnerConfig[],
  bootstrapConfig: Record<string, unknown>,
  bootstrapInjected = false,
): string {
  const lang = escapeHtml(event.device.language);
  const title = escapeHtml(event.page.title ?? '');
  let body = '';
  for (const p of active) {
    const id = jsonForScript(p.id);
    body += `<script>__tagstream.begin(${id})</script>\n${p.html}\n<script>__tagstream.end(${id})</script>\n`;
  }
  return (
    `<!DOCTYPE html><html lang="${lang}"><head><meta charset="utf-8">` +
    // Sites declare a device-width viewport; without it a mobile visitor's innerWidth would be 980.
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>` +
    // No favicon request (new headless asks for one): it is the browser's, not a tag's.
    `<link rel="icon" href="data:,">` +
    (bootstrapInjected
      ? `<script>(function(w){var b=w.__tagstream_boot;delete w.__tagstream_boot;b(${jsonForScript(bootstrapConfig)})})(window)</script>`
      : `<script>${BOOTSTRAP_COMPACT}(${jsonForScript(bootstrapConfig)})</script>`) +
    `</head><body>\n${body}</body></html>`
  );
}

function toCookieParam(c: JarCookie): Protocol.Network.CookieParam {
  const p: Protocol.Network.CookieParam = {
    name: c.name,
    value: c.value,
    domain: c.domain,
    path: c.path,
    secure: c.secure || c.sameSite === 'None',
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
  };
  if (c.expires > 0) p.expires = c.expires;
  return p;
}

function fromCookie(c: Protocol.Network.Cookie): JarCookie {
  return {
    name: c.name,
    value: c.value,
    domain: c.domain,
    path: c.path,
    expires: c.session || c.expires <= 0 ? -1 : Math.round(c.expires),
    httpOnly: c.httpOnly,
    secure: c.secure,
    // Chrome treats a cookie without SameSite as Lax.
    sameSite: c.sameSite ?? 'Lax',
  };
}

/**
 * Chromium partitions a third-party frame's storage by top-level site (storage key
 * `<origin>/^0<top-level site>`; a same-site frame's key is `<origin>/`). These keys serve the
 * wipe after a visit (the frame's own first script restores and empties its localStorage). The
 * site of a page origin is learned from Chromium when a frame is still there at the end of an
 * event, else approximated
 * (registrable domain without a public-suffix list: the last two labels, three for `co.uk`-like
 * endings; IP literals and single labels as they are).
 */
const topSites = new Map<string, string>();
/** Second-level labels under country codes that are public suffixes (co.uk, com.au, ne.jp …). */
const SLDS = new Set(['co', 'com', 'net', 'org', 'gov', 'edu', 'ac', 'ne', 'or', 'go', 'gob', 'gv', 'nic', 'mil']);
function siteOf(u: URL): string {
  const h = u.hostname;
  if (/^[\d.]+$/.test(h) || h.startsWith('[') || !h.includes('.')) return `${u.protocol}//${h}`;
  const labels = h.split('.');
  const tld = labels[labels.length - 1] ?? '';
  const sld = labels[labels.length - 2] ?? '';
  const n = labels.length >= 3 && tld.length === 2 && SLDS.has(sld) ? 3 : 2;
  return `${u.protocol}//${labels.slice(-n).join('.')}`;
}
function frameStorageKey(origin: string, pageUrl: URL): string {
  const top = topSites.get(pageUrl.origin) ?? siteOf(pageUrl);
  return siteOf(new URL(origin)) === top ? `${origin}/` : `${origin}/^0${top}`;
}

/** Runs one event; throws only when the tab or its browser is lost (the pool retries then). */
export async function runOnSlot(
  slot: Slot,
  event: PageViewEvent,
  jar: Jar,
  partners: readonly PartnerConfig[],
  settings: RunSettings,
): Promise<{ result: ExecuteResult; cleanup: () => Promise<void> }> {
  const t0 = Date.now();
  const log = settings.logger;
  const active = partners.filter((p) => consentGranted(p, event.consent));
  const activeIds = new Set(active.map((p) => p.id));
  const maxTimeout = Math.max(...active.map((p) => p.timeoutMs));
  const policy: PolicyEntry[] = [];
  for (const p of active) {
    for (const e of p.allowHosts) policy.push({ partner: p.id, kind: 'allow', entry: e });
    for (const e of p.captureHosts) policy.push({ partner: p.id, kind: 'capture', entry: e });
  }
  const runId = randomUUID();
  const pageUrl = new URL(event.page.url);
  const navUrl = stripHash(pageUrl.href);
  const barrierUrl = `${pageUrl.origin}/__tagstream_barrier__/${runId}`;
  const emu = emulationFor(event);
  const userAgent = event.device.userAgent;

  const captured: (CapturedRequest & { at: number; fromPolicy: boolean })[] = [];
  const workerFetches: string[] = [];
  const framePath = `/__tagstream_frame_${slot.frameToken}/`;
  const frameSnapshots = new Map<string, Record<string, string>>();
  slot.workerEnv = { hardwareConcurrency: emu.hardwareConcurrency, deviceMemory: emu.deviceMemory };
  slot.workerFetch = (url) => {
    if (workerFetches.length < 2000) workerFetches.push(url);
  };
  const frameOrigins = new Set<string>([pageUrl.origin]);
  let navFulfilled = false;
  let inflightLoads = 0;
  const send = slot.session;
  const session = slot.session;

  const bootstrapConfig = {
    runId,
    startMs: Date.parse(event.timestamp),
    data: event.data,
    referrer: event.page.referrer ?? '',
    screen: { width: event.device.screen.width, height: event.device.screen.height, colorDepth: event.device.screen.colorDepth },
    viewport: { width: event.device.viewport.width, height: event.device.viewport.height },
    mobile: emu.metrics.mobile,
    languages: emu.languages,
    language: emu.languages[0],
    noUserAgentData: !emu.userAgentData,
    hardwareConcurrency: emu.hardwareConcurrency,
    deviceMemory: emu.deviceMemory,
    localStorage: jar.localStorage[pageUrl.origin] ?? {},
    partners: active.map((p) => ({ id: p.id, entries: [...p.allowHosts, ...p.captureHosts] })),
    timeouts: Object.fromEntries(active.map((p) => [p.id, p.timeoutMs])),
    realTimerMaxMs: 20,
    pendingExpiryMs: 2000,
    idleRealMs: settings.idleRealMs,
    hideQuietMs: 50,
    barrierUrl,
    cdpTime: settings.clock === 'cdp-virtual-time',
  };
  const documentHtml = Buffer.from(synthesizeDocument(event, active, bootstrapConfig, slot.bootstrapInjected), 'utf8');

  const fulfill = (requestId: string, status: number, headers: Protocol.Fetch.HeaderEntry[], body: Buffer): void => {
    const params: Protocol.Fetch.FulfillRequestRequest = { requestId, responseCode: status, responseHeaders: headers };
    if (body.length > 0) params.body = body.toString('base64');
    send.send('Fetch.fulfillRequest', params).catch((err: unknown) => log.debug({ err: String(err) }, 'fulfill failed'));
  };
  const fail = (requestId: string, reason: Protocol.Network.ErrorReason): void => {
    send.send('Fetch.failRequest', { requestId, errorReason: reason }).catch(() => undefined);
  };

  const responseFor = (url: string, method: string) => {
    let best: PartnerConfig['responses'][number] | null = null;
    for (const p of active)
      for (const r of p.responses) {
        if (!url.startsWith(r.url)) continue;
        if (r.method && r.method.toUpperCase() !== method) continue;
        if (!best || r.url.length > best.url.length) best = r;
      }
    return best;
  };

  const synthetic = (ev: Protocol.Fetch.RequestPausedEvent): void => {
    const { request } = ev;
    const cors = corsHeaders(request.headers);
    const configured = responseFor(request.url + (request.urlFragment ?? ''), request.method.toUpperCase());
    if (configured) {
      const headers = [{ name: 'Content-Type', value: configured.contentType }, ...cors];
      for (const [k, v] of Object.entries(configured.headers ?? {})) headers.push({ name: k, value: v });
      fulfill(ev.requestId, configured.status, headers, Buffer.from(configured.body, 'utf8'));
      return;
    }
    const noStore = { name: 'Cache-Control', value: 'no-store' };
    switch (ev.resourceType) {
      case 'Image':
        fulfill(ev.requestId, 200, [{ name: 'Content-Type', value: 'image/gif' }, noStore, ...cors], GIF);
        return;
      case 'Script':
        fulfill(ev.requestId, 200, [{ name: 'Content-Type', value: 'application/javascript' }, noStore, ...cors], EMPTY);
        return;
      case 'Stylesheet':
        fulfill(ev.requestId, 200, [{ name: 'Content-Type', value: 'text/css' }, noStore, ...cors], EMPTY);
        return;
      case 'Document':
        // A main-frame navigation away from the visitor's page is answered 204: Chromium then
        // stays on the page, as if the partner's redirect had been followed elsewhere.
        if (ev.frameId === slot.targetId) fulfill(ev.requestId, 204, [noStore], EMPTY);
        else fulfill(ev.requestId, 200, [{ name: 'Content-Type', value: 'text/html' }, noStore], EMPTY);
        return;
      case 'Fetch':
      case 'XHR':
        fulfill(ev.requestId, 200, [{ name: 'Content-Type', value: 'application/json' }, noStore, ...cors], Buffer.from('{}'));
        return;
      default:
        fulfill(ev.requestId, 204, [noStore, ...cors], EMPTY);
    }
  };

  const load = (ev: Protocol.Fetch.RequestPausedEvent, entry: PolicyEntry): void => {
    inflightLoads++;
    settings.cache
      .get(ev.request.url, userAgent)
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
            headers.push({ name: 'Cache-Control', value: `private, max-age=${Math.floor(settings.cache.ttlMs / 1000)}` });
            if (!headers.some((h) => h.name === 'Vary')) headers.push({ name: 'Vary', value: 'Origin' });
          } else {
            headers.push({ name: 'Cache-Control', value: 'no-store' });
          }
          if (ev.resourceType === 'Document') frameOrigins.add(new URL(ev.request.url).origin);
          fulfill(ev.requestId, res.status, headers, res.body);
        },
        (err: unknown) => {
          if (err instanceof EgressDeniedError) {
            log.warn({ partner: entry.partner, target: err.context.target, reason: err.context.reason }, 'egress denied');
            fail(ev.requestId, 'BlockedByClient');
          } else {
            log.warn({ partner: entry.partner, url: ev.request.url.split('?')[0], err: String(err) }, 'partner resource failed to load');
            fail(ev.requestId, 'Failed');
          }
        },
      )
      .finally(() => inflightLoads--);
  };

  slot.handler = (ev) => {
    const { request } = ev;
    const url = request.url;
    if (!navFulfilled && ev.resourceType === 'Document' && ev.frameId === slot.targetId && stripHash(url) === navUrl) {
      navFulfilled = true;
      fulfill(
        ev.requestId,
        200,
        [
          { name: 'Content-Type', value: 'text/html; charset=utf-8' },
          { name: 'Cache-Control', value: 'no-store' },
        ],
        documentHtml,
      );
      return;
    }
    if (url === barrierUrl) {
      fulfill(ev.requestId, 204, [{ name: 'Cache-Control', value: 'no-store' }], EMPTY);
      return;
    }
    if (url.includes(framePath)) {
      const origin = url.slice(0, url.indexOf(framePath));
      if (url.endsWith('/in') && request.method === 'GET') {
        const body = Buffer.from(JSON.stringify(jar.localStorage[origin] ?? {}), 'utf8');
        fulfill(ev.requestId, 200, [{ name: 'Content-Type', value: 'application/json' }, { name: 'Cache-Control', value: 'no-store' }], body);
      } else {
        if (url.endsWith('/out')) {
          try {
            const snap: unknown = JSON.parse(bodyOf(request).body ?? '');
            if (snap && typeof snap === 'object') frameSnapshots.set(origin, snap as Record<string, string>);
          } catch {
            // not a snapshot of ours
          }
        }
        fulfill(ev.requestId, 204, [{ name: 'Cache-Control', value: 'no-store' }], EMPTY);
      }
      return;
    }
    if (!/^https?:/i.test(url)) {
      fail(ev.requestId, 'BlockedByClient');
      return;
    }
    const method = request.method.toUpperCase();
    if (ev.resourceType === 'Preflight' || (method === 'OPTIONS' && header(request.headers, 'access-control-request-method'))) {
      // Answered, not captured: a preflight is the browser's question, not something a tag sent.
      const reqMethod = header(request.headers, 'access-control-request-method') ?? 'GET, POST';
      const reqHeaders = header(request.headers, 'access-control-request-headers');
      const headers = [
        ...corsHeaders(request.headers),
        { name: 'Access-Control-Allow-Methods', value: reqMethod },
        { name: 'Access-Control-Max-Age', value: '86400' },
      ];
      if (reqHeaders) headers.push({ name: 'Access-Control-Allow-Headers', value: reqHeaders });
      fulfill(ev.requestId, 204, headers, EMPTY);
      return;
    }
    const entry = matchPolicy(policy, url);
    // An entry several partners list (a shared CDN or collector) names none of them.
    const shared = entry !== null && policy.some((e) => e.partner !== entry.partner && e.entry === entry.entry);
    if (entry?.kind === 'allow' && (method === 'GET' || method === 'HEAD')) {
      load(ev, entry);
      return;
    }
    const { body, bodyEncoding } = bodyOf(request);
    captured.push({
      partner: entry && !shared ? entry.partner : null,
      method,
      url: url + (request.urlFragment ?? ''),
      headers: { ...request.headers },
      body,
      bodyEncoding,
      transport: transportOf(ev, slot.targetId),
      at: Date.now(),
      fromPolicy: entry !== null,
    });
    synthetic(ev);
  };

  // --- evaluation with a wall budget: a script that never yields is terminated, not waited for
  const suspects = new Set<string>();
  const terminatedAt: number[] = [];
  let terminations = 0;
  let hung = false;
  // The main thread is considered stuck when it does not answer a ping for the tightest budget
  // of the page's partners; the code that was running is identified after termination.
  const blockedMs = Math.min(...active.map((p) => p.timeoutMs));
  const evaluate = async (expression: string, budgetMs: number): Promise<unknown> => {
    const until = Date.now() + budgetMs;
    const step = send
      .send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })
      .then((r) => (r.exceptionDetails ? { exception: r.exceptionDetails.exception?.description ?? r.exceptionDetails.text } : r.result.value));
    step.catch(() => undefined);
    const sleep = (ms: number) => new Promise<'sleep'>((r) => setTimeout(() => r('sleep'), Math.max(1, ms)));
    let blocked = false;
    for (;;) {
      const first = await Promise.race([step.then((v) => ({ v })), sleep(Math.min(300, until - Date.now())), slot.lost]);
      if (first !== 'sleep') return first.v;
      if (Date.now() >= until) break;
      const ping = send.send('Runtime.evaluate', { expression: '1', returnByValue: true }).then(() => 'pong' as const);
      ping.catch(() => undefined);
      const answered = await Promise.race([step.then((v) => ({ v })), ping, sleep(Math.min(blockedMs, until - Date.now())), slot.lost]);
      if (answered === 'pong') continue;
      if (answered !== 'sleep') return answered.v;
      blocked = true;
      break;
    }
    if (!blocked) {
      // Responsive page, slow promise (a pending load): stop waiting, do not terminate.
      try {
        await withTimeout(send.send('Runtime.evaluate', { expression: '1', returnByValue: true }), 250, slot.lost);
        return { slow: true };
      } catch (err) {
        if (!(err instanceof Timeout)) throw err;
      }
    }
    terminations++;
    executorMetrics().terminations.inc();
    slot.dirty = true;
    const terminateAt = Date.now();
    try {
      await withTimeout(send.send('Runtime.terminateExecution'), 1000, slot.lost);
      const who = await withTimeout(
        send.send('Runtime.evaluate', {
          expression: `window.__tagstream && window.__tagstream.runId === ${JSON.stringify(runId)} ? window.__tagstream.terminated() : null`,
          returnByValue: true,
        }),
        1000,
        slot.lost,
      );
      const ids: unknown = who.result.value;
      if (Array.isArray(ids)) for (const id of ids) if (typeof id === 'string') suspects.add(id);
      terminatedAt.push(terminateAt);
      log.warn({ partners: Array.isArray(ids) ? ids : [], blockedMs }, 'terminated a script that did not yield');
      return { terminated: true };
    } catch (err) {
      if (!(err instanceof Timeout)) throw err;
      hung = true;
      return { hung: true };
    }
  };

  // --- the run
  await applyEmulation(slot, emu);
  if (jar.cookies.length > 0) {
    await withTimeout(
      slot.browserSession.send('Storage.setCookies', {
        cookies: jar.cookies.map(toCookieParam),
        browserContextId: slot.browserContextId,
      }),
      5000,
      slot.lost,
    );
  }
  // Partner frames' own localStorage (other origins of the jar): each frame of such an origin
  // fetches it before its scripts run (frameStorageInjection).
  const frameStorage = Object.keys(jar.localStorage).filter((o) => o !== pageUrl.origin && /^https?:\/\//.test(o));
  const navParams: Protocol.Page.NavigateRequest = { url: event.page.url };
  if (event.page.referrer) {
    navParams.referrer = event.page.referrer;
    navParams.referrerPolicy = 'unsafeUrl';
  }
  const nav = await withTimeout(send.send('Page.navigate', navParams), 10_000, slot.lost).catch((err: unknown) => {
    if (err instanceof Timeout) return { errorText: 'navigation timed out' } as Protocol.Page.NavigateResponse;
    throw err;
  });
  if (nav.errorText) {
    slot.dirty = true;
    log.warn({ errorText: nav.errorText }, 'synthetic navigation failed');
  }
  const deadline = t0 + maxTimeout;
  const left = (min: number): number => Math.max(min, deadline - Date.now());

  if (settings.clock === 'cdp-virtual-time' && !nav.errorText) {
    // Chromium's virtual time: it must be set again after each navigation (prototype finding);
    // page time runs until the budget is spent, pausing while fetches are pending.
    const expired = new Promise<void>((resolve) => session.once('Emulation.virtualTimeBudgetExpired', () => resolve()));
    await send.send('Emulation.setVirtualTimePolicy', {
      policy: 'pauseIfNetworkFetchesPending',
      budget: maxTimeout,
      initialVirtualTime: Date.parse(event.timestamp) / 1000,
    });
    await withTimeout(expired, maxTimeout + 2000, slot.lost).catch((err: unknown) => {
      if (!(err instanceof Timeout)) throw err;
    });
    await send.send('Emulation.setVirtualTimePolicy', { policy: 'advance' });
  }
  const quiet = settings.clock === 'cdp-virtual-time' ? 0 : Math.min(settings.quietWindowMs, maxTimeout);
  const isTerminated = (v: unknown) => typeof v === 'object' && v !== null && 'terminated' in v;
  let report: PageReport | null = null;
  // Fast path, one round trip: load, page time until quiet, hide/pagehide, collect.
  const runAllExpr = (wall: number) =>
    `(function(){var t=window.__tagstream;if(!t||t.runId!==${JSON.stringify(runId)})return 'stale';` +
    `return t.runAll(${quiet}, ${maxTimeout}, ${Math.max(50, wall - 100)}, 800)})()`;
  let needSteps = false;
  for (let i = 0; !hung && !nav.errorText; i++) {
    const wall = left(500);
    const v = await evaluate(runAllExpr(wall), wall + 1500);
    if (typeof v === 'string' && v !== 'stale') {
      report = JSON.parse(v) as PageReport;
      break;
    }
    if (v !== 'stale') {
      // A script was terminated (the promise chain died with it) or the page is slow.
      needSteps = true;
      break;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  if (needSteps && !hung) {
    // 1. the document's load (partner html runs while it parses)
    for (let i = 0; !hung && i < 4; i++) {
      const v = await evaluate('window.__tagstream.loaded()', left(500));
      if (isTerminated(v)) continue;
      break;
    }
    // 2. page time until quiet (bounded by the largest timeoutMs, in page time)
    for (let i = 0; !hung && i < 4; i++) {
      const wall = left(300);
      const v = await evaluate(`window.__tagstream.settle(${quiet}, ${maxTimeout}, ${Math.max(50, wall - 100)})`, wall);
      if (isTerminated(v)) continue;
      break;
    }
    // 3. the tab closes: visibilitychange + pagehide, what they send, and the barrier
    if (!hung) await evaluate('window.__tagstream.hide(800)', 1500);
    // 4. collect what the page kept
    if (!hung) {
      const v = await evaluate('window.__tagstream.collect()', 1500);
      if (typeof v === 'string') report = JSON.parse(v) as PageReport;
    }
  }
  // allowHosts loads still in flight are not waited for beyond this point
  for (let i = 0; inflightLoads > 0 && i < 50; i++) await new Promise((r) => setTimeout(r, 2));

  // Partner frames' localStorage: origins whose documents loaded, and those the jar restored.
  const frameStores = new Map<string, string>();
  for (const o of [...frameOrigins, ...frameStorage]) if (o !== pageUrl.origin) frameStores.set(o, frameStorageKey(o, pageUrl));
  const frameLocalStorage = new Map<string, Record<string, string>>();
  const liveFrames: [string, string][] = [];
  if (!hung && frameStores.size > 0) {
    if (frameOrigins.size > 1) {
      // Frames still in the page say which key Chromium gave them (learns the top-level site).
      const tree = await withTimeout(send.send('Page.getFrameTree'), 5000, slot.lost).catch(() => null);
      const frames: Protocol.Page.Frame[] = [];
      const walk = (t: Protocol.Page.FrameTree) => {
        for (const c of t.childFrames ?? []) {
          if (frameStores.has(c.frame.securityOrigin)) frames.push(c.frame);
          walk(c);
        }
      };
      if (tree) walk(tree.frameTree);
      for (const f of frames) {
        const k = await withTimeout(send.send('Storage.getStorageKeyForFrame', { frameId: f.id }), 5000, slot.lost).catch(() => null);
        if (!k) continue;
        frameStores.set(f.securityOrigin, k.storageKey);
        if (!liveFrames.some(([o]) => o === f.securityOrigin)) liveFrames.push([f.securityOrigin, k.storageKey]);
        const top = /\^0([^^]+)/.exec(k.storageKey)?.[1];
        if (top) {
          if (topSites.size > 1000) topSites.clear();
          topSites.set(pageUrl.origin, top);
        }
      }
    }
    // A frame removed from the page sent its snapshot on pagehide; one still there is read
    // (DOMStorage needs a live frame of the storage key); an origin only the jar named stands.
    for (const [origin, snap] of frameSnapshots) if (frameStores.has(origin)) frameLocalStorage.set(origin, snap);
    await withTimeout(
      Promise.all(
        liveFrames.map(async ([origin, storageKey]) => {
          const got = await send.send('DOMStorage.getDOMStorageItems', { storageId: { storageKey, isLocalStorage: true } });
          frameLocalStorage.set(origin, Object.fromEntries(got.entries.map((e) => [e[0] ?? '', e[1] ?? ''])));
        }),
      ),
      5000,
      slot.lost,
    ).catch((err: unknown) => log.warn({ err: String(err) }, 'frame localStorage not captured'));
  }
  slot.handler = null;
  slot.workerFetch = null;
  let cookies: JarCookie[] = jar.cookies;
  // Cookies can only have changed through document.cookie, the CookieStore API, a configured
  // response header or a loaded frame; otherwise the jar's cookies stand as they came in.
  const cookiesMayChange =
    !report ||
    report.cookieWrites > 0 ||
    report.cookieStoreUsed ||
    frameOrigins.size > 1 ||
    active.some((p) => p.responses.some((r) => Object.keys(r.headers ?? {}).some((h) => h.toLowerCase() === 'set-cookie')));
  const cookiesInBrowser = jar.cookies.length > 0 || cookiesMayChange;
  if (!hung && cookiesMayChange) {
    const got = await withTimeout(
      slot.browserSession.send('Storage.getCookies', { browserContextId: slot.browserContextId }),
      5000,
      slot.lost,
    );
    cookies = got.cookies.map(fromCookie);
  }
  if (hung || !report) slot.dirty = true;

  // --- attribution and outcomes
  const hints = report?.hints ?? [];
  const used = new Set<number>();
  const single = active.length === 1 ? (active[0]?.id ?? null) : null;
  const lastAt = new Map<string, number>();
  const requests: CapturedRequest[] = captured.map((c) => {
    let partner = c.partner;
    let transport = c.transport;
    // A GET form's URL is its action plus the fields: its hint is the action.
    const hi = hints.findIndex(
      (h, i) => !used.has(i) && (h.url === c.url || (h.transport === 'form' && c.url.startsWith(h.url.split('#')[0] ?? h.url))),
    );
    if (hi >= 0) {
      used.add(hi);
      const h = hints[hi];
      if (partner === null && h?.partner && activeIds.has(h.partner)) partner = h.partner;
      // fetch(keepalive) stays `fetch`; a form posted into a frame is a `form`.
      if (h?.transport === 'form' && (transport === 'iframe' || transport === 'other')) transport = 'form';
      // Chromium reports fetch() as XHR in the Fetch domain: the page-side hook knows which it was.
      if ((h?.transport === 'fetch' || h?.transport === 'xhr') && (transport === 'xhr' || transport === 'fetch' || transport === 'other'))
        transport = h.transport;
      if (h?.transport === 'beacon' && transport === 'other') transport = 'beacon';
    }
    if (transport === 'xhr' && hi < 0) {
      // No page-side hint: a worker's request; its fetch hook says whether it was fetch().
      const wi = workerFetches.indexOf(c.url);
      if (wi >= 0) {
        workerFetches.splice(wi, 1);
        transport = 'fetch';
      }
    }
    partner ??= single;
    if (partner !== null) lastAt.set(partner, Math.max(lastAt.get(partner) ?? 0, c.at));
    const out: CapturedRequest = {
      partner,
      method: c.method,
      url: c.url,
      headers: c.headers,
      body: c.body,
      bodyEncoding: c.bodyEncoding,
      transport,
    };
    return out;
  });
  const errors = new Map<string, string>();
  for (const e of report?.errors ?? []) {
    const who = e.partner && activeIds.has(e.partner) ? e.partner : single;
    if (who && !errors.has(who)) errors.set(who, e.message);
  }
  const end = Date.now();
  const trackers: TrackerOutcome[] = partners.map((p) => {
    if (!activeIds.has(p.id)) return { partner: p.id, status: 'skipped', durationMs: 0, error: null };
    const mark = report?.marks[p.id];
    const last = lastAt.get(p.id);
    const doneAt = last ?? (mark && mark.end > 0 ? mark.end : report?.loadedAt || end);
    const durationMs = Math.max(0, Math.round(doneAt - t0));
    // Sections run one after the other: the one open when the executor terminated was stuck.
    const stuckSection =
      mark !== undefined && terminatedAt.some((t) => mark.begin <= t && (mark.end === 0 || mark.end >= t));
    // Code stuck outside a section or timer (a promise callback, an event handler) cannot be
    // named; with a single partner in the page it can only be that one.
    const onlyOne = terminatedAt.length > 0 && single === p.id;
    const timedOut = hung || suspects.has(p.id) || report?.timedOut[p.id] === true || stuckSection || onlyOne;
    if (timedOut) return { partner: p.id, status: 'timeout', durationMs, error: `did not yield within ${p.timeoutMs} ms` };
    const err = errors.get(p.id);
    if (err !== undefined) return { partner: p.id, status: 'error', durationMs, error: err };
    if (nav.errorText) return { partner: p.id, status: 'error', durationMs, error: `page run failed: ${nav.errorText}` };
    return { partner: p.id, status: 'ok', durationMs, error: null };
  });

  const localStorage: Jar['localStorage'] = { ...jar.localStorage };
  if (report) {
    if (Object.keys(report.localStorage).length > 0) localStorage[report.origin] = report.localStorage;
    else delete localStorage[report.origin];
  }
  for (const [origin, items] of frameLocalStorage) {
    if (Object.keys(items).length > 0) localStorage[origin] = items;
    else delete localStorage[origin];
  }
  const result: ExecuteResult = { requests, jar: { cookies, localStorage }, trackers };
  log.debug(
    { eventId: event.eventId, requests: requests.length, ms: end - t0, terminations, hung },
    'event executed',
  );

  const cleanup = async (): Promise<void> => {
    if (slot.dirty) return; // the tab is discarded anyway
    // localStorage, sessionStorage and window.name were cleared in the page by collect() and are
    // cleared again by the next visitor's bootstrap; the rest is wiped here, only if touched.
    const jobs: Promise<unknown>[] = [];
    if (cookiesInBrowser) jobs.push(slot.browserSession.send('Storage.clearCookies', { browserContextId: slot.browserContextId }));
    if (!report || report.storageUsed || frameOrigins.size > 1) {
      for (const origin of frameOrigins) jobs.push(send.send('Storage.clearDataForOrigin', { origin, storageTypes: 'all' }));
    }
    // Partner frames' partitioned storage (loaded this visit or restored from the jar).
    for (const storageKey of frameStores.values()) jobs.push(send.send('Storage.clearDataForStorageKey', { storageKey, storageTypes: 'all' }));
    // Frames navigated after their insertion add entries to the tab's history too.
    const historyMayChange = !report || report.historyUsed || frameOrigins.size > 1 || captured.some((c) => c.transport === 'iframe' || c.transport === 'form');
    if (historyMayChange) jobs.push(send.send('Page.resetNavigationHistory'));
    if (jobs.length > 0) await withTimeout(Promise.all(jobs), 5000, slot.lost);
  };
  return { result, cleanup };
}

async function applyEmulation(slot: Slot, emu: ReturnType<typeof emulationFor>): Promise<void> {
  const s = slot.session;
  const jobs: Promise<unknown>[] = [];
  const once = (kind: string, value: unknown, apply: () => Promise<unknown>) => {
    const key = JSON.stringify(value);
    if (slot.applied.get(kind) === key) return;
    slot.applied.set(kind, key);
    jobs.push(apply());
  };
  once('ua', emu.userAgent, () => s.send('Emulation.setUserAgentOverride', emu.userAgent));
  once('metrics', emu.metrics, () => s.send('Emulation.setDeviceMetricsOverride', emu.metrics));
  once('tz', emu.timezoneId, async () => {
    try {
      await s.send('Emulation.setTimezoneOverride', { timezoneId: emu.timezoneId });
    } catch {
      // An unknown zone id must not fail the visit: fall back to UTC and let the next event retry.
      slot.applied.delete('tz');
      await s.send('Emulation.setTimezoneOverride', { timezoneId: 'UTC' }).catch(() => undefined);
    }
  });
  once('locale', emu.locale, async () => {
    try {
      await s.send('Emulation.setLocaleOverride', { locale: emu.locale });
    } catch {
      slot.applied.delete('locale');
    }
  });
  if (jobs.length > 0) await withTimeout(Promise.all(jobs), 5000, slot.lost);
}
