/**
 * Input contracts of the executor (DESIGN.md "Contracts"): the page-view event, the partner (tag)
 * configuration and the visitor's jar. Parsing turns any violation into an InvalidInputError that
 * names the offending field (`event.page.url`, `partners[1].timeoutMs`, `jar.cookies[0].sameSite`),
 * because operators onboarding a partner read that message and nothing else.
 */
import { z } from 'zod';
import { InvalidInputError } from '../../core/errors.ts';

const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL');

const userAgentBrand = z.object({ brand: z.string(), version: z.string() });

export const userAgentDataSchema = z.looseObject({
  brands: z.array(userAgentBrand).optional(),
  mobile: z.boolean().optional(),
  platform: z.string().optional(),
  platformVersion: z.string().optional(),
  architecture: z.string().optional(),
  model: z.string().optional(),
  fullVersionList: z.array(userAgentBrand).optional(),
  bitness: z.string().optional(),
});

const DEFAULT_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

export const deviceSchema = z.looseObject({
  userAgent: z.string().min(1).default(DEFAULT_UA),
  language: z.string().min(1).default('en-US'),
  languages: z.array(z.string().min(1)).min(1).optional(),
  platform: z.string().default('Win32'),
  screen: z
    .looseObject({
      width: z.number().int().positive().max(20000),
      height: z.number().int().positive().max(20000),
      colorDepth: z.number().int().positive().max(64).default(24),
      pixelRatio: z.number().positive().max(10).default(1),
    })
    .default({ width: 1920, height: 1080, colorDepth: 24, pixelRatio: 1 }),
  viewport: z
    .looseObject({ width: z.number().int().positive().max(20000), height: z.number().int().positive().max(20000) })
    .default({ width: 1280, height: 720 }),
  timezone: z.string().min(1).default('UTC'),
  userAgentData: userAgentDataSchema.optional(),
  /** Optional: the visitor's navigator.hardwareConcurrency / navigator.deviceMemory. */
  hardwareConcurrency: z.number().int().positive().max(1024).optional(),
  deviceMemory: z.number().positive().max(1024).optional(),
});

export const eventSchema = z.looseObject({
  eventId: z.string().min(1),
  userId: z.string().min(1),
  timestamp: z.iso.datetime({ offset: true }),
  type: z.string().default('page_view'),
  page: z.looseObject({
    url: httpUrl,
    referrer: z.union([httpUrl, z.literal('')]).nullable().optional(),
    title: z.string().nullable().optional(),
  }),
  device: deviceSchema.default(deviceSchema.parse({})),
  client: z.looseObject({ ip: z.string().optional() }).optional(),
  consent: z.record(z.string(), z.boolean()).default({}),
  data: z.record(z.string(), z.unknown()).default({}),
});

/** `host`, `host:port` or a URL prefix (`https://cdn.partner.example/p.js`). */
const hostEntry = z.string().min(1).refine((s) => {
  if (/^https?:\/\//i.test(s)) {
    try {
      new URL(s);
      return true;
    } catch {
      return false;
    }
  }
  return /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?$/.test(s);
}, 'must be a host name, host:port or an http(s) URL prefix');

export const responseSchema = z.object({
  url: httpUrl,
  method: z.string().min(1).optional(),
  status: z.number().int().min(200).max(599).default(200),
  contentType: z.string().default('application/json'),
  body: z.string().default(''),
  headers: z.record(z.string(), z.string()).optional(),
});

export const DEFAULT_TIMEOUT_MS = 5000;

export const partnerSchema = z.looseObject({
  id: z.string().min(1).max(200),
  consent: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  html: z.string(),
  allowHosts: z.array(hostEntry).default([]),
  captureHosts: z.array(hostEntry).default([]),
  responses: z.array(responseSchema).default([]),
  timeoutMs: z.number().int().positive().max(120_000).default(DEFAULT_TIMEOUT_MS),
});

export const partnersSchema = z.array(partnerSchema).superRefine((partners, ctx) => {
  const seen = new Set<string>();
  partners.forEach((p, i) => {
    if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate partner id "${p.id}"` });
    seen.add(p.id);
  });
});

export const jarCookieSchema = z.looseObject({
  name: z.string(),
  value: z.string(),
  domain: z.string().min(1),
  path: z.string().default('/'),
  expires: z.number().default(-1),
  httpOnly: z.boolean().default(false),
  secure: z.boolean().default(false),
  sameSite: z.enum(['Strict', 'Lax', 'None']).default('Lax'),
});

export const jarSchema = z.looseObject({
  cookies: z.array(jarCookieSchema).default([]),
  localStorage: z.record(z.string(), z.record(z.string(), z.string())).default({}),
});

export type PageViewEvent = z.output<typeof eventSchema>;
export type PageViewEventInput = z.input<typeof eventSchema>;
export type PartnerConfig = z.output<typeof partnerSchema>;
export type PartnerConfigInput = z.input<typeof partnerSchema>;
export type PartnerResponse = z.output<typeof responseSchema>;
export type Jar = z.output<typeof jarSchema>;
export type JarInput = z.input<typeof jarSchema>;
export type JarCookie = z.output<typeof jarCookieSchema>;
export type UserAgentData = z.output<typeof userAgentDataSchema>;

export type Transport = 'image' | 'fetch' | 'xhr' | 'beacon' | 'script' | 'iframe' | 'form' | 'other';

export interface CapturedRequest {
  partner: string | null;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
  bodyEncoding: 'utf8' | 'base64';
  transport: Transport;
}

export type TrackerStatus = 'ok' | 'error' | 'timeout' | 'skipped';

export interface TrackerOutcome {
  partner: string;
  status: TrackerStatus;
  durationMs: number;
  error: string | null;
}

export interface ExecuteResult {
  requests: CapturedRequest[];
  jar: Jar;
  trackers: TrackerOutcome[];
}

function issuePath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

function parseWith<T>(schema: z.ZodType<T>, root: string, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (!issue) throw new InvalidInputError(root, 'invalid');
  throw new InvalidInputError(issuePath(root, issue.path), issue.message, {
    issues: r.error.issues.length,
  });
}

export function parseEvent(value: unknown, root = 'event'): PageViewEvent {
  return parseWith(eventSchema, root, value);
}

export function parsePartners(value: unknown, root = 'partners'): PartnerConfig[] {
  return parseWith(partnersSchema, root, value);
}

export function parseJar(value: unknown, root = 'jar'): Jar {
  return parseWith(jarSchema, root, value);
}

/** A partner runs only when every purpose it needs is granted (DESIGN.md "Contract details"). */
export function consentGranted(partner: PartnerConfig, consent: Readonly<Record<string, boolean>>): boolean {
  if (partner.consent === undefined) return true;
  const purposes = Array.isArray(partner.consent) ? partner.consent : [partner.consent];
  return purposes.every((p) => consent[p] === true);
}
