/**
 * Reconciliation per partner, stage by stage (docs/metrics.md "Reconciliation"): one counter,
 * `tagstream_pipeline_stage_total{stage, partner}`, incremented by each role where a unit of work
 * passes a stage, so an operator can follow events from the collector to the partner's answer:
 *
 *   collected   the collector had the event acknowledged by the broker (no partner yet: partner="")
 *   executed    the processor ran the page view: partner="" once per page view, and once per partner
 *               whose tag ran (consent granted: status ok, error or timeout, not skipped)
 *   captured    a request of that partner was written to the requests topic
 *   delivered   the dispatcher got an HTTP answer from the partner for that request (its first one)
 *   accepted    the partner accepted it (a 2xx/3xx answer: the dispatcher's `delivered` outcome)
 *
 * Each stage is counted once per unit, never per retry, so the counters agree with what is on the
 * topics and what the partners received (test/ops/reconciliation.test.ts).
 */
import { Counter, type Registry } from 'prom-client';
import { once } from './registry.ts';

export const PIPELINE_STAGES = ['collected', 'executed', 'captured', 'delivered', 'accepted'] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

export type PipelineCounter = Counter<'stage' | 'partner'>;

const NAME = 'tagstream_pipeline_stage_total';

/** The stage counter on `registry` (one per registry, shared by the roles of the process). */
export function pipelineCounter(registry: Registry): PipelineCounter {
  return once(registry, NAME, () => new Counter({
    name: NAME,
    help: 'Units of work that reached a pipeline stage (collected, executed, captured, delivered, accepted), per partner (empty: not per partner)',
    labelNames: ['stage', 'partner'] as const,
    registers: [registry],
  }));
}

/** The series of `stage` for `partner`, bound once (a hot path then skips the labels lookup per call). */
export function stageSeries(counter: PipelineCounter, stage: PipelineStage, partner: string | null): { inc(n?: number): void } {
  return counter.labels({ stage, partner: partner ?? '' });
}

/** Counts `n` units reaching `stage` for `partner` (null = unattributed or not per partner). */
export function countStage(counter: PipelineCounter, stage: PipelineStage, partner: string | null, n = 1): void {
  counter.inc({ stage, partner: partner ?? '' }, n);
}

/**
 * Series at 0 for `stages` of every partner: rate() and increase() ignore a new series' first
 * sample, so the first unit of a partner would otherwise be missing from the funnel.
 */
export function initStages(counter: PipelineCounter, stages: readonly PipelineStage[], partners: readonly { id: string }[]): void {
  for (const stage of stages) {
    countStage(counter, stage, null, 0);
    for (const p of partners) countStage(counter, stage, p.id, 0);
  }
}

/** What the pipeline observer needs of a topology engine (runtime/streams' handle.engine). */
export interface ObservableEngine {
  observe(node: string): { subscribe(next: (event: { value: unknown }) => void): { unsubscribe(): void } };
}

/**
 * The processor's stages, read from its topology's nodes (topology/app/processor.ts): `executed`
 * from the `executed` branch (a page view whose run succeeded: partner="" once, and each partner
 * whose tag ran), `captured` from `requests-sink` (each request record written to the requests
 * topic). Observation is free for nodes nobody observes; these two cost one callback per output.
 */
export function observeProcessorStages(engine: ObservableEngine, counter: PipelineCounter): () => void {
  const executed = engine.observe('executed').subscribe(({ value }) => {
    const trackers = (value as { result?: { trackers?: ReadonlyArray<{ partner: string; status: string }> } }).result?.trackers ?? [];
    countStage(counter, 'executed', null);
    for (const t of trackers) if (t.status !== 'skipped') countStage(counter, 'executed', t.partner);
  });
  const captured = engine.observe('requests-sink').subscribe(({ value }) => {
    countStage(counter, 'captured', (value as { partner?: string | null }).partner ?? null);
  });
  return () => {
    executed.unsubscribe();
    captured.unsubscribe();
  };
}
