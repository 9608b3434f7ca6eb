/**
 * Turning a zod failure into an InvalidInputError that names the field (`event.page.url`,
 * `partners[1].timeoutMs`, `jar.cookies[0].sameSite`): operators onboarding a partner and
 * the collector's 400 answers read that name and nothing else.
 */
import type { z } from 'zod';
import { InvalidInputError } from '../errors.ts';

export function issuePath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

export function parseWith<S extends z.ZodType>(schema: S, root: string, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (!issue) throw new InvalidInputError(root, 'invalid');
  throw new InvalidInputError(issuePath(root, issue.path), issue.message, { issues: r.error.issues.length });
}

/** The same check for a URL: absolute http(s), the only kind a page, a referrer or a partner endpoint may be. */
export function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
