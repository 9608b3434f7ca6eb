/**
 * The stateful consumer-group runner (docs/runner.md): Kafka-Streams-style stream tasks on the
 * product's KafkaClient interface, generic over the work done per record.
 *
 * - One PartitionTask per assigned source partition. Before its first record is processed, partition
 *   p of the changelog is restored through a PartitionReader outside the group (the restore-reader
 *   approach of Kafka Streams): co-partitioning holds whatever the client's assignor does, because
 *   the changelog is never part of the group's assignment.
 * - Records are buffered, then run per key in offset order with bounded concurrency (KeyScheduler).
 *   onRecords returns as soon as the batch is buffered, so the client's loop (and heartbeat) never
 *   waits on a slow step; fetching pauses when in-flight + buffered reaches `maxBuffered`.
 * - At-least-once: a record is done when the handler resolved and every record it produced was
 *   acknowledged; the committed offset is the per-partition watermark (OffsetTracker).
 */
import type {
  CommitOffset,
  ConsumedRecord,
  ConsumerListener,
  KafkaAdmin,
  KafkaConsumer,
  KafkaProducer,
  PartitionReader,
  ProduceRecord,
  RecordMetadata,
  TopicPartition,
} from '../kafka/types.ts';
import { settledWithin } from '../../core/async.ts';
import { componentLogger, type Logger } from '../../core/log.ts';
import { InvalidInputError, RecordFailedError, RestoreFailedError, RunnerStateError } from '../../core/errors.ts';
import { verifyTopicRequirements, type TopicRequirements } from './checks.ts';
import { BrokerGate } from './broker-gate.ts';
import { KeyScheduler } from './key-scheduler.ts';
import { PartitionTask, type RecordJob } from './partition-task.ts';
import { RunnerMetrics } from './metrics.ts';
import { RunnerSettingsSchema, type RunnerSettings } from './settings.ts';
import type { ChangelogBinding, RecordContext, RecordHandler, RestoreProgress, RunnerOptions, RunnerState, RunnerStatus } from './types.ts';

export type { ChangelogBinding, PartitionState, PartitionStatus, RecordContext, RecordHandler, RestoreProgress, RunnerOptions, RunnerState, RunnerStatus } from './types.ts';

const noop = (): void => undefined;

export class StreamRunner {
  readonly groupId: string;
  /** The first source topic (labels, logs); `topics` lists them all. */
  readonly topic: string;
  readonly topics: readonly string[];
  readonly settings: RunnerSettings;
  readonly metrics: RunnerMetrics;
  /** Settles when the runner stopped: resolves after stop(), rejects with the fatal error. */
  readonly closed: Promise<void>;

  readonly #options: RunnerOptions;
  readonly #log: Logger;
  readonly #scheduler: KeyScheduler<RecordJob>;
  readonly #tasks = new Map<number, PartitionTask>();
  readonly #topicSet: ReadonlySet<string>;
  readonly #changelogs: readonly ChangelogBinding[];
  /** Revoked tasks still finishing, by partition: a re-assignment waits for them. */
  readonly #closing = new Map<number, Promise<void>>();
  #state: RunnerState = 'new';
  #admin: KafkaAdmin | undefined;
  #producer: KafkaProducer | undefined;
  #consumer: KafkaConsumer | undefined;
  #commitTimer: NodeJS.Timeout | undefined;
  #commitChain: Promise<void> = Promise.resolve();
  #commitQueued = false;
  #commitIntervalMs = 0;
  #held = 0;
  #backpressure = false;
  #pausedWhole = false;
  readonly #pausedParts = new Set<number>();
  #processed = 0;
  readonly #peak = { inFlight: 0, buffered: 0, batch: 0 };
  #abandoned = false;
  readonly #reported = { inFlight: 0, buffered: 0, paused: 0 };
  /** Flow control and gauges are brought up to date once per microtask, not per scheduler change. */
  #flowQueued = false;
  /** Finished records not yet added to the processed counter (flushed with the flow update). */
  #unreported = { ok: 0, error: 0 };
  #stopping: Promise<void> | undefined;
  /** A produce is being retried because no broker answered (logged once per outage). */
  /** Produce retries and the start gate while no broker is reachable (broker-gate.ts); made in start(). */
  #gate: BrokerGate | undefined;
  #fatal: unknown;
  #resolveClosed: () => void = noop;
  #rejectClosed: (error: unknown) => void = noop;

