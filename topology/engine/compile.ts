/**
 * Compiles a topology's nodes into plain closures, once per engine. A compiled node pushes the
 * outputs of `value` (depth-first, successors in declaration order) into `out`, and returns a
 * promise only when an async process() step is on the path, so a record that needs no async work
 * goes through the whole graph synchronously. (Composing RxJS Observables per record did the same
 * but halved the runner's throughput: bench/framework-overhead.ts, docs/processor.md.)
 */
import { TopologyNullKeyError } from '../../core/errors.ts';
import type { KeyValueStore, StoreProvider } from '../../state/store.ts';
import type { RecordContext, TopologyModel, TopologyNode } from '../model.ts';
import { nodeError } from './failures.ts';
import type { NodeObservers, Tap } from './observe.ts';
import type { ProcessStep } from './process.ts';
import type { OutputRecord } from './records.ts';

export type Exec = (value: unknown, ctx: RecordContext, out: OutputRecord[]) => Promise<void> | void;

export interface CompileDeps {
  readonly stores: StoreProvider;
  readonly steps: ReadonlyMap<string, ProcessStep>;
  readonly observers: NodeObservers;
}

/** Runs `steps` one after another; stays synchronous until one of them returns a promise. */
function sequence(steps: readonly (() => Promise<void> | void)[], from = 0): Promise<void> | void {
  for (let i = from; i < steps.length; i += 1) {
    const pending = (steps[i] as () => Promise<void> | void)();
    if (pending !== undefined) return pending.then(() => sequence(steps, i + 1));
  }
  return undefined;
}

/** Every node's compiled closure, by node name. */
export function compileTopology(topology: TopologyModel, deps: CompileDeps): Map<string, Exec> {
  const compiled = new Map<string, Exec>();
  const compile = (name: string): Exec => {
    const existing = compiled.get(name);
    if (existing) return existing;
    const node = topology.node(name);
    const tap = deps.observers.tap(name);
    // What the node forwards passes its tap first: one flag read per record and node when unobserved.
    const children = node.successors.map((s) => tapped(deps.observers, tap, compile(s)));
    const next: Exec =
      node.successors.length === 0
        ? tapped(deps.observers, tap, () => undefined)
        : node.successors.length === 1
          ? (children[0] as Exec)
          : tapped(deps.observers, tap, untappedFanOut(node.successors.map((s) => compile(s))));
    const exec = execFor(node, next, children, tap, deps);
    compiled.set(name, exec);
    return exec;
  };
  for (const name of topology.nodes.keys()) compile(name);
  return compiled;
}

function tapped(observers: NodeObservers, tap: Tap, exec: Exec): Exec {
  return (value, ctx, out) => {
    if (tap.active) observers.emit(tap, value, ctx);
    return exec(value, ctx, out);
  };
}

function untappedFanOut(children: readonly Exec[]): Exec {
  return (value, ctx, out) => sequence(children.map((child) => () => child(value, ctx, out)));
}

function execFor(node: TopologyNode, next: Exec, children: readonly Exec[], tap: Tap, deps: CompileDeps): Exec {
  if (node.type === 'source') return next;
  if (node.type === 'sink') {
    const table = node.table;
    return (value, ctx, out) => {
      out.push({
        topic: node.topic,
        key: ctx.key,
        value,
        sink: node.name,
        ...(table === undefined ? {} : { partition: ctx.partition }),
      });
      if (tap.active) deps.observers.emit(tap, value, ctx);
    };
  }
  const guard = <T>(ctx: RecordContext, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw nodeError(node.name, ctx, err);
    }
  };
  const store = (name: string, ctx: RecordContext): KeyValueStore<unknown> => deps.stores.store(name, ctx.partition);
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
    case 'merge':
      return next;
    case 'table-source':
      return (value, ctx, out) => {
        // Kafka drops null-key records for tables too: no key, nothing to address.
        if (ctx.key === null) return undefined;
        const s = store(node.store, ctx);
        if (value === null) s.delete(ctx.key);
        else s.put(ctx.key, value);
        return next(value, ctx, out);
      };
    case 'left-join':
      return (value, ctx, out) => {
        const tableValue = ctx.key === null ? null : (store(node.store, ctx).get(ctx.key) ?? null);
        return next(guard(ctx, () => node.joiner(value, tableValue, ctx)), ctx, out);
      };
    case 'to-table':
      return (value, ctx, out) => {
        if (ctx.key === null) {
          throw new TopologyNullKeyError(node.name, node.store, { topic: ctx.topic, partition: ctx.partition, offset: ctx.offset });
        }
        const s = store(node.store, ctx);
        if (value === null || value === undefined) s.delete(ctx.key);
        else s.put(ctx.key, value);
        return next(value ?? null, ctx, out);
      };
    case 'process': {
      const step = deps.steps.get(node.name) as ProcessStep;
      return (value, ctx, out) => step.run(value, ctx, (result) => next(result, ctx, out));
    }
  }
}
