/**
 * How the requests a partner's tag sends now differ from those it sent before (`replay --dry-run`,
 * docs/replay.md). Pure: no Kafka, no browser.
 *
 * Requests are compared per partner. An endpoint is method + origin + path. Pairs are found in two
 * passes: first requests to the same endpoint, in capture order (their parameters are compared);
 * then what is left on both sides, in capture order (a changed endpoint, e.g. /collect → /v2/collect).
 * What is still left is added (only now) or removed (only before).
 */
import type { CapturedRequest } from '../../core/contracts/index.ts';

/** What the diff needs of a request; `idempotencyKey` when it is known (`<eventId>:<partner>:<n>`). */
export type ComparableRequest = Pick<CapturedRequest, 'partner' | 'method' | 'url' | 'body' | 'bodyEncoding' | 'transport'> & { idempotencyKey?: string };

export interface RequestSummary {
  /** The idempotency key (what the dispatcher dedupes on), null when unknown. */
  key: string | null;
  method: string;
  /** method + origin + path */
  endpoint: string;
  url: string;
  transport: string;
}

/** A parameter that differs: `query:<name>` or `body:<path>` (`body` for a body that is not JSON or a form); null = absent. */
export interface ParamChange {
  name: string;
  before: string | null;
  after: string | null;
}

export interface RequestChange {
  before: RequestSummary;
  after: RequestSummary;
  endpointChanged: boolean;
  params: ParamChange[];
}

export interface PartnerDiff {
  /** The partner id, `-` for unattributed requests. */
  partner: string;
  before: number;
  after: number;
  added: RequestSummary[];
  removed: RequestSummary[];
  changed: RequestChange[];
  unchanged: number;
}

/** Values longer than this are cut in the diff (a body can be megabytes). */
export const MAX_VALUE_CHARS = 300;

export function diffRequests(before: readonly ComparableRequest[], after: readonly ComparableRequest[]): PartnerDiff[] {
  const partners = [...new Set([...before, ...after].map(partnerOf))].sort();
  return partners.map((partner) =>
    diffPartner(
      partner,
      before.filter((r) => partnerOf(r) === partner),
      after.filter((r) => partnerOf(r) === partner),
    ),
  );
}

/** True when the partner's requests differ in any way. */
export function hasDifferences(diff: PartnerDiff): boolean {
  return diff.added.length > 0 || diff.removed.length > 0 || diff.changed.length > 0;
}

function partnerOf(r: ComparableRequest): string {
  return r.partner ?? '-';
}

function diffPartner(partner: string, before: readonly ComparableRequest[], after: readonly ComparableRequest[]): PartnerDiff {
  const diff: PartnerDiff = { partner, before: before.length, after: after.length, added: [], removed: [], changed: [], unchanged: 0 };
  const leftBefore: ComparableRequest[] = [];
  const pool = new Map<string, ComparableRequest[]>();
  for (const r of after) {
    const list = pool.get(endpointOf(r)) ?? [];
    list.push(r);
    pool.set(endpointOf(r), list);
  }
  const paired = new Set<ComparableRequest>();
  for (const b of before) {
    const a = pool.get(endpointOf(b))?.shift();
    if (a === undefined) {
      leftBefore.push(b);
      continue;
    }
    paired.add(a);
    record(diff, b, a);
  }
  const leftAfter = after.filter((a) => !paired.has(a));
  const n = Math.min(leftBefore.length, leftAfter.length);
  for (let i = 0; i < n; i += 1) record(diff, leftBefore[i]!, leftAfter[i]!);
  diff.removed.push(...leftBefore.slice(n).map(summary));
  diff.added.push(...leftAfter.slice(n).map(summary));
  return diff;
}

function record(diff: PartnerDiff, b: ComparableRequest, a: ComparableRequest): void {
  const params = diffParams(paramsOf(b), paramsOf(a));
  const endpointChanged = endpointOf(a) !== endpointOf(b);
  if (!endpointChanged && params.length === 0) diff.unchanged += 1;
  else diff.changed.push({ before: summary(b), after: summary(a), endpointChanged, params });
}

function summary(r: ComparableRequest): RequestSummary {
  return { key: r.idempotencyKey ?? null, method: r.method.toUpperCase(), endpoint: endpointOf(r), url: cut(r.url), transport: r.transport };
}

/** `GET https://collect.partner.example/p` (no query): what identifies the API a request calls. */
export function endpointOf(r: Pick<ComparableRequest, 'method' | 'url'>): string {
  try {
    const u = new URL(r.url);
    return `${r.method.toUpperCase()} ${u.origin}${u.pathname}`;
  } catch {
    return `${r.method.toUpperCase()} ${r.url.split('?')[0] ?? r.url}`;
  }
}

/** The request's parameters as name → value: query parameters, then the body's keys. */
export function paramsOf(r: Pick<ComparableRequest, 'url' | 'body' | 'bodyEncoding'>): Map<string, string> {
  const params = new Map<string, string>();
  const add = (name: string, value: string): void => {
    // A repeated name keeps every value, in order.
    const prev = params.get(name);
    params.set(name, prev === undefined ? value : `${prev}&${value}`);
  };
  try {
    for (const [k, v] of new URL(r.url).searchParams) add(`query:${k}`, v);
  } catch {
    // Not a URL: the endpoint already says so.
  }
  if (r.body === null || r.body === '') return params;
  if (r.bodyEncoding === 'base64') {
    add('body', `base64:${r.body}`);
    return params;
  }
  const json = parseJson(r.body);
  if (json !== undefined && typeof json === 'object' && json !== null) flatten('body', json, add, 0);
  else if (/^[^\s=&]+=[^\s]*$/.test(r.body)) for (const [k, v] of new URLSearchParams(r.body)) add(`body:${k}`, v);
  else add('body', r.body);
  return params;
}

/** Nested JSON as dotted paths (`body:events.0.name`), four levels deep; deeper values compare as JSON. */
function flatten(prefix: string, value: unknown, add: (name: string, value: string) => void, depth: number): void {
  if (typeof value !== 'object' || value === null || depth >= 4) {
    add(prefix, typeof value === 'string' ? value : JSON.stringify(value));
    return;
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  if (entries.length === 0) add(prefix, Array.isArray(value) ? '[]' : '{}');
  for (const [k, v] of entries) flatten(depth === 0 ? `${prefix}:${k}` : `${prefix}.${k}`, v, add, depth + 1);
}

function parseJson(text: string): unknown {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function diffParams(before: Map<string, string>, after: Map<string, string>): ParamChange[] {
  const names = [...new Set([...before.keys(), ...after.keys()])];
  const changes: ParamChange[] = [];
  for (const name of names) {
    const b = before.get(name);
    const a = after.get(name);
    if (a !== b) changes.push({ name, before: b === undefined ? null : cut(b), after: a === undefined ? null : cut(a) });
  }
  return changes;
}

function cut(s: string): string {
  return s.length <= MAX_VALUE_CHARS ? s : `${s.slice(0, MAX_VALUE_CHARS)}…(${s.length} chars)`;
}