  constructor(options: RunnerOptions) {
    const { client: _c, groupId: _g, topic: _t, topics: _ts, handler: _h, perKeyOrder: _pk, changelog: _cl, changelogs: _cls, requirements: _rq, onCommitted: _oc, onError: _e, producer: _p, registry: _r, logger: _l, clientId: _id, ...tunables } = options;
    this.settings = RunnerSettingsSchema.parse(tunables);
    this.#options = options;
    this.groupId = options.groupId;
    const topics = [...new Set([...(options.topic === undefined ? [] : [options.topic]), ...(options.topics ?? [])])];
    if (topics.length === 0) throw new InvalidInputError('topics', 'the runner needs at least one source topic');
    this.topics = topics;
    this.topic = topics[0] as string;
    this.#topicSet = new Set(topics);
    this.#changelogs = [...(options.changelog ? [options.changelog] : []), ...(options.changelogs ?? [])];
    this.#log = componentLogger(options.logger, 'runner');
    this.metrics = new RunnerMetrics(options.registry);
    this.#scheduler = new KeyScheduler<RecordJob>(this.settings.concurrency, () => this.#queueFlow());
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Marks the promise handled: a caller that never awaits `closed` must not crash the process.
    this.closed.catch(noop);
  }

  /** Checks the topics, joins the group; resolves once the first assignment is received. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new RunnerStateError('runner already started', { groupId: this.groupId });
    this.#state = 'starting';
    // The series exist from the start (at 0), so a dashboard shows an idle member, not "no data".
    const groupLabel = { group: this.groupId };
    this.metrics.inFlight.inc(groupLabel, 0);
    this.metrics.buffered.inc(groupLabel, 0);
    this.metrics.pausedPartitions.inc(groupLabel, 0);
    const { client } = this.#options;
    try {
      this.#admin = await client.admin();
      await this.#verifyTopics(this.#admin);
      const producer = (this.#producer = this.#options.producer ?? (await client.producer(this.#options.clientId ? { clientId: this.#options.clientId } : {})));
      this.#gate = new BrokerGate((records) => producer.send(records), this.settings.brokerRetryMs, this.#log, this.groupId);
      const s = this.settings;
      this.#consumer = client.consumer({
        groupId: this.groupId,
        topics: [...this.topics],
        autoOffsetReset: s.autoOffsetReset,
        ...(this.#options.clientId !== undefined ? { clientId: this.#options.clientId } : {}),
        ...(s.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: s.sessionTimeoutMs } : {}),
        ...(s.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: s.heartbeatIntervalMs } : {}),
        ...(s.rebalanceTimeoutMs !== undefined ? { rebalanceTimeoutMs: s.rebalanceTimeoutMs } : {}),
        ...(s.groupInstanceId !== undefined ? { groupInstanceId: s.groupInstanceId } : {}),
        ...(s.fetchMaxBytes !== undefined ? { maxBytes: s.fetchMaxBytes } : {}),
      });
      // Without an awaitable revoke the new owner starts from the last commit before we hear of the
      // revocation: committing after every completion batch keeps that replay short.
      this.#commitIntervalMs = s.commitIntervalMs ?? (this.#consumer.capabilities.awaitableRevoke ? 1000 : 0);
      if (this.#commitIntervalMs > 0) {
        this.#commitTimer = setInterval(() => this.#requestCommit(), this.#commitIntervalMs);
        this.#commitTimer.unref();
      }
      await this.#consumer.start(this.#listener());
      if (this.#state === 'starting') this.#state = 'running';
      // Flow control starts only now (see #updateFlow): apply what the load asks for.
      this.#updateFlow();
      this.#log.info({ groupId: this.groupId, topics: this.topics, client: client.kind, capabilities: this.#consumer.capabilities, settings: s }, 'runner started');
    } catch (error) {
      this.#state = 'failed';
      await this.#release();
      this.#rejectClosed(error);
      throw error;
    }
  }

  /**
   * Graceful shutdown: stops intake (buffered, not-started records are dropped: they are not
   * committed, the next owner reads them), lets in-flight records finish for up to `timeoutMs`,
   * commits the watermarks, closes the states, leaves the group. Idempotent.
   */
  stop(timeoutMs: number = this.settings.shutdownTimeoutMs): Promise<void> {
    this.#stopping ??= this.#stop(timeoutMs);
    return this.#stopping;
  }

