/**
 * Which partner an entry of the jar belongs to, and the outcome warnings about the jar (entries
 * the budget dropped, stores that could not be read). Pure: tested without Chromium
 * (test/executor/jar-attribution.test.ts). docs/executor.md "Jar budget" describes the rules.
 */
import type { DroppedJarEntry } from '../../../core/contracts/jar-budget.ts';
import type { PolicyEntry } from '../egress.ts';
import type { TrackerOutcome } from '../schemas.ts';

/** What the page reported of who wrote what (inject/observers.js): name or key → partner. */
export interface Writers {
  cookies: Record<string, string>;
  localStorage: Record<string, string>;
}

export const NO_WRITERS: Readonly<Writers> = Object.freeze({ cookies: {}, localStorage: {} });

/** A store the run could not read at its end (the jar kept what it could: docs/executor.md). */
export interface PartialRead {
  what: 'localStorage' | 'cookies';
  /** The origin whose localStorage was not read; null for the cookies. */
  origin: string | null;
  reason: string;
}

/** The host name of an allowHosts/captureHosts entry (`host`, `host:port`, `[v6]:port`, URL prefix). */
export function entryHost(entry: string): string | null {
  if (/^https?:\/\//i.test(entry)) {
    try {
      return new URL(entry).hostname.toLowerCase();
    } catch {
      return null;
    }
  }
  const lower = entry.toLowerCase();
  const v6 = /^(\[[^\]]+\])(?::\d+)?$/.exec(lower);
  if (v6?.[1]) return v6[1];
  return lower.replace(/:\d+$/, '');
}

/** The one partner with an entry whose host `accepts`; null for none or several (a shared host). */
function onlyPartner(policy: readonly PolicyEntry[], accepts: (host: string) => boolean): string | null {
  const found = new Set<string>();
  for (const e of policy) {
    const host = entryHost(e.entry);
    if (host !== null && accepts(host)) found.add(e.partner);
  }
  return found.size === 1 ? ([...found][0] ?? null) : null;
}

/** The partner whose hosts serve `origin` (a partner frame's origin). */
export function partnerOfOrigin(policy: readonly PolicyEntry[], origin: string): string | null {
  let host: string;
  try {
    host = new URL(origin).hostname.toLowerCase();
  } catch {
    return null;
  }
  return onlyPartner(policy, (h) => h === host);
}

/** The partner whose hosts are in cookie domain `domain` (the domain or a subdomain of it). */
export function partnerOfDomain(policy: readonly PolicyEntry[], domain: string): string | null {
  const d = domain.toLowerCase().replace(/^\./, '');
  return onlyPartner(policy, (h) => h === d || h.endsWith(`.${d}`));
}

/** The budget names a cookie `name`, or `name (path)` off the root path. */
function cookieNames(budgetName: string): string[] {
  const m = /^(.*) \([^()]*\)$/.exec(budgetName);
  return m?.[1] !== undefined ? [budgetName, m[1]] : [budgetName];
}

export interface OwnerContext {
  writers: Readonly<Writers>;
  policy: readonly PolicyEntry[];
  pageOrigin: string;
  /** Partners that ran: a writer the page named must be one of them. */
  activeIds: ReadonlySet<string>;
}

/**
 * The partner a dropped entry belongs to: the one whose code wrote it (the page's hooks on
 * `document.cookie` and `localStorage.setItem`), else the one whose hosts match its cookie domain
 * or frame origin, else null (unattributed).
 */
export function ownerOfDropped(d: DroppedJarEntry, ctx: OwnerContext): string | null {
  const wrote = (map: Record<string, string>, name: string): string | null => {
    const who = Object.hasOwn(map, name) ? map[name] : undefined;
    return typeof who === 'string' && ctx.activeIds.has(who) ? who : null;
  };
  if (d.kind === 'cookie') {
    for (const name of cookieNames(d.name)) {
      const who = wrote(ctx.writers.cookies, name);
      if (who) return who;
    }
    return partnerOfDomain(ctx.policy, d.where);
  }
  if (d.where === ctx.pageOrigin) {
    const who = wrote(ctx.writers.localStorage, d.name);
    if (who) return who;
  }
  return partnerOfOrigin(ctx.policy, d.where);
}

/** Names are tags' own: shown, never values, and cut so a megabyte key cannot flood a warning. */
function shortName(name: string): string {
  return name.length > 80 ? `${name.slice(0, 80)}…` : name;
}

export function droppedWarning(d: DroppedJarEntry, attributed: boolean): string {
  return `jar: dropped ${d.kind} ${shortName(d.name)} on ${d.where} (${d.bytes} bytes, ${d.limit}${attributed ? '' : ', unattributed'})`;
}

export function partialWarning(p: PartialRead): string {
  const what = p.what === 'cookies' ? 'cookies' : `localStorage of ${p.origin ?? '?'}`;
  return `capture: partial (${what} not readable: ${p.reason})`;
}

/** Jar warnings per partner at most; the rest is summed up in one more line. */
export const MAX_JAR_WARNINGS = 20;

/** The warning lines of one partner: the first MAX_JAR_WARNINGS, the rest summed up in one line. */
export function cappedJarWarnings(entries: readonly { line: string; bytes: number }[]): string[] {
  if (entries.length <= MAX_JAR_WARNINGS) return entries.map((e) => e.line);
  const rest = entries.slice(MAX_JAR_WARNINGS);
  const bytes = rest.reduce((n, e) => n + e.bytes, 0);
  return [...entries.slice(0, MAX_JAR_WARNINGS).map((e) => e.line), `jar: dropped ${rest.length} more entries (${bytes} bytes)`];
}

/** `trackers` with `add`'s warnings appended per partner; `warnings` stays absent when none. */
export function withWarnings(trackers: readonly TrackerOutcome[], add: ReadonlyMap<string, readonly string[]>): TrackerOutcome[] {
  return trackers.map((t) => {
    const more = add.get(t.partner);
    if (!more || more.length === 0) return t;
    return { ...t, warnings: [...(t.warnings ?? []), ...more] };
  });
}

/**
 * The partners a partial read concerns: a frame origin's, the partner whose hosts serve it; the
 * page's storage and the cookies (the page as a whole), every partner that ran.
 */
export function partialWarnings(partial: readonly PartialRead[], policy: readonly PolicyEntry[], pageOrigin: string, activeIds: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of partial) {
    const owner = p.what === 'localStorage' && p.origin !== null && p.origin !== pageOrigin ? partnerOfOrigin(policy, p.origin) : null;
    for (const id of owner !== null ? [owner] : activeIds) out.set(id, [...(out.get(id) ?? []), partialWarning(p)]);
  }
  return out;
}
