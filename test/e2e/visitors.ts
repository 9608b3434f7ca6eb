/**
 * Visitors of the end-to-end suite: each one posts its page views to the collector's HTTP API as
 * the first-party tag does (text/plain JSON, its own browser's user agent and language, the `tsuid`
 * cookie the collector set on the first answer), one view after the other. A 503 (broker down) is
 * retried as a visitor's next page would, within a bounded time; only 204s count as accepted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { PARTNERS, type Hit, type PartnerId } from './partners.ts';

export interface Visitor {
  index: number;
  userAgent: string;
  language: string;
  timezone: string;
  advertising: boolean;
  cookie?: string;
}

export interface PageView {
  visitor: Visitor;
  url: string;
  acceptedAt: number;
}

const LANGS = ['fr-FR', 'de-DE', 'en-GB', 'es-ES', 'it-IT'];
const ZONES = ['Europe/Paris', 'Europe/Berlin', 'Europe/London', 'Europe/Madrid', 'Europe/Rome'];

export function visitors(count: number, offset = 0): Visitor[] {
  return Array.from({ length: count }, (_, k) => {
    const index = offset + k;
    return {
      index,
      // Each visitor's own browser build, so a delivery proves whose context it carried.
      userAgent: `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.${index}.0 Safari/537.36`,
      language: LANGS[index % LANGS.length] as string,
      timezone: ZONES[index % ZONES.length] as string,
      advertising: index % 2 === 0,
    };
  });
}

export interface DriveOptions {
  collector: string;
  /** A tag in every URL so that phases never mix. */
  run: string;
  views: number;
  /** Visitors in flight at once. */
  parallel?: number;
  /** Pause between one visitor's views (the visitor reading the page). */
  thinkMs?: number;
  /** How long one view may keep being retried on 503 before the visitor gives up on it. */
  retryForMs?: number;
  /** The whole drive's bound: after it, no view is retried any more (default 5 min). */
  deadlineMs?: number;
}

export interface DriveResult {
  accepted: PageView[];
  /** Page views the collector never accepted (each one retried until retryForMs). */
  refused: number;
}

export async function drive(people: Visitor[], options: DriveOptions): Promise<DriveResult> {
  const accepted: PageView[] = [];
  let refused = 0;
  const queue = [...people];
  const deadline = Date.now() + (options.deadlineMs ?? 300_000);
  const worker = async (): Promise<void> => {
    for (let v = queue.shift(); v !== undefined; v = queue.shift()) {
      for (let n = 0; n < options.views; n += 1) {
        const url = `https://www.shop.example/${options.run}/v${v.index}/p${n}`;
        const at = await postView(options.collector, v, url, n, Math.min(options.retryForMs ?? 60_000, deadline - Date.now()));
        if (at === undefined) refused += 1;
        else accepted.push({ visitor: v, url, acceptedAt: at });
        if (options.thinkMs) await sleep(options.thinkMs);
      }
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 8 }, worker));
  return { accepted, refused };
}

async function postView(collector: string, v: Visitor, url: string, n: number, retryForMs: number): Promise<number | undefined> {
  const body = JSON.stringify({
    page: { url, title: `Page ${n}`, referrer: n === 0 ? 'https://www.google.com/' : '' },
    device: { userAgent: v.userAgent, language: v.language, languages: [v.language], timezone: v.timezone, screen: { width: 1920, height: 1080, colorDepth: 24, pixelRatio: 1 }, viewport: { width: 1280, height: 720 } },
    consent: { analytics: true, advertising: v.advertising },
  });
  const deadline = Date.now() + retryForMs;
  for (;;) {
    try {
      const res = await request(`${collector}/collect`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'user-agent': v.userAgent, 'accept-language': v.language, ...(v.cookie ? { cookie: v.cookie } : {}) },
        body,
        headersTimeout: 15_000,
        bodyTimeout: 15_000,
      });
      await res.body.dump();
      const set = res.headers['set-cookie'];
      const first = (Array.isArray(set) ? set : set ? [set] : []).find((c) => c.startsWith('tsuid='));
      if (first) v.cookie = first.split(';')[0];
      if (res.statusCode === 204) return Date.now();
      if (res.statusCode !== 503) throw new Error(`collector answered ${res.statusCode} for ${url}`);
    } catch (error) {
      if ((error as Error).message.startsWith('collector answered')) throw error;
      // connection refused / reset: the collector restarts or the broker is away; retry
    }
    if (Date.now() > deadline) return undefined;
    await sleep(500);
  }
}

export function consented(v: Visitor): PartnerId[] {
  return PARTNERS.filter((p) => p.consent === 'analytics' || v.advertising).map((p) => p.id);
}

export interface Figures {
  sent: number;
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  /** Deliveries to a partner the visitor did not consent to. */
  unconsented: number;
  /** Deliveries whose user agent, language or time zone is not the visitor's. */
  wrongContext: number;
  /** (visitor, partner) pairs whose id changed between page views. */
  unstableIds: number;
}

/** What the partners received for these page views, against what they should have. */
export function figures(views: PageView[], delivered: Hit[], skip: (view: PageView, partner: PartnerId) => boolean = () => false): Figures {
  const byUrl = new Map<string, Hit[]>();
  for (const h of delivered) {
    const list = byUrl.get(h.url) ?? [];
    list.push(h);
    byUrl.set(h.url, list);
  }
  const f: Figures = { sent: views.length, expected: 0, delivered: 0, duplicates: 0, lost: 0, unconsented: 0, wrongContext: 0, unstableIds: 0 };
  const ids = new Map<string, Set<string>>();
  for (const view of views) {
    const hits = byUrl.get(view.url) ?? [];
    const want = consented(view.visitor);
    for (const p of PARTNERS.map((x) => x.id)) {
      const mine = hits.filter((h) => h.partner === p);
      if (!want.includes(p)) {
        f.unconsented += mine.length;
        continue;
      }
      if (skip(view, p)) continue;
      f.expected += 1;
      if (mine.length === 0) f.lost += 1;
      else f.delivered += 1;
      f.duplicates += Math.max(0, mine.length - 1);
      for (const h of mine) {
        if (h.userAgent !== view.visitor.userAgent || h.lang !== view.visitor.language || h.tz !== view.visitor.timezone) f.wrongContext += 1;
        const key = `${view.visitor.index}/${p}`;
        const set = ids.get(key) ?? new Set<string>();
        set.add(h.id);
        ids.set(key, set);
      }
    }
  }
  for (const set of ids.values()) if (set.size > 1) f.unstableIds += 1;
  return f;
}

/** Partner ids seen for more than one visitor (ids must be per visitor). */
export function sharedIds(views: PageView[], delivered: Hit[]): number {
  const owner = new Map<string, number>();
  const urls = new Map(views.map((v) => [v.url, v.visitor.index]));
  let shared = 0;
  for (const h of delivered) {
    const visitor = urls.get(h.url);
    if (visitor === undefined) continue;
    const k = `${h.partner}/${h.id}`;
    const o = owner.get(k);
    if (o === undefined) owner.set(k, visitor);
    else if (o !== visitor) shared += 1;
  }
  return shared;
}

export function print(label: string, f: Figures, extra: Record<string, string | number> = {}): void {
  const more = Object.entries(extra).map(([k, v]) => `, ${k} ${v}`).join('');
  console.log(`      [e2e] ${label}: sent ${f.sent} page views, expected ${f.expected} deliveries, delivered ${f.delivered}, duplicates ${f.duplicates}, lost ${f.lost}${more}`);
}
