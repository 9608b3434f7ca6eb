/**
 * The jar before and after one page view, as a diff an operator reads (docs/console.md): cookies
 * by (domain, path, name), localStorage by (origin, key). Pure.
 */
import type { Jar, JarCookie } from '../../core/contracts/index.ts';

export type Change = 'added' | 'removed' | 'changed' | 'same';

export interface CookieChange {
  change: Change;
  name: string;
  domain: string;
  path: string;
  before?: string;
  after?: string;
  /** Attributes that changed besides the value (expires, secure, sameSite…). */
  attributes?: string[];
}

export interface StorageChange {
  change: Change;
  origin: string;
  key: string;
  before?: string;
  after?: string;
}

export interface JarDiff {
  cookies: CookieChange[];
  localStorage: StorageChange[];
  /** Entries that did not change (listed so the diff shows the whole jar). */
  unchanged: number;
}

type JarLike = Pick<Jar, 'cookies' | 'localStorage'>;

export function diffJars(before: JarLike | null, after: JarLike | null): JarDiff {
  const cookies: CookieChange[] = [];
  const b = new Map((before?.cookies ?? []).map((c) => [cookieKey(c), c]));
  const a = new Map((after?.cookies ?? []).map((c) => [cookieKey(c), c]));
  let unchanged = 0;
  for (const [key, c] of a) {
    const old = b.get(key);
    if (old === undefined) cookies.push({ change: 'added', name: c.name, domain: c.domain, path: c.path, after: c.value });
    else {
      const attributes = changedAttributes(old, c);
      if (old.value === c.value && attributes.length === 0) {
        unchanged += 1;
        cookies.push({ change: 'same', name: c.name, domain: c.domain, path: c.path, before: old.value, after: c.value });
      } else cookies.push({ change: 'changed', name: c.name, domain: c.domain, path: c.path, before: old.value, after: c.value, ...(attributes.length > 0 ? { attributes } : {}) });
    }
  }
  for (const [key, c] of b) if (!a.has(key)) cookies.push({ change: 'removed', name: c.name, domain: c.domain, path: c.path, before: c.value });

  const localStorage: StorageChange[] = [];
  const origins = new Set([...Object.keys(before?.localStorage ?? {}), ...Object.keys(after?.localStorage ?? {})]);
  for (const origin of [...origins].sort()) {
    const ob = before?.localStorage[origin] ?? {};
    const oa = after?.localStorage[origin] ?? {};
    for (const key of new Set([...Object.keys(oa), ...Object.keys(ob)])) {
      const vb = ob[key];
      const va = oa[key];
      if (vb === undefined && va !== undefined) localStorage.push({ change: 'added', origin, key, after: va });
      else if (va === undefined && vb !== undefined) localStorage.push({ change: 'removed', origin, key, before: vb });
      else if (va !== vb) localStorage.push({ change: 'changed', origin, key, ...(vb === undefined ? {} : { before: vb }), ...(va === undefined ? {} : { after: va }) });
      else {
        unchanged += 1;
        localStorage.push({ change: 'same', origin, key, ...(va === undefined ? {} : { before: va, after: va }) });
      }
    }
  }
  const order: Record<Change, number> = { added: 0, changed: 1, removed: 2, same: 3 };
  cookies.sort((x, y) => order[x.change] - order[y.change]);
  localStorage.sort((x, y) => order[x.change] - order[y.change]);
  return { cookies, localStorage, unchanged };
}

function cookieKey(c: JarCookie): string {
  return `${c.domain}\u0000${c.path}\u0000${c.name}`;
}

function changedAttributes(a: JarCookie, b: JarCookie): string[] {
  const out: string[] = [];
  if (a.expires !== b.expires) out.push('expires');
  if (a.secure !== b.secure) out.push('secure');
  if (a.httpOnly !== b.httpOnly) out.push('httpOnly');
  if (a.sameSite !== b.sameSite) out.push('sameSite');
  return out;
}
