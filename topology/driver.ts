/**
 * In-process test driver, like Kafka Streams' TopologyTestDriver: pipe records in, read what the
 * sinks produced, inspect the stores. No broker. Offsets are assigned per topic-partition in pipe
 * order, as a broker would.
 */
import type { Observable } from 'rxjs';
import { InMemoryStoreProvider } from '../state/memory.ts';
import type { KeyValueStore, StoreProvider } from '../state/store.ts';
import type { Topology } from './dsl.ts';
import type { RecordKey } from './model.ts';
import { TopologyEngine, type EngineStats, type InputRecord, type NodeEvent, type OutputRecord } from './engine.ts';

export interface DriverOptions {
  /** Default: in-memory stores created on first use. */
  stores?: StoreProvider;
  /** Partition of an input without explicit partition. Default: everything in partition 0. */
  partitionOf?: (topic: string, key: RecordKey) => number;
  /** Timestamp of an input without one. Default Date.now. */
  clock?: () => number;
}

export interface PipeRecord<V> {
  key: RecordKey;
  value: V;
  partition?: number;
  timestamp?: number;
}

export class TopologyTestDriver {
  readonly engine: TopologyEngine;
  private readonly stores: StoreProvider;
  private readonly ownsStores: InMemoryStoreProvider | undefined;
  private readonly nextOffset = new Map<string, number>();
  private readonly produced: OutputRecord[] = [];

  constructor(
    readonly topology: Topology,
    private readonly options: DriverOptions = {},
  ) {
    this.ownsStores = options.stores === undefined ? new InMemoryStoreProvider() : undefined;
    this.stores = options.stores ?? (this.ownsStores as InMemoryStoreProvider);
    this.engine = new TopologyEngine(topology, { stores: this.stores });
  }

  /**
   * Every output record, as the sinks produce it (per input record, in the depth-first order):
   * the engine's outputs$. It also shows outputs of a record that fails further down the graph,
   * which outputs() leaves out. Completes on close().
   */
  get output$(): Observable<OutputRecord> {
    return this.engine.outputs$;
  }

  /** What node `name` outputs, as it happens (engine.observe()). Completes on close(). */
  observe(name: string): Observable<NodeEvent> {
    return this.engine.observe(name);
  }

  /** What every node outputs, in processing order (engine.events$). */
  get events$(): Observable<NodeEvent> {
    return this.engine.events$;
  }

  /** Pipes one record and resolves with its outputs when it has been fully processed. */
  pipeInput<V>(topic: string, key: RecordKey, value: V, meta: { partition?: number; timestamp?: number } = {}): Promise<OutputRecord[]> {
    const partition = meta.partition ?? this.options.partitionOf?.(topic, key) ?? 0;
    const tp = `${topic}\u0000${partition}`;
    const offset = this.nextOffset.get(tp) ?? 0;
    this.nextOffset.set(tp, offset + 1);
    const input: InputRecord = {
      topic,
      partition,
      offset,
      key,
      value,
      timestamp: meta.timestamp ?? (this.options.clock ?? Date.now)(),
    };
    return this.engine.submit(input).then((outputs) => {
      for (const out of outputs) this.produced.push(out);
      return outputs;
    });
  }

  /**
   * Pipes many records at once, as a consumer batch would deliver them: they run concurrently
   * subject to per-key order and process() concurrency. Rejects with the first failure, after all
   * records have settled.
   */
  async pipeInputs<V>(topic: string, records: readonly PipeRecord<V>[]): Promise<OutputRecord[][]> {
    const runs = records.map((r) =>
      this.pipeInput(topic, r.key, r.value, {
        ...(r.partition === undefined ? {} : { partition: r.partition }),
        ...(r.timestamp === undefined ? {} : { timestamp: r.timestamp }),
      }),
    );
    const settled = await Promise.allSettled(runs);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<OutputRecord[]>).value);
  }

  /** Everything produced to `topic` so far (all topics when omitted), in production order. */
  outputs(topic?: string): OutputRecord[] {
    return topic === undefined ? [...this.produced] : this.produced.filter((o) => o.topic === topic);
  }

  store<V>(name: string, partition = 0): KeyValueStore<V> {
    return this.stores.store(name, partition) as KeyValueStore<V>;
  }

  stats(): EngineStats {
    return this.engine.stats();
  }

  async close(): Promise<void> {
    await this.engine.idle();
    this.engine.close();
    await this.ownsStores?.close();
  }
}
