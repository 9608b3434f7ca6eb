/**
 * Executes a built Topology in process, on RxJS. The test driver uses it directly; the Kafka-backed
 * runner is meant to wrap it: decode consumed records, submit() them, produce the outputs, and
 * commit an offset once every record below it has settled.
 *
 * Semantics (those of a Kafka Streams task, plus the async step):
 * - each record goes depth-first through the graph, successors in declaration order, so the
 *   outputs of one record come out in a deterministic order;
 * - when the topology is per-key ordered (Topology.perKeyOrdered), the records of one key go
 *   through the WHOLE graph one after another (a "lane" per key): a join therefore sees what
 *   toTable() wrote for the previous record of the key, and a process() step never runs two
 *   records of a key at once, nor out of order. Different keys run concurrently;
 * - process() calls are bounded per node by a FIFO semaphore (`concurrency`).
 * Bounding how many records are submitted (backpressure) is the caller's job: see stats().
 */
import { from, map, mergeMap, of, catchError, type Observable } from 'rxjs';
import { TagstreamError, TopologyClosedError, TopologyNodeFailedError, TopologyNullKeyError, TopologyProcessTimeoutError, TopologyUnknownTopicError } from '../core/errors.ts';
import type { ConsumedRecord, ProduceRecord } from '../core/records.ts';
import type { KeyValueStore, StoreProvider } from '../state/store.ts';
import type { ProcessContext, ProcessorNode, RecordContext, RecordKey, SinkNode, SourceNode, Topology, TopologyNode } from './dsl.ts';

export interface InputRecord<V = unknown> {
  topic: string;
  partition: number;
  offset: number;
  key: RecordKey;
  value: V;
  /** Milliseconds since the epoch. */
  timestamp: number;
}

export interface OutputRecord {
  topic: string;
  key: RecordKey;
  value: unknown;
  /** The sink node that emitted it. */
  sink: string;
  /**
   * Set for a table's changelog (toTable): the partition of the input record, so the changelog
   * record lands in the partition of the store that holds it, whatever the producer's partitioner.
   */
  partition?: number;
}

export interface ProcessedRecord {
  input: InputRecord;
  outputs: OutputRecord[];
  /** Set when processing failed (then `outputs` is empty: no partial output is reported). */
  error?: TagstreamError;
}

export interface ProcessStepStats {
  active: number;
  waiting: number;
  /** Highest `active` seen since the engine started. */
  maxActive: number;
}

export interface EngineStats {
  /** Submitted records not settled yet (running, or waiting for their key's lane). */
  pending: number;
  /** Keys with at least one pending record (0 when idle: idle keys cost nothing). */
  activeKeys: number;
  process: Record<string, ProcessStepStats>;
}

export interface EngineOptions {
  stores: StoreProvider;
}

/**
 * A compiled node: pushes the outputs of `value` (depth-first, successors in declaration order) into
 * `out`; returns a promise only when an async process() step is on the path, so a record that needs
 * no async work goes through the whole graph synchronously. (Composing RxJS Observables per record
 * did the same but halved the runner's throughput: bench/framework-overhead.ts, docs/processor.md.)
 */
type Exec = (value: unknown, ctx: RecordContext, out: OutputRecord[]) => Promise<void> | void;

/** Runs `steps` one after another; stays synchronous until one of them returns a promise. */
function sequence(steps: readonly (() => Promise<void> | void)[], from = 0): Promise<void> | void {
  for (let i = from; i < steps.length; i += 1) {
    const pending = (steps[i] as () => Promise<void> | void)();
    if (pending !== undefined) return pending.then(() => sequence(steps, i + 1));
  }
  return undefined;
}

/** FIFO counting semaphore: a released permit goes straight to the oldest waiter. */
class Semaphore {
  active = 0;
  maxActive = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes a permit at once if one is free (no promise: the common case on the hot path). */
  tryAcquire(): boolean {
    if (this.active >= this.limit) return false;
    this.active += 1;
    if (this.active > this.maxActive) this.maxActive = this.active;
    return true;
  }

  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active -= 1;
  }
}

/** One promise chain per key; an entry disappears when its chain drains, so idle users cost nothing. */
class KeyedLanes {
  private readonly tails = new Map<string, Promise<void>>();

  /** `settled` runs once the task settled (whatever the outcome), after the lane moved on. */
  run<T>(key: RecordKey, task: () => Promise<T>, settled: () => void): Promise<T> {
    if (key === null) {
      const result = task();
      result.then(settled, settled);
      return result;
    }
    const previous = this.tails.get(key);
    // An idle key (the usual case when the caller already orders per key) starts at once.
    const result = previous === undefined ? task() : previous.then(task);
    const tail: Promise<void> = result.then(
      () => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
        settled();
      },
      () => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
        settled();
      },
    );
    this.tails.set(key, tail);
    return result;
  }

  get size(): number {
    return this.tails.size;
  }
}

