/**
 * The cache through which `allowHosts` resources (partner scripts, their config) load. Partner
 * scripts are fetched once and kept in memory for `ttlMs`; after that they are revalidated with
 * If-None-Match / If-Modified-Since, so a busy executor costs the partner's CDN one conditional
 * request per URL per TTL. Every body version is hashed (sha256); a change of a URL's hash is
 * logged and counted, because a silently changed partner script is what an operator must know.
 */
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';
import type { Registry } from 'prom-client';
import type { Logger } from '../../core/log.ts';
import { TagstreamError, UpstreamFetchError } from '../../core/errors.ts';
import { checkEgressUrl, guardedLookup, matchPolicy, type EgressOptions, type PolicyEntry } from './egress.ts';
import { scriptCacheMetrics, type ScriptCacheMetrics } from './metrics.ts';

export { UpstreamFetchError };

export interface CachedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  sha256: string;
  /** true when served without contacting the origin */
  fromCache: boolean;
}

export interface ScriptVersion {
  sha256: string;
  firstSeen: string;
  bytes: number;
}

interface Entry {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  sha256: string;
  fetchedAt: number;
  etag?: string;
  lastModified?: string;
}

export interface ScriptCacheOptions extends EgressOptions {
  ttlMs?: number;
  maxEntries?: number;
  timeoutMs?: number;
  maxBytes?: number;
  logger?: Logger;
  /** Where `tagstream_executor_script_changes_total` and `_script_cache_total` are registered (default: prom-client's default registry). */
  registry?: Registry;
}

// Hop-by-hop and state-carrying headers are not replayed into the page: cookies from a partner CDN
// would otherwise land in the visitor's jar as if a browser had stored third-party cookies.
const DROP_HEADERS = new Set([
  'set-cookie',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-encoding',
  'content-length',
  'alt-svc',
  'strict-transport-security',
  'report-to',
  'nel',
]);

/** The host (with its port) of an allowHosts entry: a host name, `host:port`, or a URL prefix. */
function hostOfEntry(entry: string): string | null {
  try {
    return entry.includes('://') ? new URL(entry).host : new URL(`http://${entry}`).host;
  } catch {
    return null;
  }
}

