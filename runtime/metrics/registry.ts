/**
 * The process's one Prometheus registry. `run` (runtime/cli/commands/run.ts) creates it and passes
 * it to every role and to the HTTP endpoint, so GET /metrics shows every component of the process
 * and nothing lands on prom-client's global default registry (tests start several products in one
 * process, each with its own registry).
 *
 *   const registry = createProcessRegistry();   // Node defaults included: event loop lag, heap, GC
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

const withDefaults = new WeakSet<Registry>();

/**
 * prom-client's process metrics (CPU, resident memory, heap, event-loop lag, GC, handles) on
 * `registry`, once: a second collectDefaultMetrics on one registry throws on duplicate names.
 */
export function collectNodeDefaults(registry: Registry): Registry {
  if (!withDefaults.has(registry)) {
    collectDefaultMetrics({ register: registry });
    withDefaults.add(registry);
  }
  return registry;
}

/** A fresh registry with the Node defaults: one per process, created by the entry point. */
export function createProcessRegistry(): Registry {
  return collectNodeDefaults(new Registry());
}

/** The metric named `name` on `registry`, created by `create` the first time (one per registry). */
export function once<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}
