/**
 * Runs any Topology on Kafka, as KafkaStreams runs a Kafka Streams Topology: everything a stream
 * role needs besides its topology is derived from the topology itself.
 *
 *   const app = await startStreams({ topology, client, groupId, state, deadLetters, logger });
 *   app.readiness(); await app.stop();
 *
 * - subscription: the topology's stream topics (several are one task per partition number);
 * - state: one store per (store, partition), restored from the store's changelog topic before the
 *   partition's first record; stores are committed after each consumer commit with, as checkpoint,
 *   the offset after the last changelog record this instance produced and had acknowledged;
 * - start-up checks: every topic it reads or writes exists, each copartition group of the topology
 *   has one partition count, changelogs are compacted (runtime/runner/checks.ts);
 * - per record: decode with the source's serde, run the graph (topology engine), encode with the
 *   sinks' serdes, produce (batched across records), then the record counts as done;
 * - failures: routed by typed error to a dead-letter topic (`deadLetters`), or they stop the
 *   application below the record (at-least-once: the next owner processes it again).
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../../core/log.ts';
import type { CommitOffset, ConsumedRecord, ProduceRecord, RecordMetadata } from '../../core/records.ts';
import { InMemoryStoreProvider, LmdbStoreProvider } from '../../state/index.ts';
import { TopologyEngine, type Topology } from '../../topology/index.ts';
import type { KafkaAdmin, KafkaClient, KafkaProducer } from '../kafka/types.ts';
import { createRunner, type RunnerSettingsInput, type RunnerStatus, type StreamRunner } from '../runner/index.ts';
import { verifyTopicRequirements, type TopicRequirements } from '../runner/checks.ts';
import { RecordTooLargeError } from '../../core/errors.ts';
import type { Readiness } from '../roles/role.ts';
import { BatchingProducer, recordBytes } from './batching-producer.ts';
import type { DeadLetterRouter } from './dead-letters.ts';
import { TopologyState, type ClosableStoreProvider } from './state.ts';
import { deadLetterReason, streamsMetrics, type StoreSizes } from '../metrics/streams.ts';

export type StateOptions = { store: 'memory' } | { store: 'lmdb'; dir: string; noSync?: boolean } | { store: 'custom'; provider: ClosableStoreProvider };

export interface StreamsOptions {
  /** What the application computes; its name appears in readiness reasons and logs. */
  name: string;
  topology: Topology;
  client: KafkaClient;
  groupId: string;
  clientId?: string;
  state: StateOptions;
  /** Failed records that are the record's fault go there; absent = every failure stops the application. */
  deadLetters?: DeadLetterRouter;
  /** The consumer-group runner's tunables (docs/runner.md "Settings"). */
  runner?: RunnerSettingsInput;
  registry?: Registry;
  /** Topics written by the topology that are dead-letter topics: counted in `tagstream_dead_letters_total`. */
  deadLetterTopics?: readonly string[];
  logger: Logger;
}

