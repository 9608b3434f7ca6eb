/**
 * The visitor's address (DESIGN.md "The first-party tag and the collector"): the socket's peer,
 * or, when that peer is a trusted proxy, the right-most address of X-Forwarded-For that is not a
 * trusted proxy itself (every proxy appends the address it saw; only the entries our own proxies
 * appended can be believed, anything left of them is what the client claimed). Pure functions.
 */
import { BlockList, isIP } from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `::1/128`, or a bare address (a /32 or /128). Undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const [address = '', prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** `::ffff:127.0.0.1` (a v4 peer on a dual-stack socket) → `127.0.0.1`; other addresses unchanged. */
export function normalizeIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped?.[1] ?? ip;
}

export type TrustCheck = (ip: string) => boolean;

/** Whether an address is one of the trusted proxies (validated CIDRs; see settings.ts). */
export function trustedProxies(cidrs: readonly string[]): TrustCheck {
  if (cidrs.length === 0) return () => false;
  const list = new BlockList();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (cidr !== undefined) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return (ip) => {
    const address = normalizeIp(ip);
    const version = isIP(address);
    return version !== 0 && list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  };
}

/**
 * The client address: `peer` unless it is trusted and sent X-Forwarded-For; then the right-most
 * untrusted entry, or the left-most one when every entry is a trusted proxy. An entry that is not
 * an address ends the walk: what lies left of garbage is not believed either.
 */
export function clientIp(peer: string | undefined, forwardedFor: string | string[] | undefined, isTrusted: TrustCheck): string | undefined {
  const socket = peer === undefined ? undefined : normalizeIp(peer);
  if (socket === undefined || forwardedFor === undefined || !isTrusted(socket)) return socket;
  const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  let client = socket;
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = normalizeIp(stripPort(entries[i] as string));
    if (isIP(entry) === 0) return client;
    client = entry;
    if (!isTrusted(entry)) return entry;
  }
  return client;
}

/** `203.0.113.7:51000` and `[2001:db8::1]:443` carry a port some proxies append. */
function stripPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1] as string;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(entry);
  return v4 ? (v4[1] as string) : entry;
}

/** For logs: the network, never the host (`203.0.113.0`, `2001:db8:85a3::`). */
export function maskIp(ip: string | undefined): string | undefined {
  if (ip === undefined) return undefined;
  if (isIP(ip) === 4) return ip.replace(/\.\d+$/, '.0');
  if (isIP(ip) === 6) return `${ip.split(':').slice(0, 3).join(':')}::`;
  return 'invalid';
}