export class TopologyEngine {
  private readonly compiled = new Map<string, Exec>();
  private readonly sourcesByTopic = new Map<string, SourceNode>();
  private readonly semaphores = new Map<string, Semaphore>();
  private readonly lanes = new KeyedLanes();
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
  private readonly sinkSerdes = new Map<string, SinkNode['serde']>();
  private closed = false;

  constructor(
    readonly topology: Topology,
    private readonly options: EngineOptions,
  ) {
    // A built topology does not change: computed once instead of per record.
    this.perKeyOrdered = topology.perKeyOrdered;
    for (const node of topology.nodes.values()) {
      if (node.type === 'source') this.sourcesByTopic.set(node.topic, node);
      if (node.type === 'sink') this.sinkSerdes.set(node.name, node.serde);
      if (node.type === 'processor' && node.kind === 'process') {
        this.semaphores.set(node.name, new Semaphore(node.options.concurrency));
      }
    }
    for (const node of topology.nodes.values()) this.compile(node.name);
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
      return Promise.reject(
        new TopologyUnknownTopicError(record.topic, { sources: [...this.sourcesByTopic.keys()] }),
      );
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
   * The RxJS face: every input record yields one ProcessedRecord when it settles (in completion
   * order, per-key order kept). Failures are reported in `error` instead of ending the stream, so
   * the caller can route them (dead letters) and keep going. The source is subscribed eagerly:
   * bound it upstream.
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
    const serde = this.sinkSerdes.get(output.sink) ?? (this.topology.node(output.sink) as SinkNode).serde;
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
    for (const [name, s] of this.semaphores) process[name] = { active: s.active, waiting: s.waiting, maxActive: s.maxActive };
    return { pending: this.pending, activeKeys: this.lanes.size, process };
  }

  /** Resolves when every submitted record has settled. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new records and aborts the signal of running process() calls. */
  close(): void {
    this.closed = true;
    for (const c of this.controllers) c.abort(new TopologyClosedError());
  }

  private compile(name: string): Exec {
    const existing = this.compiled.get(name);
    if (existing) return existing;
    const node = this.topology.node(name);
    const children = node.successors.map((s) => this.compile(s));
    const next: Exec =
      children.length === 0
        ? () => undefined
        : children.length === 1
          ? (children[0] as Exec)
          : (value, ctx, out) => sequence(children.map((child) => () => child(value, ctx, out)));
    const exec = this.execFor(node, next, children);
    this.compiled.set(name, exec);
    return exec;
  }

