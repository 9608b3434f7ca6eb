/**
 * Set-Cookie from a partner's response, parsed and checked as a browser would (tough-cookie, RFC
 * 6265bis): the Domain attribute must domain-match the request host and not be a public suffix,
 * `__Secure-`/`__Host-` prefixes hold, a Secure cookie needs https, and SameSite=None needs Secure
 * (Chromium drops it otherwise). The response of a cross-site request (the partner's site is not
 * the page's, told by the captured Referer) sets only SameSite=None cookies: a browser ignores
 * Lax and Strict ones there, and one without SameSite too (Chromium's Lax by default), since a
 * pixel or beacon is never a top-level navigation. What survives becomes jar cookies (core/contracts/jar.ts) for a
 * `jar-merge` record: domain cookies as `.domain`, host-only ones as the bare host (Puppeteer's
 * convention, which the executor's jars use), `expires` in seconds (-1 = session).
 *
 * An expired cookie is kept: it is how a partner deletes one, and the processor's merge removes it.
 */
import { Cookie, CookieJar } from 'tough-cookie';
import type { JarCookie } from '../../core/contracts/index.ts';
import { sameSite as isSameSite } from '../../core/site.ts';

export interface ParsedCookies {
  cookies: JarCookie[];
  /** Set-Cookie lines a browser would refuse (counted, never logged with their value). */
  rejected: number;
}

const SAME_SITE: Readonly<Record<string, JarCookie['sameSite']>> = { strict: 'Strict', lax: 'Lax', none: 'None' };

/**
 * `pageUrl`: the page the request was sent from (its Referer; an origin-only Referer is enough for
 * the site). Absent or not a URL: the request's context is unknown and no same-site rule applies.
 */
export async function cookiesFromResponse(setCookie: readonly string[], url: string, nowMs: number, pageUrl?: string): Promise<ParsedCookies> {
  // Most answers set nothing: no jar for them (this is on every delivery's path).
  if (setCookie.length === 0) return { cookies: [], rejected: 0 };
  const crossSite = pageUrl !== undefined && isSameSite(pageUrl, url) === false;
  const cookies: JarCookie[] = [];
  let rejected = 0;
  // One throwaway jar per response: tough-cookie's checks live in setCookie.
  const jar = new CookieJar(undefined, { rejectPublicSuffixes: true, prefixSecurity: 'strict' });
  const now = new Date(nowMs);
  for (const line of setCookie) {
    const parsed = Cookie.parse(line);
    if (parsed === undefined) {
      rejected += 1;
      continue;
    }
    const sameSite = parsed.sameSite === undefined ? undefined : SAME_SITE[parsed.sameSite.toLowerCase()];
    if ((sameSite === 'None' && !parsed.secure) || (crossSite && sameSite !== 'None')) {
      rejected += 1;
      continue;
    }
    const stored = await jar.setCookie(parsed, url, { now, ignoreError: true });
    if (stored === undefined) {
      rejected += 1;
      continue;
    }
    cookies.push(jarCookie(stored, sameSite ?? 'Lax', now));
  }
  return { cookies, rejected };
}

function jarCookie(c: Cookie, sameSite: JarCookie['sameSite'], now: Date): JarCookie {
  const expiry = c.expiryTime(now);
  const expires = expiry === undefined || !Number.isFinite(expiry) ? -1 : Math.floor(expiry / 1000);
  const domain = c.domain ?? '';
  return {
    name: c.key,
    value: c.value,
    domain: c.hostOnly === true ? domain : `.${domain}`,
    path: c.path ?? '/',
    // A max-age of 0 or less, or a date in the past: already expired (a deletion); 0 says so.
    expires: expiry !== undefined && expiry <= now.getTime() ? 0 : expires,
    httpOnly: c.httpOnly,
    secure: c.secure,
    sameSite,
  };
}
