/**
 * The site of a URL as Chromium compares them (schemeful same-site): scheme + registrable domain
 * from the public suffix list (tldts, private suffixes included, as Chromium's list has them).
 * Single labels and hosts that are themselves a suffix are their own site.
 */
import { getDomain } from 'tldts';

export function siteOf(u: URL): string {
  const domain = getDomain(u.hostname, { allowPrivateDomains: true });
  return `${u.protocol}//${domain ?? u.hostname}`;
}

/** Whether two URLs are same-site; undefined when either is not a URL. */
export function sameSite(a: string, b: string): boolean | undefined {
  try {
    return siteOf(new URL(a)) === siteOf(new URL(b));
  } catch {
    return undefined;
  }
}
