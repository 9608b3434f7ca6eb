/**
 * The body of POST /collect: the page-view contract of core/contracts/event.ts without the fields
 * the server owns (`eventId`, `timestamp`, `client`), with `userId` optional. Derived from core's
 * `eventSchema`, so there is one definition of an event; the server fields are always the
 * collector's (a body that sends them has them replaced).
 *
 * Before the schema, a walk bounds what a schema does not: nesting depth, string length, control
 * characters and `__proto__` keys (an object key that would become a prototype when copied).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { eventSchema, type PageViewEvent } from '../../../core/contracts/event.ts';
import { issuePath } from '../../../core/contracts/parse.ts';

export const collectBodySchema = eventSchema.omit({ eventId: true, timestamp: true, client: true }).extend({
  userId: z.string().min(1).max(256).optional(),
});

export type CollectBody = z.output<typeof collectBodySchema>;

export interface BodyProblem {
  field: string;
  reason: string;
}

export interface BodyLimits {
  maxDepth: number;
  maxStringLength: number;
}

// C0 controls and DEL; tab, LF and CR are allowed in free text (a title, a dataLayer value).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
// eslint-disable-next-line no-control-regex
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007F]/;
/** The first problem of a parsed JSON body, or undefined. `field` is the body's own path (`data.cart[2].sku`). */
export function checkShape(value: unknown, limits: BodyLimits): BodyProblem | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { field: 'body', reason: `must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}` };
  }
  return walk(value, [], limits);
}

const fieldOf = (path: readonly (string | number)[]): string => issuePath('', path).replace(/^\./, '') || 'body';

/** Whether `path` is page.url or page.referrer, where no whitespace is allowed either. */
const isUrlField = (path: readonly (string | number)[]): boolean => path.length === 2 && path[0] === 'page' && (path[1] === 'url' || path[1] === 'referrer');

/** Depth-first, one shared path stack (this runs on every request: no per-node allocation). */
function walk(value: unknown, path: (string | number)[], limits: BodyLimits): BodyProblem | undefined {
  if (typeof value === 'string') {
    if (value.length > limits.maxStringLength) return { field: fieldOf(path), reason: `longer than ${limits.maxStringLength} characters` };
    if ((isUrlField(path) ? CONTROL_OR_SPACE : CONTROL).test(value)) return { field: fieldOf(path), reason: 'contains control characters' };
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (path.length >= limits.maxDepth) return { field: fieldOf(path), reason: `nested deeper than ${limits.maxDepth} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      const problem = walk(value[i], path, limits);
      path.pop();
      if (problem) return problem;
    }
    return undefined;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (key === '__proto__') return { field: fieldOf([...path, key]), reason: 'is not an allowed key' };
    if (key.length > limits.maxStringLength || CONTROL.test(key)) return { field: fieldOf(path), reason: 'has an invalid key' };
    path.push(key);
    const problem = walk((value as Record<string, unknown>)[key], path, limits);
    path.pop();
    if (problem) return problem;
  }
  return undefined;
}

/** The schema's verdict: the body, or the first issue with the body's field path. */
export function parseBody(value: unknown): { body: CollectBody } | { problem: BodyProblem } {
  const r = collectBodySchema.safeParse(value);
  if (r.success) return { body: r.data };
  const issue = r.error.issues[0];
  return { problem: { field: issue ? issuePath('', issue.path).replace(/^\./, '') || 'body' : 'body', reason: issue?.message ?? 'invalid' } };
}

export interface ServerFields {
  userId: string;
  ip: string | undefined;
  /** Receipt time (ms since the epoch). */
  receivedAt: number;
}

/** The event as it goes on tracking.events: the body plus what only the server may say. */
export function toEvent(body: CollectBody, server: ServerFields): PageViewEvent {
  const { userId: _ignored, ...rest } = body as CollectBody & { eventId?: unknown; timestamp?: unknown; client?: unknown };
  const event = { ...rest, eventId: randomUUID(), userId: server.userId, timestamp: new Date(server.receivedAt).toISOString() } as PageViewEvent;
  // looseObject keeps unknown keys: a client-sent `client` must not survive next to ours.
  delete (event as { client?: unknown }).client;
  if (server.ip !== undefined) event.client = { ip: server.ip };
  return event;
}
