/**
 * What the executor captures (DESIGN.md "Contracts": the `execute` output) and what the processor
 * publishes on tracking.requests for the dispatcher (RequestRecord).
 */
import { z } from 'zod';
import { jarSchema } from './jar.ts';
import { parseWith } from './parse.ts';

export const TRANSPORTS = ['image', 'fetch', 'xhr', 'beacon', 'script', 'iframe', 'form', 'other'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export const capturedRequestSchema = z.object({
  /** The partner whose code sent it, null when none could be attributed. */
  partner: z.string().min(1).nullable(),
  method: z.string().min(1),
  url: z.string().min(1),
  headers: z.record(z.string(), z.string()).default({}),
  body: z.string().nullable().default(null),
  /** `utf8` when the body is valid UTF-8 text, else `base64` (gzip bodies are kept as sent). */
  bodyEncoding: z.enum(['utf8', 'base64']).default('utf8'),
  transport: z.enum(TRANSPORTS),
});

export const TRACKER_STATUSES = ['ok', 'error', 'timeout', 'skipped'] as const;
export type TrackerStatus = (typeof TRACKER_STATUSES)[number];

export const trackerOutcomeSchema = z.object({
  partner: z.string(),
  status: z.enum(TRACKER_STATUSES),
  durationMs: z.number().min(0),
  error: z.string().nullable(),
  /**
   * What the run had to cut or could not read for this partner, without values (jar entries over
   * the budget, a capture that was partial, a request body over the limit). Absent when nothing.
   */
  warnings: z.array(z.string()).optional(),
});

/** The one-event result: `execute` prints it, the processor turns it into requests and a jar. */
export const executeResultSchema = z.object({
  requests: z.array(capturedRequestSchema),
  jar: jarSchema,
  trackers: z.array(trackerOutcomeSchema),
});

/**
 * What `dlq redrive` adds to a record it re-publishes (runtime/operator/redrive.ts): how often the
 * record was redriven, the dead letter it came from, and the delivery attempts of its earlier
 * dead letters, so a record that dead-letters again keeps its whole history and its count (the
 * command stops at --max-redrives). The attempt shape is dead-letter.ts's deliveryAttemptSchema,
 * written out here because that module imports this one.
 */
export const redriveMarkerSchema = z.object({
  /** 1 after the first redrive. */
  count: z.number().int().min(1),
  /** The dead letter this copy was made from (DLQ topic, partition, offset). */
  from: z.object({ topic: z.string(), partition: z.number().int(), offset: z.number().int() }).optional(),
  /** Delivery attempts of the earlier dead letters, oldest first (bounded by the command). */
  attempts: z
    .array(z.object({ at: z.string(), status: z.number().int().optional(), code: z.string().optional(), error: z.string().optional() }))
    .default([]),
});
export type RedriveMarker = z.output<typeof redriveMarkerSchema>;

/**
 * What the dispatcher's retry consumer adds to a request it hands back to tracking.requests once its
 * `notBefore` has passed (runtime/roles/dispatcher-retry.ts): the attempts so far, when the first
 * was made (the retry window counts from it) and the rounds through the retry topic (the exponent
 * of its backoff). Attempts as in deliveryAttemptSchema, written out for the reason given above.
 */
export const retryMarkerSchema = z.object({
  attempts: z.array(z.object({ at: z.string(), status: z.number().int().optional(), code: z.string().optional(), error: z.string().optional() })),
  firstAttemptAt: z.string(),
  rounds: z.number().int().min(0),
});
export type RetryMarker = z.output<typeof retryMarkerSchema>;

/** The value of tracking.requests: the captured request plus what the dispatcher needs. */
export const requestRecordSchema = capturedRequestSchema.extend({
  eventId: z.string().min(1),
  userId: z.string().min(1),
  /** `<eventId>:<partner>:<n>`: stable across reprocessing of the event, so the dispatcher can dedupe. */
  idempotencyKey: z.string().min(1),
  /** The event's own timestamp (ISO 8601): a partner's retry window counts from it. */
  eventTimestamp: z.string().optional(),
  /** Set when a replayed event produced it: the replay's `requestedAt` (docs/replay.md). */
  replayedAt: z.string().optional(),
  /** What the dispatcher forwards of the visitor (User-Agent, Accept-Language, X-Forwarded-For). */
  visitor: z
    .object({
      ip: z.string().optional(),
      userAgent: z.string().optional(),
      acceptLanguage: z.string().optional(),
    })
    .optional(),
  /** Present on a record re-published by `dlq redrive`. */
  redrive: redriveMarkerSchema.optional(),
  /** Present on a record the dispatcher's retry consumer handed back once it was due. */
  retry: retryMarkerSchema.optional(),
});

export type CapturedRequest = z.output<typeof capturedRequestSchema>;
export type TrackerOutcome = z.output<typeof trackerOutcomeSchema>;
export type ExecuteResult = z.output<typeof executeResultSchema>;
export type RequestRecord = z.output<typeof requestRecordSchema>;

export function parseRequestRecord(value: unknown, root = 'request'): RequestRecord {
  return parseWith(requestRecordSchema, root, value);
}
