/**
 * `dlq redrive` (DESIGN.md "Topics": "redrive command re-publishes"): dead letters go back for
 * another try, requests to tracking.requests (the RequestRecord the dispatcher gave up on), events
 * to tracking.events (the raw bytes the processor consumed). The DLQ is read outside any group.
 *
 * Never a loop: every copy carries its redrive count (the `redrive` field of the record, which
 * the dispatcher and the processor keep when they dead-letter it again, plus a header), so a dead
 * letter says how often its record was redriven and the command skips those at --max-redrives.
 * The attempt history travels in the same marker: a request dead-lettered again lists its earlier
 * attempts before the new ones; an event's attempts add up.
 *
 * Never the same dead letter twice: a committed "ledger" group per DLQ remembers, per partition,
 * the offset up to which runs have gone. A run settles everything it reads (redriven, or left out
 * by --since or --max-redrives); what --partner leaves out is not settled: a run for partner X
 * commits to `<group>.<X>` (what X has been offered) and a run without --partner to `<group>`
 * (everything). A later run starts at the larger of the two for each dead letter's partner.
 * --from-start ignores the ledger; --dry-run reads it and changes nothing. A dead letter that a
 * later one in the range was made from (it dead-lettered again) is skipped as superseded.
 */
import { eventDeadLetterSchema, redriveMarkerOf, REDRIVE_COUNT_HEADER, requestDeadLetterSchema, type DeliveryAttempt } from '../../core/contracts/index.ts';
import { InvalidInputError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { ConsumedRecord, KafkaAdmin, KafkaClient, ProduceRecord } from '../kafka/types.ts';

export type DlqKind = 'requests' | 'events';
export const DEFAULT_REDRIVE_GROUP = 'tagstream-redrive';
export const DEFAULT_MAX_REDRIVES = 3;
/** Attempts a marker carries: the first and the latest (a record redriven N times does not grow without bound). */
const MAX_MARKER_ATTEMPTS = 50;
const BATCH = 500;

export interface RedriveOptions {
  kind: DlqKind;
  dlqTopic: string;
  targetTopic: string;
  /** Requests only: the dead letters of these partners (all when empty). */
  partners?: readonly string[];
  /** Epoch ms: only dead letters written at or after it (the DLQ record's timestamp). */
  since?: number;
  dryRun?: boolean;
  /** Dead letters whose record was redriven this often already are skipped. */
  maxRedrives?: number;
  /** The ledger's group (partner runs use `<group>.<partner>`). */
  group?: string;
  /** Ignore the ledger: read the DLQ from its first offset. */
  fromStart?: boolean;
  logger?: Logger;
}

export type Decision = 'redrive' | 'partner' | 'since' | 'max-redrives' | 'superseded' | 'already-redriven' | 'unusable';

export interface RedriveItem {
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  reason: string;
  partner: string | null;
  /** How often its record was redriven before (0 = an original dead letter). */
  redrives: number;
  /** Requests: the idempotency key; events: the event id, when readable. */
  id: string | null;
  decision: Decision;
}

export interface RedriveSummary {
  dlqTopic: string;
  targetTopic: string;
  dryRun: boolean;
  /** Dead letters read (from the ledger's offsets, or the --since offsets, to the end). */
  found: number;
  /** Published (or, with --dry-run, that would be). */
  redriven: number;
  skipped: Record<Exclude<Decision, 'redrive'>, number>;
  byReason: Record<string, number>;
  /** Every dead letter read, with its decision (a dry run lists the redrive ones). */
  items: RedriveItem[];
  /** The ledger groups committed (none on a dry run). */
  committed: string[];
}

interface Letter {
  item: RedriveItem;
  /** What goes to the target topic, when the decision is `redrive`. */
  build?: (count: number) => ProduceRecord;
  /** The dead letter this one was made from (its marker), for supersession. */
  from?: { topic: string; partition: number; offset: number };
}

export async function redrive(client: KafkaClient, options: RedriveOptions): Promise<RedriveSummary> {
  const partners = options.partners ?? [];
  if (options.kind === 'events' && partners.length > 0) throw new InvalidInputError('--partner', 'applies to --topic requests only: an event runs every consented partner');
  const group = options.group ?? DEFAULT_REDRIVE_GROUP;
  const max = options.maxRedrives ?? DEFAULT_MAX_REDRIVES;
  const admin = await client.admin();
  const reader = client.reader();
  try {
    const ends = await admin.listEndOffsets(options.dlqTopic);
    const ledger = await readLedger(admin, options.dlqTopic, group, options.kind === 'requests', options.fromStart === true);
    const starts = await scanStarts(admin, options, ends.map((e) => e.partition), ledger, partners);

    const letters: Letter[] = [];
    for (const end of ends) {
      const from = starts.get(end.partition) ?? 0;
      if (from >= end.offset) continue;
      await reader.read(options.dlqTopic, end.partition, from, (records) => {
        for (const r of records) letters.push(decode(options.kind, r, options.targetTopic));
      }, end.offset);
    }

    const supersededBy = new Set(letters.flatMap((l) => (l.from?.topic === options.dlqTopic ? [`${l.from.partition}:${l.from.offset}`] : [])));
    for (const l of letters) {
      l.item.decision = decide(l, { ledger, partners, since: options.since, max, superseded: supersededBy.has(`${l.item.partition}:${l.item.offset}`) });
    }

    const chosen = letters.filter((l) => l.item.decision === 'redrive');
    if (options.dryRun !== true) {
      await publish(client, chosen.map((l) => (l.build as (count: number) => ProduceRecord)(l.item.redrives + 1)));
      options.logger?.info({ dlqTopic: options.dlqTopic, targetTopic: options.targetTopic, redriven: chosen.length }, 'dead letters redriven');
    }
    const committed = options.dryRun === true ? [] : await commitLedger(client, options.dlqTopic, group, partners, ends.map((e) => ({ partition: e.partition, offset: e.offset })));
    return summarize(options, letters, committed);
  } finally {
    await reader.close();
    await admin.close();
  }
}

type Ledger = { base: Map<number, number>; partners: Map<string, Map<number, number>> };

/** Committed offsets of the ledger groups on the DLQ (empty maps with --from-start). */
async function readLedger(admin: KafkaAdmin, dlqTopic: string, group: string, perPartner: boolean, fromStart: boolean): Promise<Ledger> {
  const ledger: Ledger = { base: new Map(), partners: new Map() };
  if (fromStart) return ledger;
  const offsets = async (g: string): Promise<Map<number, number>> => new Map((await admin.listCommittedOffsets(g, dlqTopic)).filter((o) => o.offset >= 0).map((o) => [o.partition, o.offset]));
  ledger.base = await offsets(group);
  if (perPartner) {
    for (const g of (await admin.listGroups()).filter((name) => name.startsWith(`${group}.`))) ledger.partners.set(g.slice(group.length + 1), await offsets(g));
  }
  return ledger;
}

/** Where a dead letter of `partner` on `partition` starts being new to the ledger. */
function watermark(ledger: Ledger, partner: string | null, partition: number): number {
  const base = ledger.base.get(partition) ?? 0;
  const own = partner === null ? undefined : ledger.partners.get(partner)?.get(partition);
  return Math.max(base, own ?? 0);
}

/** First offset to read per partition: the ledger's, raised to the log start and to --since. */
async function scanStarts(admin: KafkaAdmin, options: RedriveOptions, partitions: number[], ledger: Ledger, partners: readonly string[]): Promise<Map<number, number>> {
  const logStart = new Map((await admin.listOffsetsForTime(options.dlqTopic, 0)).map((o) => [o.partition, o.offset]));
  const bySince = options.since === undefined ? new Map<number, number>() : new Map((await admin.listOffsetsForTime(options.dlqTopic, options.since)).map((o) => [o.partition, o.offset]));
  const starts = new Map<number, number>();
  for (const p of partitions) {
    const fromLedger = partners.length === 0 ? (ledger.base.get(p) ?? 0) : Math.min(...partners.map((x) => watermark(ledger, x, p)));
    starts.set(p, Math.max(fromLedger, logStart.get(p) ?? 0, bySince.get(p) ?? 0));
  }
  return starts;
}

function decide(l: Letter, c: { ledger: Ledger; partners: readonly string[]; since: number | undefined; max: number; superseded: boolean }): Decision {
  if (l.build === undefined) return 'unusable';
  if (l.item.offset < watermark(c.ledger, l.item.partner, l.item.partition)) return 'already-redriven';
  if (c.partners.length > 0 && (l.item.partner === null || !c.partners.includes(l.item.partner))) return 'partner';
  if (c.since !== undefined && l.item.timestamp < c.since) return 'since';
  if (c.superseded) return 'superseded';
  if (l.item.redrives >= c.max) return 'max-redrives';
  return 'redrive';
}

/** A DLQ record → what we know of it and how to re-publish it (no `build` when it cannot be). */
function decode(kind: DlqKind, r: ConsumedRecord, target: string): Letter {
  const key = r.key === null ? null : r.key.toString('utf8');
  const item: RedriveItem = { partition: r.partition, offset: r.offset, timestamp: r.timestamp, key, reason: 'unreadable', partner: null, redrives: 0, id: null, decision: 'unusable' };
  if (r.value === null) return { item };
  let json: unknown;
  try {
    json = JSON.parse(r.value.toString('utf8'));
  } catch {
    return { item };
  }
  const here = { topic: r.topic, partition: r.partition, offset: r.offset };
  if (kind === 'requests') {
    const parsed = requestDeadLetterSchema.safeParse(json);
    if (!parsed.success) return { item };
    const dl = parsed.data;
    const request = dl.request;
    Object.assign(item, { reason: dl.reason, partner: dl.partner ?? request?.partner ?? null, redrives: dl.redrives ?? request?.redrive?.count ?? 0, id: request?.idempotencyKey ?? null });
    if (request === null) return { item };
    return {
      item,
      ...(request.redrive?.from === undefined ? {} : { from: request.redrive.from }),
      build: (count) => ({
        topic: target,
        key: key ?? request.userId,
        value: JSON.stringify({ ...request, redrive: { count, from: here, attempts: boundAttempts(dl.attempts) } }),
        headers: { [REDRIVE_COUNT_HEADER]: String(count) },
      }),
    };
  }
  const parsed = eventDeadLetterSchema.safeParse(json);
  if (!parsed.success) return { item };
  const dl = parsed.data;
  const raw = dl.value === null ? null : Buffer.from(dl.value, 'base64');
  const marker = raw === null ? undefined : redriveMarkerOf(raw);
  Object.assign(item, { reason: dl.reason, redrives: dl.redrives ?? marker?.count ?? 0, id: raw === null ? null : eventIdOf(raw) });
  // A record without key cannot reach a visitor's lane (the processor dead-letters it again).
  if (raw === null || key === null) return { item };
  return {
    item,
    ...(marker?.from === undefined ? {} : { from: marker.from }),
    build: (count) => ({ topic: target, key, value: withEventMarker(raw, { count, from: here, attempts: dl.attempts }), headers: { [REDRIVE_COUNT_HEADER]: String(count) } }),
  };
}

/** The raw event with its `redrive` marker set; bytes that are no JSON object go back as they were (the header counts them). */
function withEventMarker(raw: Buffer, marker: { count: number; from: { topic: string; partition: number; offset: number }; attempts: number }): Buffer {
  try {
    const value = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return raw;
    return Buffer.from(JSON.stringify({ ...(value as Record<string, unknown>), redrive: marker }), 'utf8');
  } catch {
    return raw;
  }
}

function eventIdOf(raw: Buffer): string | null {
  try {
    const id = (JSON.parse(raw.toString('utf8')) as { eventId?: unknown }).eventId;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

function boundAttempts(attempts: readonly DeliveryAttempt[]): DeliveryAttempt[] {
  if (attempts.length <= MAX_MARKER_ATTEMPTS) return [...attempts];
  return [attempts[0] as DeliveryAttempt, ...attempts.slice(attempts.length - (MAX_MARKER_ATTEMPTS - 1))];
}

async function publish(client: KafkaClient, records: ProduceRecord[]): Promise<void> {
  if (records.length === 0) return;
  const producer = await client.producer();
  try {
    // In DLQ order, acknowledged batch by batch before the ledger moves.
    for (let i = 0; i < records.length; i += BATCH) await producer.send(records.slice(i, i + BATCH));
  } finally {
    await producer.close();
  }
}

/**
 * Commits the scan's end offsets to the ledger group(s). A commit needs a group member: the
 * command joins the (otherwise empty) group paused, commits, and leaves.
 */
async function commitLedger(client: KafkaClient, dlqTopic: string, group: string, partners: readonly string[], ends: Array<{ partition: number; offset: number }>): Promise<string[]> {
  const groups = partners.length === 0 ? [group] : partners.map((p) => `${group}.${p}`);
  for (const groupId of groups) {
    const consumer = client.consumer({ groupId, topics: [dlqTopic], autoOffsetReset: 'latest' });
    consumer.pause();
    try {
      await consumer.start({ onRecords: () => undefined });
      await consumer.commit(ends.map((e) => ({ topic: dlqTopic, partition: e.partition, offset: e.offset })));
    } finally {
      await consumer.close();
    }
  }
  return groups;
}

function summarize(options: RedriveOptions, letters: Letter[], committed: string[]): RedriveSummary {
  const skipped: RedriveSummary['skipped'] = { partner: 0, since: 0, 'max-redrives': 0, superseded: 0, 'already-redriven': 0, unusable: 0 };
  const byReason: Record<string, number> = {};
  let redriven = 0;
  for (const { item } of letters) {
    byReason[item.reason] = (byReason[item.reason] ?? 0) + 1;
    if (item.decision === 'redrive') redriven += 1;
    else skipped[item.decision] += 1;
  }
  return { dlqTopic: options.dlqTopic, targetTopic: options.targetTopic, dryRun: options.dryRun === true, found: letters.length, redriven, skipped, byReason, items: letters.map((l) => l.item), committed };
}
