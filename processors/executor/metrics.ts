/**
 * Executor metrics on prom-client's default registry (scraped with the rest of the process).
 * Registered lazily and once: several executors in one process (tests, CLI) share them.
 * Partner ids are labels: their number is bounded by the operator's partner configuration.
 */
import { Counter, Histogram } from 'prom-client';

export interface ExecutorMetrics {
  events: Counter<'result'>;
  outcomes: Counter<'partner' | 'status'>;
  captured: Counter<'partner'>;
  duration: Histogram<string>;
  browsersReplaced: Counter<string>;
  pagesRecycled: Counter<string>;
  terminations: Counter<string>;
}

let metrics: ExecutorMetrics | undefined;

export function executorMetrics(): ExecutorMetrics {
  metrics ??= {
    events: new Counter({
      name: 'tagstream_executor_events_total',
      help: 'Events executed, by result (ok, retried, failed)',
      labelNames: ['result'],
    }),
    outcomes: new Counter({
      name: 'tagstream_executor_partner_outcomes_total',
      help: 'Partner tag outcomes per event (ok, error, timeout, skipped)',
      labelNames: ['partner', 'status'],
    }),
    captured: new Counter({
      name: 'tagstream_executor_captured_requests_total',
      help: 'Requests captured from partner tags',
      labelNames: ['partner'],
    }),
    duration: new Histogram({
      name: 'tagstream_executor_event_duration_seconds',
      help: 'Wall time of one event in the executor, queueing included',
      buckets: [0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10],
    }),
    browsersReplaced: new Counter({ name: 'tagstream_executor_browsers_replaced_total', help: 'Browsers lost and replaced' }),
    pagesRecycled: new Counter({ name: 'tagstream_executor_pages_recycled_total', help: 'Tabs replaced (uses reached, error, hang)' }),
    terminations: new Counter({
      name: 'tagstream_executor_script_terminations_total',
      help: 'Partner scripts terminated because they did not yield within their budget',
    }),
  };
  return metrics;
}
