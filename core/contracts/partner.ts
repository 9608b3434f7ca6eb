/**
 * A partner (tag) configuration (DESIGN.md "Contracts"): what runs in the page (`html`), which
 * hosts it may load from (`allowHosts`) and which receive its data (`captureHosts`), synthetic
 * answers, its time budget and how the dispatcher delivers its requests (`delivery`).
 */
import { z } from 'zod';
import { isHttpUrl, parseWith } from './parse.ts';

const httpUrl = z.string().refine(isHttpUrl, 'must be an absolute http(s) URL');

/** `host`, `host:port` or a URL prefix (`https://cdn.partner.example/p.js`). */
export const hostEntrySchema = z.string().min(1).refine((s) => {
  if (/^https?:\/\//i.test(s)) return isHttpUrl(s);
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
/** How long the dispatcher keeps retrying a partner's request before dead-lettering it: 4 h. */
export const DEFAULT_RETRY_WINDOW_MS = 4 * 60 * 60 * 1000;

/** Per-partner delivery options of the dispatcher (DESIGN.md "The dispatcher"). */
export const deliverySchema = z
  .object({
    /** The visitor's IP in X-Forwarded-For: all of it, truncated (IPv4 /24, IPv6 /48) or none. */
    forwardIp: z.enum(['full', 'truncated', 'none']).default('truncated'),
    retryWindowMs: z.number().int().min(0).max(7 * 24 * 60 * 60 * 1000).default(DEFAULT_RETRY_WINDOW_MS),
    /** Requests in flight to this partner at once. */
    concurrency: z.number().int().min(1).max(1024).default(32),
    /** Bound on one delivery attempt. */
    timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict();

export const partnerSchema = z.looseObject({
  id: z.string().min(1).max(200),
  consent: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  html: z.string(),
  allowHosts: z.array(hostEntrySchema).default([]),
  captureHosts: z.array(hostEntrySchema).default([]),
  responses: z.array(responseSchema).default([]),
  timeoutMs: z.number().int().positive().max(120_000).default(DEFAULT_TIMEOUT_MS),
  delivery: deliverySchema.prefault({}),
});

export const partnersSchema = z.array(partnerSchema).superRefine((partners, ctx) => {
  const seen = new Set<string>();
  partners.forEach((p, i) => {
    if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate partner id "${p.id}"` });
    seen.add(p.id);
  });
});

export type PartnerConfig = z.output<typeof partnerSchema>;
export type PartnerConfigInput = z.input<typeof partnerSchema>;
export type PartnerResponse = z.output<typeof responseSchema>;
export type DeliveryOptions = z.output<typeof deliverySchema>;

export function parsePartners(value: unknown, root = 'partners'): PartnerConfig[] {
  return parseWith(partnersSchema, root, value);
}

/** A partner runs only when every purpose it needs is granted (DESIGN.md "Contract details"). */
export function consentGranted(partner: Pick<PartnerConfig, 'consent'>, consent: Readonly<Record<string, boolean>>): boolean {
  if (partner.consent === undefined) return true;
  const purposes = Array.isArray(partner.consent) ? partner.consent : [partner.consent];
  return purposes.every((p) => consent[p] === true);
}
