/**
 * The embedded in-process Kafka broker: topics with partitions and configs, per-partition logs,
 * consumer groups with committed offsets and a group coordinator, and compaction. It is the state
 * behind `createEmbeddedClient()` (the product's broker-less default) and doubles as a topology test
 * driver: tests can append, inspect logs and offsets, compact on demand, and await `settled()`.
 *
 * Semantics follow Kafka where a user can observe them: offsets never change (compaction leaves
 * gaps), committed offset = next offset to read, end offset = next offset to be written, keyed
 * records are partitioned with murmur2 like the Java producer, records without a key are refused on
 * compacted topics, and group rebalances are incremental (cooperative): a member only loses the
 * partitions that move, and they move only after its onRevoked settled.
 */
import { InvalidInputError, KafkaClientError, UnknownTopicError } from '../../../core/errors.ts';
import { partitionForKey } from '../partitioner.ts';
import type {
  Bytes,
  CommitOffset,
  ConsumedRecord,
  PartitionOffset,
  ProduceRecord,
  RecordMetadata,
  TopicDescription,
  TopicPartition,
  TopicSpec,
} from '../types.ts';
import { PartitionLog, type StoredRecord } from './log.ts';

export interface EmbeddedKafkaOptions {
  /**
   * A compacted partition is cleaned automatically once this many records were appended since its
   * last cleaning and they are at least half of the log (Kafka's min.cleanable.dirty.ratio 0.5), so
   * a long-running broker-less process does not grow without bound. Tombstones then survive for
   * the topic's `delete.retention.ms` (default one day) so consumers still see deletions.
   * Default 10000; `Infinity` disables automatic cleaning (`compact()` still works).
   */
  compactionThreshold?: number;
  /**
   * Upper bound of records kept per partition of a `cleanup.policy=delete` topic; the oldest go
   * first and the log start offset moves, as with Kafka's retention. It bounds the memory of a
   * long-running broker-less process (the embedded broker has no disk). Default 100000;
   * `Infinity` keeps everything. Topic configs `retention.ms` and `retention.bytes`, when set on a
   * topic, apply as well.
   */
  retentionRecords?: number;
  /** Clock for default timestamps and retention (tests may fake it). */
  now?: () => number;
}

/** What the group coordinator needs from a member (implemented by the embedded consumer). */
export interface GroupMemberHandle {
  readonly memberId: string;
  readonly topics: readonly string[];
  /** Stop fetching these partitions, run onRevoked, settle once it settled. */
  revoke(partitions: TopicPartition[]): Promise<void>;
  /** Start owning these partitions (possibly none: the first assignment of a member without any). */
  assign(partitions: TopicPartition[]): Promise<void>;
  /** Records were appended to one of the member's topics. */
  wake(): void;
  /** No listener call in flight, none queued, nothing deliverable. */
  isIdle(): boolean;
}

interface TopicState {
  readonly name: string;
  readonly configs: Readonly<Record<string, string>>;
  readonly compacted: boolean;
  /** cleanup.policy includes delete: retention applies. */
  readonly deletes: boolean;
  readonly deleteRetentionMs: number;
  /** Only when configured on the topic (-1 = unlimited): see EmbeddedKafkaOptions.retentionRecords. */
  readonly retentionMs: number;
  readonly retentionBytes: number;
  /** message.timestamp.type=LogAppendTime: the broker's clock replaces the producer's timestamp. */
  readonly logAppendTime: boolean;
  readonly logs: readonly PartitionLog[];
}

interface MemberEntry {
  readonly handle: GroupMemberHandle;
  readonly rebalanceTimeoutMs: number;
  leaving: boolean;
  assignedOnce: boolean;
  readonly firstAssignment: Deferred;
  readonly left: Deferred;
}

interface GroupState {
  readonly id: string;
  /** Insertion order = join order, which the range assignor uses (deterministic for test drivers). */
  readonly members: Map<string, MemberEntry>;
  readonly committed: Map<string, number>;
  /** The coordinator's truth: which member owns a partition (until its revocation completed). */
  readonly owners: Map<string, string>;
  rebalanceRequested: boolean;
  rebalancing: Promise<void> | null;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const DEFAULT_DELETE_RETENTION_MS = 86_400_000;

export function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

export function toBuffer(bytes: Bytes): Buffer {
  // A copy, as if the bytes went over the wire: a caller reusing its buffer cannot alter the log.
  return typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes);
}

