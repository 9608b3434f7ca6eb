/**
 * Partner frames' own localStorage through the jar (docs/executor.md "What a partner's tag sees").
 *
 * Chromium partitions a third-party frame's storage by top-level site (storage key
 * `<origin>/^0<top-level site>`; a same-site frame's key is `<origin>/`). The jar keeps it by the
 * frame's origin. Restore: each new cross-origin frame document fetches its origin's entry
 * synchronously from this tab's exchange (inject/frame-storage.js; answered here, never listed).
 * Capture: a frame still in the page is read through CDP DOMStorage; a frame removed earlier sent
 * a snapshot on `pagehide`. The storage keys also serve the wipe after the visit.
 */
import type { Protocol } from 'puppeteer-core';
import { siteOf } from '../../../core/site.ts';
import type { Logger } from '../../../core/log.ts';
import { frameStoragePath } from '../in-page.ts';
import type { Jar } from '../schemas.ts';
import { onSlot, type Slot } from '../slot.ts';

/**
 * Top-level sites Chromium named in the storage keys of live frames, by page origin: they win
 * over the computed site (Chromium's copy of the public suffix list may differ from tldts's).
 */
const learnedSites = new Map<string, string>();

export { siteOf };

/** The storage key Chromium gives a frame of `origin` in a page at `pageUrl`. */
export function frameStorageKey(origin: string, pageUrl: URL): string {
  const top = learnedSites.get(pageUrl.origin) ?? siteOf(pageUrl);
  return siteOf(new URL(origin)) === top ? `${origin}/` : `${origin}/^0${top}`;
}

/** Records the top-level site in a storage key Chromium reported for a frame of `pageOrigin`. */
function learnSite(pageOrigin: string, storageKey: string): void {
  const top = /\^0([^^]+)/.exec(storageKey)?.[1];
  if (!top) return;
  if (learnedSites.size > 1000) learnedSites.clear();
  learnedSites.set(pageOrigin, top);
}

