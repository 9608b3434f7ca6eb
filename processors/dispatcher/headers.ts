/**
 * The headers a partner receives (DESIGN.md "The dispatcher"): what the browser would have sent
 * with the captured request, with the visitor's User-Agent, Accept-Language and IP
 * (X-Forwarded-For per `delivery.forwardIp`). Pure.
 */
import { isIP } from 'node:net';
import type { DeliveryOptions, RequestRecord } from '../../core/contracts/index.ts';

/**
 * Headers that describe a connection, not a request (RFC 9110 §7.6.1), or that undici computes
 * itself: forwarding a captured one would be wrong or refused.
 */
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', 'expect', 'x-forwarded-for', 'forwarded']);

/**
 * The visitor's IP as the partner may see it: all of it, its network (IPv4 /24, IPv6 /48, as
 * Google Analytics anonymizes) or nothing. Not an IP at all → nothing (never forward junk).
 */
export function forwardedIp(ip: string | undefined, mode: DeliveryOptions['forwardIp']): string | undefined {
  if (ip === undefined || mode === 'none') return undefined;
  const family = isIP(ip);
  if (family === 0) return undefined;
  if (mode === 'full') return ip;
  if (family === 4) return ip.replace(/\.\d+$/, '.0');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1] !== undefined) return forwardedIp(mapped[1], mode);
  return `${expandIpv6(ip).slice(0, 3).join(':')}::`;
}

/** The eight hextets of an IPv6 address (without leading zeros), `::` expanded. */
function expandIpv6(ip: string): string[] {
  const [head = '', tail] = ip.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((h) => h.replace(/^0+(?=.)/, ''));
}

/** The request headers sent to the partner. */
export function deliveryHeaders(request: RequestRecord, forwardIp: DeliveryOptions['forwardIp']): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (!NOT_FORWARDED.has(lower)) headers[lower] = value;
  }
  const { visitor } = request;
  if (visitor?.userAgent !== undefined) headers['user-agent'] = visitor.userAgent;
  if (visitor?.acceptLanguage !== undefined) headers['accept-language'] = visitor.acceptLanguage;
  const ip = forwardedIp(visitor?.ip, forwardIp);
  if (ip !== undefined) headers['x-forwarded-for'] = ip;
  return headers;
}

/** The body as bytes (base64 bodies are sent as captured: gzip stays gzip). */
export function deliveryBody(request: RequestRecord): Buffer | undefined {
  if (request.body === null) return undefined;
  return request.bodyEncoding === 'base64' ? Buffer.from(request.body, 'base64') : Buffer.from(request.body, 'utf8');
}
