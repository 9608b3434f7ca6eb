/**
 * The topology DSL. Like Kafka Streams' StreamsBuilder, calls only record nodes; nothing runs and
 * no broker is needed until an engine (topology/engine.ts) executes the built Topology. Keeping the
 * topology as data (model.ts) is what lets `describe()`, validation and the CLI work offline.
 */
import { TopologyInvalidError } from '../core/errors.ts';
import { jsonSerde, type Serde } from './serde.ts';
import { TopologyDescription, describeTopology } from './describe.ts';
import { assertValidTopology } from './validate.ts';
import type {
  FlatValueFn,
  JoinFn,
  BranchOptions,
  Named,
  NodeCommon,
  PredicateFn,
  ProcessContext,
  ProcessFn,
  ProcessOptions,
  ProcessorNode,
  RecordContext,
  SinkNode,
  SinkOptions,
  SourceNode,
  StoreSpec,
  StoreUsage,
  StreamOptions,
  TableOptions,
  ToTableOptions,
  TopologyModel,
  TopologyNode,
  ValueFn,
} from './model.ts';

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
  stream<V>(topic: string, options: StreamOptions<V> = {}): Stream<V> {
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
   * `topic`, which is also the store's changelog. Described as Kafka does: a source (`sourceName`)
   * and a KTABLE-SOURCE processor (`name`) that owns the store.
   */
  table<V>(topic: string, storeName: string, options: TableOptions<V> = {}): Table<V> {
    const serde = (options.serde ?? jsonSerde<V>()) as Serde<unknown>;
    const source = this.add<SourceNode>({
      type: 'source',
      kind: 'source',
      name: this.nameFor(options.sourceName, 'KSTREAM-SOURCE'),
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
    assertValidTopology(this.nodes, this.storeSpecs);
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
    /** @internal */ readonly builder: TopologyBuilder,
    /** The node whose output this stream is. */
    readonly nodeName: string,
  ) {}

  mapValues<R>(fn: (value: V, ctx: RecordContext) => R, options: Named = {}): Stream<R> {
    return this.then<R>({ kind: 'map-values', fn: fn as ValueFn }, options.name, 'KSTREAM-MAPVALUES');
  }

  /** Zero or more output records per input record, same key. */
  flatMapValues<R>(fn: (value: V, ctx: RecordContext) => Iterable<R>, options: Named = {}): Stream<R> {
    return this.then<R>({ kind: 'flat-map-values', fn: fn as FlatValueFn }, options.name, 'KSTREAM-FLATMAPVALUES');
  }

  filter<S extends V>(predicate: (value: V, ctx: RecordContext) => value is S, options?: Named): Stream<S>;
  filter(predicate: (value: V, ctx: RecordContext) => boolean, options?: Named): Stream<V>;
  filter(predicate: (value: V, ctx: RecordContext) => boolean, options: Named = {}): Stream<V> {
    return this.then<V>({ kind: 'filter', predicate: predicate as PredicateFn }, options.name, 'KSTREAM-FILTER');
  }

  /**
   * Kafka's branch(): a record goes to the first branch whose predicate holds, and is dropped when
   * none does. With `name`, the branch node is `name` and its children `name-0`, `name-1`, …;
   * `childNames` names the children explicitly.
   */
  branch(predicates: ReadonlyArray<(value: V, ctx: RecordContext) => boolean>, options: BranchOptions = {}): Stream<V>[] {
    if (predicates.length === 0) {
      throw invalid('branch() needs at least one predicate', { node: this.nodeName });
    }
    const { childNames } = options;
    if (childNames !== undefined && childNames.length !== predicates.length) {
      throw invalid(`branch() got ${childNames.length} child names for ${predicates.length} predicates`, { node: options.name ?? this.nodeName });
    }
    const parent = this.then<V>({ kind: 'branch', predicates: predicates as readonly PredicateFn[] }, options.name, 'KSTREAM-BRANCH');
    return predicates.map((_, i) =>
      parent.then<V>(
        { kind: 'branch-child' },
        childNames?.[i] ?? (options.name === undefined ? undefined : `${options.name}-${i}`),
        'KSTREAM-BRANCHCHILD',
      ),
    );
  }

  /**
   * Kafka's merge(): the records of this stream and of `other` (e.g. a second source topic) flow
   * on as one stream. Records keep their own topic, partition and offset in the context.
   */
  merge(other: Stream<V>, options: Named = {}): Stream<V> {
    if (other.builder !== this.builder) {
      throw invalid(`stream "${other.nodeName}" belongs to another TopologyBuilder`, { node: other.nodeName });
    }
    if (other.nodeName === this.nodeName) {
      throw invalid(`cannot merge stream "${this.nodeName}" with itself: every record would be processed twice`, { node: this.nodeName });
    }
    const merged = this.then<V>({ kind: 'merge' }, options.name, 'KSTREAM-MERGE');
    this.builder.link(other.nodeName, merged.nodeName);
    return merged;
  }

  /**
   * Stream–table left join on the record key: `joiner` gets the table's current value for the key,
   * or null. The table must be co-partitioned with this stream (Topology#copartitionGroups; the
   * stream runtime checks it at start).
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

  /**
   * Produces every record to `topic` (values encoded with `serde`, JSON by default). A topic this
   * topology reads as a stream needs `loop: true` (a retry topic); a table's changelog needs toTable().
   */
  to(topic: string, options: SinkOptions<V> = {}): void {
    const sink = this.builder.add<SinkNode>({
      type: 'sink',
      kind: 'sink',
      name: this.builder.nameFor(options.name, 'KSTREAM-SINK'),
      topic,
      serde: (options.serde ?? jsonSerde<V>()) as Serde<unknown>,
      stores: [],
      ...(options.loop === true ? { loop: true } : {}),
    });
    this.builder.link(this.nodeName, sink.name);
  }

  /**
   * Writes each record into the table's store (null deletes) before the next record of the key is
   * processed (read-your-writes), and produces it to the table's changelog topic, which stays the
   * source of truth on restore. Described as a KSTREAM-TOTABLE processor (`name`) and a sink
   * (`sinkName`). Several toTable() of one table (e.g. from two branches) are fine. A stream of
   * nulls (tombstones, e.g. erasures) may write any table.
   */
  toTable<T>(this: Stream<T | null>, table: Table<T>, options: ToTableOptions = {}): void {
    this.sameBuilder(table);
    const writer = this.then<T | null>(
      { kind: 'to-table', store: table.storeName, stores: [table.storeName] },
      options.name,
      'KSTREAM-TOTABLE',
    );
    const sink = this.builder.add<SinkNode>({
      type: 'sink',
      kind: 'sink',
      name: this.builder.nameFor(options.sinkName, 'KSTREAM-SINK'),
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

/** A built, validated topology: immutable data plus what the stream runtime needs to wire it to Kafka. */
export class Topology implements TopologyModel {
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

  /** Store name → its changelog topic (what the runtime restores each store from). */
  get changelogTopics(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of this.stores) out[s.name] = s.changelogTopic;
    return out;
  }

  /** Topics that must be compacted: every store's changelog (a table keeps the last value per key). */
  get compactedTopics(): string[] {
    const topics: string[] = [];
    for (const s of this.stores) if (!topics.includes(s.changelogTopic)) topics.push(s.changelogTopic);
    return topics;
  }

  /** Every store with the nodes that read and write it (declaration order). */
  get storeUsage(): StoreUsage[] {
    const nodes = [...this.nodes.values()];
    return this.stores.map((spec) => {
      const source = nodes.find((n) => n.type === 'source' && n.table === spec.name);
      const tableNode = nodes.find((n) => n.kind === 'table-source' && n.stores.includes(spec.name));
      return {
        ...spec,
        sourceNode: source?.name ?? '',
        tableNode: tableNode?.name ?? '',
        readsFrom: nodes.filter((n) => n.kind === 'left-join' && n.stores.includes(spec.name)).map((n) => n.name),
        writtenBy: nodes.filter((n) => n.kind === 'to-table' && n.stores.includes(spec.name)).map((n) => n.name),
      };
    });
  }

  /**
   * Topics that must have the same partition count, as Kafka Streams' copartition groups: a stream
   * and the changelog of every table it joins or writes (directly or downstream). Two streams
   * reaching the same store, or the same per-key-ordered process() step (its order holds only if a
   * key's records of both topics reach the same task), are in one group.
   */
  get copartitionGroups(): string[][] {
    const groups: { topics: string[]; anchors: Set<string> }[] = [];
    for (const source of this.sources()) {
      if (source.table !== undefined) continue;
      const topics = [source.topic];
      const anchors = new Set<string>();
      for (const name of this.reachable(source.name)) {
        const node = this.node(name);
        if (node.kind === 'left-join' || node.kind === 'to-table') {
          const topic = this.stores.find((s) => s.name === node.store)?.changelogTopic;
          if (topic !== undefined && !topics.includes(topic)) topics.push(topic);
          anchors.add(`store:${node.store}`);
        } else if (node.kind === 'process' && node.options.perKeyOrder) {
          anchors.add(`process:${node.name}`);
        }
      }
      const merged = { topics, anchors };
      for (let i = groups.length - 1; i >= 0; i -= 1) {
        const group = groups[i] as (typeof groups)[number];
        if (![...group.anchors].some((a) => anchors.has(a))) continue;
        groups.splice(i, 1);
        merged.topics = [...group.topics, ...merged.topics.filter((t) => !group.topics.includes(t))];
        for (const a of group.anchors) merged.anchors.add(a);
      }
      groups.push(merged);
    }
    return groups.filter((g) => g.topics.length > 1).map((g) => g.topics);
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

/** Entry point: `const b = topology(); b.stream(...)...; b.build()`. */
export function topology(): TopologyBuilder {
  return new TopologyBuilder();
}