export class ScriptCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<CachedResponse>>();
  readonly #versions = new Map<string, ScriptVersion[]>();
  readonly #agent: Agent;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #egress: EgressOptions;
  readonly #log: Logger | undefined;
  /** Changed script versions and lookups (registered with the cache, so they are listed before any change). */
  readonly #metrics: ScriptCacheMetrics;
  /** Every partner's allowHosts seen so far: which partner a URL's script belongs to, for the metrics. */
  readonly #owners = new Map<string, PolicyEntry>();
  stats = { hits: 0, misses: 0, revalidated: 0, changed: 0 };

  /** How long a body is served without revalidation. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  constructor(opts: ScriptCacheOptions) {
    this.#ttlMs = opts.ttlMs ?? 5 * 60_000;
    this.#maxEntries = opts.maxEntries ?? 500;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
    this.#egress = { allowPrivateNetwork: opts.allowPrivateNetwork };
    this.#log = opts.logger;
    this.#metrics = scriptCacheMetrics(opts.registry);
    this.#agent = new Agent({ connect: { lookup: guardedLookup(this.#egress) }, keepAliveTimeout: 30_000 });
  }

  /**
   * Learns which partner loads which URLs (their `allowHosts`), so the metrics name the partner
   * whose script changed; the longest entry wins, as in the page's router.
   */
  attribute(partners: readonly { id: string; allowHosts: readonly string[] }[]): void {
    for (const p of partners) {
      for (const entry of p.allowHosts) {
        const key = `${p.id}\u0000${entry}`;
        if (this.#owners.has(key) || this.#owners.size >= 10_000) continue;
        this.#owners.set(key, { partner: p.id, kind: 'allow', entry });
        // At 0 from the start: increase() ignores a new series' first sample, so the first change
        // of a script would otherwise never show in an alert.
        const host = hostOfEntry(entry);
        if (host !== null) this.#metrics.changes.inc({ partner: p.id, host }, 0);
      }
    }
  }

  /** The partner whose allowHosts entry matches `url` best ('' when none, or several list the same entry). */
  partnerOf(url: string): string {
    const match = matchPolicy([...this.#owners.values()], url);
    if (match === null) return '';
    let owners = 0;
    for (const e of this.#owners.values()) if (e.entry === match.entry) owners += 1;
    return owners === 1 ? match.partner : '';
  }

  /** Every body version seen per URL (hash, first seen), for audit. */
  versions(url: string): readonly ScriptVersion[] {
    return this.#versions.get(url) ?? [];
  }

  /** GET through the cache; concurrent callers of one URL share one upstream request. */
  async get(url: string, userAgent?: string): Promise<CachedResponse> {
    checkEgressUrl(url, this.#egress);
    const entry = this.#entries.get(url);
    if (entry && Date.now() - entry.fetchedAt < this.#ttlMs) {
      this.stats.hits++;
      this.#metrics.lookups.inc({ partner: this.partnerOf(url), result: 'hit' });
      // Refresh LRU position.
      this.#entries.delete(url);
      this.#entries.set(url, entry);
      return { ...this.#view(entry), fromCache: true };
    }
    const pending = this.#inflight.get(url);
    if (pending) return pending;
    const p = this.#fetch(url, entry, userAgent).finally(() => this.#inflight.delete(url));
    this.#inflight.set(url, p);
    return p;
  }

  #view(e: Entry): Omit<CachedResponse, 'fromCache'> {
    return { status: e.status, headers: e.headers, body: e.body, sha256: e.sha256 };
  }

  async #fetch(url: string, previous: Entry | undefined, userAgent?: string): Promise<CachedResponse> {
    const headers: Record<string, string> = { accept: '*/*' };
    if (userAgent) headers['user-agent'] = userAgent;
    if (previous?.etag) headers['if-none-match'] = previous.etag;
    if (previous?.lastModified) headers['if-modified-since'] = previous.lastModified;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        method: 'GET',
        headers,
        dispatcher: this.#agent,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (err) {
      const reason = err instanceof TagstreamError ? err.message : err instanceof Error ? err.message : String(err);
      // The egress refusal may surface wrapped by undici; keep the policy's own error visible.
      const cause = (err as { cause?: unknown }).cause;
      if (err instanceof TagstreamError) throw err;
      if (cause instanceof TagstreamError) throw cause;
      throw new UpstreamFetchError(url, reason, { cause: err });
    }
    if (res.statusCode === 304 && previous) {
      await res.body.dump();
      this.stats.revalidated++;
      this.#metrics.lookups.inc({ partner: this.partnerOf(url), result: 'revalidated' });
      previous.fetchedAt = Date.now();
      return { ...this.#view(previous), fromCache: true };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > this.#maxBytes) {
        res.body.destroy();
        throw new UpstreamFetchError(url, `body larger than ${this.#maxBytes} bytes`);
      }
      chunks.push(buf);
    }
    const body = Buffer.concat(chunks);
    const outHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined || DROP_HEADERS.has(k.toLowerCase())) continue;
      outHeaders[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const sha256 = createHash('sha256').update(body).digest('hex');
    this.stats.misses++;
    this.#metrics.lookups.inc({ partner: this.partnerOf(url), result: 'miss' });
    if (res.statusCode === 200) {
      const e: Entry = { status: 200, headers: outHeaders, body, sha256, fetchedAt: Date.now() };
      const etag = res.headers.etag;
      const lm = res.headers['last-modified'];
      if (typeof etag === 'string') e.etag = etag;
      if (typeof lm === 'string') e.lastModified = lm;
      this.#record(url, sha256, body.length);
      this.#entries.delete(url);
      this.#entries.set(url, e);
      while (this.#entries.size > this.#maxEntries) {
        const oldest = this.#entries.keys().next().value;
        if (oldest === undefined) break;
        this.#entries.delete(oldest);
      }
    }
    return { status: res.statusCode, headers: outHeaders, body, sha256, fromCache: false };
  }

  #record(url: string, sha256: string, bytes: number): void {
    const list = this.#versions.get(url) ?? [];
    const last = list[list.length - 1];
    if (last?.sha256 === sha256) return;
    list.push({ sha256, firstSeen: new Date().toISOString(), bytes });
    if (list.length > 20) list.shift();
    this.#versions.set(url, list);
    if (last) {
      this.stats.changed++;
      const host = new URL(url).host;
      this.#metrics.changes.inc({ partner: this.partnerOf(url), host });
      this.#log?.warn({ url, previous: last.sha256, sha256, bytes }, 'partner script changed');
    } else {
      this.#log?.info({ url, sha256, bytes }, 'partner script version recorded');
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
