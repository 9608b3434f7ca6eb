/**
 * Which partner sent each captured request, what transport it really was, and each partner's
 * outcome: pure functions of what the router captured and what the page reported (hints from
 * inject/bootstrap.js), so they are tested without Chromium (test/executor/attribution.test.ts).
 */
import type { CapturedRequest, PartnerConfig, TrackerOutcome, Transport } from '../schemas.ts';
import type { Writers } from './jar-attribution.ts';

/** The page's note of a request it saw leave (URL, calling partner, how). */
export interface Hint {
  url: string;
  partner: string | null;
  transport: Transport;
}

/** What the page reports at the end (inject/bootstrap.js `collect`). */
export interface PageReport {
  origin: string;
  localStorage: Record<string, string>;
  errors: { partner: string | null; message: string }[];
  marks: Record<string, { begin: number; end: number }>;
  hints: Hint[];
  /** Hints made before the tab started closing (page/leave.ts waits for the later ones); -1 without. */
  leaveFrom?: number;
  timedOut: Record<string, boolean>;
  loadedAt: number;
  cookieWrites: number;
  cookieStoreUsed: boolean;
  storageUsed: boolean;
  historyUsed: boolean;
  /** Who last wrote each cookie (by name) and localStorage key of the page. */
  writers: Writers;
}

/** A request as the router captured it: partner from the policy (or null), wall time it arrived. */
export interface Captured extends CapturedRequest {
  at: number;
  /** A policy entry matched its URL. */
  fromPolicy: boolean;
}

/** The only partner of the page, to which everything unattributed belongs; null with several. */
export function singlePartner(active: readonly Pick<PartnerConfig, 'id'>[]): string | null {
  return active.length === 1 ? (active[0]?.id ?? null) : null;
}

/** Index of the first unused hint for `c` (a GET form's URL is its action plus the fields), or -1. */
function findHint(c: Captured, hints: readonly Hint[], used: Set<number>): number {
  return hints.findIndex(
    (h, i) => !used.has(i) && (h.url === c.url || (h.transport === 'form' && c.url.startsWith(h.url.split('#')[0] ?? h.url))),
  );
}

/** The transport the page-side hook saw, where the Fetch domain cannot tell. */
function refineTransport(transport: Transport, hint: Hint): Transport {
  // fetch(keepalive) stays `fetch`; a form posted into a frame is a `form`.
  if (hint.transport === 'form' && (transport === 'iframe' || transport === 'other')) return 'form';
  // Chromium reports fetch() as XHR in the Fetch domain: the page-side hook knows which it was.
  if ((hint.transport === 'fetch' || hint.transport === 'xhr') && (transport === 'xhr' || transport === 'fetch' || transport === 'other')) {
    return hint.transport;
  }
  if (hint.transport === 'beacon' && transport === 'other') return 'beacon';
  return transport;
}

export interface Attribution {
  requests: CapturedRequest[];
  /** Wall time of each partner's last request. */
  lastAt: Map<string, number>;
}

/**
 * Names the partner of each captured request: the policy's, else the page's hint (the calling
 * partner script), else the page's only partner. `workerFetches` (URLs a worker's fetch hook
 * reported) is consumed.
 */
export function attributeRequests(
  captured: readonly Captured[],
  hints: readonly Hint[],
  workerFetches: string[],
  activeIds: ReadonlySet<string>,
  single: string | null,
): Attribution {
  const used = new Set<number>();
  const lastAt = new Map<string, number>();
  const requests = captured.map((c): CapturedRequest => {
    let partner = c.partner;
    let transport = c.transport;
    const hi = findHint(c, hints, used);
    const h = hi >= 0 ? hints[hi] : undefined;
    if (h) {
      used.add(hi);
      if (partner === null && h.partner && activeIds.has(h.partner)) partner = h.partner;
      transport = refineTransport(transport, h);
    } else if (transport === 'xhr') {
      // No page-side hint: a worker's request; its fetch hook says whether it was fetch().
      const wi = workerFetches.indexOf(c.url);
      if (wi >= 0) {
        workerFetches.splice(wi, 1);
        transport = 'fetch';
      }
    }
    partner ??= single;
    if (partner !== null) lastAt.set(partner, Math.max(lastAt.get(partner) ?? 0, c.at));
    return { partner, method: c.method, url: c.url, headers: c.headers, body: c.body, bodyEncoding: c.bodyEncoding, transport };
  });
  return { requests, lastAt };
}

/** Each partner's first uncaught error (an error nobody claims belongs to the only partner). */
export function partnerErrors(
  errors: readonly { partner: string | null; message: string }[],
  activeIds: ReadonlySet<string>,
  single: string | null,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of errors) {
    const who = e.partner && activeIds.has(e.partner) ? e.partner : single;
    if (who && !out.has(who)) out.set(who, e.message);
  }
  return out;
}

/** What the run knew at its end, for the outcomes. */
export interface RunFacts {
  /** Wall time the page run started and ended. */
  t0: number;
  end: number;
  report: Pick<PageReport, 'marks' | 'timedOut' | 'loadedAt' | 'errors'> | null;
  lastAt: ReadonlyMap<string, number>;
  /** Wall times at which the watchdog terminated a script. */
  terminatedAt: readonly number[];
  /** Partners the page named after a termination. */
  suspects: ReadonlySet<string>;
  /** The page stopped answering for good. */
  hung: boolean;
  /** Why the synthetic navigation failed, if it did. */
  navError: string | undefined;
}

/** One outcome per configured partner, in configuration order (DESIGN.md "Contract details"). */
export function outcomes(partners: readonly PartnerConfig[], activeIds: ReadonlySet<string>, facts: RunFacts): TrackerOutcome[] {
  const { report, terminatedAt } = facts;
  const single = singlePartner(partners.filter((p) => activeIds.has(p.id)));
  const errors = partnerErrors(report?.errors ?? [], activeIds, single);
  return partners.map((p): TrackerOutcome => {
    if (!activeIds.has(p.id)) return { partner: p.id, status: 'skipped', durationMs: 0, error: null };
    const mark = report?.marks[p.id];
    const last = facts.lastAt.get(p.id);
    const doneAt = last ?? (mark && mark.end > 0 ? mark.end : report?.loadedAt || facts.end);
    const durationMs = Math.max(0, Math.round(doneAt - facts.t0));
    // Sections run one after the other: the one open when the executor terminated was stuck.
    const stuckSection = mark !== undefined && terminatedAt.some((t) => mark.begin <= t && (mark.end === 0 || mark.end >= t));
    // Code stuck outside a section or timer (a promise callback, an event handler) cannot be
    // named; with a single partner in the page it can only be that one.
    const onlyOne = terminatedAt.length > 0 && single === p.id;
    const timedOut = facts.hung || facts.suspects.has(p.id) || report?.timedOut[p.id] === true || stuckSection || onlyOne;
    if (timedOut) return { partner: p.id, status: 'timeout', durationMs, error: `did not yield within ${p.timeoutMs} ms` };
    const err = errors.get(p.id);
    if (err !== undefined) return { partner: p.id, status: 'error', durationMs, error: err };
    if (facts.navError) return { partner: p.id, status: 'error', durationMs, error: `page run failed: ${facts.navError}` };
    return { partner: p.id, status: 'ok', durationMs, error: null };
  });
}
