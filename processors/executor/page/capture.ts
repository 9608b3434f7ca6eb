/**
 * The jar at the end of a page run: the page's localStorage from its report, partner frames'
 * from CDP DOMStorage or their snapshots, cookies from the browser's cookie store. What cannot be
 * read keeps the jar's values with the writes the journal saw (storage-journal.ts), and is listed
 * as a partial read for the outcomes (docs/executor.md "Jar": what is kept and what is not).
 */
import type { Logger } from '../../../core/log.ts';
import type { Jar, JarCookie, PartnerConfig } from '../schemas.ts';
import { onSlot, type Slot } from '../slot.ts';
import type { PageReport } from './attribution.ts';
import { captureFrameStorage, framesOfHungPage, jarFrameOrigins, type FrameStorage } from './frame-storage.ts';
import { cookiesMayChange, fromCookie, mergeLocalStorage } from './jar.ts';
import type { PartialRead } from './jar-attribution.ts';
import type { StorageJournal } from './storage-journal.ts';

export interface CaptureInput {
  slot: Slot;
  pageUrl: URL;
  /** The jar the run started from. */
  jar: Jar;
  report: PageReport | null;
  hung: boolean;
  navError: string | undefined;
  /** Origins whose documents loaded (the page's first). */
  frameOrigins: ReadonlySet<string>;
  snapshots: ReadonlyMap<string, Record<string, string>>;
  journal: StorageJournal;
  active: readonly PartnerConfig[];
  log: Logger;
}

export interface JarCapture {
  jar: Jar;
  frames: FrameStorage;
  partial: PartialRead[];
  /** Cookies may have been set in the tab (it must be wiped). */
  cookiesMayChange: boolean;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Why the page gave no report. */
function noReportReason(i: Pick<CaptureInput, 'hung' | 'navError'>): string {
  if (i.hung) return 'the page stopped answering';
  if (i.navError !== undefined) return `the navigation failed (${i.navError})`;
  return 'the page did not report its end';
}

/** Captures the jar; rejects only when the tab or its browser is lost (the pool retries then). */
export async function captureJar(i: CaptureInput): Promise<JarCapture> {
  const jarOrigins = jarFrameOrigins(i.jar, i.pageUrl);
  const frames = i.hung
    ? framesOfHungPage(i.frameOrigins, jarOrigins, i.pageUrl, i.snapshots)
    : await captureFrameStorage(i.slot, i.pageUrl, i.frameOrigins, jarOrigins, i.snapshots, i.log);
  const partial: PartialRead[] = [];
  for (const [origin, reason] of frames.unread) {
    frames.items.set(origin, i.journal.applyTo(origin, i.jar.localStorage[origin] ?? {}));
    partial.push({ what: 'localStorage', origin, reason });
  }
  const pageOrigin = i.report?.origin ?? i.pageUrl.origin;
  let pageItems: Record<string, string>;
  if (i.report) {
    pageItems = i.report.localStorage;
  } else {
    pageItems = i.journal.applyTo(pageOrigin, i.jar.localStorage[pageOrigin] ?? {});
    partial.push({ what: 'localStorage', origin: pageOrigin, reason: noReportReason(i) });
  }
  const mayChange = cookiesMayChange(i.report, i.frameOrigins, i.active);
  const cookies = mayChange ? await readCookies(i, partial) : i.jar.cookies;
  const localStorage = mergeLocalStorage(i.jar.localStorage, { origin: pageOrigin, localStorage: pageItems }, frames.items);
  if (partial.length > 0) i.log.warn({ partial: partial.map((p) => ({ what: p.what, origin: p.origin, reason: p.reason })) }, 'jar captured in part');
  return { jar: { cookies, localStorage }, frames, partial, cookiesMayChange: mayChange };
}

/**
 * The browser's cookie store answers even when the renderer hangs (it is the browser's, not the
 * page's). When it does not, the jar's cookies stand: cookies set during the run are then lost.
 */
async function readCookies(i: CaptureInput, partial: PartialRead[]): Promise<JarCookie[]> {
  const { slot } = i;
  try {
    const got = await onSlot(slot, 'Storage.getCookies', 5000, slot.browserSession.send('Storage.getCookies', { browserContextId: slot.browserContextId }));
    return got.cookies.map(fromCookie);
  } catch (err) {
    // A lost tab or browser is the pool's to retry, not a partial capture.
    if (slot.signal.aborted) throw err;
    partial.push({ what: 'cookies', origin: null, reason: errorText(err) });
    return i.jar.cookies;
  }
}
