/**
 * The visitor's jar in and out of the tab: cookies as CDP wants and gives them, which reads a
 * visit needs, and the jar's localStorage after the visit. Pure.
 */
import type { Protocol } from 'puppeteer-core';
import type { Jar, JarCookie, PartnerConfig } from '../schemas.ts';
import type { PageReport } from './attribution.ts';

export function toCookieParam(c: JarCookie): Protocol.Network.CookieParam {
  const p: Protocol.Network.CookieParam = {
    name: c.name,
    value: c.value,
    domain: c.domain,
    path: c.path,
    secure: c.secure || c.sameSite === 'None',
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
  };
  if (c.expires > 0) p.expires = c.expires;
  return p;
}

export function fromCookie(c: Protocol.Network.Cookie): JarCookie {
  return {
    name: c.name,
    value: c.value,
    domain: c.domain,
    path: c.path,
    expires: c.session || c.expires <= 0 ? -1 : Math.round(c.expires),
    httpOnly: c.httpOnly,
    secure: c.secure,
    // Chrome treats a cookie without SameSite as Lax.
    sameSite: c.sameSite ?? 'Lax',
  };
}

/**
 * Cookies can only have changed through document.cookie, the CookieStore API, a configured
 * response header or a loaded frame; otherwise the jar's cookies stand as they came in (one CDP
 * read saved per view).
 */
export function cookiesMayChange(
  report: Pick<PageReport, 'cookieWrites' | 'cookieStoreUsed'> | null,
  frameOrigins: ReadonlySet<string>,
  active: readonly Pick<PartnerConfig, 'responses'>[],
): boolean {
  return (
    !report ||
    report.cookieWrites > 0 ||
    report.cookieStoreUsed ||
    frameOrigins.size > 1 ||
    active.some((p) => p.responses.some((r) => Object.keys(r.headers ?? {}).some((h) => h.toLowerCase() === 'set-cookie')))
  );
}

/**
 * The jar's localStorage after the visit: the page origin's as the page left it, each partner
 * frame's as captured, every other origin of the jar unchanged; an emptied store drops its origin.
 */
export function mergeLocalStorage(
  before: Jar['localStorage'],
  report: Pick<PageReport, 'origin' | 'localStorage'> | null,
  frames: ReadonlyMap<string, Record<string, string>>,
): Jar['localStorage'] {
  const out: Jar['localStorage'] = { ...before };
  const set = (origin: string, items: Record<string, string>): void => {
    if (Object.keys(items).length > 0) out[origin] = items;
    else delete out[origin];
  };
  if (report) set(report.origin, report.localStorage);
  for (const [origin, items] of frames) set(origin, items);
  return out;
}
