/** Small helpers of the operator commands: tolerant decoders of topic values, a bounded worker pool. */
import { eventDeadLetterSchema, parseRequestRecord, type EventDeadLetter, type RequestRecord } from '../../core/contracts/index.ts';

/** A request record of tracking.requests, or undefined for anything else. */
export function parseRequestRecordValue(value: Buffer | null): RequestRecord | undefined {
  if (value === null) return undefined;
  try {
    return parseRequestRecord(JSON.parse(value.toString('utf8')));
  } catch {
    return undefined;
  }
}

/** A dead letter of tracking.events.dlq with the event it holds (when that value is an event's JSON). */
export function parseEventDeadLetterValue(value: Buffer | null): (EventDeadLetter & { event?: { eventId: string; userId: string; replay?: { requestedAt?: string } } }) | undefined {
  if (value === null) return undefined;
  try {
    const letter = eventDeadLetterSchema.parse(JSON.parse(value.toString('utf8')));
    if (letter.value === null) return letter;
    const event = JSON.parse(Buffer.from(letter.value, 'base64').toString('utf8')) as { eventId?: unknown; userId?: unknown; replay?: { requestedAt?: string } };
    if (typeof event.eventId !== 'string' || typeof event.userId !== 'string') return letter;
    return { ...letter, event: { eventId: event.eventId, userId: event.userId, ...(event.replay === undefined ? {} : { replay: event.replay }) } };
  } catch {
    return undefined;
  }
}

/** Runs `work` over `items`, at most `concurrency` at once; the first failure rejects (after the running ones end). */
export async function runWithConcurrency<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (failed !== undefined) throw failed.error;
}
