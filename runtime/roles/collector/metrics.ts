/**
 * The collector's metrics, registered once per registry (two collectors in one test process share
 * them, as every metric of a registry must be unique).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { pipelineCounter, type PipelineCounter } from '../../metrics/pipeline.ts';

export interface CollectorMetrics {
  /** Answers of POST /collect by outcome: accepted, invalid, too-large, forbidden-origin, bot, unavailable. */
  requests: Counter<'outcome'>;
  /** Bots answered 204 and not produced, by the isbot pattern that matched. */
  bots: Counter<'reason'>;
  /** Wait for the broker's acknowledgement of one event. */
  produceSeconds: Histogram<'result'>;
  inFlight: Gauge;
  /** The pipeline's `collected` stage (runtime/metrics/pipeline.ts). */
  pipeline: PipelineCounter;
}

export function collectorMetrics(registry: Registry, inFlight: () => number): CollectorMetrics {
  const existing = registry.getSingleMetric('tagstream_collector_requests_total');
  if (existing !== undefined) {
    return {
      requests: existing as Counter<'outcome'>,
      bots: registry.getSingleMetric('tagstream_collector_bots_total') as Counter<'reason'>,
      produceSeconds: registry.getSingleMetric('tagstream_collector_produce_seconds') as Histogram<'result'>,
      inFlight: registry.getSingleMetric('tagstream_collector_in_flight') as Gauge,
      pipeline: pipelineCounter(registry),
    };
  }
  // At 0 from the start: increase() ignores a new series' first sample.
  pipelineCounter(registry).inc({ stage: 'collected', partner: '' }, 0);
  return {
    pipeline: pipelineCounter(registry),
    requests: new Counter({ name: 'tagstream_collector_requests_total', help: 'POST /collect answers by outcome', labelNames: ['outcome'], registers: [registry] }),
    bots: new Counter({ name: 'tagstream_collector_bots_total', help: 'Bot requests answered 204 and not produced, by matched pattern', labelNames: ['reason'], registers: [registry] }),
    produceSeconds: new Histogram({
      name: 'tagstream_collector_produce_seconds',
      help: 'Time until the broker acknowledged an event (or the wait ended)',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'tagstream_collector_in_flight',
      help: 'Events handed to the producer and not acknowledged yet',
      registers: [registry],
      collect() {
        this.set(inFlight());
      },
    }),
  };
}
