/**
 * The built topology as data: node and store types only, no behaviour. The DSL (dsl.ts) produces
 * these, validation (validate.ts), description (describe.ts) and the engine read them. Keeping the
 * types apart is what lets describe.ts and validate.ts work without importing the builder.
 */
import type { Serde } from './serde.ts';

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

/** Options of the DSL's operations: every node an operation creates can be named. */
export interface StreamOptions<V> extends Named {
  serde?: Serde<V>;
}

export interface TableOptions<V> extends Named {
  /** Name of the table's source node (the one reading the changelog); `name` names its KTABLE-SOURCE. */
  sourceName?: string;
  serde?: Serde<V>;
}

export interface ToTableOptions extends Named {
  /** Name of the sink producing to the table's changelog; `name` names the KSTREAM-TOTABLE node. */
  sinkName?: string;
}

export interface BranchOptions extends Named {
  /** One name per predicate for the branch children; default `<name>-<i>` when `name` is given. */
  childNames?: readonly string[];
}

export interface SinkOptions<V> extends Named {
  serde?: Serde<V>;
  /**
   * This sink writes, on purpose, to a stream topic the same topology reads (a retry topic whose
   * records come back later as new records). Without it such a sink is refused as a loop.
   */
  loop?: boolean;
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
  | 'merge'
  | 'left-join'
  | 'process'
  | 'to-table'
  | 'sink';

export type ValueFn = (value: unknown, ctx: RecordContext) => unknown;
export type FlatValueFn = (value: unknown, ctx: RecordContext) => Iterable<unknown>;
export type PredicateFn = (value: unknown, ctx: RecordContext) => boolean;
export type JoinFn = (value: unknown, tableValue: unknown, ctx: RecordContext) => unknown;
export type ProcessFn = (value: unknown, ctx: ProcessContext) => Promise<unknown>;

/** process() options once defaults are applied. */
export type ResolvedProcessOptions = Required<Omit<ProcessOptions, 'timeoutMs'>> & { timeoutMs?: number };

export interface NodeCommon {
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
  /** Writes to a stream topic of this topology on purpose (SinkOptions.loop). */
  readonly loop?: boolean;
}

export type ProcessorNode = NodeCommon & { readonly type: 'processor' } & (
    | { readonly kind: 'map-values'; readonly fn: ValueFn }
    | { readonly kind: 'flat-map-values'; readonly fn: FlatValueFn }
    | { readonly kind: 'filter'; readonly predicate: PredicateFn }
    | { readonly kind: 'branch'; readonly predicates: readonly PredicateFn[] }
    | { readonly kind: 'branch-child' }
    | { readonly kind: 'merge' }
    | { readonly kind: 'table-source'; readonly store: string }
    | { readonly kind: 'left-join'; readonly store: string; readonly joiner: JoinFn }
    | { readonly kind: 'process'; readonly fn: ProcessFn; readonly options: ResolvedProcessOptions }
    | { readonly kind: 'to-table'; readonly store: string }
  );

export type TopologyNode = SourceNode | ProcessorNode | SinkNode;

export type ProcessNode = Extract<ProcessorNode, { kind: 'process' }>;

/** A changelog-backed table: a key-value store per partition whose source of truth is `topic`. */
export interface StoreSpec {
  readonly name: string;
  readonly changelogTopic: string;
  readonly serde: Serde<unknown>;
}

/**
 * A store and who touches it, for the stream runtime: it restores `changelogTopic` into the store
 * (the changelog must be compacted), and the node names say which parts of the graph depend on it.
 */
export interface StoreUsage extends StoreSpec {
  /** The source node reading the changelog, and the KTABLE-SOURCE processor materializing it. */
  readonly sourceNode: string;
  readonly tableNode: string;
  /** Nodes that read from the store (left joins), in declaration order. */
  readonly readsFrom: readonly string[];
  /** Nodes that write it besides the table source (toTable()), in declaration order. */
  readonly writtenBy: readonly string[];
}

/**
 * What describe.ts needs of a built topology. Structural, so describe.ts depends on this file
 * only and the Topology class (dsl.ts) can call describeTopology(this) without an import cycle.
 */
export interface TopologyModel {
  readonly nodes: ReadonlyMap<string, TopologyNode>;
  readonly stores: readonly StoreSpec[];
  readonly streamTopics: string[];
  readonly sinkTopics: string[];
  readonly compactedTopics: string[];
  readonly copartitionGroups: string[][];
  readonly perKeyOrdered: boolean;
  node(name: string): TopologyNode;
}
