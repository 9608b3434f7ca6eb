/**
 * What travels on tracking.events (DESIGN.md "Contracts", "Topics"): page-view (and custom) events
 * produced by the collector, and the control records that change a visitor's jar in that
 * visitor's order: `erase` (written by `erase`) and `jar-merge` (cookies a partner set in its HTTP
 * response, written by the dispatcher).
 */
import { z } from 'zod';
import { jarCookieSchema } from './jar.ts';
import { isHttpUrl, parseWith } from './parse.ts';

const httpUrl = z.string().refine(isHttpUrl, 'must be an absolute http(s) URL');

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

export const DEFAULT_USER_AGENT =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36';

export const deviceSchema = z.looseObject({
  userAgent: z.string().min(1).default(DEFAULT_USER_AGENT),
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

/**
 * Set by `replay` on a page view it re-publishes to tracking.events (docs/replay.md): the processor
 * runs it again with the visitor's current jar, for `partners` only (null = every consented one),
 * publishes its requests with the original idempotency keys, and does not store the jar it produced.
 */
export const replayMarkerSchema = z.object({
  /** The partners to run again; null = all (their consent still applies). */
  partners: z.array(z.string().min(1)).min(1).nullable(),
  /** When the operator asked for the replay (ISO 8601); also tags the requests it produced. */
  requestedAt: z.iso.datetime({ offset: true }),
});

/** The types of tracking.events that are control records, not events to execute. */
export const CONTROL_TYPES = ['erase', 'jar-merge'] as const;
export type ControlType = (typeof CONTROL_TYPES)[number];

export const eventSchema = z.looseObject({
  eventId: z.string().min(1),
  userId: z.string().min(1),
  timestamp: z.iso.datetime({ offset: true }),
  type: z
    .string()
    .min(1)
    .refine((t) => !(CONTROL_TYPES as readonly string[]).includes(t), 'is a control record type, not an event type')
    .default('page_view'),
  page: z.looseObject({
    url: httpUrl,
    referrer: z.union([httpUrl, z.literal('')]).nullable().optional(),
    title: z.string().nullable().optional(),
  }),
  device: deviceSchema.default(deviceSchema.parse({})),
  client: z.looseObject({ ip: z.string().optional() }).optional(),
  consent: z.record(z.string(), z.boolean()).default({}),
  data: z.record(z.string(), z.unknown()).default({}),
  /** Present only on a replayed event (replayMarkerSchema). */
  replay: replayMarkerSchema.optional(),
});

/** Empties the visitor's jar (store, changelog tombstone, external cache). Keyed by userId. */
export const eraseRecordSchema = z.object({
  type: z.literal('erase'),
  /** When the erasure was requested (ISO 8601); informative. */
  requestedAt: z.string().optional(),
});

/** Cookies that a partner set in an HTTP response (the dispatcher saw Set-Cookie). Keyed by userId. */
export const jarMergeRecordSchema = z.object({
  type: z.literal('jar-merge'),
  cookies: z.array(jarCookieSchema).min(1),
  /** Who set them (partner id) and where they came from, for the trace. */
  partner: z.string().optional(),
  eventId: z.string().optional(),
});

export type PageViewEvent = z.output<typeof eventSchema>;
export type PageViewEventInput = z.input<typeof eventSchema>;
export type UserAgentData = z.output<typeof userAgentDataSchema>;
export type Device = z.output<typeof deviceSchema>;
export type ReplayMarker = z.output<typeof replayMarkerSchema>;
export type EraseRecord = z.output<typeof eraseRecordSchema>;
export type JarMergeRecord = z.output<typeof jarMergeRecordSchema>;
export type ControlRecord = EraseRecord | JarMergeRecord;

/** A decoded value of tracking.events: what the processor does with it depends on `kind`. */
export type EventsTopicValue =
  | { kind: 'event'; event: PageViewEvent }
  | { kind: 'erase'; record: EraseRecord }
  | { kind: 'jar-merge'; record: JarMergeRecord };

export function parseEvent(value: unknown, root = 'event'): PageViewEvent {
  return parseWith(eventSchema, root, value);
}

/**
 * Validates a value of tracking.events whole (throws InvalidInputError naming the field): a control
 * record by its `type`, anything else as an event. `userId` is the record key: a control record
 * carries none of its own.
 */
export function parseEventsTopicValue(value: unknown, root = 'event'): EventsTopicValue {
  const type = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { type?: unknown }).type : undefined;
  if (type === 'erase') return { kind: 'erase', record: parseWith(eraseRecordSchema, root, value) };
  if (type === 'jar-merge') return { kind: 'jar-merge', record: parseWith(jarMergeRecordSchema, root, value) };
  return { kind: 'event', event: parseEvent(value, root) };
}
