/**
 * `erase --user ID` (DESIGN.md "Replay and erasure"): what the command reads, writes and waits
 * for. The processor does the erasure itself, in the visitor's order: the `{"type":"erase"}`
 * control record written here goes through the same per-key lane as the visitor's page views,
 * and the processor answers it with a tombstone in its store and on tracking.cookies (compaction
 * then removes the values). So the command never touches a jar; it shows what is going to go,
 * and with --wait it watches for that tombstone.
 */
import type { EraseRecord, StoredJar } from '../../core/contracts/index.ts';
import { InvalidInputError } from '../../core/errors.ts';
import { partitionForKey } from '../kafka/partitioner.ts';
import type { KafkaAdmin, PartitionReader, ProduceRecord } from '../kafka/types.ts';

/** What the visitor's current jar holds, by name only: never a cookie value or a storage value. */
export interface JarPreview {
  userId: string;
  /** Partition of tracking.cookies (and tracking.events) that holds the visitor. */
  partition: number;
  /** False when the changelog has no jar for the visitor (never seen, or already erased). */
  found: boolean;
  version: number | null;
  updatedAt: string | null;
  cookies: Array<{ name: string; domain: string; path: string }>;
  localStorage: Array<{ origin: string; keys: number }>;
}

export interface JarLookup {
  preview: JarPreview;
  /** End offset of that partition when it was read: a tombstone at or after it is the answer to our erase. */
  endOffset: number;
}

export function checkUserId(userId: string): string {
  if (userId.trim() === '' || userId !== userId.trim()) throw new InvalidInputError('--user', 'must be a visitor id (the userId key of tracking.events), without surrounding spaces');
  return userId;
}

/**
 * The visitor's current jar: the last value of their key on their partition of the compacted
 * changelog. Reads that whole partition (one visitor's key can be anywhere in it), so it costs
 * one pass over 1/N of the jars; the processor's own store is not reachable from outside.
 */
export async function lookUpJar(admin: KafkaAdmin, reader: PartitionReader, cookiesTopic: string, userId: string): Promise<JarLookup> {
  const ends = await admin.listEndOffsets(cookiesTopic);
  const partition = partitionForKey(userId, ends.length);
  const endOffset = ends.find((e) => e.partition === partition)?.offset ?? 0;
  const [start] = (await admin.listOffsetsForTime(cookiesTopic, 0)).filter((s) => s.partition === partition);
  let last: Buffer | null | undefined;
  await reader.read(cookiesTopic, partition, start?.offset ?? 0, (records) => {
    for (const r of records) if (r.key !== null && r.key.toString('utf8') === userId) last = r.value;
  }, endOffset);
  const jar = last === undefined || last === null ? null : (JSON.parse(last.toString('utf8')) as StoredJar);
  return { preview: previewOf(userId, partition, jar), endOffset };
}

export function previewOf(userId: string, partition: number, jar: StoredJar | null): JarPreview {
  return {
    userId,
    partition,
    found: jar !== null,
    version: jar?.version ?? null,
    updatedAt: jar?.updatedAt ?? null,
    cookies: (jar?.cookies ?? []).map((c) => ({ name: c.name, domain: c.domain, path: c.path })),
    localStorage: Object.entries(jar?.localStorage ?? {}).map(([origin, items]) => ({ origin, keys: Object.keys(items).length })),
  };
}

export function formatPreview(p: JarPreview): string {
  const lines = [`visitor ${p.userId} (partition ${p.partition})`];
  if (!p.found) {
    lines.push('  no jar on the changelog (never seen, or already erased); the erase record is written anyway');
    return lines.join('\n') + '\n';
  }
  lines.push(`  jar version ${p.version ?? '-'}, updated ${p.updatedAt ?? '-'}`);
  lines.push(`  cookies (${p.cookies.length}):`);
  for (const c of p.cookies) lines.push(`    ${c.name}  ${c.domain}${c.path === '/' ? '' : c.path}`);
  lines.push(`  localStorage (${p.localStorage.length} origins):`);
  for (const o of p.localStorage) lines.push(`    ${o.origin}  ${o.keys} key${o.keys === 1 ? '' : 's'}`);
  return lines.join('\n') + '\n';
}

/** The control record of core/contracts/event.ts, keyed by the visitor so it lands in their lane. */
export function eraseRecord(eventsTopic: string, userId: string, now: number): ProduceRecord {
  const value: EraseRecord = { type: 'erase', requestedAt: new Date(now).toISOString() };
  return { topic: eventsTopic, key: userId, value: JSON.stringify(value) };
}

/**
 * Polls the visitor's changelog partition from `fromOffset` until their tombstone shows up;
 * resolves its offset, or undefined once `timeoutMs` passed (or the signal aborted).
 */
export async function waitForTombstone(
  reader: PartitionReader,
  admin: KafkaAdmin,
  cookiesTopic: string,
  partition: number,
  fromOffset: number,
  userId: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  let next = fromOffset;
  for (;;) {
    const end = (await admin.listEndOffsets(cookiesTopic)).find((e) => e.partition === partition)?.offset ?? next;
    let found: number | undefined;
    if (end > next) {
      await reader.read(cookiesTopic, partition, next, (records) => {
        for (const r of records) if (found === undefined && r.value === null && r.key?.toString('utf8') === userId) found = r.offset;
      }, end);
      next = end;
    }
    if (found !== undefined) return found;
    if (Date.now() >= deadline || signal?.aborted === true) return undefined;
    await new Promise((resolve) => setTimeout(resolve, Math.min(250, Math.max(1, deadline - Date.now()))));
  }
}
