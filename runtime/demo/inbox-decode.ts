/**
 * What each demo partner's collection endpoint understands of a request, as the partner's own
 * backend would: the events it carries, the page, and the visitor id the partner keys them by.
 * Pure: the inbox calls it on every request the dispatcher delivers.
 */
import { createHash } from 'node:crypto';
import { decodeBody, type DecodedBody } from '../console/decode.ts';

export interface ReceivedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface InboxEvent {
  partner: string;
  /** The partner's own event name (`pv`, `$pageview`, `pageview`, `PageView`, …). */
  name: string;
  pageView: boolean;
  page?: string;
  title?: string;
  /** The id the partner keys the visitor by, and what the partner calls it. */
  visitorId?: string;
  idName: string;
  sessionId?: string;
  /** The decoded event, for the inbox's details. */
  payload: unknown;
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export function decodeInbox(partner: string, req: ReceivedRequest, day = new Date().toISOString().slice(0, 10)): InboxEvent[] {
  const url = new URL(req.url, 'http://inbox.invalid');
  const contentType = header(req.headers, 'content-type');
  const body = req.body.length === 0 ? ({ kind: 'none' } as DecodedBody) : decodeBody(req.body.toString('base64'), 'base64', contentType);
  const value = body.kind === 'json' ? body.value : body.kind === 'form' ? formJson(body) : undefined;
  switch (partner) {
    case 'snowplow':
      return snowplow(value, url);
    case 'posthog':
      return posthog(value, url);
    case 'plausible':
      return plausible(value, url, req, day);
    case 'pixel':
      return [pixel(url)];
    default:
      return [{ partner, name: url.pathname, pageView: false, idName: 'id', payload: value ?? null }];
  }
}

/** Snowplow tracker protocol: `{ schema, data: [ { e: 'pv', url, page, duid, sid, … } ] }` (POST) or the fields in the query (GET). */
function snowplow(value: unknown, url: URL): InboxEvent[] {
  const items: Json[] = isObj(value) && Array.isArray(value.data) ? value.data.filter(isObj) : [Object.fromEntries(url.searchParams)];
  return items.map((e) => ({
    partner: 'snowplow',
    name: str(e.e) ?? '?',
    pageView: e.e === 'pv',
    ...opt('page', str(e.url)),
    ...opt('title', str(e.page)),
    ...opt('visitorId', str(e.duid)),
    idName: 'duid (domain user id)',
    ...opt('sessionId', str(e.sid)),
    payload: e,
  }));
}

/** PostHog capture API: `/e/` with one event, an array or `{ batch }` (gzip or base64 on the wire); anything else is the SDK's own calls. */
function posthog(value: unknown, url: URL): InboxEvent[] {
  if (!/\/(e|i\/v0\/e|batch|capture)\/?$/.test(url.pathname)) {
    return [{ partner: 'posthog', name: `(${url.pathname.replace(/^\/c\/posthog/, '')})`, pageView: false, idName: 'distinct_id', payload: value ?? null }];
  }
  const events: Json[] = Array.isArray(value) ? value.filter(isObj) : isObj(value) && Array.isArray(value.batch) ? value.batch.filter(isObj) : isObj(value) ? [value] : [];
  return events.map((e) => {
    const p = isObj(e.properties) ? e.properties : {};
    return {
      partner: 'posthog',
      name: str(e.event) ?? '?',
      pageView: e.event === '$pageview',
      ...opt('page', str(p.$current_url)),
      ...opt('title', str(p.title)),
      ...opt('visitorId', str(p.distinct_id) ?? str(e.distinct_id)),
      idName: 'distinct_id',
      ...opt('sessionId', str(p.$session_id)),
      payload: e,
    };
  });
}

/**
 * Plausible keeps no cookie: its backend counts a visitor as a hash of a daily salt, the site's
 * domain, the visitor's IP and user agent — what the dispatcher forwards (X-Forwarded-For,
 * User-Agent). The inbox computes the same kind of hash.
 */
function plausible(value: unknown, url: URL, req: ReceivedRequest, day: string): InboxEvent[] {
  const e: Json = isObj(value) ? value : {};
  const ip = header(req.headers, 'x-forwarded-for') ?? '';
  const ua = header(req.headers, 'user-agent') ?? '';
  const domain = str(e.d) ?? '';
  const hash = createHash('sha256').update(`${day}|${domain}|${ip}|${ua}`).digest('hex').slice(0, 16);
  return [{ partner: 'plausible', name: str(e.n) ?? url.pathname, pageView: e.n === 'pageview', ...opt('page', str(e.u)), visitorId: hash, idName: 'visitor hash (salt, domain, IP, user agent)', payload: e }];
}

function pixel(url: URL): InboxEvent {
  const q = Object.fromEntries(url.searchParams);
  return { partner: 'pixel', name: q.ev ?? '?', pageView: q.ev === 'PageView', ...opt('page', str(q.dl)), ...opt('title', str(q.dt)), ...opt('visitorId', str(q.uid)), idName: 'uid (first-party cookie)', payload: q };
}

function formJson(body: Extract<DecodedBody, { kind: 'form' }>): unknown {
  // PostHog's `data=<base64 JSON>` form: the field's decoded value is the payload.
  const data = body.fields.find((f) => f.name === 'data');
  return data?.decoded?.value ?? Object.fromEntries(body.fields.map((f) => [f.name, f.value]));
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function opt<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function header(headers: ReceivedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