export function toConsumedRecord(topic: string, partition: number, record: StoredRecord): ConsumedRecord {
  const headers: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(record.headers)) headers[name] = Buffer.from(value);
  return {
    topic,
    partition,
    offset: record.offset,
    key: record.key ? Buffer.from(record.key) : null,
    value: record.value ? Buffer.from(record.value) : null,
    headers,
    timestamp: record.timestamp,
  };
}

/** Resolves when `promise` settles or after `ms`, whichever comes first; never rejects. */
async function settleWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    // A hung listener must not keep the process alive on its own.
    timer.unref();
  });
  try {
    await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class EmbeddedKafka {
  private readonly topics = new Map<string, TopicState>();
  private readonly groups = new Map<string, GroupState>();
  private readonly compactionThreshold: number;
  private readonly retentionRecords: number;
  private readonly now: () => number;
  /** Waiters of settled(), woken whenever a member or a rebalance may have become idle. */
  private readonly activityWaiters = new Set<() => void>();

  constructor(options: EmbeddedKafkaOptions = {}) {
    this.compactionThreshold = options.compactionThreshold ?? 10_000;
    this.retentionRecords = options.retentionRecords ?? 100_000;
    this.now = options.now ?? Date.now;
  }

  // ── topics ────────────────────────────────────────────────────────────────────────────────

  /** Creates the topics that do not exist yet (existing ones are left as they are). Validates all first. */
  createTopics(specs: readonly TopicSpec[]): void {
    for (const spec of specs) validateTopicSpec(spec);
    for (const spec of specs) {
      if (this.topics.has(spec.name)) continue;
      const configs: Record<string, string> = { 'cleanup.policy': 'delete', ...spec.configs };
      const policies = configs['cleanup.policy']!.split(',').map((p) => p.trim());
      const logs = Array.from({ length: spec.partitions }, (_, p) => new PartitionLog(spec.name, p));
      this.topics.set(spec.name, {
        name: spec.name,
        configs,
        compacted: policies.includes('compact'),
        deletes: policies.includes('delete'),
        deleteRetentionMs: numericConfig(configs, 'delete.retention.ms', DEFAULT_DELETE_RETENTION_MS),
        retentionMs: numericConfig(configs, 'retention.ms', -1),
        retentionBytes: numericConfig(configs, 'retention.bytes', -1),
        logAppendTime: configs['message.timestamp.type'] === 'LogAppendTime',
        logs,
      });
    }
    // A group may already be subscribed to a topic name that only now exists.
    this.rebalanceGroupsOf(new Set(specs.map((s) => s.name)));
  }

  createTopic(spec: TopicSpec): void {
    this.createTopics([spec]);
  }

  /** Deletes the topics, their logs and the groups' committed offsets for them. Validates all first. */
  deleteTopics(names: readonly string[]): void {
    const unique = [...new Set(names)];
    for (const name of unique) this.topic(name);
    for (const name of unique) {
      const topic = this.topic(name);
      this.topics.delete(name);
      for (const log of topic.logs) {
        log.deleted = true;
        log.notifyAppended();
      }
      for (const group of this.groups.values()) {
        for (const key of [...group.committed.keys()]) {
          if (key.startsWith(`${name}\u0000`)) group.committed.delete(key);
        }
      }
    }
    this.rebalanceGroupsOf(new Set(names));
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name);
  }

  topicNames(): string[] {
    return [...this.topics.keys()].sort();
  }

  describeTopic(name: string): TopicDescription {
    const topic = this.topic(name);
    return { name, partitions: topic.logs.length, configs: { ...topic.configs } };
  }

  partitionCount(name: string): number {
    return this.topic(name).logs.length;
  }

  /** The log of one partition (this incarnation of the topic). */
  log(topic: string, partition: number): PartitionLog {
    const state = this.topic(topic);
    const log = state.logs[partition];
    if (!log) {
      throw new KafkaClientError(`partition ${partition} of topic "${topic}" does not exist`, {
        topic,
        partition,
        partitions: state.logs.length,
        clientCode: 'UNKNOWN_TOPIC_OR_PARTITION',
      });
    }
    return log;
  }

  private topic(name: string): TopicState {
    const topic = this.topics.get(name);
    if (!topic) throw new UnknownTopicError(name);
    return topic;
  }

  // ── produce / read ────────────────────────────────────────────────────────────────────────

  /**
   * Appends the records atomically (all are validated first, so a bad record appends nothing) and
   * wakes consumers asynchronously: listeners never run inside this call. `nullKeyPartition` picks
   * the partition of a record without key and without explicit partition (default: round-robin).
   */
  append(
    records: readonly ProduceRecord[],
    nullKeyPartition: (topic: string, partitions: number) => number = (topic, n) => this.roundRobin(topic, n),
  ): RecordMetadata[] {
    const resolved = records.map((record, index) => this.prepare(record, index, nullKeyPartition));
    const touched = new Set<PartitionLog>();
    const metadata = resolved.map(({ log, stored }) => {
      touched.add(log);
      return { topic: log.topic, partition: log.partition, offset: log.append(stored) };
    });
    for (const log of touched) {
      this.maybeAutoCompact(log);
      this.applyRetention(log);
      log.notifyAppended();
    }
    const topics = new Set([...touched].map((log) => log.topic));
    for (const group of this.groups.values()) {
      for (const member of group.members.values()) {
        if (member.handle.topics.some((t) => topics.has(t))) member.handle.wake();
      }
    }
    return metadata;
  }

  private readonly roundRobinCounters = new Map<string, number>();

  private roundRobin(topic: string, partitions: number): number {
    const next = this.roundRobinCounters.get(topic) ?? 0;
    this.roundRobinCounters.set(topic, next + 1);
    return next % partitions;
  }

  private prepare(
    record: ProduceRecord,
    index: number,
    nullKeyPartition: (topic: string, partitions: number) => number,
  ): { log: PartitionLog; stored: Omit<StoredRecord, 'offset'> } {
    const topic = this.topic(record.topic);
    const field = `records[${index}]`;
    if (record.key !== null && typeof record.key !== 'string' && !Buffer.isBuffer(record.key)) {
      throw new InvalidInputError(`${field}.key`, 'must be a Buffer, a string or null');
    }
    if (record.value !== null && typeof record.value !== 'string' && !Buffer.isBuffer(record.value)) {
      throw new InvalidInputError(`${field}.value`, 'must be a Buffer, a string or null (tombstone)');
    }
    if (topic.compacted && record.key === null) {
      // Kafka's broker refuses these too (a compacted log is a table: no key, no row).
      throw new KafkaClientError(`a record without key cannot be written to compacted topic "${topic.name}"`, {
        topic: topic.name,
        clientCode: 'INVALID_RECORD',
      });
    }
    const timestamp = topic.logAppendTime ? this.now() : (record.timestamp ?? this.now());
    if (!Number.isFinite(timestamp)) throw new InvalidInputError(`${field}.timestamp`, 'must be a finite number');
    let partition: number;
    if (record.partition !== undefined) {
      partition = record.partition;
    } else if (record.key !== null) {
      partition = partitionForKey(record.key, topic.logs.length);
    } else {
      partition = nullKeyPartition(topic.name, topic.logs.length);
    }
    const log = this.log(topic.name, partition);
    const headers: Record<string, Buffer> = {};
    for (const [name, value] of Object.entries(record.headers ?? {})) {
      if (typeof value !== 'string' && !Buffer.isBuffer(value)) {
        throw new InvalidInputError(`${field}.headers.${name}`, 'must be a Buffer or a string');
      }
      headers[name] = toBuffer(value);
    }
    return {
      log,
      stored: {
        key: record.key === null ? null : toBuffer(record.key),
        value: record.value === null ? null : toBuffer(record.value),
        headers,
        timestamp,
      },
    };
  }

  /** Every record currently in the log (after compaction, if any), in offset order per partition. */
  records(topic: string, partition?: number): ConsumedRecord[] {
    const state = this.topic(topic);
    const logs = partition === undefined ? state.logs : [this.log(topic, partition)];
    return logs.flatMap((log) =>
      log.read(0, log.endOffset, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY).map((r) => toConsumedRecord(topic, log.partition, r)),
    );
  }

  endOffsets(topic: string): PartitionOffset[] {
    return this.topic(topic).logs.map((log) => ({ partition: log.partition, offset: log.endOffset }));
  }

  // ── compaction ────────────────────────────────────────────────────────────────────────────

  /**
   * Compacts every partition of a `cleanup.policy=compact` topic now: only the latest record per key
   * stays, and keys whose latest record is a tombstone disappear. Offsets are unchanged (gaps).
   * A topic that is not compacted is left alone, like Kafka's cleaner does. Returns records removed.
   */
  compact(topic: string): number {
    const state = this.topic(topic);
    if (!state.compacted) return 0;
    return state.logs.reduce((removed, log) => removed + log.compact(), 0);
  }

  private maybeAutoCompact(log: PartitionLog): void {
    const topic = this.topics.get(log.topic);
    if (!topic?.compacted) return;
    const dirty = log.dirtyCount;
    if (dirty < this.compactionThreshold || dirty * 2 < log.size) return;
    log.compact({ tombstonesBefore: this.now() - topic.deleteRetentionMs });
  }

  private applyRetention(log: PartitionLog): void {
    const topic = this.topics.get(log.topic);
    if (!topic?.deletes) return;
    log.retain({
      maxRecords: this.retentionRecords,
      minTimestamp: topic.retentionMs >= 0 ? this.now() - topic.retentionMs : Number.NEGATIVE_INFINITY,
      maxBytes: topic.retentionBytes >= 0 ? topic.retentionBytes : Number.POSITIVE_INFINITY,
    });
  }

  // ── consumer groups ───────────────────────────────────────────────────────────────────────

  groupIds(): string[] {
    return [...this.groups.values()]
      .filter((g) => g.members.size > 0 || g.committed.size > 0)
      .map((g) => g.id)
      .sort();
  }

  /** Committed offsets of a group for a topic; -1 for partitions without a commit. */
  committedOffsets(groupId: string, topic: string): PartitionOffset[] {
    const state = this.topic(topic);
    const group = this.groups.get(groupId);
    return state.logs.map((log) => ({
      partition: log.partition,
      offset: group?.committed.get(tpKey(topic, log.partition)) ?? -1,
    }));
  }

  committedOffset(groupId: string, topic: string, partition: number): number | undefined {
    return this.groups.get(groupId)?.committed.get(tpKey(topic, partition));
  }

  /**
   * Commits for a member of the group. A partition owned by another member is refused: a commit
   * from a member that already lost the partition would rewind the new owner's progress, which
   * Kafka prevents with generation checks. A member keeps ownership while its onRevoked runs.
   */
  commit(groupId: string, memberId: string, offsets: readonly CommitOffset[]): void {
    const group = this.groups.get(groupId);
    if (!group?.members.has(memberId)) {
      throw new KafkaClientError(`member is not in group "${groupId}"`, { groupId, clientCode: 'UNKNOWN_MEMBER_ID' });
    }
    this.validateOffsets(offsets);
    for (const o of offsets) {
      const owner = group.owners.get(tpKey(o.topic, o.partition));
      if (owner !== undefined && owner !== memberId) {
        throw new KafkaClientError(`partition ${o.partition} of "${o.topic}" is assigned to another member of "${groupId}"`, {
          groupId,
          topic: o.topic,
          partition: o.partition,
          clientCode: 'ILLEGAL_GENERATION',
        });
      }
    }
    for (const o of offsets) group.committed.set(tpKey(o.topic, o.partition), o.offset);
  }

  /** Sets a group's committed offsets from outside the group (like kafka-consumer-groups --reset-offsets). */
  setCommittedOffsets(groupId: string, offsets: readonly CommitOffset[]): void {
    this.validateOffsets(offsets);
    const group = this.group(groupId);
    for (const o of offsets) group.committed.set(tpKey(o.topic, o.partition), o.offset);
  }

  private validateOffsets(offsets: readonly CommitOffset[]): void {
    offsets.forEach((o, i) => {
      this.log(o.topic, o.partition);
      if (!Number.isSafeInteger(o.offset) || o.offset < 0) {
        throw new InvalidInputError(`offsets[${i}].offset`, 'must be a non-negative integer (the next offset to read)');
      }
    });
  }

  private group(groupId: string): GroupState {
    let group = this.groups.get(groupId);
    if (!group) {
      group = {
        id: groupId,
        members: new Map(),
        committed: new Map(),
        owners: new Map(),
        rebalanceRequested: false,
        rebalancing: null,
      };
      this.groups.set(groupId, group);
    }
    return group;
  }

  /** Adds a member; resolves once its first assignment was delivered (its onAssigned settled). */
  joinGroup(groupId: string, handle: GroupMemberHandle, rebalanceTimeoutMs: number): Promise<void> {
    for (const topic of handle.topics) this.topic(topic);
    const group = this.group(groupId);
    const entry: MemberEntry = {
      handle,
      rebalanceTimeoutMs,
      leaving: false,
      assignedOnce: false,
      firstAssignment: deferred(),
      left: deferred(),
    };
    group.members.set(handle.memberId, entry);
    this.requestRebalance(group);
    return entry.firstAssignment.promise;
  }

  /**
   * Leaves the group: the member's partitions are revoked through it (its onRevoked is awaited) and
   * handed to the remaining members. Resolves once the member is out.
   */
  leaveGroup(groupId: string, memberId: string): Promise<void> {
    const group = this.groups.get(groupId);
    const entry = group?.members.get(memberId);
    if (!group || !entry) return Promise.resolve();
    if (!entry.leaving) {
      entry.leaving = true;
      this.requestRebalance(group);
    }
    return entry.left.promise;
  }

  /** Partitions a member owns according to the coordinator. */
  ownedBy(groupId: string, memberId: string): TopicPartition[] {
    const group = this.groups.get(groupId);
    if (!group) return [];
    const owned: TopicPartition[] = [];
    for (const [key, owner] of group.owners) {
      if (owner !== memberId) continue;
      const [topic, partition] = key.split('\u0000') as [string, string];
      owned.push({ topic, partition: Number(partition) });
    }
    return owned;
  }

  private rebalanceGroupsOf(topics: ReadonlySet<string>): void {
    for (const group of this.groups.values()) {
      if ([...group.members.values()].some((m) => m.handle.topics.some((t) => topics.has(t)))) {
        this.requestRebalance(group);
      }
    }
  }

  private requestRebalance(group: GroupState): void {
    group.rebalanceRequested = true;
    group.rebalancing ??= this.rebalance(group);
  }

  /**
   * The coordinator loop, one per group at a time. Each round computes the target assignment,
   * revokes what moves (awaiting the losers' onRevoked, bounded by their rebalance timeout), then
   * assigns to the gainers. Membership changes during a round trigger another round.
   */
  private async rebalance(group: GroupState): Promise<void> {
    // Let the current synchronous work (e.g. several consumers started together) finish first, so
    // that it yields one rebalance instead of one per member.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (group.rebalanceRequested) await this.rebalanceRound(group);
    } finally {
      // Cleared in the same synchronous step as the loop's last check of rebalanceRequested, so a
      // request arriving just after cannot be lost.
      group.rebalancing = null;
      // A group nobody is in and that has no offsets is gone, as on a broker.
      if (group.members.size === 0 && group.committed.size === 0 && this.groups.get(group.id) === group) {
        this.groups.delete(group.id);
      }
      this.notifyActivity();
    }
  }

  private async rebalanceRound(group: GroupState): Promise<void> {
    group.rebalanceRequested = false;
    const target = this.rangeAssign(group);

    // Phase 1: revoke partitions whose target owner differs (including those of leaving members).
    const revocations: Promise<void>[] = [];
    for (const [memberId, entry] of group.members) {
      const keep = target.get(memberId) ?? new Set<string>();
      const lose = this.ownedBy(group.id, memberId).filter((tp) => !keep.has(tpKey(tp.topic, tp.partition)));
      if (lose.length === 0) continue;
      const revoked = settleWithin(entry.handle.revoke(lose), entry.rebalanceTimeoutMs).then(() => {
        for (const tp of lose) group.owners.delete(tpKey(tp.topic, tp.partition));
      });
      revocations.push(revoked);
    }
    await Promise.all(revocations);

    // Leaving members whose partitions are all revoked are out now. One that started leaving during
    // this round may still own partitions: the next round (already requested) revokes them first.
    for (const [memberId, entry] of [...group.members]) {
      if (!entry.leaving || this.ownedBy(group.id, memberId).length > 0) continue;
      group.members.delete(memberId);
      entry.firstAssignment.resolve();
      entry.left.resolve();
    }
    // Someone joined or left while we were revoking: the target is stale, start over.
    if (group.rebalanceRequested) return;

    // Phase 2: assign free partitions to their target owners.
    const assignments: Promise<void>[] = [];
    for (const [memberId, entry] of group.members) {
      const gain: TopicPartition[] = [];
      for (const key of target.get(memberId) ?? []) {
        if (group.owners.has(key)) continue;
        group.owners.set(key, memberId);
        const [topic, partition] = key.split('\u0000') as [string, string];
        gain.push({ topic, partition: Number(partition) });
      }
      if (gain.length === 0 && entry.assignedOnce) continue;
      entry.assignedOnce = true;
      assignments.push(
        settleWithin(entry.handle.assign(gain), entry.rebalanceTimeoutMs).then(() => entry.firstAssignment.resolve()),
      );
    }
    await Promise.all(assignments);
  }

  /**
   * Kafka's RangeAssignor: per topic, the members subscribed to it (in join order) get consecutive
   * ranges of partition numbers, the first ones one more when it does not divide evenly. With the
   * same subscriptions and partition counts, partition p of every topic goes to the same member,
   * which is what co-partitioned joins need.
   */
  private rangeAssign(group: GroupState): Map<string, Set<string>> {
    const target = new Map<string, Set<string>>();
    const active = [...group.members].filter(([, m]) => !m.leaving);
    for (const [memberId] of active) target.set(memberId, new Set());
    const topics = new Set(active.flatMap(([, m]) => m.handle.topics));
    for (const topic of topics) {
      const state = this.topics.get(topic);
      if (!state) continue;
      const subscribers = active.filter(([, m]) => m.handle.topics.includes(topic));
      const n = state.logs.length;
      const per = Math.floor(n / subscribers.length);
      const extra = n % subscribers.length;
      subscribers.forEach(([memberId], i) => {
        const start = per * i + Math.min(i, extra);
        const count = per + (i < extra ? 1 : 0);
        for (let p = start; p < start + count; p++) target.get(memberId)!.add(tpKey(topic, p));
      });
    }
    return target;
  }

  // ── test driver support ───────────────────────────────────────────────────────────────────

  /** Members call this when they may have become idle, to wake `settled()`. */
  notifyActivity(): void {
    const waiters = [...this.activityWaiters];
    this.activityWaiters.clear();
    for (const wake of waiters) wake();
  }

  private isIdle(): boolean {
    for (const group of this.groups.values()) {
      if (group.rebalancing) return false;
      for (const member of group.members.values()) if (!member.handle.isIdle()) return false;
    }
    return true;
  }

  /**
   * Resolves once no rebalance is running and every consumer has delivered everything deliverable
   * and its last listener call settled: the moment a topology test asserts on output topics.
   */
  async settled(): Promise<void> {
    for (;;) {
      // Let queued promise callbacks (a listener producing its output) run before judging.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.isIdle()) return;
      await new Promise<void>((resolve) => this.activityWaiters.add(resolve));
    }
  }
}

function numericConfig(configs: Readonly<Record<string, string>>, name: string, fallback: number): number {
  const raw = configs[name];
  return raw === undefined ? fallback : Number(raw);
}

function validateTopicSpec(spec: TopicSpec): void {
  if (typeof spec.name !== 'string' || !TOPIC_NAME.test(spec.name) || spec.name === '.' || spec.name === '..') {
    throw new InvalidInputError('topic.name', 'must be 1-249 characters of [a-zA-Z0-9._-]', { topic: spec.name });
  }
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
    throw new InvalidInputError('topic.partitions', 'must be a positive integer', { topic: spec.name });
  }
  for (const name of ['retention.ms', 'retention.bytes', 'delete.retention.ms']) {
    const raw = spec.configs?.[name];
    if (raw !== undefined && (!/^-?\d+$/.test(raw) || Number(raw) < -1)) {
      throw new InvalidInputError(name, 'must be an integer (-1 = unlimited)', { topic: spec.name });
    }
  }
  const policy = spec.configs?.['cleanup.policy'];
  if (policy !== undefined && !policy.split(',').every((p) => ['delete', 'compact'].includes(p.trim()))) {
    throw new InvalidInputError('cleanup.policy', 'must be delete, compact or both', { topic: spec.name });
  }
}
