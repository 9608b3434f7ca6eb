/**
 * The processor role (DESIGN.md "Data flow"): the application topology (events ⋈ cookie jars →
 * executor → requests + cookies) run by the consumer-group runner, with the jar store restored
 * from the compacted cookies changelog before a partition's first event.
 *
 *   const processor = await startProcessor({ settings, client, executor, registry, logger });
 *   await processor.stop();
 *
 * How the pieces meet (docs/topology.md "What the Kafka-backed runner does with these"):
 * - handler: decode → engine.submit → encode (engine.handle plus an event shape check); the
 *   changelog outputs carry the input's partition, so a jar lands in the partition of its store;
 * - malformed events (bad JSON, not an event) and records the topology itself failed on go to the
 *   events DLQ; anything else (a produce failure) stops the runner below the record (at-least-once);
 * - the stores are committed after each consumer commit the runner makes, with as checkpoint the
 *   offset after the last changelog record this instance produced and had acknowledged;
 * - on revocation the runner commits, then closes the partition: a last store commit, then close.
 */
import type { Registry } from 'prom-client';
import { TagstreamError, InvalidInputError, PartitionClosedError } from '../../core/errors.ts';
import type {
  CommitOffset,
  ConsumedRecord,
  GroupConsumerOptions,
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaProducer,
  PartitionReader,
  ProduceRecord,
  RecordMetadata,
} from '../kafka/types.ts';
import type { Settings } from '../config.ts';
import { componentLogger, type Logger } from '../../core/log.ts';
import { BatchingProducer } from './batching-producer.ts';
import { createRunner, type ChangelogBinding, type RunnerStatus, type StreamRunner } from '../runner/index.ts';
import { applicationTopology, DEFAULT_COOKIE_STORE, type Executor } from '../../topology/application.ts';
import { TopologyEngine } from '../../topology/engine.ts';
import { InMemoryStoreProvider, LmdbStoreProvider, changelogRestorer } from '../../state/index.ts';
import type { KeyValueStore, StoreProvider } from '../../state/store.ts';

export interface ProcessorOptions {
  settings: Settings;
  client: KafkaClient;
  /** topology/application.ts's executor: (event, jar | null, signal) → { requests, jar, trackers }. */
  executor: Executor;
  registry?: Registry;
  logger?: Logger;
  /** Clock of the jars' `updatedAt` (tests). */
  now?: () => number;
}

