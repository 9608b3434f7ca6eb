/**
 * The end of a page run as a browser closes a tab, with the events the browser itself fires
 * (trusted), in a closing tab's order: beforeunload → visibilitychange (hidden) → pagehide
 * (persisted false) → unload. Tags that ignore synthetic events (how SDKs tell automation from a
 * visitor) then flush as they do for a real visitor.
 *
 * How (prototype findings, chromium-headless-shell):
 * - a real navigation of the tab (to `leaveUrl`, answered by the router) fires beforeunload,
 *   pagehide and unload, trusted; the router holds its request, so the old document stays
 *   between beforeunload and its unload;
 * - meanwhile focus emulation is turned off: the tab's window is minimized for good (slot.ts)
 *   and focus emulation counts as a capture, which is what keeps the page visible, so the
 *   browser now hides it: visibilitychange to hidden is trusted and comes before pagehide as
 *   when a tab is closed (a navigation alone fires it after pagehide). Minimizing and restoring
 *   the window per event did the same at ~20 ms CPU per view instead of ~8;
 *   Page.setWebLifecycleState `frozen` also hides the page, but fires `freeze`, which a closing
 *   tab never gets, and leaves it hidden;
 * - while that navigation is pending DevTools holds every command for the renderer
 *   (Runtime.evaluate, Emulation…: sent, answered after the commit): the page reports through
 *   the tab's binding instead (inject/lifecycle.js armLeave), the report from its last unload
 *   listener, so what tags write and send while the page goes away is in it;
 * - beacons and keepalive fetches sent during pagehide and unload reach the interceptor after
 *   the document is gone (the tab's session and Fetch domain stay): they are waited for by the
 *   hints the report names, bounded.
 * Focus emulation is turned back on after the result is handed out (showTab, from the tab's
 * wipe): the next visitor's page is visible and focused again.
 */
import type { Protocol } from 'puppeteer-core';
import type { Slot } from '../slot.ts';
import { onSlot } from '../slot.ts';
import type { PageReport } from './attribution.ts';
import type { FrameExchange } from './frame-storage.ts';
import type { Router } from './router.ts';

export interface LeavePlan {
  leaveUrl: string;
  /** Wall time the hidden phase may take (page time for what it sends, then the barrier). */
  hideWallMs: number;
  pageOrigin: string;
}

const sleep = (ms: number): Promise<null> => new Promise((r) => setTimeout(() => r(null), ms));

/** A value the page will send once, or null after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  return Promise.race([p, sleep(ms)]);
}

/**
 * Closes the visitor's document for real and returns its report, or null when the page could
 * not say (the tab is then marked dirty and replaced). Rejects only when the tab is lost.
 */
export async function closeTab(slot: Slot, router: Router, frames: FrameExchange, plan: LeavePlan): Promise<PageReport | null> {
  let hidden!: () => void;
  let reported!: (payload: string) => void;
  const hiddenP = new Promise<true>((r) => (hidden = () => r(true)));
  const reportP = new Promise<string>((r) => (reported = r));
  slot.leaveMessage = (payload) => (payload === 'hidden' ? hidden() : reported(payload));
  const held = new Promise<string>((r) => (router.onLeave = r));
  // The leave document is in the tab once its main frame navigated (the history wipe needs it).
  let onNavigated: ((e: Protocol.Page.FrameNavigatedEvent) => void) | null = null;
  const committed = new Promise<true>((r) => {
    onNavigated = (e) => {
      if (!e.frame.parentId && e.frame.url === plan.leaveUrl) r(true);
    };
    slot.session.on('Page.frameNavigated', onNavigated);
  });
  // Without the window (not minimized), the page cannot be hidden before its pagehide.
  const canHide = slot.windowId >= 0;
  try {
    // Focus emulation keeps the page visible (the tab counts as captured): off while it closes,
    // and before the navigation (the renderer answers no Emulation command while it is pending).
    slot.hiddenTab = canHide;
    const nav = slot.session.send('Page.navigate', { url: plan.leaveUrl }).catch(() => null);
    // beforeunload runs before the navigation's request: it has run once the request is held.
    const requestId = await onSlot(slot, 'closing the tab', 2000, within(held, 1500));
    if (requestId === null) {
      slot.dirty = true;
      return null;
    }
    if (canHide) {
      // Not awaited: the browser applies it at once, the renderer's answer waits for the commit.
      slot.session.send('Emulation.setFocusEmulationEnabled', { enabled: false }).catch(() => undefined);
      if ((await onSlot(slot, 'hidden phase', plan.hideWallMs + 2000, within(hiddenP, plan.hideWallMs + 700))) === null) slot.dirty = true;
    }
    router.releaseLeave(requestId);
    const payload = await onSlot(slot, 'unload report', 3000, within(reportP, 1500));
    await onSlot(slot, 'leave navigation', 3000, Promise.all([nav, within(committed, 2000)]));
    const report = payload === null ? null : (JSON.parse(payload) as PageReport);
    if (!report) slot.dirty = true;
    else await drainLeave(router, frames, report, plan.pageOrigin);
    return report;
  } finally {
    slot.leaveMessage = null;
    router.onLeave = null;
    if (onNavigated) slot.session.off('Page.frameNavigated', onNavigated);
  }
}

/**
 * What the page sent while it went away arrives after its document is gone: the requests its
 * hints name after the tab started closing, and partner frames' pagehide snapshots.
 */
async function drainLeave(router: Router, frames: FrameExchange, report: PageReport, pageOrigin: string): Promise<void> {
  const from = report.leaveFrom ?? report.hints.length;
  const urls = report.hints
    .slice(Math.max(0, from))
    .map((h) => h.url)
    .filter((u) => /^https?:/i.test(u));
  const frameOrigins = [...router.frameOrigins].filter((o) => o !== pageOrigin);
  const done = (): boolean => urls.every((u) => router.seen.has(u)) && frameOrigins.every((o) => frames.snapshots.has(o));
  for (let i = 0; !done() && i < 150; i++) await sleep(2);
}

/** Restores what closeTab changed: focus emulation (the next visitor's page is visible and focused). */
export async function showTab(slot: Slot): Promise<void> {
  await slot.session.send('Emulation.setFocusEmulationEnabled', { enabled: true });
  slot.hiddenTab = false;
}

/**
 * Resets the tab's history to its current entry. After a real close that must be the leave
 * document, and the browser may learn of its commit after the renderer said so (frameNavigated):
 * a reset before that would keep the visitor's page and add the leave document after it.
 */
export async function resetHistory(slot: Slot, leaveUrl: string | null): Promise<void> {
  const s = slot.session;
  for (let i = 0; leaveUrl !== null && i < 50; i++) {
    const h = await s.send('Page.getNavigationHistory');
    if (h.entries[h.currentIndex]?.url === leaveUrl) break;
    await sleep(2);
  }
  await s.send('Page.resetNavigationHistory');
}