  private execFor(node: TopologyNode, next: Exec, children: readonly Exec[]): Exec {
    if (node.type === 'source') return next;
    if (node.type === 'sink') {
      return (value, ctx, out) => {
        out.push({
          topic: node.topic,
          key: ctx.key,
          value,
          sink: node.name,
          ...(node.table === undefined ? {} : { partition: ctx.partition }),
        });
      };
    }
    const guard = <T>(ctx: RecordContext, fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        throw nodeError(node.name, ctx, err);
      }
    };
    switch (node.kind) {
      case 'map-values':
        return (value, ctx, out) => next(guard(ctx, () => node.fn(value, ctx)), ctx, out);
      case 'flat-map-values':
        return (value, ctx, out) => {
          const values = guard(ctx, () => [...node.fn(value, ctx)]);
          return values.length === 0 ? undefined : sequence(values.map((v) => () => next(v, ctx, out)));
        };
      case 'filter':
        return (value, ctx, out) => (guard(ctx, () => node.predicate(value, ctx)) ? next(value, ctx, out) : undefined);
      case 'branch':
        return (value, ctx, out) => {
          const i = guard(ctx, () => node.predicates.findIndex((p) => p(value, ctx)));
          return i < 0 ? undefined : (children[i] as Exec)(value, ctx, out);
        };
      case 'branch-child':
        return next;
      case 'table-source':
        return (value, ctx, out) => {
          // Kafka drops null-key records for tables too: no key, nothing to address.
          if (ctx.key === null) return undefined;
          const store = this.store(node.store, ctx);
          if (value === null) store.delete(ctx.key);
          else store.put(ctx.key, value);
          return next(value, ctx, out);
        };
      case 'left-join':
        return (value, ctx, out) => {
          const tableValue = ctx.key === null ? null : (this.store(node.store, ctx).get(ctx.key) ?? null);
          return next(guard(ctx, () => node.joiner(value, tableValue, ctx)), ctx, out);
        };
      case 'to-table':
        return (value, ctx, out) => {
          if (ctx.key === null) {
            throw new TopologyNullKeyError(node.name, node.store, {
              topic: ctx.topic,
              partition: ctx.partition,
              offset: ctx.offset,
            });
          }
          const store = this.store(node.store, ctx);
          if (value === null || value === undefined) store.delete(ctx.key);
          else store.put(ctx.key, value);
          return next(value ?? null, ctx, out);
        };
      case 'process':
        return (value, ctx, out) => this.runProcess(node, value, ctx, (result) => next(result, ctx, out));
    }
  }

  private store(name: string, ctx: RecordContext): KeyValueStore<unknown> {
    return this.options.stores.store(name, ctx.partition);
  }

  /** Runs a process() step, then `then` with its result (in the same promise step: one promise less per record). */
  private runProcess(node: Extract<ProcessorNode, { kind: 'process' }>, value: unknown, ctx: RecordContext, then: (result: unknown) => Promise<void> | void): Promise<void> {
    const semaphore = this.semaphores.get(node.name) as Semaphore;
    if (semaphore.tryAcquire()) return this.callProcess(node, semaphore, value, ctx, then);
    return semaphore.acquire().then(() => this.callProcess(node, semaphore, value, ctx, then));
  }

  /**
   * Calls a process() step holding a permit of `semaphore`. Its signal (an AbortController per
   * call) is created only if the step reads `ctx.signal` or a timeout needs it: most steps of the
   * hot path never do, and an AbortController per record was a visible share of the per-record CPU.
   */
  private callProcess(
    node: Extract<ProcessorNode, { kind: 'process' }>,
    semaphore: Semaphore,
    value: unknown,
    ctx: RecordContext,
    then: (result: unknown) => Promise<void> | void,
  ): Promise<void> {
    let controller: AbortController | undefined;
    const controllers = this.controllers;
    const signalOf = (): AbortController => {
      if (controller === undefined) {
        controller = new AbortController();
        controllers.add(controller);
        // Created after close(): the step must still see that the engine is closed.
        if (this.closed) controller.abort(new TopologyClosedError());
      }
      return controller;
    };
    const pctx: ProcessContext = {
      topic: ctx.topic,
      partition: ctx.partition,
      offset: ctx.offset,
      timestamp: ctx.timestamp,
      key: ctx.key,
      node: node.name,
      get signal(): AbortSignal {
        return signalOf().signal;
      },
    };
    let call: Promise<unknown>;
    try {
      call = Promise.resolve(node.fn(value, pctx));
    } catch (err) {
      call = Promise.reject(err);
    }
    // The permit is held until the call really settles, even after a timeout: the concurrency bound
    // is about work actually running, and an aborted call may take a moment to stop.
    const release = (): void => {
      if (controller !== undefined) controllers.delete(controller);
      semaphore.release();
    };
    const timeoutMs = node.options.timeoutMs;
    if (timeoutMs === undefined) {
      // A failure of `then` (a downstream node) is that node's, not this step's: not caught here.
      return call.then(
        (result) => {
          release();
          return then(result);
        },
        (err: unknown) => {
          release();
          throw nodeError(node.name, ctx, err);
        },
      );
    }
    call.then(release, release);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new TopologyProcessTimeoutError(node.name, timeoutMs, { topic: ctx.topic, partition: ctx.partition, offset: ctx.offset });
        // Reject first: a call that settles on abort must not win the race.
        reject(err);
        signalOf().abort(err);
      }, timeoutMs);
    });
    return Promise.race([call, timeout]).then(
      (result) => {
        clearTimeout(timer);
        return then(result);
      },
      (err: unknown) => {
        clearTimeout(timer);
        throw nodeError(node.name, ctx, err);
      },
    );
  }
}

function identity<T>(value: T): T {
  return value;
}

function asTagstreamError(err: unknown): TagstreamError {
  if (err instanceof TagstreamError) return err;
  return new TopologyNodeFailedError(err instanceof Error ? err.message : String(err), {}, { cause: err });
}

/** Wraps a user function's failure with where it happened (keys are user ids: not logged here). */
function nodeError(node: string, ctx: RecordContext, err: unknown): TagstreamError {
  if (err instanceof TagstreamError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TopologyNodeFailedError(
    `node "${node}" failed: ${message}`,
    { node, topic: ctx.topic, partition: ctx.partition, offset: ctx.offset },
    { cause: err },
  );
}