/** Origins of the jar's localStorage a partner frame may use (http(s), not the page's own). */
export function jarFrameOrigins(jar: Jar, pageUrl: URL): string[] {
  return Object.keys(jar.localStorage).filter((o) => o !== pageUrl.origin && /^https?:\/\//.test(o));
}

export interface FrameAnswer {
  status: number;
  json: Buffer | null;
}

/** The tab's side of inject/frame-storage.js's exchange for one visit. */
export class FrameExchange {
  readonly #path: string;
  readonly #jar: Jar;
  /** Snapshots frames sent on pagehide, by origin. */
  readonly snapshots = new Map<string, Record<string, string>>();

  constructor(token: string, jar: Jar) {
    this.#path = frameStoragePath(token);
    this.#jar = jar;
  }

  /** The answer to a request of the exchange, or null when `url` is not one. */
  answer(url: string, method: string, body: () => string | null): FrameAnswer | null {
    const at = url.indexOf(this.#path);
    if (at < 0) return null;
    const origin = url.slice(0, at);
    if (url.endsWith('/in') && method === 'GET') {
      return { status: 200, json: Buffer.from(JSON.stringify(this.#jar.localStorage[origin] ?? {}), 'utf8') };
    }
    if (url.endsWith('/out')) {
      try {
        const snap: unknown = JSON.parse(body() ?? '');
        if (snap && typeof snap === 'object') this.snapshots.set(origin, snap as Record<string, string>);
      } catch {
        // not a snapshot of ours
      }
    }
    return { status: 204, json: null };
  }
}

export interface FrameStorage {
  /** Storage key per frame origin of the visit (loaded or restored), for the wipe. */
  keys: Map<string, string>;
  /** The localStorage captured per frame origin. */
  items: Map<string, Record<string, string>>;
  /** Frame origins whose documents loaded this visit and whose storage could not be read, and why. */
  unread: Map<string, string>;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Storage keys of every frame origin of the visit: those whose documents loaded and the jar's. */
export function frameKeys(frameOrigins: ReadonlySet<string>, jarOrigins: readonly string[], pageUrl: URL): Map<string, string> {
  const keys = new Map<string, string>();
  for (const o of [...frameOrigins, ...jarOrigins]) if (o !== pageUrl.origin) keys.set(o, frameStorageKey(o, pageUrl));
  return keys;
}

/** Frame origins that loaded, are not the page's and have nothing in `items`: why is `reason`. */
function markUnread(frameOrigins: ReadonlySet<string>, pageUrl: URL, items: ReadonlyMap<string, unknown>, unread: Map<string, string>, reason: string): void {
  for (const o of frameOrigins) if (o !== pageUrl.origin && !items.has(o) && !unread.has(o)) unread.set(o, reason);
}

/**
 * A page that stopped answering cannot be asked for its frames: what frames removed earlier sent
 * on `pagehide` is all that is known; every other frame origin that loaded is unread.
 */
export function framesOfHungPage(
  frameOrigins: ReadonlySet<string>,
  jarOrigins: readonly string[],
  pageUrl: URL,
  snapshots: ReadonlyMap<string, Record<string, string>>,
): FrameStorage {
  const keys = frameKeys(frameOrigins, jarOrigins, pageUrl);
  const items = new Map<string, Record<string, string>>();
  for (const [origin, snap] of snapshots) if (keys.has(origin)) items.set(origin, snap);
  const unread = new Map<string, string>();
  markUnread(frameOrigins, pageUrl, items, unread, 'the page stopped answering');
  return { keys, items, unread };
}

/**
 * Frames still in the page, with the storage key Chromium gave them (which teaches the site).
 * Rejects when the frame tree cannot be read; a frame whose key cannot be read is `unread`.
 */
async function liveFrames(slot: Slot, keys: Map<string, string>, pageUrl: URL, unread: Map<string, string>): Promise<[string, string][]> {
  const tree = await onSlot(slot, 'Page.getFrameTree', 5000, slot.session.send('Page.getFrameTree'));
  const frames: Protocol.Page.Frame[] = [];
  const walk = (t: Protocol.Page.FrameTree): void => {
    for (const c of t.childFrames ?? []) {
      if (keys.has(c.frame.securityOrigin)) frames.push(c.frame);
      walk(c);
    }
  };
  walk(tree.frameTree);
  const live: [string, string][] = [];
  for (const f of frames) {
    const k = await onSlot(slot, 'Storage.getStorageKeyForFrame', 5000, slot.session.send('Storage.getStorageKeyForFrame', { frameId: f.id })).catch(
      (err: unknown) => {
        unread.set(f.securityOrigin, `frame storage key not readable: ${errorText(err)}`);
        return null;
      },
    );
    if (!k) continue;
    keys.set(f.securityOrigin, k.storageKey);
    if (!live.some(([o]) => o === f.securityOrigin)) live.push([f.securityOrigin, k.storageKey]);
    learnSite(pageUrl.origin, k.storageKey);
  }
  return live;
}

/**
 * Captures partner frames' localStorage at the end of a visit: a removed frame's snapshot, a live
 * frame's store (DOMStorage needs a live frame of the storage key); an origin only the jar named
 * stands as it was (no entry here). A frame origin that loaded but could not be read is listed in
 * `unread` (the caller keeps the jar's values and the writes it saw).
 */
export async function captureFrameStorage(
  slot: Slot,
  pageUrl: URL,
  frameOrigins: ReadonlySet<string>,
  jarOrigins: readonly string[],
  snapshots: ReadonlyMap<string, Record<string, string>>,
  log: Logger,
): Promise<FrameStorage> {
  const keys = frameKeys(frameOrigins, jarOrigins, pageUrl);
  const items = new Map<string, Record<string, string>>();
  const unread = new Map<string, string>();
  if (keys.size === 0) return { keys, items, unread };
  let live: [string, string][] = [];
  if (frameOrigins.size > 1) {
    try {
      live = await liveFrames(slot, keys, pageUrl, unread);
    } catch (err) {
      markUnread(frameOrigins, pageUrl, items, unread, `frame tree not readable: ${errorText(err)}`);
    }
  }
  for (const [origin, snap] of snapshots) if (keys.has(origin)) items.set(origin, snap);
  const reads = Promise.all(
    live.map(async ([origin, storageKey]) => {
      const got = await slot.session.send('DOMStorage.getDOMStorageItems', { storageId: { storageKey, isLocalStorage: true } });
      items.set(origin, Object.fromEntries(got.entries.map((e) => [e[0] ?? '', e[1] ?? ''])));
    }),
  );
  await onSlot(slot, 'frame localStorage', 5000, reads).catch((err: unknown) => {
    log.warn({ err: String(err) }, 'frame localStorage not captured');
    for (const [origin] of live) if (!items.has(origin)) unread.set(origin, `DOMStorage read failed: ${errorText(err)}`);
  });
  for (const o of unread.keys()) if (items.has(o)) unread.delete(o);
  markUnread(frameOrigins, pageUrl, items, unread, 'the frame was gone before the end and sent no snapshot');
  return { keys, items, unread };
}
