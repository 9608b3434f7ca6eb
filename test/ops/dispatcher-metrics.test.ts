/**
 * The dispatcher's metrics (runtime/metrics/dispatcher.ts) without a network: the pipeline's
 * `delivered` stage counts a request once (its first answer), not once per retry round; result
 * classes; the breaker state set; series at 0 for every partner; two dispatchers on one registry.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { DeliveryAttempt, RequestRecord } from '../../core/contracts/index.ts';
import { parsePartners } from '../../core/contracts/index.ts';
import { silentLogger } from '../../core/log.ts';
import { PartnerPolicies, type Deliver, type DeliveryOutcome } from '../../processors/dispatcher/index.ts';
import { dispatcherMetrics, resultClass } from '../../runtime/metrics/dispatcher.ts';
import { sample } from './stack.ts';

const partners = parsePartners([
  { id: 'p', captureHosts: ['collect.p.example'], html: '' },
  { id: 'q', captureHosts: ['collect.q.example'], html: '' },
]);
const request = { partner: 'p' } as unknown as RequestRecord;
const at = '2026-12-01T10:00:00.000Z';

describe('dispatcher metrics', () => {
  it('classes attempt results: status classes, timeouts, network, open breaker, full queue', () => {
    expect(resultClass({ status: 204 })).to.equal('2xx');
    expect(resultClass({ status: 503 })).to.equal('5xx');
    expect(resultClass({ code: 'UND_ERR_HEADERS_TIMEOUT' })).to.equal('timeout');
    expect(resultClass({ code: 'ERR_TIMEOUT' })).to.equal('timeout');
    expect(resultClass({ code: 'ECONNREFUSED' })).to.equal('network');
    expect(resultClass({ code: 'BrokenCircuitError' })).to.equal('breaker-open');
    expect(resultClass({ code: 'BulkheadRejectedError' })).to.equal('queue-full');
  });

  it('counts `delivered` at the first answer and `accepted` at success, once per request across retry rounds', async () => {
    const registry = new Registry();
    const policies = new PartnerPolicies();
    const m = dispatcherMetrics(registry, silentLogger(), { policies, partners });
    const outcomes: DeliveryOutcome[] = [
      { kind: 'retry', partner: 'p', attempts: [{ at, code: 'ECONNREFUSED', error: 'refused' }], firstAttemptAt: at, notBefore: at, rounds: 1 },
      { kind: 'retry', partner: 'p', attempts: [{ at, code: 'ECONNREFUSED', error: 'refused' }, { at, status: 503 }], firstAttemptAt: at, notBefore: at, rounds: 2 },
      { kind: 'delivered', partner: 'p', status: 204, attempts: [{ at, code: 'ECONNREFUSED', error: 'refused' }, { at, status: 503 }, { at, status: 204 }], cookies: [] },
    ];
    let round = 0;
    const deliver: Deliver = async () => {
      const o = outcomes[round++]!;
      m.outcome(o.partner, o);
      return o;
    };
    const counted = m.counted(deliver);
    let history: DeliveryAttempt[] = [];
    for (let i = 0; i < 3; i += 1) {
      const o = await counted({ request, attempts: history }, new AbortController().signal);
      history = o.kind === 'not-sent' ? history : o.attempts;
    }
    const text = await registry.metrics();
    expect(sample(text, 'tagstream_pipeline_stage_total', { stage: 'delivered', partner: 'p' })).to.equal(1);
    expect(sample(text, 'tagstream_pipeline_stage_total', { stage: 'accepted', partner: 'p' })).to.equal(1);
    expect(sample(text, 'tagstream_dispatcher_requests_total', { partner: 'p', outcome: 'retry' })).to.equal(2);
    // Every configured partner has its series from the start.
    expect(sample(text, 'tagstream_pipeline_stage_total', { stage: 'delivered', partner: 'q' })).to.equal(0);
    expect(sample(text, 'tagstream_dispatcher_requests_total', { partner: 'q', outcome: 'dead' })).to.equal(0);
  });

  it('records attempts by result and class with their latency', async () => {
    const registry = new Registry();
    const m = dispatcherMetrics(registry, silentLogger(), { policies: new PartnerPolicies(), partners });
    m.attempt('p', { at, status: 503 }, 0.2);
    m.attempt('p', { at, code: 'ECONNRESET', error: 'reset' }, 0.01);
    const text = await registry.metrics();
    expect(sample(text, 'tagstream_dispatcher_attempts_total', { partner: 'p', result: '503', class: '5xx' })).to.equal(1);
    expect(sample(text, 'tagstream_dispatcher_attempts_total', { partner: 'p', result: 'ECONNRESET', class: 'network' })).to.equal(1);
    expect(sample(text, 'tagstream_dispatcher_attempt_duration_seconds_count', { partner: 'p', class: '5xx' })).to.equal(1);
  });

  it('reports each partner\'s breaker as a state set; two dispatchers share one registry', async () => {
    const registry = new Registry();
    const policies = new PartnerPolicies({ breakerThreshold: 1, halfOpenAfterMs: 60_000 });
    dispatcherMetrics(registry, silentLogger(), { policies, partners });
    // A second dispatcher on the same registry: no duplicate registration.
    dispatcherMetrics(registry, silentLogger(), { policies: new PartnerPolicies(), partners: parsePartners([{ id: 'r', captureHosts: ['collect.r.example'], html: '' }]) });
    const failure = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    await policies.for(partners[0]!).execute(() => Promise.reject(failure)).catch(() => undefined);
    const text = await registry.metrics();
    expect(sample(text, 'tagstream_dispatcher_breaker_state', { partner: 'p', state: 'open' })).to.equal(1);
    expect(sample(text, 'tagstream_dispatcher_breaker_state', { partner: 'p', state: 'closed' })).to.equal(0);
    expect(sample(text, 'tagstream_dispatcher_breaker_state', { partner: 'q', state: 'closed' })).to.equal(1);
    expect(sample(text, 'tagstream_dispatcher_breaker_state', { partner: 'r', state: 'closed' })).to.equal(1);
  });
});
