/**
 * Executor metrics, registered once per prom-client registry: several executors in one process
 * (tests, CLI) that share a registry share them. The pool takes its registry in its options
 * (default: prom-client's default `register`, scraped with the rest of the process).
 * Partner ids are labels: their number is bounded by the operator's partner configuration.
 */
import { Counter, Histogram, register, type Registry } from 'prom-client';

export interface ExecutorMetrics {
  events: Counter<'result'>;
  outcomes: Counter<'partner' | 'status'>;
  captured: Counter<'partner'>;
  duration: Histogram<string>;
  browsersReplaced: Counter<string>;
  pagesRecycled: Counter<string>;
  terminations: Counter<string>;
  /** Jar entries the budget dropped; `where` is the cookie domain or localStorage origin, never a value. */
  jarDropped: Counter<'partner' | 'where' | 'kind' | 'limit'>;
}

const byRegistry = new WeakMap<Registry, ExecutorMetrics>();

/** The executor's metrics on `registry` (default: prom-client's default registry), made on first use. */
export function executorMetrics(registry: Registry = register): ExecutorMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: ExecutorMetrics = {
    events: new Counter({
      name: 'tagstream_executor_events_total',
      help: 'Events executed, by result (ok, retried, failed)',
      labelNames: ['result'],
      registers,
    }),
    outcomes: new Counter({
      name: 'tagstream_executor_partner_outcomes_total',
      help: 'Partner tag outcomes per event (ok, error, timeout, skipped)',
      labelNames: ['partner', 'status'],
      registers,
    }),
    captured: new Counter({
      name: 'tagstream_executor_captured_requests_total',
      help: 'Requests captured from partner tags',
      labelNames: ['partner'],
      registers,
    }),
    duration: new Histogram({
      name: 'tagstream_executor_event_duration_seconds',
      help: 'Wall time of one event in the executor, queueing included',
      buckets: [0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    browsersReplaced: new Counter({ name: 'tagstream_executor_browsers_replaced_total', help: 'Browsers lost and replaced', registers }),
    pagesRecycled: new Counter({ name: 'tagstream_executor_pages_recycled_total', help: 'Tabs replaced (uses reached, error, hang)', registers }),
    terminations: new Counter({
      name: 'tagstream_executor_script_terminations_total',
      help: 'Partner scripts terminated because they did not yield within their budget',
      registers,
    }),
    jarDropped: new Counter({
      name: 'tagstream_executor_jar_dropped_total',
      help: 'Jar entries dropped by the jar budget, by partner (empty: unattributed), cookie domain or origin, kind and limit',
      labelNames: ['partner', 'where', 'kind', 'limit'],
      registers,
    }),
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

const scriptChanges = new WeakMap<Registry, Counter<'host'>>();

/** The script cache's counter of changed partner scripts on `registry`, made on first use. */
export function scriptChangeCounter(registry: Registry = register): Counter<'host'> {
  let counter = scriptChanges.get(registry);
  if (!counter) {
    counter = new Counter({
      name: 'tagstream_executor_script_changes_total',
      help: 'Partner script versions that changed (new sha256 for a cached URL)',
      labelNames: ['host'],
      registers: [registry],
    });
    scriptChanges.set(registry, counter);
  }
  return counter;
}
