/**
 * The topology DSL. Like Kafka Streams' StreamsBuilder, calls only record nodes; nothing runs and
 * no broker is needed until an engine (topology/engine.ts) executes the built Topology. Keeping the
 * topology as data is what lets `describe()`, validation and the CLI work offline.
 */
import { TopologyInvalidError } from '../core/errors.ts';
import { jsonSerde, type Serde } from './serde.ts';
import { TopologyDescription, describeTopology } from './describe.ts';

/** Record keys are strings (the userId) or null; the DSL never re-keys, so a key is stable end to end. */
export type RecordKey = string | null;

/** Where the record being processed came from. Offsets follow Kafka (per topic-partition). */
export interface RecordContext {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: RecordKey;
}

export interface ProcessContext extends RecordContext {
  /** The process() node running. */
  readonly node: string;
  /** Aborted when the step's `timeoutMs` elapses or the engine is closed. */
  readonly signal: AbortSignal;
}

export interface Named {
  /** Node name; default a generated Kafka-style name (PREFIX-0000000007). */
  name?: string;
}

export interface ProcessOptions {
  /** Upper bound of simultaneous calls of this step, across keys and partitions. Default 1. */
  concurrency?: number;
  /**
   * Default true: two records with the same key never run at the same time and run in offset order.
   * The engine enforces it over the whole topology (per-key lanes), which is what makes a join before
   * this step see the table value written by the previous record of the key.
   */
  perKeyOrder?: boolean;
  /** A call that takes longer fails with ERR_TOPOLOGY_PROCESS_TIMEOUT and its signal is aborted. */
  timeoutMs?: number;
}

export type NodeType = 'source' | 'processor' | 'sink';

export type NodeKind =
  | 'source'
  | 'table-source'
  | 'map-values'
  | 'flat-map-values'
  | 'filter'
  | 'branch'
  | 'branch-child'
  | 'left-join'
  | 'process'
  | 'to-table'
  | 'sink';

type ValueFn = (value: unknown, ctx: RecordContext) => unknown;
type PredicateFn = (value: unknown, ctx: RecordContext) => boolean;
type JoinFn = (value: unknown, tableValue: unknown, ctx: RecordContext) => unknown;
type ProcessFn = (value: unknown, ctx: ProcessContext) => Promise<unknown>;

interface NodeCommon {
  readonly name: string;
  /** Declaration order; keeps builds deterministic. */
  readonly order: number;
  readonly successors: string[];
  readonly predecessors: string[];
  readonly stores: readonly string[];
}

export interface SourceNode extends NodeCommon {
  readonly type: 'source';
  readonly kind: 'source';
  readonly topic: string;
  readonly serde: Serde<unknown>;
  /** Set when this source feeds a table (its topic is the table's changelog). */
  readonly table?: string;
}

export interface SinkNode extends NodeCommon {
  readonly type: 'sink';
  readonly kind: 'sink';
  readonly topic: string;
  readonly serde: Serde<unknown>;
  /** Set when the sink is the changelog of a table written by toTable(). */
  readonly table?: string;
}

export type ProcessorNode = NodeCommon & { readonly type: 'processor' } & (
    | { readonly kind: 'map-values'; readonly fn: ValueFn }
    | { readonly kind: 'flat-map-values'; readonly fn: (value: unknown, ctx: RecordContext) => Iterable<unknown> }
    | { readonly kind: 'filter'; readonly predicate: PredicateFn }
    | { readonly kind: 'branch'; readonly predicates: readonly PredicateFn[] }
    | { readonly kind: 'branch-child' }
    | { readonly kind: 'table-source'; readonly store: string }
    | { readonly kind: 'left-join'; readonly store: string; readonly joiner: JoinFn }
    | { readonly kind: 'process'; readonly fn: ProcessFn; readonly options: Required<Omit<ProcessOptions, 'timeoutMs'>> & { timeoutMs?: number } }
    | { readonly kind: 'to-table'; readonly store: string }
  );

