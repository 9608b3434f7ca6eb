/**
 * Egress policy: partner JavaScript is untrusted code on our servers. Chromium itself never opens
 * a connection (every request is intercepted and answered by us); the only bytes that leave are
 * the `allowHosts` loads the executor performs itself, through `guardedLookup`, which checks the
 * address actually connected to (not only the name) so DNS rebinding cannot reach an internal
 * service or the cloud metadata endpoint.
 */
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup as dnsLookup, type LookupOptions } from 'node:dns';
import { EgressDeniedError } from '../../core/errors.ts';
// The matcher the in-page bootstrap carries too (in-page.ts): page and router agree by construction.
import { entryMatch, longestMatch } from './inject/match.js';

export { EgressDeniedError, entryMatch, longestMatch };

// Ranges never reachable from partner code unless the operator passes --allow-private-network.
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT; also Alibaba's metadata 100.100.100.200
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, AWS/GCP/Azure metadata 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved + broadcast
] as const) {
  blocked.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local, incl. AWS IMDS fd00:ec2::254
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
] as const) {
  blocked.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address embedded in IPv4-mapped, IPv4-compatible or NAT64 (64:ff9b::/96) IPv6 forms. */
function embeddedIpv4(ip: string): string | null {
  const lower = ip.toLowerCase();
  const dotted = /^(?:::ffff:|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted?.[1]) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex?.[1] && hex[2]) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return null;
}

/** True for loopback, private, link-local, CGNAT, metadata, multicast and reserved addresses. */
export function isPrivateAddress(ip: string): boolean {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const family = isIP(bare);
  if (family === 4) return blocked.check(bare, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4 !== null) return blocked.check(v4, 'ipv4');
    return blocked.check(bare, 'ipv6');
  }
  return true; // not an address: refuse rather than guess
}

/** Host names that always mean this machine, whatever DNS says (RFC 6761). */
export function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

export interface EgressOptions {
  allowPrivateNetwork: boolean;
}

/**
 * The policy decision for a URL before any DNS: scheme, loopback names and IP literals.
 * Throws EgressDeniedError; names that need resolving are checked again by `guardedLookup`.
 */
export function checkEgressUrl(url: string, opts: EgressOptions): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EgressDeniedError('(invalid url)', 'invalid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new EgressDeniedError(u.protocol, 'scheme not allowed');
  if (opts.allowPrivateNetwork) return;
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (isLoopbackName(host)) throw new EgressDeniedError(u.host, 'loopback name');
  if (isIP(host) !== 0 && isPrivateAddress(host)) throw new EgressDeniedError(u.host, 'private address');
}

/**
 * A `lookup` for net.connect (undici's `connect.lookup`): resolves, and refuses the connection if
 * ANY resolved address is private, so a name mixing public and internal records cannot be used.
 */
export function guardedLookup(opts: EgressOptions): LookupFunction {
  return (hostname: string, options: LookupOptions, callback): void => {
    if (!opts.allowPrivateNetwork && isLoopbackName(hostname)) {
      callback(Object.assign(new EgressDeniedError(hostname, 'loopback name'), { errno: 0 }) as NodeJS.ErrnoException, []);
      return;
    }
    dnsLookup(hostname, { all: true, family: typeof options?.family === 'number' ? options.family : 0 }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses;
      if (!opts.allowPrivateNetwork) {
        const bad = list.find((a) => isPrivateAddress(a.address));
        if (bad) {
          callback(new EgressDeniedError(hostname, 'resolves to a private address') as NodeJS.ErrnoException, []);
          return;
        }
      }
      if (options?.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(new EgressDeniedError(hostname, 'no address') as NodeJS.ErrnoException, []);
      callback(null, first.address, first.family);
    });
  };
}

export type PolicyKind = 'allow' | 'capture';

export interface PolicyEntry {
  partner: string;
  kind: PolicyKind;
  entry: string;
}

/** Longest matching entry among every partner's allowHosts and captureHosts, or null. */
export function matchPolicy(entries: readonly PolicyEntry[], url: string): PolicyEntry | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  return longestMatch(entries, u).match;
}

/** Shorten a client IP for logs (full IPs never reach info-level logs). */
export function maskIp(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  if (isIP(ip) === 4) return ip.replace(/\.\d+$/, '.0');
  if (isIP(ip) === 6) return ip.split(':').slice(0, 3).join(':') + '::';
  return undefined;
}
