/**
 * Executes a built Topology in process. The test driver uses it directly; the stream runtime wraps
 * it: decode consumed records, submit() them, produce the outputs, and commit an offset once every
 * record below it has settled.
 *
 * Semantics (those of a Kafka Streams task, plus the async step):
 * - each record goes depth-first through the graph, successors in declaration order, so the
 *   outputs of one record come out in a deterministic order;
 * - when the topology is per-key ordered (Topology.perKeyOrdered), the records of one key go
 *   through the WHOLE graph one after another (a "lane" per key), whatever source topic they come
 *   from: a join therefore sees what toTable() wrote for the previous record of the key, and a
 *   process() step never runs two records of a key at once, nor out of order. Different keys run
 *   concurrently;
 * - process() calls are bounded per node by a FIFO semaphore (`concurrency`);
 * - what each node outputs can be observed as RxJS streams (observe(), events$, outputs$): free
 *   while nobody subscribes (engine/observe.ts).
 * Bounding how many records are submitted (backpressure) is the caller's job: see stats().
 */
import { from, map, merge, mergeMap, of, catchError, type Observable } from 'rxjs';
import { TopologyClosedError, TopologyUnknownTopicError } from '../../core/errors.ts';
import type { ConsumedRecord, ProduceRecord } from '../../core/records.ts';
import type { StoreProvider } from '../../state/store.ts';
import type { RecordContext, SinkNode, SourceNode } from '../model.ts';
import type { Topology } from '../dsl.ts';
import { compileTopology, type Exec } from './compile.ts';
import { asTagstreamError } from './failures.ts';
import { KeyedLanes } from './lanes.ts';
import { NodeObservers, type NodeEvent } from './observe.ts';
import { ProcessStep } from './process.ts';
import type { EngineStats, InputRecord, OutputRecord, ProcessedRecord, ProcessStepStats } from './records.ts';

export interface EngineOptions {
  stores: StoreProvider;
}

