/**
 * Executor metrics, registered once per prom-client registry: several executors in one process
 * (tests, CLI) that share a registry share them. The pool takes its registry in its options
 * (default: prom-client's default `register`, scraped with the rest of the process).
 * Partner ids are labels: their number is bounded by the operator's partner configuration.
 */
import { Counter, Gauge, Histogram, register, type Registry } from 'prom-client';

export interface ExecutorMetrics {
  events: Counter<'result'>;
  outcomes: Counter<'partner' | 'status'>;
  /** By partner (empty: unattributed) and transport (image, fetch, xhr, beacon, script, iframe, form, other). */
  captured: Counter<'partner' | 'transport'>;
  /** Tabs of every pool on the registry, busy (running a page view) or idle. */
  tabs: Gauge<'state'>;
  /** Browsers connected, over every pool on the registry. */
  browsers: Gauge<string>;
  /** The pools the gauges read (a pool adds itself when it starts and leaves when it closes). */
  pools: Set<PoolGauges>;
  /** Partners whose outcome series exist (at 0 from the first event that names them). */
  partners: Set<string>;
  duration: Histogram<string>;
  browsersReplaced: Counter<string>;
  pagesRecycled: Counter<string>;
  terminations: Counter<string>;
  /** Sends taken in the page (inject/capture.js) instead of through Chromium's network stack. */
  inPageCaptured: Counter<'transport'>;
  /** Jar entries the budget dropped; `where` is the cookie domain or localStorage origin, never a value. */
  jarDropped: Counter<'partner' | 'where' | 'kind' | 'limit'>;
}

/** What the pool gauges read of a pool. */
export interface PoolGauges {
  stats(): { browsers: number; slots: number; idle: number };
}

const byRegistry = new WeakMap<Registry, ExecutorMetrics>();

/** The executor's metrics on `registry` (default: prom-client's default registry), made on first use. */
export function executorMetrics(registry: Registry = register): ExecutorMetrics {
  const known = byRegistry.get(registry);
  if (known) return known;
  const registers = [registry];
  const pools = new Set<PoolGauges>();
  const sum = (f: (s: ReturnType<PoolGauges['stats']>) => number): number => [...pools].reduce((n, p) => n + f(p.stats()), 0);
  const metrics: ExecutorMetrics = {
    pools,
    partners: new Set(),
    tabs: new Gauge({
      name: 'tagstream_executor_tabs',
      help: 'Browser tabs of the pool by state: busy (running a page view) or idle',
      labelNames: ['state'],
      registers,
      collect() {
        const idle = sum((s) => s.idle);
        this.set({ state: 'idle' }, idle);
        this.set({ state: 'busy' }, Math.max(0, sum((s) => s.slots) - idle));
      },
    }),
    browsers: new Gauge({
      name: 'tagstream_executor_browsers',
      help: 'Chromium processes of the pool that are connected',
      registers,
      collect() {
        this.set(sum((s) => s.browsers));
      },
    }),
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
      help: 'Requests captured from partner tags, by partner (empty: unattributed) and transport',
      labelNames: ['partner', 'transport'],
      registers,
    }),
    duration: new Histogram({
      name: 'tagstream_executor_event_duration_seconds',
      help: 'Wall time of one event in the executor, queueing included',
      buckets: [0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    browsersReplaced: new Counter({ name: 'tagstream_executor_browsers_replaced_total', help: 'Browser restarts: browsers lost (crashed, disconnected) and replaced', registers }),
    pagesRecycled: new Counter({ name: 'tagstream_executor_pages_recycled_total', help: 'Tab restarts: tabs replaced (uses reached, error, hang)', registers }),
    terminations: new Counter({
      name: 'tagstream_executor_script_terminations_total',
      help: 'Partner scripts terminated because they did not yield within their budget',
      registers,
    }),
    inPageCaptured: new Counter({
      name: 'tagstream_executor_in_page_captures_total',
      help: "Captured sends (fetch, beacon) taken in the page instead of through Chromium's network stack (executor.inPageCapture)",
      labelNames: ['transport'],
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

export interface ScriptCacheMetrics {
  /** Changed partner scripts (a new sha256 for a cached URL), by partner and host. */
  changes: Counter<'partner' | 'host'>;
  /** Lookups: hit (served from memory), miss (fetched), revalidated (304 from the origin), by partner. */
  lookups: Counter<'partner' | 'result'>;
}

const STATUSES = ['ok', 'error', 'timeout', 'skipped'] as const;

/**
 * Outcome series of `partners` at 0 from the first event that names them: Prometheus' rate() and
 * increase() ignore the first sample of a new series, so a partner's first error would otherwise
 * not count in an error-ratio alert.
 */
export function knowPartners(metrics: ExecutorMetrics, partners: readonly { id: string }[]): void {
  for (const p of partners) {
    if (metrics.partners.has(p.id) || metrics.partners.size >= 10_000) continue;
    metrics.partners.add(p.id);
    for (const status of STATUSES) metrics.outcomes.inc({ partner: p.id, status }, 0);
  }
}

const scriptCaches = new WeakMap<Registry, ScriptCacheMetrics>();

/** The script cache's metrics on `registry`, made on first use. */
export function scriptCacheMetrics(registry: Registry = register): ScriptCacheMetrics {
  let metrics = scriptCaches.get(registry);
  if (!metrics) {
    metrics = {
      changes: new Counter({
        name: 'tagstream_executor_script_changes_total',
        help: 'Partner script versions that changed (new sha256 for a cached URL), by partner (empty: no partner lists the URL) and host',
        labelNames: ['partner', 'host'],
        registers: [registry],
      }),
      lookups: new Counter({
        name: 'tagstream_executor_script_cache_total',
        help: 'Script cache lookups by partner and result: hit (from memory), miss (fetched), revalidated (304 from the origin)',
        labelNames: ['partner', 'result'],
        registers: [registry],
      }),
    };
    scriptCaches.set(registry, metrics);
  }
  return metrics;
}
