/**
 * The `collector.*` settings (runtime/config.ts puts them in the one Settings schema; the README
 * documents each). Validated once at start: a bad origin or CIDR fails `run` with the field named,
 * not the first request.
 */
import { z } from 'zod';
import { parseCidr } from './client-ip.ts';

const origin = z.string().refine((s) => {
  try {
    const u = new URL(s);
    // An origin is scheme://host[:port] and nothing else: CORS compares the Origin header to it exactly.
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === s;
  } catch {
    return false;
  }
}, 'must be an origin: http(s)://host[:port], without path or trailing slash');

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, 'must be an IP address or a CIDR (127.0.0.1/32, 10.0.0.0/8, ::1/128)');

export const CollectorSettingsSchema = z
  .object({
    /** Interface of the collector's port (a load balancer or the TLS front reaches it there). */
    host: z.string().min(1).default('0.0.0.0'),
    /** The collector's port; 0 = a free one (printed in the log). */
    port: z.number().int().min(0).max(65_535).default(8080),
    /** Site origins that CORS allows (with credentials, so the cookie travels). Empty = no cross-origin page. */
    allowedOrigins: z.array(origin).default([]),
    /** Peers whose X-Forwarded-For is believed (the TLS front, the load balancer). */
    trustedProxies: z.array(cidr).default([]),
    /** Domain attribute of the visitor cookie (`shop.example`); absent = host-only. */
    cookieDomain: z
      .string()
      .regex(/^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i, 'must be a domain name (shop.example)')
      .optional(),
    cookieName: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a cookie name (letters, digits, _ -)').default('tsuid'),
    /** About 13 months, the longest a consent-based id cookie usually may live. */
    cookieMaxAgeDays: z.number().int().min(1).max(800).default(395),
    /** Consent purpose the id cookie needs (`analytics`); absent = the cookie is always set. */
    idConsent: z.string().min(1).optional(),
    /** Largest POST /collect body; larger is 413. */
    bodyLimitBytes: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
    /** Longest string anywhere in a body (a URL, a title, a dataLayer value). */
    maxStringLength: z.number().int().min(64).max(1024 * 1024).default(4096),
    /** Deepest nesting of objects/arrays in a body (the event itself is 3 deep). */
    maxDepth: z.number().int().min(4).max(64).default(10),
    /** Longest wait for the broker's acknowledgement before answering 503. */
    produceTimeoutMs: z.number().int().min(50).max(60_000).default(2000),
    /** Events produced but not acknowledged yet; past it, 503 at once (memory stays bounded). */
    maxInFlight: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Answer bots 204 without producing them (they would only cost browser time). */
    dropBots: z.boolean().default(true),
    /** Graceful stop: how long in-flight requests may take to finish after the port stops accepting. */
    shutdownTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
  })
  .strict();

export type CollectorSettings = z.output<typeof CollectorSettingsSchema>;
