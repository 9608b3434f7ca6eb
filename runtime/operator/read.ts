/**
 * What the operator commands read from the topics, outside any consumer group (the client's
 * PartitionReader): the page views of a time range of tracking.events, the visitors' current
 * jars from tracking.cookies, and the requests captured originally from tracking.requests.
 */
import {
  parseEventsTopicValue,
  storedJarSchema,
  type PageViewEvent,
  type RequestRecord,
  type StoredJar,
} from '../../core/contracts/index.ts';
import type { ConsumedRecord, KafkaAdmin, KafkaClient, PartitionOffset } from '../kafka/types.ts';
import { parseRequestRecordValue } from './support.ts';
import type { TimeRange } from './time.ts';

/** One page view of the range, where it was read. */
export interface RangeEvent {
  event: PageViewEvent;
  /** The value as it was published (what a replay re-publishes, plus its marker). */
  raw: Record<string, unknown>;
  partition: number;
  offset: number;
  /** The record's Kafka timestamp (ms). */
  timestamp: number;
}

export interface RangeSkips {
  /** `erase` / `jar-merge` control records: jar changes, not page views. */
  control: number;
  /** Events that a replay published: replaying them again would replay a replay. */
  replays: number;
  /** A second record of an eventId already read (a redriven dead letter, a producer retry). */
  duplicates: number;
  /** Values that are no valid event (the processor dead-lettered them). */
  invalid: number;
}

export interface PartitionSpan {
  partition: number;
  from: number;
  to: number;
}

/** Offsets [from, to) per partition that hold the records of the range (ListOffsets by time). */
export async function rangeOffsets(admin: KafkaAdmin, topic: string, range: TimeRange): Promise<PartitionSpan[]> {
  const [starts, ends] = await Promise.all([admin.listOffsetsForTime(topic, range.fromMs), admin.listOffsetsForTime(topic, range.toMs)]);
  const endOf = new Map(ends.map((p: PartitionOffset) => [p.partition, p.offset]));
  return starts.map((s) => ({ partition: s.partition, from: s.offset, to: Math.max(s.offset, endOf.get(s.partition) ?? s.offset) }));
}

/**
 * Reads the page views of `spans` in partition order, batch by batch: `onBatch` gets the events
 * to replay (control records, replays, duplicates and invalid values counted in the skips) and
 * the number of records the batch consumed (progress). Timestamps outside the range are skipped
 * too: the time index gives offsets, a late record can sit among newer ones.
 */
export async function scanRange(
  client: KafkaClient,
  topic: string,
  spans: readonly PartitionSpan[],
  range: TimeRange,
  onBatch: (events: RangeEvent[], consumed: number) => Promise<void> | void,
): Promise<RangeSkips> {
  const skips: RangeSkips = { control: 0, replays: 0, duplicates: 0, invalid: 0 };
  const seen = new Set<string>();
  const reader = client.reader();
  try {
    for (const span of spans) {
      if (span.to <= span.from) continue;
      await reader.read(topic, span.partition, span.from, async (records: ConsumedRecord[]) => {
        const events: RangeEvent[] = [];
        for (const record of records) {
          if (record.timestamp < range.fromMs || record.timestamp >= range.toMs) continue;
          const decoded = decodeEvent(record);
          if (decoded === 'invalid') skips.invalid += 1;
          else if (decoded === 'control') skips.control += 1;
          else if (decoded.event.replay !== undefined) skips.replays += 1;
          else if (seen.has(decoded.event.eventId)) skips.duplicates += 1;
          else {
            seen.add(decoded.event.eventId);
            events.push({ ...decoded, partition: record.partition, offset: record.offset, timestamp: record.timestamp });
          }
        }
        await onBatch(events, records.length);
      }, span.to);
    }
  } finally {
    await reader.close();
  }
  return skips;
}

function decodeEvent(record: ConsumedRecord): { event: PageViewEvent; raw: Record<string, unknown> } | 'control' | 'invalid' {
  if (record.value === null || record.key === null) return 'invalid';
  try {
    const raw = JSON.parse(record.value.toString('utf8')) as Record<string, unknown>;
    const parsed = parseEventsTopicValue(raw);
    if (parsed.kind !== 'event') return 'control';
    return parsed.event.userId === record.key.toString('utf8') ? { event: parsed.event, raw } : 'invalid';
  } catch {
    return 'invalid';
  }
}

/**
 * The current jar of each visitor (latest record per key; a tombstone or no record = null), read
 * from the partitions of tracking.cookies that hold them (co-partitioned with the events: the
 * event's partition is its visitor's cookie partition).
 */
export async function readCurrentJars(client: KafkaClient, cookiesTopic: string, visitors: ReadonlyMap<string, number>): Promise<Map<string, StoredJar | null>> {
  const jars = new Map<string, StoredJar | null>();
  for (const user of visitors.keys()) jars.set(user, null);
  const partitions = [...new Set(visitors.values())].sort((a, b) => a - b);
  const reader = client.reader();
  try {
    for (const partition of partitions) {
      await reader.read(cookiesTopic, partition, 0, (records) => {
        for (const r of records) {
          const user = r.key?.toString('utf8');
          if (user === undefined || !jars.has(user)) continue;
          jars.set(user, r.value === null ? null : decodeJar(r.value));
        }
      });
    }
  } finally {
    await reader.close();
  }
  return jars;
}

function decodeJar(value: Buffer): StoredJar | null {
  try {
    const parsed = storedJarSchema.safeParse(JSON.parse(value.toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * The requests captured when the events of `eventIds` first ran (records a replay produced carry
 * `replayedAt` and are left out), from `sinceMs` (the range's start: a request is published after
 * its event) to the end of tracking.requests, grouped by eventId in capture order.
 */
export async function readOriginalRequests(client: KafkaClient, requestsTopic: string, eventIds: ReadonlySet<string>, sinceMs: number): Promise<Map<string, RequestRecord[]>> {
  const found = new Map<string, RequestRecord[]>();
  const admin = await client.admin();
  let starts: PartitionOffset[];
  try {
    starts = await admin.listOffsetsForTime(requestsTopic, sinceMs);
  } finally {
    await admin.close();
  }
  const reader = client.reader();
  const keys = new Set<string>();
  try {
    for (const { partition, offset } of starts) {
      await reader.read(requestsTopic, partition, offset, (records) => {
        for (const r of records) {
          const request = parseRequestRecordValue(r.value);
          if (request === undefined || request.replayedAt !== undefined || !eventIds.has(request.eventId)) continue;
          // The same key twice is a reprocessing of the event (restart, rebalance): one request.
          if (keys.has(request.idempotencyKey)) continue;
          keys.add(request.idempotencyKey);
          const list = found.get(request.eventId) ?? [];
          list.push(request);
          found.set(request.eventId, list);
        }
      });
    }
  } finally {
    await reader.close();
  }
  for (const list of found.values()) list.sort((a, b) => keyIndex(a) - keyIndex(b));
  return found;
}

/** n of `<eventId>:<partner>:<n>` (capture order within the partner). */
export function keyIndex(r: Pick<RequestRecord, 'idempotencyKey'>): number {
  const n = Number(r.idempotencyKey.slice(r.idempotencyKey.lastIndexOf(':') + 1));
  return Number.isFinite(n) ? n : 0;
}
