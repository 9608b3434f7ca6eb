/**
 * Dead-letter routing by typed error (never by message text): which failures of a record are the
 * record's fault (it goes to a dead-letter topic and the partition moves on) and which are not (a
 * produce failure, a bug: the application stops below the record, at-least-once).
 */
import { TagstreamError, type ErrorCode } from '../../core/errors.ts';
import { eventDeadLetter, REDRIVE_COUNT_HEADER, type EventDeadLetterReason } from '../../core/contracts/index.ts';
import type { ConsumedRecord, ProduceRecord } from '../../core/records.ts';

/** Turns a failed record into the record for its dead-letter topic, or undefined when it must stop the application. */
export type DeadLetterRouter = (error: unknown, record: ConsumedRecord) => ProduceRecord | undefined;

/**
 * The events DLQ: a malformed record (ERR_INVALID_INPUT: bad JSON, not an event, a field wrong)
 * at once as `invalid-event`; a failure of the topology's own code on the record as
 * `processing-failed`; an output its topic would refuse (ERR_KAFKA_RECORD_TOO_LARGE) as
 * `output-too-large`. Anything else (not the record's fault: a broker down) is not routed.
 */
export const EVENT_DEAD_LETTER_CODES: Readonly<Partial<Record<ErrorCode, EventDeadLetterReason>>> = Object.freeze({
  ERR_INVALID_INPUT: 'invalid-event',
  ERR_TOPOLOGY_NODE_FAILED: 'processing-failed',
  ERR_TOPOLOGY_NULL_KEY: 'processing-failed',
  ERR_KAFKA_RECORD_TOO_LARGE: 'output-too-large',
  ERR_KAFKA_RECORD_REJECTED: 'output-rejected',
});

export function eventDeadLetters(topic: string, codes = EVENT_DEAD_LETTER_CODES, now: () => number = Date.now): DeadLetterRouter {
  return (error, record) => {
    const reason = error instanceof TagstreamError ? codes[error.code] : undefined;
    if (reason === undefined) return undefined;
    const letter = eventDeadLetter({
      reason,
      error,
      attempts: reason === 'invalid-event' ? 0 : 1,
      source: { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp },
      value: record.value,
      now,
      // A redriven record says its count in a header too: bytes that are no JSON object carry no marker.
      ...redriveCount(record),
    });
    return { topic, key: record.key, value: JSON.stringify(letter) };
  };
}

function redriveCount(record: ConsumedRecord): { redrives?: number } {
  const header = record.headers[REDRIVE_COUNT_HEADER];
  if (header === undefined) return {};
  const n = Number(header.toString('utf8'));
  return Number.isInteger(n) && n > 0 ? { redrives: n } : {};
}