export type TopologyNode = SourceNode | ProcessorNode | SinkNode;

/** A changelog-backed table: a key-value store per partition whose source of truth is `topic`. */
export interface StoreSpec {
  readonly name: string;
  readonly changelogTopic: string;
  readonly serde: Serde<unknown>;
}

const TOPIC_RE = /^[a-zA-Z0-9._-]{1,249}$/;
const NAME_RE = /^[^\s,[\]()]{1,249}$/;

function invalid(message: string, context: Record<string, unknown>): TopologyInvalidError {
  return new TopologyInvalidError(message, context);
}

/** Builds a topology. One builder builds one Topology; after build() it refuses changes. */
export class TopologyBuilder {
  /** @internal */ readonly nodes: TopologyNode[] = [];
  /** @internal */ readonly storeSpecs: StoreSpec[] = [];
  private counter = 0;
  private built = false;

  /** A record stream read from `topic` (values decoded with `serde`, JSON by default). */
  stream<V>(topic: string, options: Named & { serde?: Serde<V> } = {}): Stream<V> {
    const node = this.add<SourceNode>({
      type: 'source',
      kind: 'source',
      name: this.nameFor(options.name, 'KSTREAM-SOURCE'),
      topic,
      serde: (options.serde ?? jsonSerde<V>()) as Serde<unknown>,
      stores: [],
    });
    return new Stream<V>(this, node.name);
  }

  /**
   * A table materialized in store `storeName` (one store per partition) from the compacted topic
   * `topic`, which is also the store's changelog. Described as Kafka does: a source and a
   * KTABLE-SOURCE processor that owns the store.
   */
  table<V>(topic: string, storeName: string, options: Named & { serde?: Serde<V> } = {}): Table<V> {
    const serde = (options.serde ?? jsonSerde<V>()) as Serde<unknown>;
    const source = this.add<SourceNode>({
      type: 'source',
      kind: 'source',
      name: this.nameFor(undefined, 'KSTREAM-SOURCE'),
      topic,
      serde,
      table: storeName,
      stores: [],
    });
    const tableNode = this.add<ProcessorNode>({
      type: 'processor',
      kind: 'table-source',
      name: this.nameFor(options.name, 'KTABLE-SOURCE'),
      store: storeName,
      stores: [storeName],
    });
    this.link(source.name, tableNode.name);
    this.storeSpecs.push({ name: storeName, changelogTopic: topic, serde });
    return new Table<V>(this, topic, storeName, tableNode.name, serde as Serde<V>);
  }

  /** Validates and freezes the topology. Throws ERR_TOPOLOGY_INVALID listing every problem. */
  build(): Topology {
    this.built = true;
    const problems = validate(this.nodes, this.storeSpecs);
    if (problems.length > 0) {
      throw invalid(`invalid topology: ${problems.join('; ')}`, { problems });
    }
    return new Topology(this.nodes, this.storeSpecs);
  }

  /** @internal */
  add<N extends TopologyNode>(node: DistributiveOmit<N, 'order' | 'successors' | 'predecessors'>): N {
    if (this.built) {
      throw invalid('the topology was already built; create a new TopologyBuilder', { node: node.name });
    }
    const full = { ...node, order: this.nodes.length, successors: [], predecessors: [] } as unknown as N;
    this.nodes.push(full);
    return full;
  }

  /** @internal */
  link(from: string, to: string): void {
    const a = this.nodes.find((n) => n.name === from);
    const b = this.nodes.find((n) => n.name === to);
    if (!a || !b) throw invalid(`cannot link ${from} to ${to}: unknown node`, { from, to });
    a.successors.push(to);
    b.predecessors.push(from);
  }

  /** @internal Kafka's scheme: only generated names consume an index, zero-padded to 10 digits. */
  nameFor(given: string | undefined, prefix: string): string {
    if (given !== undefined) return given;
    const name = `${prefix}-${String(this.counter).padStart(10, '0')}`;
    this.counter += 1;
    return name;
  }
}