export class TopologyEngine {
  private readonly compiled: Map<string, Exec>;
  private readonly sourcesByTopic = new Map<string, SourceNode>();
  private readonly steps = new Map<string, ProcessStep>();
  private readonly lanes = new KeyedLanes();
  private readonly observers = new NodeObservers();
  /** Signals of running process() calls that were created (lazily, on first use), for close(). */
  private readonly controllers = new Set<AbortController>();
  /** Submitted records not settled yet, and who waits for none to be left (idle()). */
  private pending = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly onSettled = (): void => {
    this.pending -= 1;
    if (this.pending === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  };
  private readonly perKeyOrdered: boolean;
  private readonly sinks = new Map<string, SinkNode>();
  private closed = false;

  constructor(
    readonly topology: Topology,
    options: EngineOptions,
  ) {
    // A built topology does not change: computed once instead of per record.
    this.perKeyOrdered = topology.perKeyOrdered;
    const shared = { controllers: this.controllers, isClosed: () => this.closed };
    for (const node of topology.nodes.values()) {
      if (node.type === 'source') this.sourcesByTopic.set(node.topic, node);
      if (node.type === 'sink') this.sinks.set(node.name, node);
      if (node.kind === 'process') this.steps.set(node.name, new ProcessStep(node, shared));
    }
    this.compiled = compileTopology(topology, { stores: options.stores, steps: this.steps, observers: this.observers });
  }

  /**
   * Processes one record; resolves with its outputs once it went through the whole graph, or
   * rejects with a TagstreamError naming the failing node. Store writes are visible at once.
   */
  submit(record: InputRecord): Promise<OutputRecord[]> {
    return this.enqueue(record, identity);
  }

  /** submit() whose result goes through `finish` in the same promise step (handle(): encoding). */
  private enqueue<T>(record: InputRecord, finish: (outputs: OutputRecord[]) => T): Promise<T> {
    if (this.closed) {
      return Promise.reject(new TopologyClosedError({ topic: record.topic }));
    }
    const source = this.sourcesByTopic.get(record.topic);
    if (source === undefined) {
      return Promise.reject(new TopologyUnknownTopicError(record.topic, { sources: [...this.sourcesByTopic.keys()] }));
    }
    const exec = this.compiled.get(source.name) as Exec;
    const ctx: RecordContext = {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      key: record.key,
    };
    const task = (): Promise<T> => {
      const out: OutputRecord[] = [];
      let pending: Promise<void> | void;
      try {
        pending = exec(record.value, ctx, out);
        // Settles as early as a synchronous failure would: completion order stays submission order.
        if (pending === undefined) return Promise.resolve(finish(out));
      } catch (err) {
        return Promise.reject(err);
      }
      return pending.then(() => finish(out));
    };
    this.pending += 1;
    if (this.perKeyOrdered) return this.lanes.run(record.key, task, this.onSettled);
    const run = task();
    run.then(this.onSettled, this.onSettled);
    return run;
  }

  /**
   * Batch face of submit(): every input record yields one ProcessedRecord when it settles (in
   * completion order, per-key order kept). Failures are reported in `error` instead of ending the
   * stream, so the caller can route them (dead letters) and keep going. The source is subscribed
   * eagerly: bound it upstream.
   */
  run(input$: Observable<InputRecord>): Observable<ProcessedRecord> {
    return input$.pipe(
      mergeMap((input) =>
        from(this.submit(input)).pipe(
          map((outputs): ProcessedRecord => ({ input, outputs })),
          catchError((err: unknown) => of<ProcessedRecord>({ input, outputs: [], error: asTagstreamError(err) })),
        ),
      ),
    );
  }

  /**
   * What node `name` outputs (forwards to its successors; for a sink, produces), as it happens, in
   * processing order (so in order per key). Throws ERR_TOPOLOGY_INVALID for an unknown node.
   * Subscribers run synchronously on the record's path: keep them cheap; an error they throw does
   * not fail the record (RxJS reports it as unhandled).
   */
  observe(name: string): Observable<NodeEvent> {
    this.topology.node(name);
    return this.observers.observe(name);
  }

  /** What every node outputs, interleaved in processing order. */
  get events$(): Observable<NodeEvent> {
    return this.observers.all$();
  }

  /**
   * What the sinks produce, as OutputRecords, when they produce it. Unlike submit()'s result, it
   * includes the outputs of a record that fails further down the graph.
   */
  get outputs$(): Observable<OutputRecord> {
    const perSink = [...this.sinks.values()].map((sink) =>
      this.observers.observe(sink.name).pipe(
        map((e): OutputRecord => ({
          topic: sink.topic,
          key: e.key,
          value: e.value,
          sink: sink.name,
          ...(sink.table === undefined ? {} : { partition: e.partition }),
        })),
      ),
    );
    return merge(...perSink);
  }

  /** Nodes observed right now (those with a Subject), and whether events$ has subscribers. */
  observed(): { nodes: string[]; all: boolean } {
    return this.observers.observed();
  }

  /** Decodes a consumed record with its source's serde (throws ERR_INVALID_INPUT when malformed). */
  decode(record: ConsumedRecord): InputRecord {
    const source = this.sourcesByTopic.get(record.topic);
    if (source === undefined) {
      throw new TopologyUnknownTopicError(record.topic);
    }
    return {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      key: record.key === null ? null : record.key.toString('utf8'),
      value: source.serde.deserialize(record.value),
      timestamp: record.timestamp,
    };
  }

  /** Encodes an output with its sink's serde, ready for KafkaProducer.send(). */
  encode(output: OutputRecord): ProduceRecord {
    const serde = (this.sinks.get(output.sink) ?? (this.topology.node(output.sink) as SinkNode)).serde;
    const value = serde.serialize(output.value);
    return output.partition === undefined
      ? { topic: output.topic, key: output.key, value }
      : { topic: output.topic, key: output.key, value, partition: output.partition };
  }

  /**
   * The whole round trip of a consumed record: decode, process, encode. Shaped to be a runner's
   * record handler; malformed input rejects with ERR_INVALID_INPUT (for the events DLQ).
   */
  handle(record: ConsumedRecord): Promise<ProduceRecord[]> {
    let input: InputRecord;
    try {
      input = this.decode(record);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue(input, this.encodeAll);
  }

  private readonly encodeAll = (outputs: OutputRecord[]): ProduceRecord[] => {
    const encoded = new Array<ProduceRecord>(outputs.length);
    for (let i = 0; i < outputs.length; i += 1) encoded[i] = this.encode(outputs[i] as OutputRecord);
    return encoded;
  };

  stats(): EngineStats {
    const process: Record<string, ProcessStepStats> = {};
    for (const [name, step] of this.steps) process[name] = step.stats();
    return { pending: this.pending, activeKeys: this.lanes.size, process };
  }

  /** Resolves when every submitted record has settled. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new records, aborts the signal of running process() calls, completes observers. */
  close(): void {
    this.closed = true;
    for (const c of this.controllers) c.abort(new TopologyClosedError());
    this.observers.complete();
  }
}

function identity<T>(value: T): T {
  return value;
}
