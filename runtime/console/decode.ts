/**
 * Turns a captured request's body into something an operator can read (docs/console.md): the
 * query string, then the body as JSON, form fields, gzip (+JSON), base64 (+JSON), or text. Values
 * inside that are themselves base64 JSON (PostHog's `data=`, Snowplow's `cx`/`ue_px`) are decoded
 * one level further. Pure and bounded: a tag controls these bytes.
 */
import { gunzipSync } from 'node:zlib';

export type DecodedBody =
  | { kind: 'none' }
  | { kind: 'json'; via: string[]; value: unknown }
  | { kind: 'form'; via: string[]; fields: DecodedField[] }
  | { kind: 'text'; via: string[]; text: string }
  | { kind: 'binary'; via: string[]; bytes: number; preview: string };

export interface DecodedField {
  name: string;
  value: string;
  /** The value decoded further (base64 JSON, JSON) when it is. */
  decoded?: { via: string[]; value: unknown };
}

export interface DecodedRequest {
  query: DecodedField[];
  body: DecodedBody;
}

/** Bodies larger than this are summarised, not decoded (gzip can expand a lot). */
const MAX_DECODED_BYTES = 1024 * 1024;
const MAX_FIELDS = 500;

export function decodeRequest(url: string, body: string | null, bodyEncoding: 'utf8' | 'base64', contentType?: string): DecodedRequest {
  return { query: decodeQuery(url), body: decodeBody(body, bodyEncoding, contentType) };
}

export function decodeQuery(url: string): DecodedField[] {
  let search: URLSearchParams;
  try {
    search = new URL(url).searchParams;
  } catch {
    return [];
  }
  return fields([...search.entries()]);
}

export function decodeBody(body: string | null, bodyEncoding: 'utf8' | 'base64', contentType?: string): DecodedBody {
  if (body === null || body.length === 0) return { kind: 'none' };
  const bytes = bodyEncoding === 'base64' ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
  const via: string[] = [];
  let data = bytes;
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) {
    try {
      data = gunzipSync(data, { maxOutputLength: MAX_DECODED_BYTES });
      via.push('gzip');
    } catch {
      return { kind: 'binary', via: ['gzip (corrupt or over 1 MiB)'], bytes: bytes.length, preview: hexPreview(bytes) };
    }
  }
  if (!isUtf8(data)) return { kind: 'binary', via, bytes: data.length, preview: hexPreview(data) };
  const text = data.toString('utf8');
  const json = parseJson(text);
  if (json !== undefined) return { kind: 'json', via: [...via, 'json'], value: json };
  // Base64 before form: its `=` padding would read as one empty form field.
  const b64 = base64Json(text.trim());
  if (b64 !== undefined) return { kind: 'json', via: [...via, 'base64', 'json'], value: b64 };
  if (looksLikeForm(text, contentType)) {
    const parsed = fields([...new URLSearchParams(text).entries()]);
    if (parsed.length > 0) return { kind: 'form', via: [...via, 'form'], fields: parsed };
  }
  return { kind: 'text', via, text: text.length > 64 * 1024 ? `${text.slice(0, 64 * 1024)}…` : text };
}

function fields(entries: [string, string][]): DecodedField[] {
  return entries.slice(0, MAX_FIELDS).map(([name, value]) => {
    const decoded = decodeValue(value);
    return decoded === undefined ? { name, value } : { name, value, decoded };
  });
}

/** A field's value when it is JSON or base64(url) JSON; undefined for plain values. */
export function decodeValue(value: string): { via: string[]; value: unknown } | undefined {
  const trimmed = value.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const json = parseJson(trimmed);
    if (json !== undefined) return { via: ['json'], value: json };
  }
  const b64 = base64Json(trimmed);
  return b64 === undefined ? undefined : { via: ['base64', 'json'], value: b64 };
}

function base64Json(s: string): unknown {
  if (s.length < 8 || s.length > MAX_DECODED_BYTES * 2 || !/^[A-Za-z0-9+/_-]+=*$/.test(s)) return undefined;
  const bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!isUtf8(bytes)) return undefined;
  const text = bytes.toString('utf8').trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return undefined;
  return parseJson(text);
}

function parseJson(text: string): unknown {
  const t = text.trim();
  if (!(t.startsWith('{') || t.startsWith('[') || t.startsWith('"'))) return undefined;
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return undefined;
  }
}

function looksLikeForm(text: string, contentType?: string): boolean {
  if (contentType?.toLowerCase().includes('application/x-www-form-urlencoded') === true) return true;
  return /^[^=&\s]+=[^&\s]*(&[^=&\s]+=[^&\s]*)*$/.test(text.trim());
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function hexPreview(bytes: Buffer): string {
  return bytes.subarray(0, 32).toString('hex').replace(/(..)/g, '$1 ').trim();
}