export interface ProcessorHandle {
  readonly runner: StreamRunner;
  readonly engine: TopologyEngine;
  /** Resolves after stop(), rejects with the error that stopped the processor. */
  readonly closed: Promise<void>;
  status(): RunnerStatus;
  /** Graceful: drain up to `timeoutMs` (default runner.shutdownTimeoutMs), commit, close stores, leave. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Value of tracking.events.dlq for an event that could not be processed at all. */
export interface InvalidEventDeadLetter {
  reason: 'invalid-event' | 'processing-failed';
  code: string;
  error: string;
  source: { topic: string; partition: number; offset: number; timestamp: number };
  /** The consumed value, as it was (base64), or null for a tombstone. */
  value: string | null;
  valueEncoding: 'base64';
}

/** Failures that are the record's fault: routed to the DLQ. Anything else stops the runner. */
const DEAD_LETTER_CODES: Record<string, InvalidEventDeadLetter['reason']> = {
  ERR_INVALID_INPUT: 'invalid-event',
  ERR_TOPOLOGY_NODE_FAILED: 'processing-failed',
  ERR_TOPOLOGY_NULL_KEY: 'processing-failed',
};

type ProviderWithClose = StoreProvider & { closePartition(partition: number): Promise<void>; close(): Promise<void> };

export async function startProcessor(options: ProcessorOptions): Promise<ProcessorHandle> {
  const { settings, client } = options;
  const log = componentLogger(options.logger, 'processor');
  const topics = settings.topics;
  const storeName = DEFAULT_COOKIE_STORE;

  const topology = applicationTopology({
    executor: options.executor,
    topics: { events: topics.events, cookies: topics.cookies, requests: topics.requests, eventsDlq: topics.eventsDlq },
    cookieStore: storeName,
    concurrency: settings.processor.concurrency ?? settings.executor.browsers * settings.executor.pagesPerBrowser,
    retries: settings.processor.retries,
    ...(settings.processor.executorTimeoutMs === undefined ? {} : { executorTimeoutMs: settings.processor.executorTimeoutMs }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });

  const stores: ProviderWithClose =
    settings.state.store === 'memory'
      ? new InMemoryStoreProvider()
      : new LmdbStoreProvider({ stateDir: settings.state.dir, noSync: settings.state.noSync });
  const state = new PartitionStates(stores, storeName, topics.cookies, log);
  const engine = new TopologyEngine(topology, { stores: state.guarded });

  let admin: KafkaAdmin | undefined;
  let producer: KafkaProducer | undefined;
  try {
    admin = await client.admin();
    // One produce request per record would cap the member at one broker round trip per record
    // (see batching-producer.ts): concurrent records share requests instead.
    producer = new BatchingProducer(await client.producer({ clientId: settings.clientId }));
  } catch (error) {
    await Promise.allSettled([admin?.close(), stores.close()]);
    throw error;
  }
  const output = producer;
  const acknowledging: KafkaProducer = {
    async send(records) {
      const metadata = await output.send(records);
      state.acknowledged(metadata);
      return metadata;
    },
    close: () => output.close(),
  };

  const restorer = changelogRestorer({ topic: topics.cookies, storeName, stores });
  const stateAdmin = admin;
  const changelog: ChangelogBinding = {
    topic: topics.cookies,
    async restore(partition: number, reader: PartitionReader, signal: AbortSignal): Promise<void> {
      await state.resetIfAhead(partition, stateAdmin);
      await restorer.restore(partition, reader, signal);
      if (!signal.aborted) state.opened(partition);
    },
    async close(partition: number): Promise<void> {
      await state.close(partition);
    },
  };

  const dlqProducer = output;
  const runner = createRunner({
    ...settings.runner,
    client: committingClient(client, (offsets) => state.afterConsumerCommit(offsets)),
    groupId: settings.groups.processor,
    topic: topics.events,
    changelog,
    producer: acknowledging,
    clientId: settings.clientId,
    logger: log,
    ...(options.registry === undefined ? {} : { registry: options.registry }),
    handler: async (record: ConsumedRecord): Promise<ProduceRecord[]> => {
      const input = engine.decode(record);
      checkEvent(input.value);
      const outputs = await engine.submit(input);
      return outputs.map((o) => engine.encode(o));
    },
    onError: async (error: unknown, record: ConsumedRecord): Promise<void> => {
      const reason = error instanceof TagstreamError ? DEAD_LETTER_CODES[error.code] : undefined;
      if (reason === undefined) throw error;
      const letter: InvalidEventDeadLetter = {
        reason,
        code: (error as TagstreamError).code,
        error: (error as TagstreamError).message,
        source: { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp },
        value: record.value === null ? null : record.value.toString('base64'),
        valueEncoding: 'base64',
      };
      await dlqProducer.send([{ topic: topics.eventsDlq, key: record.key, value: JSON.stringify(letter) }]);
      log.warn({ topic: record.topic, partition: record.partition, offset: record.offset, code: letter.code, reason }, 'event sent to the dead letter topic');
    },
  });

  const release = async (): Promise<void> => {
    engine.close();
    const results = await Promise.allSettled([state.closeAll(), output.close(), stateAdmin.close()]);
    for (const r of results) if (r.status === 'rejected') log.warn({ err: r.reason }, 'closing the processor: a resource failed to close');
  };

  try {
    await runner.start();
  } catch (error) {
    await release();
    throw error;
  }
  log.info(
    { groupId: settings.groups.processor, topics, store: settings.state.store, stateDir: settings.state.store === 'lmdb' ? settings.state.dir : undefined },
    'processor started',
  );

  let released: Promise<void> | undefined;
  const releaseOnce = (): Promise<void> => (released ??= release());
  const closed = runner.closed.then(
    () => releaseOnce(),
    async (error: unknown) => {
      await releaseOnce();
      throw error;
    },
  );
  closed.catch(() => undefined);

  return {
    runner,
    engine,
    closed,
    status: () => runner.status(),
    async stop(timeoutMs?: number) {
      await runner.stop(timeoutMs);
      await releaseOnce();
    },
  };
}

/** The engine decodes any JSON; what goes to the executor must at least look like a page view. */
function checkEvent(value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError('event', `expected a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const event = value as Record<string, unknown>;
  for (const field of ['eventId', 'userId'] as const) {
    if (typeof event[field] !== 'string' || event[field] === '') throw new InvalidInputError(`event.${field}`, 'must be a non-empty string');
  }
}

/**
 * The client the runner sees: the same, except that its group consumer calls `afterCommit` once a
 * commit of offsets succeeded (the runner has no commit hook; this is where "store commit at the
 * runner's commit" happens).
 */
function committingClient(client: KafkaClient, afterCommit: (offsets: readonly CommitOffset[]) => void): KafkaClient {
  return {
    kind: client.kind,
    producer: (o) => client.producer(o),
    reader: () => client.reader(),
    admin: () => client.admin(),
    close: () => client.close(),
    consumer(options: GroupConsumerOptions): KafkaConsumer {
      const inner = client.consumer(options);
      return {
        groupId: inner.groupId,
        capabilities: inner.capabilities,
        start: (listener) => inner.start(listener),
        pause: (partitions) => inner.pause(partitions),
        resume: (partitions) => inner.resume(partitions),
        assignment: () => inner.assignment(),
        close: () => inner.close(),
        async commit(offsets) {
          await inner.commit(offsets);
          afterCommit(offsets);
        },
      };
    },
  };
}

/**
 * The jar stores of the partitions this instance owns, and their checkpoints.
 *
 * The checkpoint recorded with a store commit is the offset after the last changelog record this
 * instance produced for the partition and had acknowledged. The store already holds every write
 * below it (a jar is put before it is produced), so a restart replays only what comes after. That
 * assumes nothing else writes the changelog while we own the partition (the future `erase` would).
 */
class PartitionStates {
  /** Partitions restored and not closed: the only ones the engine may touch. */
  private readonly open = new Set<number>();
  /** Next changelog offset after our last acknowledged jar, per partition (since its restore). */
  private readonly checkpoints = new Map<number, number>();
  /** One store commit per partition at a time; a request while one runs is coalesced into one more. */
  private readonly commits = new Map<number, { running: Promise<void>; again: boolean }>();
  readonly guarded: StoreProvider;

  constructor(
    private readonly stores: ProviderWithClose,
    private readonly storeName: string,
    private readonly changelogTopic: string,
    private readonly log: Logger,
  ) {
    this.guarded = {
      store: (name: string, partition: number): KeyValueStore<unknown> => {
        // A record abandoned at revocation may still be running: it must not reopen a closed store.
        if (!this.open.has(partition)) {
          throw new PartitionClosedError(name, partition);
        }
        return this.stores.store(name, partition);
      },
    };
  }

  /**
   * A checkpoint beyond the changelog's end means the topic was recreated or truncated (or, with the
   * embedded broker, that it died with the last process): the local state is ahead of its source
   * of truth, so it is wiped and restored from 0 (Kafka Streams treats it as a corrupted task).
   */
  async resetIfAhead(partition: number, admin: KafkaAdmin): Promise<void> {
    const store = this.stores.store(this.storeName, partition);
    const checkpoint = store.checkpoint();
    if (checkpoint === undefined || checkpoint === 0) return;
    const end = (await admin.listEndOffsets(this.changelogTopic)).find((e) => e.partition === partition)?.offset ?? 0;
    if (checkpoint > end) {
      this.log.warn({ topic: this.changelogTopic, partition, checkpoint, endOffset: end }, 'store checkpoint beyond the changelog end: wiping the store and restoring from 0');
      await store.clear();
    }
  }

  opened(partition: number): void {
    this.checkpoints.delete(partition);
    this.open.add(partition);
  }

  acknowledged(metadata: readonly RecordMetadata[]): void {
    for (const m of metadata) {
      if (m.topic !== this.changelogTopic || !this.open.has(m.partition)) continue;
      const next = m.offset + 1;
      if (next > (this.checkpoints.get(m.partition) ?? -1)) this.checkpoints.set(m.partition, next);
    }
  }

  afterConsumerCommit(offsets: readonly CommitOffset[]): void {
    for (const { partition } of offsets) if (this.open.has(partition)) this.requestCommit(partition);
  }

  /** Last commit of a revoked (or stopping) partition, then its store is closed. */
  async close(partition: number): Promise<void> {
    const wasOpen = this.open.delete(partition);
    await this.commits.get(partition)?.running;
    if (wasOpen) await this.commitNow(partition);
    this.checkpoints.delete(partition);
    await this.stores.closePartition(partition);
  }

  async closeAll(): Promise<void> {
    for (const partition of [...this.open]) await this.close(partition);
    await this.stores.close();
  }

  private requestCommit(partition: number): void {
    const current = this.commits.get(partition);
    if (current) {
      current.again = true;
      return;
    }
    const entry = { running: Promise.resolve(), again: false };
    entry.running = (async () => {
      do {
        entry.again = false;
        if (!this.open.has(partition)) break;
        await this.commitNow(partition);
      } while (entry.again);
    })().finally(() => {
      if (this.commits.get(partition) === entry) this.commits.delete(partition);
    });
    this.commits.set(partition, entry);
  }

  private async commitNow(partition: number): Promise<void> {
    try {
      await this.stores.store(this.storeName, partition).commit(this.checkpoints.get(partition));
    } catch (error) {
      // The next commit carries the same writes; a lost one is replayed from the changelog.
      this.log.warn({ err: error, store: this.storeName, partition }, 'store commit failed');
    }
  }
}
