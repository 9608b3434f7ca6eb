/**
 * The dispatcher's contracts: what one delivery decides (the topology routes on it, the sender side
 * produces it) and the value of tracking.requests.retry. Defined once here: topology/app/dispatcher.ts
 * and processors/dispatcher both speak them.
 */
import { z } from 'zod';
import { deliveryAttemptSchema, type DeliveryAttempt } from './dead-letter.ts';
import type { JarCookie } from './jar.ts';
import { requestRecordSchema, type RequestRecord } from './request.ts';

export interface PendingDelivery {
  request: RequestRecord;
  /** Earlier attempts (the retry topic carries them). */
  attempts: DeliveryAttempt[];
  /** ISO time of the first attempt, absent for a fresh request. */
  firstAttemptAt?: string | undefined;
  /** Rounds through the retry topic so far (the exponent of its backoff). */
  rounds?: number | undefined;
}

/** Why a captured request is not sent at all (counted per partner and host, never delivered). */
export type NotSentReason = 'invalid-url' | 'unknown-partner' | 'undeclared-host' | 'unattributed-host' | 'ambiguous-host' | 'egress-denied';

export type DeliveryOutcome =
  | { kind: 'delivered'; partner: string; status: number; attempts: DeliveryAttempt[]; cookies: JarCookie[] }
  | { kind: 'retry'; partner: string; attempts: DeliveryAttempt[]; firstAttemptAt: string; notBefore: string; rounds: number }
  | { kind: 'dead'; partner: string; reason: 'permanent-failure' | 'retry-window-exhausted'; code: string; error: string; attempts: DeliveryAttempt[] }
  | { kind: 'not-sent'; partner: string | null; reason: NotSentReason; host: string };

/** One delivery: the injected function the dispatcher topology calls per request. */
export type Deliver = (pending: PendingDelivery, signal: AbortSignal) => Promise<DeliveryOutcome>;

/** The value of tracking.requests.retry: the request, its attempts and when it is due. */
export const retryRecordSchema = z.object({
  request: requestRecordSchema,
  attempts: z.array(deliveryAttemptSchema),
  firstAttemptAt: z.string(),
  notBefore: z.string(),
  rounds: z.number().int().min(0),
});
export type RetryRecord = z.output<typeof retryRecordSchema>;