export class Table<V> {
  /** @internal */
  constructor(
    readonly builder: TopologyBuilder,
    readonly topic: string,
    readonly storeName: string,
    /** The KTABLE-SOURCE node. */
    readonly nodeName: string,
    readonly serde: Serde<V>,
  ) {}
}

export class Stream<V> {
  /** @internal */
  constructor(
    private readonly builder: TopologyBuilder,
    /** The node whose output this stream is. */
    readonly nodeName: string,
  ) {}

  mapValues<R>(fn: (value: V, ctx: RecordContext) => R, options: Named = {}): Stream<R> {
    return this.then<R>({ kind: 'map-values', fn: fn as ValueFn }, options.name, 'KSTREAM-MAPVALUES');
  }

  /** Zero or more output records per input record, same key. */
  flatMapValues<R>(fn: (value: V, ctx: RecordContext) => Iterable<R>, options: Named = {}): Stream<R> {
    return this.then<R>(
      { kind: 'flat-map-values', fn: fn as (value: unknown, ctx: RecordContext) => Iterable<unknown> },
      options.name,
      'KSTREAM-FLATMAPVALUES',
    );
  }

  filter<S extends V>(predicate: (value: V, ctx: RecordContext) => value is S, options?: Named): Stream<S>;
  filter(predicate: (value: V, ctx: RecordContext) => boolean, options?: Named): Stream<V>;
  filter(predicate: (value: V, ctx: RecordContext) => boolean, options: Named = {}): Stream<V> {
    return this.then<V>({ kind: 'filter', predicate: predicate as PredicateFn }, options.name, 'KSTREAM-FILTER');
  }

  /**
   * Kafka's branch(): a record goes to the first branch whose predicate holds, and is dropped when
   * none does. With `name`, the branch node is `name` and its children `name-0`, `name-1`, …
   */
  branch(predicates: ReadonlyArray<(value: V, ctx: RecordContext) => boolean>, options: Named = {}): Stream<V>[] {
    if (predicates.length === 0) {
      throw invalid('branch() needs at least one predicate', { node: this.nodeName });
    }
    const parent = this.then<V>({ kind: 'branch', predicates: predicates as readonly PredicateFn[] }, options.name, 'KSTREAM-BRANCH');
    return predicates.map((_, i) =>
      parent.then<V>(
        { kind: 'branch-child' },
        options.name === undefined ? undefined : `${options.name}-${i}`,
        'KSTREAM-BRANCHCHILD',
      ),
    );
  }

  /**
   * Stream–table left join on the record key: `joiner` gets the table's current value for the key,
   * or null. The table must be co-partitioned with this stream (checked at startup by the runner).
   */
  leftJoin<T, R>(
    table: Table<T>,
    joiner: (value: V, tableValue: T | null, ctx: RecordContext) => R,
    options: Named = {},
  ): Stream<R> {
    this.sameBuilder(table);
    return this.then<R>(
      { kind: 'left-join', store: table.storeName, joiner: joiner as JoinFn, stores: [table.storeName] },
      options.name,
      'KSTREAM-LEFTJOIN',
    );
  }

