/**
 * The HTTP side of the dispatcher: undici, one connection pool per origin (undici's Agent keeps a
 * Pool per origin, bounded by `connectionsPerHost`), a time bound per request, and the egress policy
 * of the executor (processors/executor/egress.ts) on the address actually connected to:
 *
 * - a name is resolved through `guardedLookup`, which refuses the connection when any address is
 *   private, loopback or link-local (DNS rebinding cannot reach an internal service);
 * - `resolve` (DISPATCHER_RESOLVE, like curl's --resolve) sends `host:port` to another
 *   `address:port` while TLS still verifies the certificate against the host's name (SNI and
 *   checkServerIdentity use `servername`); the address is checked by the same policy.
 */
import { Agent, buildConnector } from 'undici';
import { isIP } from 'node:net';
import { withTimeout } from '../../core/async.ts';
import { EgressDeniedError, InvalidInputError } from '../../core/errors.ts';
import { checkEgressUrl, guardedLookup, isPrivateAddress } from '../executor/egress.ts';

export interface ResolveTarget {
  address: string;
  port: number;
}

/** `host:port` → where to connect instead. */
export type ResolveMap = ReadonlyMap<string, ResolveTarget>;

/** Parses `host:port=address:port,…` (curl's --resolve, with a port on both sides). */
export function parseResolve(value: string | readonly string[]): ResolveMap {
  const entries = typeof value === 'string' ? value.split(',') : value;
  const map = new Map<string, ResolveTarget>();
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = /^([A-Za-z0-9.-]+):(\d{1,5})=(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d{1,5})$/.exec(entry);
    if (m === null) throw new InvalidInputError('dispatcher.resolve (DISPATCHER_RESOLVE)', `"${entry}" is not host:port=address:port`);
    const [, host = '', port = '', address = '', targetPort = ''] = m;
    const bare = address.startsWith('[') ? address.slice(1, -1) : address;
    if (isIP(bare) === 0) throw new InvalidInputError('dispatcher.resolve (DISPATCHER_RESOLVE)', `"${address}" is not an IP address`);
    map.set(`${host.toLowerCase()}:${Number(port)}`, { address: bare, port: Number(targetPort) });
  }
  return map;
}

export interface SenderOptions {
  allowPrivateNetwork: boolean;
  resolve?: ResolveMap;
  /** Connections per origin (undici Pool size). */
  connectionsPerHost?: number;
  /** Extra trusted CA certificates (PEM) besides Node's (tests; production uses NODE_EXTRA_CA_CERTS). */
  ca?: string | readonly string[];
  /** Bound on a response body read (bytes); the rest is discarded. Default 64 KiB. */
  maxResponseBytes?: number;
}

export interface SendRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  timeoutMs: number;
}

export interface SendResponse {
  status: number;
  /** Set-Cookie lines, as sent. */
  setCookie: string[];
  retryAfter: string | undefined;
}

export interface Sender {
  send(request: SendRequest, signal?: AbortSignal): Promise<SendResponse>;
  close(): Promise<void>;
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

export function createSender(options: SenderOptions): Sender {
  const egress = { allowPrivateNetwork: options.allowPrivateNetwork };
  const resolve = options.resolve ?? new Map<string, ResolveTarget>();
  const base = buildConnector({
    lookup: guardedLookup(egress),
    ...(options.ca === undefined ? {} : { ca: typeof options.ca === 'string' ? options.ca : [...options.ca] }),
  });
  const connect: buildConnector.connector = (opts, callback) => {
    const port = opts.port === '' ? defaultPort(opts.protocol) : Number(opts.port);
    const target = resolve.get(`${opts.hostname.toLowerCase()}:${port}`);
    if (target === undefined) {
      base(opts, callback);
      return;
    }
    if (!egress.allowPrivateNetwork && isPrivateAddress(target.address)) {
      callback(new EgressDeniedError(opts.hostname, 'resolves to a private address (DISPATCHER_RESOLVE)'), null);
      return;
    }
    // Connect to the address, verify the certificate against the name.
    base({ ...opts, hostname: target.address, port: String(target.port), servername: opts.servername ?? opts.hostname }, callback);
  };
  const agent = new Agent({ connect, connections: options.connectionsPerHost ?? 32, keepAliveTimeout: 10_000 });
  const maxBytes = options.maxResponseBytes ?? 64 * 1024;

  return {
    async send(request, signal) {
      checkEgressUrl(request.url, egress);
      const url = new URL(request.url);
      return withTimeout(
        `delivery to ${url.host}`,
        request.timeoutMs,
        async (s) => {
          const res = await agent.request({
            origin: url.origin,
            path: `${url.pathname}${url.search}`,
            method: request.method.toUpperCase(),
            headers: request.headers,
            ...(request.body === undefined || request.method.toUpperCase() === 'GET' ? {} : { body: request.body }),
            signal: s,
            headersTimeout: request.timeoutMs,
            bodyTimeout: request.timeoutMs,
          });
          // Nobody reads a beacon's answer: discard it, bounded, so the connection is reused.
          await res.body.dump({ limit: maxBytes }).catch(() => undefined);
          const raw = res.headers['set-cookie'];
          const retryAfter = res.headers['retry-after'];
          return {
            status: res.statusCode,
            setCookie: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw],
            retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          };
        },
        signal,
      );
    },
    close: () => agent.close(),
  };
}
