/**
 * The dispatcher's metrics (docs/metrics.md "Dispatcher"): outcomes per partner, attempts by
 * result and result class, attempt latency, breaker state, requests not sent (undeclared hosts),
 * idempotent skips, and the pipeline's `delivered` / `accepted` stages. Registered once per
 * registry (several dispatchers in one test process share them); the per-dispatcher state (stats,
 * hosts already logged) lives in the returned object.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DeliveryAttempt, PartnerConfig } from '../../core/contracts/index.ts';
import type { Logger } from '../../core/log.ts';
import type { Deliver, DeliveryOutcome, PartnerPolicies } from '../../processors/dispatcher/index.ts';
import { countStage, pipelineCounter } from './pipeline.ts';
import { once } from './registry.ts';

export interface DispatcherStats {
  delivered: number;
  retried: number;
  deadLettered: number;
  notSent: number;
  duplicates: number;
}

const BREAKER_STATES = ['closed', 'open', 'half-open', 'isolated'] as const;
/** Hosts named in `not_sent_total`: tags can reach any host, a bounded label set keeps the series finite. */
const MAX_HOSTS = 1000;

/** The class of an attempt's result: `2xx`…`5xx` for an answer, else what went wrong. */
export function resultClass(attempt: Pick<DeliveryAttempt, 'status' | 'code'>): string {
  if (attempt.status !== undefined) return `${Math.floor(attempt.status / 100)}xx`;
  const code = attempt.code ?? '';
  if (code === 'BrokenCircuitError') return 'breaker-open';
  if (code === 'BulkheadRejectedError') return 'queue-full';
  if (/TIMEOUT/i.test(code)) return 'timeout';
  return 'network';
}