  /** A slow asynchronous step (the browser executor): bounded concurrency, per-key order. */
  process<R>(name: string, fn: (value: V, ctx: ProcessContext) => Promise<R>, options: ProcessOptions = {}): Stream<R> {
    const resolved = {
      concurrency: options.concurrency ?? 1,
      perKeyOrder: options.perKeyOrder ?? true,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
    return this.then<R>({ kind: 'process', fn: fn as ProcessFn, options: resolved }, name, 'KSTREAM-PROCESSOR');
  }

  /** Produces every record to `topic` (values encoded with `serde`, JSON by default). */
  to(topic: string, options: Named & { serde?: Serde<V> } = {}): void {
    const sink = this.builder.add<SinkNode>({
      type: 'sink',
      kind: 'sink',
      name: this.builder.nameFor(options.name, 'KSTREAM-SINK'),
      topic,
      serde: (options.serde ?? jsonSerde<V>()) as Serde<unknown>,
      stores: [],
    });
    this.builder.link(this.nodeName, sink.name);
  }

  /**
   * Writes each record into the table's store (null deletes) before the next record of the key is
   * processed (read-your-writes), and produces it to the table's changelog topic, which stays the
   * source of truth on restore. Described as a KSTREAM-TOTABLE processor and a sink.
   */
  toTable(table: Table<V>, options: Named = {}): void {
    this.sameBuilder(table);
    const writer = this.then<V>(
      { kind: 'to-table', store: table.storeName, stores: [table.storeName] },
      options.name,
      'KSTREAM-TOTABLE',
    );
    const sink = this.builder.add<SinkNode>({
      type: 'sink',
      kind: 'sink',
      name: this.builder.nameFor(undefined, 'KSTREAM-SINK'),
      topic: table.topic,
      serde: table.serde as Serde<unknown>,
      table: table.storeName,
      stores: [],
    });
    this.builder.link(writer.nodeName, sink.name);
  }

  /** @internal */
  then<R>(spec: DistributiveOmit<ProcessorNode, keyof NodeCommon | 'type'> & { stores?: readonly string[] }, given: string | undefined, prefix: string): Stream<R> {
    const node = this.builder.add<ProcessorNode>({
      stores: [],
      ...spec,
      type: 'processor',
      name: this.builder.nameFor(given, prefix),
    } as DistributiveOmit<ProcessorNode, 'order' | 'successors' | 'predecessors'>);
    this.builder.link(this.nodeName, node.name);
    return new Stream<R>(this.builder, node.name);
  }

  private sameBuilder(table: Table<unknown>): void {
    if (table.builder !== this.builder) {
      throw invalid(`table "${table.storeName}" belongs to another TopologyBuilder`, { store: table.storeName });
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A built, validated topology: immutable data plus what the runner needs to wire it to Kafka. */
export class Topology {
  readonly nodes: ReadonlyMap<string, TopologyNode>;
  readonly stores: readonly StoreSpec[];

  /** @internal */
  constructor(nodes: readonly TopologyNode[], stores: readonly StoreSpec[]) {
    this.nodes = new Map(nodes.map((n) => [n.name, n]));
    this.stores = [...stores];
  }

  node(name: string): TopologyNode {
    const node = this.nodes.get(name);
    if (!node) throw invalid(`unknown node "${name}"`, { node: name });
    return node;
  }

  /** Topics read as record streams (what the consumer group subscribes to). */
  get streamTopics(): string[] {
    return this.sources().filter((s) => s.table === undefined).map((s) => s.topic);
  }

  /** Every source topic, tables' changelogs included. */
  get sourceTopics(): string[] {
    return this.sources().map((s) => s.topic);
  }

  get sinkTopics(): string[] {
    const topics: string[] = [];
    for (const n of this.nodes.values()) if (n.type === 'sink' && !topics.includes(n.topic)) topics.push(n.topic);
    return topics;
  }

  /**
   * Topics that must have the same partition count, as Kafka Streams' copartition groups: a stream
   * and the changelog of every table it joins (directly or downstream).
   */
  get copartitionGroups(): string[][] {
    const groups: string[][] = [];
    for (const source of this.sources()) {
      if (source.table !== undefined) continue;
      const group = [source.topic];
      for (const name of this.reachable(source.name)) {
        const node = this.node(name);
        if (node.type === 'processor' && (node.kind === 'left-join' || node.kind === 'to-table')) {
          const topic = this.stores.find((s) => s.name === node.store)?.changelogTopic;
          if (topic !== undefined && !group.includes(topic)) group.push(topic);
        }
      }
      if (group.length > 1) groups.push(group);
    }
    return groups;
  }

  /** Whether the engine must serialize records per key (see ProcessOptions.perKeyOrder). */
  get perKeyOrdered(): boolean {
    for (const n of this.nodes.values()) {
      if (n.type !== 'processor') continue;
      if (n.kind === 'process' && n.options.perKeyOrder) return true;
      // A table both read and written by the stream needs read-your-writes per key.
      if (n.kind === 'to-table') return true;
    }
    return false;
  }

  describe(): TopologyDescription {
    return describeTopology(this);
  }

  private sources(): SourceNode[] {
    const out: SourceNode[] = [];
    for (const n of this.nodes.values()) if (n.type === 'source') out.push(n);
    return out;
  }

  private reachable(from: string): Set<string> {
    const seen = new Set<string>();
    const stack = [from];
    while (stack.length > 0) {
      const name = stack.pop() as string;
      if (seen.has(name)) continue;
      seen.add(name);
      stack.push(...this.node(name).successors);
    }
    return seen;
  }
}

function validate(nodes: readonly TopologyNode[], stores: readonly StoreSpec[]): string[] {
  const problems: string[] = [];
  if (nodes.length === 0) problems.push('the topology has no source');

  const seenNames = new Set<string>();
  for (const n of nodes) {
    if (seenNames.has(n.name)) problems.push(`duplicate node name "${n.name}"`);
    seenNames.add(n.name);
    if (!NAME_RE.test(n.name)) problems.push(`invalid node name "${n.name}" (no spaces, commas, brackets or parentheses)`);
  }

  const seenStores = new Set<string>();
  for (const s of stores) {
    if (seenStores.has(s.name)) problems.push(`duplicate store name "${s.name}"`);
    seenStores.add(s.name);
    if (!NAME_RE.test(s.name)) problems.push(`invalid store name "${s.name}"`);
  }

  const sourceTopics = new Map<string, string>();
  for (const n of nodes) {
    if (n.type === 'source' || n.type === 'sink') {
      if (!TOPIC_RE.test(n.topic) || n.topic === '.' || n.topic === '..') {
        problems.push(`node "${n.name}": invalid topic name "${n.topic}"`);
      }
    }
    if (n.type === 'source') {
      const other = sourceTopics.get(n.topic);
      // Kafka refuses it too: one record would be processed twice, possibly on different paths.
      if (other !== undefined) problems.push(`topic "${n.topic}" is read by two sources ("${other}" and "${n.name}")`);
      sourceTopics.set(n.topic, n.name);
    }
  }

  for (const n of nodes) {
    if (n.type === 'sink') {
      const source = nodes.find((s): s is SourceNode => s.type === 'source' && s.topic === n.topic);
      if (source !== undefined && n.table === undefined) {
        problems.push(
          source.table === undefined
            ? `sink "${n.name}" writes to "${n.topic}", which this topology reads: a loop`
            : `sink "${n.name}" writes to "${n.topic}", the changelog of table "${source.table}": use toTable() so the store sees the write`,
        );
      }
      continue;
    }
    if (n.type === 'processor' && n.kind === 'table-source') continue; // materializing the store is its output
    if (n.successors.length === 0) {
      problems.push(`node "${n.name}" is dangling: its output goes nowhere (end the stream with to() or toTable())`);
    }
    if (n.type === 'processor' && n.kind === 'process') {
      const { concurrency, timeoutMs } = n.options;
      if (!Number.isInteger(concurrency) || concurrency < 1) {
        problems.push(`process "${n.name}": concurrency must be an integer >= 1 (got ${concurrency})`);
      }
      if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
        problems.push(`process "${n.name}": timeoutMs must be > 0 (got ${timeoutMs})`);
      }
    }
  }
  return problems;
}

/** Entry point: `const b = topology(); b.stream(...)...; b.build()`. */
export function topology(): TopologyBuilder {
  return new TopologyBuilder();
}
