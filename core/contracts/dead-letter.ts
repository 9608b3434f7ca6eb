/**
 * One dead-letter shape per DLQ topic. Both carry why (reason, code, error: the message), where the record
 * came from (source topic/partition/offset/timestamp), how many attempts were made, and the raw
 * value as consumed (base64), so a redrive can re-publish exactly what failed.
 */
import { z } from 'zod';
import { TagstreamError, type ErrorCode } from '../errors.ts';
import { requestRecordSchema } from './request.ts';

export const deadLetterSourceSchema = z.object({
  topic: z.string(),
  partition: z.number().int(),
  offset: z.number().int(),
  timestamp: z.number(),
});

/**
 * Why an event could not be executed or published: malformed (never retried), executor failed
 * after its attempts, the topology failed on it, or an output its topic would refuse (a record over
 * max.message.bytes, a captured request body over limits.requestBodyBytes) or that the broker
 * refused as invalid (output-rejected).
 */
export const EVENT_DEAD_LETTER_REASONS = ['invalid-event', 'executor-failed', 'processing-failed', 'output-too-large', 'output-rejected'] as const;

/** The value of tracking.events.dlq. */
export const eventDeadLetterSchema = z.object({
  reason: z.enum(EVENT_DEAD_LETTER_REASONS),
  code: z.string(),
  /** The error's message (never a cookie value or a full IP: messages are built from field names and codes). */
  error: z.string(),
  source: deadLetterSourceSchema,
  attempts: z.number().int().min(0),
  /** The consumed value (base64), or null for a tombstone. */
  value: z.string().nullable(),
  valueEncoding: z.literal('base64'),
  failedAt: z.string(),
  /** How often the failed record had been redriven (`dlq redrive`); absent = never. */
  redrives: z.number().int().min(0).optional(),
});

/**
 * What `dlq redrive` adds to an event it re-publishes (the `redrive` field of the event: events
 * are loose objects, so it travels through the processor into a new dead letter unchanged):
 * the count, the dead letter it came from, and the attempts of the earlier dead letters.
 */
export const eventRedriveMarkerSchema = z.object({
  count: z.number().int().min(1),
  from: z.object({ topic: z.string(), partition: z.number().int(), offset: z.number().int() }).optional(),
  attempts: z.number().int().min(0).default(0),
});
export type EventRedriveMarker = z.output<typeof eventRedriveMarkerSchema>;
/** The Kafka header `dlq redrive` sets on every record it re-publishes: the redrive count. */
export const REDRIVE_COUNT_HEADER = 'tagstream-redrive-count';

/** Why a captured request was not delivered. */
export const REQUEST_DEAD_LETTER_REASONS = ['permanent-failure', 'retry-window-exhausted', 'invalid-request'] as const;

export const deliveryAttemptSchema = z.object({
  at: z.string(),
  /** HTTP status when the partner answered. */
  status: z.number().int().optional(),
  code: z.string().optional(),
  error: z.string().optional(),
});

/** The value of tracking.requests.dlq. */
export const requestDeadLetterSchema = z.object({
  reason: z.enum(REQUEST_DEAD_LETTER_REASONS),
  code: z.string(),
  /** The error's message (never a cookie value or a full IP: messages are built from field names and codes). */
  error: z.string(),
  source: deadLetterSourceSchema,
  attempts: z.array(deliveryAttemptSchema),
  /** The request, when it could be decoded. */
  request: requestRecordSchema.nullable(),
  value: z.string().nullable(),
  valueEncoding: z.literal('base64'),
  failedAt: z.string(),
  /** The partner the dispatcher routed it to (a request without `partner` can belong to one by host). */
  partner: z.string().optional(),
  /** How often the request had been redriven (its `redrive.count`); absent = never. */
  redrives: z.number().int().min(0).optional(),
});

export type DeadLetterSource = z.output<typeof deadLetterSourceSchema>;
export type EventDeadLetter = z.output<typeof eventDeadLetterSchema>;
export type EventDeadLetterReason = EventDeadLetter['reason'];
export type DeliveryAttempt = z.output<typeof deliveryAttemptSchema>;
export type RequestDeadLetter = z.output<typeof requestDeadLetterSchema>;

export interface EventDeadLetterInput {
  reason: EventDeadLetterReason;
  error: unknown;
  source: DeadLetterSource;
  attempts: number;
  value: Buffer | string | null;
  now?: () => number;
  /** The redrive count when the caller knows it (a header); else read from the value's `redrive` field. */
  redrives?: number;
}

/** Builds the tracking.events.dlq value; the message of a non-TagstreamError keeps only its text. */
export function eventDeadLetter(input: EventDeadLetterInput): EventDeadLetter {
  const code: ErrorCode | 'ERR_UNKNOWN' = input.error instanceof TagstreamError ? input.error.code : 'ERR_UNKNOWN';
  const message = input.error instanceof Error ? input.error.message : String(input.error);
  const raw = input.value === null ? null : Buffer.isBuffer(input.value) ? input.value : Buffer.from(input.value, 'utf8');
  const marker = raw === null ? undefined : redriveMarkerOf(raw);
  const redrives = input.redrives ?? marker?.count;
  return {
    reason: input.reason,
    code,
    error: message,
    source: input.source,
    // A redriven event's earlier attempts count too: the history survives the round trip.
    attempts: input.attempts + (marker?.attempts ?? 0),
    value: raw === null ? null : raw.toString('base64'),
    valueEncoding: 'base64',
    failedAt: new Date((input.now ?? Date.now)()).toISOString(),
    ...(redrives === undefined || redrives === 0 ? {} : { redrives }),
  };
}

/** The `redrive` field of an event's JSON, when the value is one and carries a valid marker. */
export function redriveMarkerOf(raw: Buffer): EventRedriveMarker | undefined {
  // Only a JSON object can carry one; a first byte check keeps junk and arrays cheap.
  if (raw.length === 0 || raw[0] !== 0x7b) return undefined;
  try {
    const value = JSON.parse(raw.toString('utf8')) as { redrive?: unknown };
    const parsed = eventRedriveMarkerSchema.safeParse(value.redrive);
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