export function dispatcherMetrics(registry: Registry | undefined, log: Logger, observed: { policies: PartnerPolicies; partners: readonly PartnerConfig[] }) {
  const r = registry;
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    r === undefined ? new Counter<L>({ name, help, labelNames, registers: [] }) : once(r, name, () => new Counter<L>({ name, help, labelNames, registers: [r] }));
  const requests = counter('tagstream_dispatcher_requests_total', 'Requests by partner and outcome (delivered, retry, dead, not-sent)', ['partner', 'outcome']);
  const notSent = counter('tagstream_dispatcher_not_sent_total', 'Requests not sent, by partner, host and reason (undeclared host, egress policy)', ['partner', 'host', 'reason']);
  const attempts = counter('tagstream_dispatcher_attempts_total', 'Delivery attempts by partner, result (HTTP status or error code) and class (2xx..5xx, timeout, network, breaker-open, queue-full)', ['partner', 'result', 'class']);
  const duplicates = counter('tagstream_dispatcher_duplicates_total', 'Requests skipped because their idempotency key was already delivered', []);
  const rejected = counter('tagstream_dispatcher_cookies_rejected_total', 'Set-Cookie lines a browser would refuse, by partner', ['partner']);
  const latency: Histogram<'partner' | 'class'> | undefined =
    r === undefined
      ? undefined
      : once(r, 'tagstream_dispatcher_attempt_duration_seconds', () => new Histogram({
          name: 'tagstream_dispatcher_attempt_duration_seconds',
          help: 'Wall time of one delivery attempt (waiting in the partner bulkhead included), by partner and result class',
          labelNames: ['partner', 'class'] as const,
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers: [r],
        }));
  // A state set (one series per state, 1 for the current one), as kube-state-metrics does:
  // `== 1` selects the open breakers without knowing any numeric encoding.
  const policiesOf = registryPolicies(r);
  policiesOf?.add(observed);
  if (r !== undefined && r.getSingleMetric('tagstream_dispatcher_breaker_state') === undefined) {
    new Gauge({
      name: 'tagstream_dispatcher_breaker_state',
      help: 'Circuit breaker of each partner: 1 for its current state (closed, open, half-open, isolated), 0 for the others',
      labelNames: ['partner', 'state'] as const,
      registers: [r],
      collect() {
        this.reset();
        for (const o of policiesOf ?? []) {
          for (const p of o.partners) {
            const state = o.policies.for(p).breakerState();
            for (const s of BREAKER_STATES) this.set({ partner: p.id, state: s }, s === state ? 1 : 0);
          }
        }
      },
    });
  }
  const pipeline = r === undefined ? undefined : pipelineCounter(r);

  // At 0 from the start for every configured partner: rate() and increase() ignore the first
  // sample of a new series, so a partner's first dead letter or first delivery would not count.
  for (const p of observed.partners) {
    for (const outcome of ['delivered', 'retry', 'dead'] as const) requests.inc({ partner: p.id, outcome }, 0);
    if (pipeline) for (const stage of ['delivered', 'accepted'] as const) countStage(pipeline, stage, p.id, 0);
  }
  const stats: DispatcherStats = { delivered: 0, retried: 0, deadLettered: 0, notSent: 0, duplicates: 0 };
  const seenHosts = new Set<string>();
  return {
    stats,
    outcome(partner: string | null, o: DeliveryOutcome): void {
      requests.inc({ partner: partner ?? '-', outcome: o.kind });
      if (o.kind === 'delivered') {
        stats.delivered += 1;
        if (pipeline) countStage(pipeline, 'accepted', o.partner);
      } else if (o.kind === 'retry') stats.retried += 1;
      else if (o.kind === 'dead') stats.deadLettered += 1;
      else {
        stats.notSent += 1;
        const known = seenHosts.has(o.host);
        if (!known && seenHosts.size < MAX_HOSTS) {
          seenHosts.add(o.host);
          log.warn({ partner: o.partner, host: o.host, reason: o.reason }, 'request not sent: host not declared in captureHosts or refused by the egress policy (logged once per host)');
        }
        notSent.inc({ partner: o.partner ?? '-', host: seenHosts.has(o.host) ? o.host : 'other', reason: o.reason });
      }
    },
    attempt(partner: string, a: DeliveryAttempt, seconds?: number): void {
      const cls = resultClass(a);
      attempts.inc({ partner, result: a.status === undefined ? (a.code ?? 'error') : String(a.status), class: cls });
      if (seconds !== undefined) latency?.observe({ partner, class: cls }, seconds);
    },
    cookiesRejected(partner: string, count: number): void {
      rejected.inc({ partner }, count);
    },
    duplicate(): void {
      stats.duplicates += 1;
      duplicates.inc();
    },
    /**
     * `deliver` counting the pipeline's `delivered` stage: once per request, when the partner
     * answers it for the first time (an answer in the outcome's attempts and none in the
     * attempts it arrived with from the retry topic).
     */
    counted(deliver: Deliver): Deliver {
      if (pipeline === undefined) return deliver;
      return async (pending, signal) => {
        const outcome = await deliver(pending, signal);
        if (outcome.kind !== 'not-sent' && !answered(pending.attempts) && answered(outcome.attempts)) countStage(pipeline, 'delivered', outcome.partner);
        return outcome;
      };
    },
  };
}

const answered = (attempts: readonly DeliveryAttempt[]): boolean => attempts.some((a) => a.status !== undefined);

type Observed = { policies: PartnerPolicies; partners: readonly PartnerConfig[] };
const observedByRegistry = new WeakMap<Registry, Set<Observed>>();

/** Every dispatcher's policies on one registry (the breaker gauge reads them all). */
function registryPolicies(registry: Registry | undefined): Set<Observed> | undefined {
  if (registry === undefined) return undefined;
  let set = observedByRegistry.get(registry);
  if (set === undefined) {
    set = new Set();
    observedByRegistry.set(registry, set);
  }
  return set;
}

/** Stops reporting a stopped dispatcher's breakers. */
export function forgetDispatcherPolicies(registry: Registry | undefined, policies: PartnerPolicies): void {
  const set = registry === undefined ? undefined : observedByRegistry.get(registry);
  for (const o of set ?? []) if (o.policies === policies) set?.delete(o);
}
