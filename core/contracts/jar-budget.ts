/**
 * What a visitor's jar may hold (one partner tag must not be able to make a jar that Kafka refuses,
 * nor crowd out the other partners' ids). The limits follow what browsers bound — cookies per
 * domain, bytes per cookie, storage per origin — with a total far below the cookie topic's
 * `max.message.bytes`, since the whole jar is one record of tracking.cookies.
 *
 * What exceeds a limit is dropped deterministically, LARGEST FIRST (ties: cookies before storage,
 * then by origin/domain and name): a tag that writes megabytes loses its big values, the small
 * visitor ids that partners keep survive. `enforceJarBudget` is pure: the executor applies it to
 * what it captured (so `execute` never prints more), the processor to every jar it stores.
 */
import { z } from 'zod';
import type { Jar, JarCookie } from './jar.ts';

export const jarBudgetSchema = z
  .object({
    /** The whole jar as JSON (UTF-8 bytes). */
    jarBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(256 * 1024),
    /** localStorage of one origin (keys + values, UTF-8 bytes). */
    originStorageBytes: z.number().int().min(64).max(64 * 1024 * 1024).default(64 * 1024),
    /** Cookies of one domain (Chromium keeps 180). */
    cookiesPerDomain: z.number().int().min(1).max(10_000).default(180),
    /** Cookies of the visitor. */
    cookies: z.number().int().min(1).max(100_000).default(1000),
    /** One cookie, name + value (browsers refuse more than 4096). */
    cookieBytes: z.number().int().min(16).max(1024 * 1024).default(4096),
  })
  .strict();

export type JarBudget = z.output<typeof jarBudgetSchema>;
export const DEFAULT_JAR_BUDGET: Readonly<JarBudget> = Object.freeze(jarBudgetSchema.parse({}));

/** One thing the budget dropped: never its value (logs and metrics see this). */
export interface DroppedJarEntry {
  kind: 'cookie' | 'localStorage';
  /** Cookie domain, or localStorage origin. */
  where: string;
  name: string;
  bytes: number;
  /** Which limit it broke. */
  limit: 'cookieBytes' | 'cookiesPerDomain' | 'cookies' | 'originStorageBytes' | 'jarBytes';
}

export interface BudgetedJar<J extends Jar> {
  jar: J;
  dropped: DroppedJarEntry[];
}

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');
const cookieSize = (c: JarCookie): number => utf8(c.name) + utf8(c.value);
const domainOf = (c: JarCookie): string => c.domain.toLowerCase().replace(/^\./, '');

interface Item {
  kind: 'cookie' | 'localStorage';
  where: string;
  name: string;
  bytes: number;
  /** For the total: what the item adds to the JSON (its serialized form, roughly). */
  cost: number;
}

/** Largest first; ties: cookies before storage, then where and name (deterministic). */
function byDropOrder(a: Item, b: Item): number {
  if (a.bytes !== b.bytes) return b.bytes - a.bytes;
  if (a.kind !== b.kind) return a.kind === 'cookie' ? -1 : 1;
  if (a.where !== b.where) return a.where < b.where ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function jarBytes(jar: Jar): number {
  return utf8(JSON.stringify(jar));
}

/** `jar` within `budget`; what did not fit is listed in `dropped` (largest first). */
export function enforceJarBudget<J extends Jar>(jar: J, budget: JarBudget = DEFAULT_JAR_BUDGET): BudgetedJar<J> {
  const dropped: DroppedJarEntry[] = [];
  const drop = (item: Item, limit: DroppedJarEntry['limit']): void => {
    dropped.push({ kind: item.kind, where: item.where, name: item.name, bytes: item.bytes, limit });
  };
  const key = (kind: string, where: string, name: string): string => `${kind}\u0000${where}\u0000${name}`;
  const gone = new Set<string>();

  // 1. One cookie over cookieBytes: a browser would not have stored it.
  const cookies: Item[] = [];
  jar.cookies.forEach((c) => {
    const item: Item = { kind: 'cookie', where: domainOf(c), name: `${c.name}${c.path === '/' ? '' : ` (${c.path})`}`, bytes: cookieSize(c), cost: utf8(JSON.stringify(c)) + 1 };
    if (item.bytes > budget.cookieBytes) {
      drop(item, 'cookieBytes');
      gone.add(key('cookie', item.where, item.name));
    } else cookies.push(item);
  });
  // 2. Cookies per domain, then per visitor.
  const byDomain = new Map<string, Item[]>();
  for (const item of cookies) byDomain.set(item.where, [...(byDomain.get(item.where) ?? []), item]);
  for (const items of byDomain.values()) {
    const over = items.length - budget.cookiesPerDomain;
    if (over > 0) for (const item of [...items].sort(byDropOrder).slice(0, over)) dropAndForget(item, 'cookiesPerDomain');
  }
  const keptCookies = (): Item[] => cookies.filter((i) => !gone.has(key(i.kind, i.where, i.name)));
  const overCookies = keptCookies().length - budget.cookies;
  if (overCookies > 0) for (const item of keptCookies().sort(byDropOrder).slice(0, overCookies)) dropAndForget(item, 'cookies');

  // 3. localStorage per origin.
  const storage: Item[] = [];
  for (const [origin, entries] of Object.entries(jar.localStorage)) {
    const items = Object.entries(entries).map(([k, v]): Item => ({ kind: 'localStorage', where: origin, name: k, bytes: utf8(k) + utf8(v), cost: utf8(JSON.stringify(k)) + utf8(JSON.stringify(v)) + 2 }));
    let total = items.reduce((n, i) => n + i.bytes, 0);
    for (const item of [...items].sort(byDropOrder)) {
      if (total <= budget.originStorageBytes) break;
      dropAndForget(item, 'originStorageBytes');
      total -= item.bytes;
    }
    storage.push(...items);
  }

  // 4. The whole jar.
  let result = rebuild();
  let size = jarBytes(result);
  if (size > budget.jarBytes) {
    const remaining = [...keptCookies(), ...storage.filter((i) => !gone.has(key(i.kind, i.where, i.name)))].sort(byDropOrder);
    for (const item of remaining) {
      if (size <= budget.jarBytes) break;
      dropAndForget(item, 'jarBytes');
      size -= item.cost;
    }
    result = rebuild();
    // The estimate per item is close, not exact: finish on the real size.
    for (const item of remaining) {
      if (jarBytes(result) <= budget.jarBytes) break;
      if (gone.has(key(item.kind, item.where, item.name))) continue;
      dropAndForget(item, 'jarBytes');
      result = rebuild();
    }
  }
  // Nothing over a limit: the jar as it was (not a copy).
  return dropped.length === 0 ? { jar, dropped } : { jar: result, dropped };

  function dropAndForget(item: Item, limit: DroppedJarEntry['limit']): void {
    drop(item, limit);
    gone.add(key(item.kind, item.where, item.name));
  }

  function rebuild(): J {
    const keptCookieList = jar.cookies.filter((c) => !gone.has(key('cookie', domainOf(c), `${c.name}${c.path === '/' ? '' : ` (${c.path})`}`)));
    const localStorage: Record<string, Record<string, string>> = {};
    for (const [origin, entries] of Object.entries(jar.localStorage)) {
      const kept = Object.entries(entries).filter(([k]) => !gone.has(key('localStorage', origin, k)));
      if (kept.length > 0 || Object.keys(entries).length === 0) localStorage[origin] = Object.fromEntries(kept);
    }
    return { ...jar, cookies: keptCookieList, localStorage };
  }
}