  /**
   * Leaves without draining or committing anything more, like a crashed process (except that the
   * group notices at once). For tests and for an emergency exit; in-flight handlers are aborted.
   */
  async abandon(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      this.#abandoned = true;
      this.#state = 'stopping';
      this.#stopIntake();
      for (const task of this.#tasks.values()) task.abort.abort();
      await this.#release();
      this.#state = 'stopped';
      this.#syncGauges(0, 0);
      this.#resolveClosed();
    })();
    return this.#stopping;
  }

  status(): RunnerStatus {
    return {
      state: this.#state,
      groupId: this.groupId,
      topic: this.topic,
      inFlight: this.#scheduler.inFlight,
      buffered: this.#buffered(),
      pausedPartitions: this.#pausedPartitionList(),
      partitions: [...this.#tasks.values()]
        .sort((a, b) => a.partition - b.partition)
        .map((t) => ({
          partition: t.partition,
          state: t.state,
          inFlight: this.#scheduler.inFlightOf(t.partition),
          watermark: t.tracker(this.topic).watermark(),
          committed: t.committed(this.topic),
          topics: Object.fromEntries(this.topics.map((topic) => [topic, { watermark: t.tracker(topic).watermark(), committed: t.committed(topic) }])),
          restore: t.restore ? { ...t.restore } : undefined,
        })),
      processed: this.#processed,
      peak: { ...this.#peak, inFlight: Math.max(this.#peak.inFlight, this.#scheduler.peakInFlight) },
    };
  }

  /** Restore progress of the partitions currently assigned (empty without a changelog). */
  restoreProgress(): RestoreProgress[] {
    return [...this.#tasks.values()].flatMap((t) => (t.restore ? [{ ...t.restore }] : []));
  }

  // ───────────────────────────── start-up checks ─────────────────────────────

  async #verifyTopics(admin: KafkaAdmin): Promise<void> {
    const changelogTopics = this.#changelogs.map((c) => c.topic);
    const requirements: TopicRequirements = this.#options.requirements ?? {
      exist: [...this.topics, ...changelogTopics],
      copartitionGroups: changelogTopics.length === 0 ? [] : this.topics.map((t) => [t, ...changelogTopics]),
      compacted: this.settings.requireCompactedChangelog ? changelogTopics : [],
    };
    await verifyTopicRequirements(admin, requirements, { groupId: this.groupId });
  }

  // ───────────────────────────── consumer callbacks ─────────────────────────────

  #listener(): ConsumerListener {
    return {
      onRecords: (records) => this.#onRecords(records),
      onAssigned: (partitions) => this.#onAssigned(partitions),
      onRevoked: (partitions) => this.#onRevoked(partitions),
    };
  }

  /** Buffers and returns at once: the client's loop must never wait on a slow step. */
  #onRecords(records: readonly ConsumedRecord[]): void {
    if (!this.#intakeOpen()) return;
    if (records.length > this.#peak.batch) this.#peak.batch = records.length;
    // Snapshot: adding records below may pause partitions, which is no sign of a forgotten pause.
    const pausedBefore = new Set(this.#pausedParts);
    const repause = new Set<number>();
    for (const record of records) {
      if (!this.#topicSet.has(record.topic)) continue;
      if (pausedBefore.has(record.partition)) repause.add(record.partition);
      let task = this.#tasks.get(record.partition);
      if (!task) {
        // A client that delivers before announcing the assignment: treat it as the announcement.
        this.#log.debug({ partition: record.partition }, 'records of an unannounced partition; assigning it');
        task = this.#assign(record.partition);
      }
      if (task.state === 'revoking') continue;
      // Redelivered below what was already taken (e.g. a seek after a rebalance): already handled.
      if (!task.tracker(record.topic).track(record.offset)) continue;
      if (task.state === 'restoring') {
        task.held.push(record);
        this.#held += 1;
      } else {
        this.#scheduler.add(this.#job(task, record));
      }
    }
    // Records of a partition we paused: the client forgot the pause (e.g. one issued from
    // onAssigned, before its fetch state existed). Say it again, or the buffer would grow unbounded.
    if (repause.size > 0) this.#consumer?.pause(this.#topicPartitions([...repause]));
    this.#updateFlow();
  }

  #onAssigned(partitions: readonly TopicPartition[]): void {
    if (!this.#intakeOpen()) return;
    for (const tp of partitions) {
      if (!this.#topicSet.has(tp.topic)) continue;
      const current = this.#tasks.get(tp.partition);
      if (current && current.state !== 'revoking') continue;
      this.#assign(tp.partition);
    }
    this.#updateFlow();
  }

  async #onRevoked(partitions: readonly TopicPartition[]): Promise<void> {
    // While stopping, stop() finishes and commits the partitions itself (and abandon() must not).
    if (!this.#intakeOpen()) return;
    const tasks: PartitionTask[] = [];
    for (const tp of partitions) {
      const task = this.#topicSet.has(tp.topic) ? this.#tasks.get(tp.partition) : undefined;
      if (task && task.state !== 'revoking' && !tasks.includes(task)) tasks.push(task);
    }
    if (tasks.length === 0) return;
    this.metrics.rebalances.inc({ group: this.groupId, kind: 'revoked' }, tasks.length);
    this.#log.info({ groupId: this.groupId, partitions: tasks.map((t) => t.partition) }, 'partitions revoked');
    const finished = this.#retire(tasks, this.settings.revokeTimeoutMs);
    // Awaiting only helps where the client holds the hand-off until we return; elsewhere it would
    // just stall the delivery of the partitions we keep.
    if (this.#consumer?.capabilities.awaitableRevoke) await finished;
  }

  // ───────────────────────────── partition lifecycle ─────────────────────────────

  #assign(partition: number): PartitionTask {
    const task = new PartitionTask(partition, 'restoring');
    this.#tasks.set(partition, task);
    this.#pausedParts.delete(partition); // a fresh assignment is unpaused in every client
    this.metrics.rebalances.inc({ group: this.groupId, kind: 'assigned' });
    this.#log.info({ groupId: this.groupId, partition }, 'partition assigned');
    task.restored = this.#restore(task).catch((error: unknown) => {
      if (task.abort.signal.aborted) return;
      const topic = task.restore?.topic ?? this.#changelogs[0]?.topic ?? this.topic;
      this.#fail(new RestoreFailedError(topic, partition, { cause: error }));
    });
    return task;
  }

  async #restore(task: PartitionTask): Promise<void> {
    const { partition } = task;
    // The previous incarnation of this partition (revoked, then given back) closes its store first.
    await this.#closing.get(partition);
    for (const changelog of this.#changelogs) {
      if (task.abort.signal.aborted) break;
      const ends = await this.#admin!.listEndOffsets(changelog.topic);
      const endOffset = ends.find((e) => e.partition === partition)?.offset ?? 0;
      const progress: RestoreProgress = { topic: changelog.topic, partition, endOffset, position: -1, remaining: endOffset, done: false };
      task.restore = progress;
      const labels = { group: this.groupId, topic: changelog.topic, partition: String(partition) };
      this.metrics.restoreRemaining.set(labels, endOffset);
      // At 0 from the first restore: rate() ignores a new series' first sample.
      this.metrics.restoredRecords.inc({ group: this.groupId, topic: changelog.topic }, 0);
      const reader = this.#options.client.reader();
      task.reader = reader;
      const started = Date.now();
      try {
        await changelog.restore(partition, this.#observe(reader, progress), task.abort.signal);
      } finally {
        task.reader = undefined;
        await reader.close().catch((error: unknown) => this.#log.warn({ err: error, partition }, 'closing the restore reader failed'));
      }
      if (task.abort.signal.aborted) return;
      progress.remaining = 0;
      progress.done = true;
      this.metrics.restoreRemaining.set(labels, 0);
      this.#log.info({ groupId: this.groupId, topic: changelog.topic, partition, endOffset, ms: Date.now() - started }, 'partition restored');
    }
    if (task.abort.signal.aborted || this.#tasks.get(partition) !== task) return;
    task.state = 'active';
    const held = task.held;
    task.held = [];
    this.#held -= held.length;
    for (const record of held) this.#scheduler.add(this.#job(task, record));
    this.#updateFlow();
  }

  /** Wraps the restore reader so that progress is known whatever the state module does. */
  #observe(reader: PartitionReader, progress: RestoreProgress): PartitionReader {
    const labels = { group: this.groupId, topic: progress.topic, partition: String(progress.partition) };
    return {
      read: (topic, partition, fromOffset, onRecords, toOffset) => {
        const target = Math.max(toOffset ?? progress.endOffset, fromOffset);
        progress.position = fromOffset;
        progress.remaining = target - fromOffset;
        this.metrics.restoreRemaining.set(labels, progress.remaining);
        return reader.read(
          topic,
          partition,
          fromOffset,
          async (records) => {
            await onRecords(records);
            const last = records[records.length - 1];
            if (last) {
              progress.position = last.offset + 1;
              progress.remaining = Math.max(0, target - progress.position);
              this.metrics.restoreRemaining.set(labels, progress.remaining);
              this.metrics.restoredRecords.inc({ group: this.groupId, topic: progress.topic }, records.length);
            }
          },
          toOffset,
        );
      },
      // The runner owns the reader (it aborts a restore of a revoked partition by closing it).
      close: () => Promise.resolve(),
    };
  }

  /**
   * Takes partitions out of service: drops their buffered records, lets in-flight ones finish for
   * up to `timeoutMs`, commits the watermark, closes the state.
   */
  #retire(tasks: readonly PartitionTask[], timeoutMs: number): Promise<void> {
    const partitions = new Set(tasks.map((t) => t.partition));
    for (const task of tasks) {
      task.state = 'revoking';
      this.#held -= task.held.length;
      task.held = [];
      if (task.reader) {
        // Stops a restore in progress: nothing of it will be used.
        task.abort.abort();
        void task.reader.close().catch(noop);
      }
    }
    this.#scheduler.drop(partitions);
    this.#updateFlow();
    const finished = (async () => {
      const drained = await settledWithin(Promise.all(tasks.map((t) => this.#scheduler.whenIdle(t.partition))), timeoutMs);
      if (!drained) this.#log.warn({ groupId: this.groupId, partitions: [...partitions], timeoutMs }, 'in-flight records did not finish in time; abandoning them (they will be processed again)');
      for (const task of tasks) task.abort.abort();
      await this.#commit(tasks);
      // An aborted restore may still be unwinding in the state module: close after it settled.
      await settledWithin(Promise.all(tasks.map((t) => t.restored)), timeoutMs);
      for (const task of tasks) {
        await this.#closeState(task.partition);
        if (this.#tasks.get(task.partition) === task) this.#tasks.delete(task.partition);
        this.#pausedParts.delete(task.partition);
        if (task.restore) this.#forgetRestoreGauges(task.partition);
      }
      this.#updateFlow();
    })();
    for (const p of partitions) {
      const tracked = finished.finally(() => {
        if (this.#closing.get(p) === tracked) this.#closing.delete(p);
      });
      this.#closing.set(p, tracked);
    }
    return finished;
  }

  #forgetRestoreGauges(partition: number): void {
    for (const changelog of this.#changelogs) this.metrics.restoreRemaining.remove({ group: this.groupId, topic: changelog.topic, partition: String(partition) });
  }

  async #closeState(partition: number): Promise<void> {
    try {
      for (const changelog of this.#changelogs) await changelog.close?.(partition);
    } catch (error) {
      this.#log.warn({ err: error, partition }, 'closing the partition state failed');
    }
  }

  // ───────────────────────────── processing ─────────────────────────────

  #job(task: PartitionTask, record: ConsumedRecord): RecordJob {
    // Null keys carry no order: each such record is its own key (every record, without perKeyOrder).
    const key = record.key === null || this.#options.perKeyOrder === false ? `${record.partition}#${record.offset}` : `${record.partition}:${record.key.toString('latin1')}`;
    return { key, partition: record.partition, task, record, run: () => this.#process(task, record) };
  }

  /**
   * Runs one record: the handler, then the produce of its outputs (and of every ctx.send), then
   * counts it as done. Written with plain callbacks (one promise per record, no per-record abort
   * listener): this is the per-record hot path of the framework (bench/framework-overhead.ts).
   * Resolves when the record's slot is free: done, handled by onError, failed, or given up (abort).
   */
  #process(task: PartitionTask, record: ConsumedRecord): Promise<void> {
    const { signal } = task.abort;
    if (signal.aborted) return Promise.resolve();
    if (this.#gate?.closed !== undefined) return this.#gate.whenOpen(signal).then(() => this.#process(task, record));
    return new Promise<void>((resolve) => {
      const producer = this.#producer!;
      let over = false;
      let handlerDone = false;
      let sending = 0;
      const giveUp = (): void => {
        if (over) return;
        over = true;
        task.running.delete(giveUp);
        resolve();
      };
      const succeed = (): void => {
        if (over) return;
        over = true;
        task.running.delete(giveUp);
        if (!signal.aborted) this.#completed(task, record, 'ok');
        resolve();
      };
      const fail = (error: unknown): void => {
        if (over) return;
        over = true;
        task.running.delete(giveUp);
        if (signal.aborted) {
          resolve();
          return;
        }
        this.#failed(task, record, error).then(resolve, resolve);
      };
      // A send failing while the handler still runs fails the record only once the handler is
      // over: the key's slot must not be freed while its handler runs.
      let sendFailed = false;
      let sendError: unknown;
      const sent = (): void => {
        sending -= 1;
        if (handlerDone && sending === 0) succeed();
      };
      const notSent = (error: unknown): void => {
        sending -= 1;
        if (handlerDone) fail(error);
        else if (!sendFailed) {
          sendFailed = true;
          sendError = error;
        }
      };
      const send = (records: readonly ProduceRecord[]): Promise<RecordMetadata[]> => {
        const first = producer.send(records);
        const sending$ = this.settings.brokerRetryMs === 0 ? first : first.catch((error: unknown) => this.#gate!.produceAgain(records, signal, error));
        sending += 1;
        // Also marks the promise handled: a caller that drops it must not get an unhandled rejection.
        sending$.then(sent, notSent);
        return sending$;
      };
      const handled = (outputs: readonly ProduceRecord[] | void): void => {
        if (over) return;
        // send() already handles its outcome (sent/notSent): the returned promise is for handlers.
        if (outputs && outputs.length > 0) void send(outputs);
        // A handler may still send more while these settle: done when none is left outstanding.
        handlerDone = true;
        if (sendFailed) fail(sendError);
        else if (sending === 0) succeed();
      };
      task.running.add(giveUp);
      const context: RecordContext = { topic: record.topic, partition: record.partition, signal, send };
      let result: ReturnType<RecordHandler>;
      try {
        result = this.#options.handler(record, context);
      } catch (error) {
        fail(error);
        return;
      }
      if (isPromiseLike(result)) result.then(handled, fail);
      else handled(result);
    });
  }

  /** A finished record: counts toward the watermark; metrics are added up per microtask. */
  #completed(task: PartitionTask, record: ConsumedRecord, outcome: 'ok' | 'error'): void {
    task.tracker(record.topic).complete(record.offset);
    this.#processed += 1;
    this.#unreported[outcome] += 1;
    this.#queueFlow();
    if (this.#commitIntervalMs === 0) this.#requestCommit();
  }

  /** The handler or a produce failed: onError decides (done as `error`), else the runner stops. */
  async #failed(task: PartitionTask, record: ConsumedRecord, error: unknown): Promise<void> {
    const onError = this.#options.onError;
    if (!onError) {
      this.#fail(new RecordFailedError(record.topic, record.partition, record.offset, { cause: error }));
      return;
    }
    try {
      await onError(error, record);
    } catch (handlerError) {
      this.#fail(new RecordFailedError(record.topic, record.partition, record.offset, { cause: handlerError }));
      return;
    }
    if (task.abort.signal.aborted) return;
    this.#completed(task, record, 'error');
  }

  // ───────────────────────────── commits ─────────────────────────────

  /** Coalesced: at most one commit runs and one waits, whatever the completion rate. */
  #requestCommit(): void {
    if (this.#commitQueued || !this.#consumer) return;
    this.#commitQueued = true;
    this.#commitChain = this.#commitChain.then(() => {
      this.#commitQueued = false;
      return this.#doCommit([...this.#tasks.values()].filter((t) => t.state !== 'restoring'));
    });
  }

  #commit(tasks: readonly PartitionTask[]): Promise<void> {
    this.#commitChain = this.#commitChain.then(() => this.#doCommit(tasks));
    return this.#commitChain;
  }

  async #doCommit(tasks: readonly PartitionTask[]): Promise<void> {
    const consumer = this.#consumer;
    if (!consumer || this.#abandoned) return;
    const offsets: CommitOffset[] = [];
    const committing: Array<[PartitionTask, string, number]> = [];
    for (const task of tasks) {
      for (const [topic, tracker] of task.trackers) {
        const watermark = tracker.watermark();
        // Nothing finished yet (watermark = where we started): committing it tells the group nothing,
        // and after a non-awaited revoke it could move the new owner's commit backwards.
        if (watermark === undefined || watermark <= task.committed(topic) || watermark <= tracker.first) continue;
        offsets.push({ topic, partition: task.partition, offset: watermark });
        committing.push([task, topic, watermark]);
      }
    }
    if (offsets.length === 0) return;
    const end = this.metrics.commitLatency.startTimer({ group: this.groupId });
    try {
      await consumer.commit(offsets);
      end();
      for (const [task, topic, watermark] of committing) task.committedBy.set(topic, Math.max(task.committed(topic), watermark));
      this.#options.onCommitted?.(offsets);
      this.metrics.commits.inc({ group: this.groupId, outcome: 'ok' });
    } catch (error) {
      // Typically a rebalance in progress: the next commit carries the same (or a higher) watermark.
      this.metrics.commits.inc({ group: this.groupId, outcome: 'error' });
      this.#log.warn({ err: error, groupId: this.groupId, offsets }, 'commit failed; will retry with the next commit');
    }
  }

  // ───────────────────────────── backpressure ─────────────────────────────

  #buffered(): number {
    return this.#scheduler.buffered + this.#held;
  }

  #intakeOpen(): boolean {
    return this.#state === 'starting' || this.#state === 'running';
  }

  /** Schedules #updateFlow for the end of the current microtask batch (once, however many changes). */
  #queueFlow(): void {
    if (this.#flowQueued) return;
    this.#flowQueued = true;
    queueMicrotask(() => {
      this.#flowQueued = false;
      this.#updateFlow();
    });
  }

  /** Pauses or resumes fetching from the current load; keeps the gauges and counters in step. */
  #updateFlow(): void {
    const inFlight = this.#scheduler.inFlight;
    const buffered = this.#buffered();
    const load = inFlight + buffered;
    if (inFlight > this.#peak.inFlight) this.#peak.inFlight = inFlight;
    if (buffered > this.#peak.buffered) this.#peak.buffered = buffered;
    const { maxBuffered } = this.settings;
    const resumeBelow = this.settings.resumeBelow ?? Math.floor(maxBuffered / 2);
    if (!this.#backpressure && load >= maxBuffered) this.#backpressure = true;
    else if (this.#backpressure && load <= resumeBelow) this.#backpressure = false;
    const consumer = this.#consumer;
    // No pause/resume before start() resolved: a client may queue a pause issued while it joins but
    // drop the matching resume (kafkajs adapter), leaving the partition paused for good.
    if (consumer && this.#state === 'running') {
      if (consumer.capabilities.perPartitionPause) {
        // Restoring partitions stay paused on their own: their records would only wait in memory.
        const wanted = new Set<number>();
        for (const task of this.#tasks.values()) {
          if (task.state === 'revoking') continue;
          if (this.#backpressure || (task.state === 'restoring' && this.#changelogs.length > 0)) wanted.add(task.partition);
        }
        const pause = [...wanted].filter((p) => !this.#pausedParts.has(p));
        const resume = [...this.#pausedParts].filter((p) => !wanted.has(p));
        if (pause.length > 0) consumer.pause(this.#topicPartitions(pause));
        if (resume.length > 0) consumer.resume(this.#topicPartitions(resume));
        this.#pausedParts.clear();
        for (const p of wanted) this.#pausedParts.add(p);
      } else if (this.#backpressure !== this.#pausedWhole) {
        this.#pausedWhole = this.#backpressure;
        if (this.#pausedWhole) consumer.pause();
        else consumer.resume();
      }
    }
    this.#syncGauges(inFlight, buffered);
  }

  /** Partition p of every source topic (a task's fetching is paused and resumed as a whole). */
  #topicPartitions(partitions: readonly number[]): TopicPartition[] {
    return partitions.flatMap((partition) => this.topics.map((topic) => ({ topic, partition })));
  }

  #pausedPartitionList(): number[] {
    if (this.#pausedWhole || this.#state === 'stopping') return [...this.#tasks.keys()].sort((a, b) => a - b);
    return [...this.#pausedParts].sort((a, b) => a - b);
  }

  #flushCounters(): void {
    const { ok, error } = this.#unreported;
    if (ok > 0) this.metrics.processed.inc({ group: this.groupId, topic: this.topic, outcome: 'ok' }, ok);
    if (error > 0) this.metrics.processed.inc({ group: this.groupId, topic: this.topic, outcome: 'error' }, error);
    this.#unreported.ok = 0;
    this.#unreported.error = 0;
  }

  #pausedCount(): number {
    return this.#pausedWhole || this.#state === 'stopping' ? this.#tasks.size : this.#pausedParts.size;
  }

  /** Gauges move by deltas so that runners sharing a registry add up. */
  #syncGauges(inFlight: number, buffered: number): void {
    this.#flushCounters();
    const over = this.#state === 'stopped' || this.#state === 'failed';
    const paused = over ? 0 : this.#pausedCount();
    if (over) {
      inFlight = 0;
      buffered = 0;
    }
    const reported = this.#reported;
    if (inFlight === reported.inFlight && buffered === reported.buffered && paused === reported.paused) return;
    const group = { group: this.groupId };
    const next = { inFlight, buffered, paused };
    if (next.inFlight !== this.#reported.inFlight) this.metrics.inFlight.inc(group, next.inFlight - this.#reported.inFlight);
    if (next.buffered !== this.#reported.buffered) this.metrics.buffered.inc(group, next.buffered - this.#reported.buffered);
    if (next.paused !== this.#reported.paused) this.metrics.pausedPartitions.inc(group, next.paused - this.#reported.paused);
    Object.assign(this.#reported, next);
  }

  // ───────────────────────────── shutdown ─────────────────────────────

  #stopIntake(): void {
    this.#state = 'stopping';
    if (this.#commitTimer) clearInterval(this.#commitTimer);
    this.#commitTimer = undefined;
    try {
      this.#consumer?.pause();
    } catch (error) {
      this.#log.debug({ err: error }, 'pause on stop failed');
    }
    for (const task of this.#tasks.values()) {
      this.#held -= task.held.length;
      task.held = [];
      if (task.reader) {
        task.abort.abort();
        void task.reader.close().catch(noop);
      }
    }
    this.#scheduler.drop();
    this.#updateFlow();
  }

  async #stop(timeoutMs: number): Promise<void> {
    if (this.#state === 'new' || this.#state === 'stopped' || this.#state === 'failed') {
      this.#state = 'stopped';
      await this.#release();
      this.#resolveClosed();
      return;
    }
    this.#stopIntake();
    const drained = await settledWithin(this.#scheduler.whenIdle(), timeoutMs);
    if (!drained) this.#log.warn({ groupId: this.groupId, timeoutMs, inFlight: this.#scheduler.inFlight }, 'shutdown timeout: abandoning in-flight records (they will be processed again)');
    const tasks = [...this.#tasks.values()];
    for (const task of tasks) task.abort.abort();
    await this.#commit(tasks.filter((t) => t.state === 'active'));
    await Promise.allSettled([...this.#closing.values()]);
    await settledWithin(Promise.all(tasks.map((t) => t.restored)), Math.max(timeoutMs, 1000));
    for (const task of tasks) {
      if (task.state !== 'revoking') await this.#closeState(task.partition);
      if (task.restore) this.#forgetRestoreGauges(task.partition);
    }
    this.#tasks.clear();
    await this.#release();
    this.#log.info({ groupId: this.groupId, drained, processed: this.#processed }, 'runner stopped');
    if (this.#fatal !== undefined) {
      this.#state = 'failed';
      this.#syncGauges(0, 0);
      this.#rejectClosed(this.#fatal);
    } else {
      this.#state = 'stopped';
      this.#syncGauges(0, 0);
      this.#resolveClosed();
    }
  }

  /** Leaves the group and closes what the runner opened. */
  async #release(): Promise<void> {
    if (this.#commitTimer) clearInterval(this.#commitTimer);
    this.#commitTimer = undefined;
    const closing: Promise<void>[] = [];
    if (this.#consumer) closing.push(this.#consumer.close());
    if (this.#producer && !this.#options.producer) closing.push(this.#producer.close());
    if (this.#admin) closing.push(this.#admin.close());
    for (const result of await Promise.allSettled(closing)) {
      if (result.status === 'rejected') this.#log.warn({ err: result.reason }, 'closing a client failed');
    }
  }

  #fail(error: unknown): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = error;
    this.#log.error({ err: error, groupId: this.groupId }, 'runner failed; stopping');
    void this.stop();
  }
}

function isPromiseLike<T>(value: PromiseLike<T> | T): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

export function createRunner(options: RunnerOptions): StreamRunner {
  return new StreamRunner(options);
}