export interface StreamsHandle {
  readonly runner: StreamRunner;
  readonly engine: TopologyEngine;
  /** Resolves after stop(), rejects with the error that stopped the application. */
  readonly closed: Promise<void>;
  status(): RunnerStatus;
  /** Ready when the group runs and no assigned partition is restoring. */
  readiness(): Readiness;
  /** Graceful: drain up to `timeoutMs` (default runner.shutdownTimeoutMs), commit, close stores, leave. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

/** What the topology needs of the cluster, derived from it (Kafka Streams' start-up checks). */
export function topologyRequirements(topology: Topology, options: { requireCompacted: boolean; extraTopics?: readonly string[] }): TopicRequirements {
  const changelogs = topology.stores.map((s) => s.changelogTopic);
  return {
    exist: [...new Set([...topology.sourceTopics, ...topology.sinkTopics, ...(options.extraTopics ?? [])])],
    copartitionGroups: topology.copartitionGroups,
    compacted: options.requireCompacted ? [...new Set(changelogs)] : [],
  };
}

function storesFor(state: StateOptions): ClosableStoreProvider {
  if (state.store === 'memory') return new InMemoryStoreProvider();
  if (state.store === 'lmdb') return new LmdbStoreProvider({ stateDir: state.dir, ...(state.noSync === undefined ? {} : { noSync: state.noSync }) });
  return state.provider;
}

export async function startStreams(options: StreamsOptions): Promise<StreamsHandle> {
  const { topology, client, logger: log } = options;
  const stores = storesFor(options.state);
  const state = new TopologyState(stores, topology.stores, log);
  const engine = new TopologyEngine(topology, { stores: state.guarded });

  const runnerSettings = options.runner ?? {};
  const requirements = topologyRequirements(topology, { requireCompacted: runnerSettings.requireCompactedChangelog ?? true });
  let admin: KafkaAdmin | undefined;
  let producer: KafkaProducer | undefined;
  let limits: ReadonlyMap<string, number>;
  try {
    admin = await client.admin();
    await verifyTopicRequirements(admin, requirements, { groupId: options.groupId });
    limits = await recordLimits(admin, topology.sinkTopics);
    // One produce request per record would cap the member at one broker round trip per record
    // (see batching-producer.ts): concurrent records share requests instead, within the smallest
    // max.message.bytes of the topics written (a record batch over it is refused whole).
    producer = new BatchingProducer(await client.producer(options.clientId === undefined ? {} : { clientId: options.clientId }), {
      maxBatchBytes: Math.min(DEFAULT_BATCH_BYTES, ...[...limits.values()].map((l) => l - RECORD_OVERHEAD_BYTES)),
    });
  } catch (error) {
    await Promise.allSettled([admin?.close(), stores.close()]);
    throw error;
  }
  const output = producer;
  const stateAdmin = admin;
  const acknowledging: KafkaProducer = {
    async send(records) {
      const metadata: RecordMetadata[] = await output.send(records);
      state.acknowledged(metadata);
      return metadata;
    },
    close: () => output.close(),
  };

  const metrics = options.registry === undefined ? undefined : streamsMetrics(options.registry);
  const storeSizes: StoreSizes = { group: options.groupId, sizes: () => state.sizes() };
  metrics?.stores.add(storeSizes);
  const dlqTopics = new Set(options.deadLetterTopics ?? []);
  const countDeadLetters = (outputs: readonly ProduceRecord[]): void => {
    if (metrics === undefined || dlqTopics.size === 0) return;
    for (const o of outputs) if (dlqTopics.has(o.topic)) metrics.deadLetters.inc({ group: options.groupId, topic: o.topic, reason: deadLetterReason(o.value) });
  };
  const router = options.deadLetters;
  const deadLetterTopics = new Set<string>();
  const recordLimitsByTopic = limits;
  const runner = createRunner({
    ...runnerSettings,
    client,
    groupId: options.groupId,
    topics: topology.streamTopics,
    changelogs: state.bindings(stateAdmin),
    requirements,
    onCommitted: (offsets: readonly CommitOffset[]) => state.afterConsumerCommit(offsets),
    producer: acknowledging,
    logger: log,
    ...(options.clientId === undefined ? {} : { clientId: options.clientId }),
    ...(options.registry === undefined ? {} : { registry: options.registry }),
    handler: (record: ConsumedRecord) =>
      engine.handle(record).then((outputs) => {
        const checked = withinLimits(outputs, recordLimitsByTopic, record);
        countDeadLetters(checked);
        return checked;
      }),
    onError: async (error: unknown, record: ConsumedRecord): Promise<void> => {
      const letter = router?.(error, record);
      if (letter === undefined) throw error;
      await output.send([letter]);
      deadLetterTopics.add(letter.topic);
      metrics?.deadLetters.inc({ group: options.groupId, topic: letter.topic, reason: deadLetterReason(letter.value) });
      const code = (error as { code?: unknown }).code;
      log.warn({ topic: record.topic, partition: record.partition, offset: record.offset, code, deadLetterTopic: letter.topic }, 'record sent to the dead letter topic');
    },
  });

  const release = async (): Promise<void> => {
    metrics?.stores.delete(storeSizes);
    engine.close();
    const results = await Promise.allSettled([state.closeAll(), output.close(), stateAdmin.close()]);
    for (const r of results) if (r.status === 'rejected') log.warn({ err: r.reason }, `closing ${options.name}: a resource failed to close`);
  };

  try {
    await runner.start();
  } catch (error) {
    await release();
    throw error;
  }
  log.info({ groupId: options.groupId, topics: topology.streamTopics, stores: topology.stores.map((s) => s.name), state: options.state.store }, `${options.name} started`);

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
    readiness: () => streamsReadiness(options.name, runner.status()),
    async stop(timeoutMs?: number) {
      await runner.stop(timeoutMs);
      await releaseOnce();
    },
  };
}

function streamsReadiness(name: string, status: RunnerStatus): Readiness {
  if (status.state !== 'running') return { ready: false, reasons: [`${name}: ${status.state}`] };
  const restoring = status.partitions.filter((p) => p.state === 'restoring').length;
  if (restoring > 0) return { ready: false, reasons: [`${name}: ${restoring} of ${status.partitions.length} partitions restoring`] };
  return { ready: true, reasons: [] };
}

/** Kafka's default max.message.bytes (broker `message.max.bytes`), when a topic does not set its own. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** Record and batch framing around key + value + headers, with room to spare. */
const RECORD_OVERHEAD_BYTES = 512;
const DEFAULT_BATCH_BYTES = 512 * 1024;

/** max.message.bytes per topic (the topic's own setting, else Kafka's default). */
export async function recordLimits(admin: KafkaAdmin, topics: readonly string[]): Promise<Map<string, number>> {
  const limits = new Map<string, number>();
  if (topics.length === 0) return limits;
  for (const d of await admin.describeTopics(topics)) {
    const configured = Number(d.configs['max.message.bytes']);
    limits.set(d.name, Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_MAX_MESSAGE_BYTES);
  }
  return limits;
}

/**
 * A record's outputs are checked before any is produced: one that its topic would refuse fails the
 * whole record with RecordTooLargeError (dead-lettered by the router), so no partial output is
 * published and the produce request it would have shared fails nobody else.
 */
function withinLimits(outputs: ProduceRecord[], limits: ReadonlyMap<string, number>, source: ConsumedRecord): ProduceRecord[] {
  for (const output of outputs) {
    const limit = limits.get(output.topic) ?? DEFAULT_MAX_MESSAGE_BYTES;
    const bytes = recordBytes(output) + RECORD_OVERHEAD_BYTES;
    if (bytes > limit) {
      throw new RecordTooLargeError(output.topic, bytes, limit, { sourceTopic: source.topic, partition: source.partition, offset: source.offset });
    }
  }
  return outputs;
}
