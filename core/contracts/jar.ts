/**
 * The visitor's jar (DESIGN.md "Contracts"): cookies and localStorage per origin, as a browser
 * keeps them. The executor restores it into the page and captures it after the run; the processor
 * stores it per visitor (StoredJar: plus version and updatedAt) in its store and in the compacted
 * changelog `tracking.cookies`.
 */
import { z } from 'zod';
import { parseWith } from './parse.ts';

export const jarCookieSchema = z.looseObject({
  name: z.string(),
  value: z.string(),
  domain: z.string().min(1),
  path: z.string().default('/'),
  /** Seconds since the epoch, -1 for a session cookie. */
  expires: z.number().default(-1),
  httpOnly: z.boolean().default(false),
  secure: z.boolean().default(false),
  sameSite: z.enum(['Strict', 'Lax', 'None']).default('Lax'),
});

export const jarSchema = z.looseObject({
  cookies: z.array(jarCookieSchema).default([]),
  /** origin → key → value */
  localStorage: z.record(z.string(), z.record(z.string(), z.string())).default({}),
});

/** The value of tracking.cookies: the jar plus the processor's bookkeeping. */
export const storedJarSchema = jarSchema.extend({
  /** 1 for the first jar of a visitor, +1 per change (page view, merge). */
  version: z.number().int().min(0),
  /** ISO 8601. */
  updatedAt: z.string(),
});

export type JarCookie = z.output<typeof jarCookieSchema>;
export type Jar = z.output<typeof jarSchema>;
export type JarInput = z.input<typeof jarSchema>;
export type StoredJar = z.output<typeof storedJarSchema>;

export function parseJar(value: unknown, root = 'jar'): Jar {
  return parseWith(jarSchema, root, value);
}

/** The identity of a cookie in a jar: a browser keeps one cookie per (name, domain, path). */
export function cookieKey(c: Pick<JarCookie, 'name' | 'domain' | 'path'>): string {
  return `${c.name}\u0000${c.domain.toLowerCase().replace(/^\./, '')}\u0000${c.path}`;
}

/**
 * `incoming` merged into `jar` as a browser stores Set-Cookie: a cookie replaces the one with the
 * same name, domain and path; one that has expired (`expires` in the past, not -1) removes it.
 */
export function mergeCookies(jar: Jar, incoming: readonly JarCookie[], nowSeconds: number): Jar {
  const byKey = new Map(jar.cookies.map((c) => [cookieKey(c), c]));
  for (const cookie of incoming) {
    const key = cookieKey(cookie);
    if (cookie.expires !== -1 && cookie.expires <= nowSeconds) byKey.delete(key);
    else byKey.set(key, { ...cookie });
  }
  return { ...jar, cookies: [...byKey.values()] };
}
