/** The pure parts of `replay` (no broker, no browser): times of --from/--to, the request diff. */
import { expect } from 'chai';
import { hasCode } from '../../core/errors.ts';
import { diffRequests, endpointOf, hasDifferences, paramsOf, type ComparableRequest } from '../../runtime/operator/request-diff.ts';
import { parseDuration, parseTime, parseTimeRange } from '../../runtime/operator/time.ts';

const NOW = Date.parse('2026-12-02T10:00:00.000Z');

function req(partner: string | null, url: string, over: Partial<ComparableRequest> = {}): ComparableRequest {
  return { partner, method: 'GET', url, body: null, bodyEncoding: 'utf8', transport: 'image', ...over };
}

describe('replay: times (--from, --to)', () => {
  it('takes ISO 8601 and times relative to now', () => {
    expect(parseTime('--from', '2026-11-29T09:00:00Z', NOW)).to.equal(Date.parse('2026-11-29T09:00:00Z'));
    expect(parseTime('--from', '2026-11-29T09:00:00.250+01:00', NOW)).to.equal(Date.parse('2026-11-29T08:00:00.250Z'));
    expect(parseTime('--from', '2026-11-29', NOW)).to.equal(Date.parse('2026-11-29T00:00:00Z'));
    expect(parseTime('--from', '-2h', NOW)).to.equal(NOW - 7_200_000);
    expect(parseTime('--from', '-30m', NOW)).to.equal(NOW - 1_800_000);
    expect(parseTime('--from', '-1d', NOW)).to.equal(NOW - 86_400_000);
    expect(parseTime('--to', 'now', NOW)).to.equal(NOW);
  });

  it('refuses anything else, naming the flag', () => {
    for (const bad of ['yesterday', '2h', '+2h', '-2x', '', '12', '2026-13-45', 'now-1h']) {
      try {
        parseTime('--from', bad, NOW);
        expect.fail(`accepted "${bad}"`);
      } catch (error) {
        expect(hasCode(error, 'ERR_INVALID_INPUT'), String(error)).to.equal(true);
        expect((error as Error).message).to.match(/^--from: /);
      }
    }
  });

  it('a range needs both ends, in order', () => {
    expect(parseTimeRange('-2h', 'now', NOW)).to.deep.equal({ fromMs: NOW - 7_200_000, toMs: NOW });
    expect(() => parseTimeRange(undefined, 'now', NOW)).to.throw(/^--from: is required/);
    expect(() => parseTimeRange('-1h', undefined, NOW)).to.throw(/^--to: is required/);
    expect(() => parseTimeRange('now', '-1h', NOW)).to.throw(/^--to: must be after --from/);
    expect(() => parseTimeRange('now', 'now', NOW)).to.throw(/^--to: must be after --from/);
  });

  it('durations of --wait-timeout', () => {
    expect(parseDuration('--wait-timeout', '90s')).to.equal(90_000);
    expect(parseDuration('--wait-timeout', '10m')).to.equal(600_000);
    expect(parseDuration('--wait-timeout', '1500')).to.equal(1_500);
    expect(() => parseDuration('--wait-timeout', '0s')).to.throw(/^--wait-timeout: /);
    expect(() => parseDuration('--wait-timeout', 'soon')).to.throw(/^--wait-timeout: /);
  });
});

describe('replay: request diff', () => {
  it('identical requests: no difference', () => {
    const r = [req('a', 'https://a.example/p?id=1&x=2'), req('b', 'https://b.example/c', { method: 'POST', body: '{"e":"pv"}', transport: 'beacon' })];
    const diff = diffRequests(r, r);
    expect(diff.map((d) => [d.partner, d.unchanged, hasDifferences(d)])).to.deep.equal([['a', 1, false], ['b', 1, false]]);
  });

  it('a changed query parameter, a JSON body key and a form body key, with before/after', () => {
    const before = [req('a', 'https://a.example/p?id=1&v=1', { method: 'POST', body: '{"event":{"name":"pv","n":1}}' })];
    const after = [req('a', 'https://a.example/p?id=1&v=2&new=y', { method: 'POST', body: '{"event":{"name":"pv","n":2}}' })];
    const [d] = diffRequests(before, after);
    expect(d?.changed).to.have.length(1);
    expect(d?.changed[0]?.endpointChanged).to.equal(false);
    expect(d?.changed[0]?.params).to.deep.equal([
      { name: 'query:v', before: '1', after: '2' },
      { name: 'body:event.n', before: '1', after: '2' },
      { name: 'query:new', before: null, after: 'y' },
    ]);
    expect(paramsOf(req('a', 'https://a.example/', { body: 'a=1&b=x%20y' }))).to.deep.equal(new Map([['body:a', '1'], ['body:b', 'x y']]));
    expect(paramsOf(req('a', 'https://a.example/', { body: 'plain text' }))).to.deep.equal(new Map([['body', 'plain text']]));
  });

  it('same endpoints pair first; what is left pairs as a changed endpoint; the rest is added or removed', () => {
    const before = [
      req('a', 'https://a.example/collect?n=1', { idempotencyKey: 'e:a:0' }),
      req('a', 'https://a.example/config', { idempotencyKey: 'e:a:1' }),
      req('a', 'https://a.example/old', { idempotencyKey: 'e:a:2' }),
    ];
    const after = [
      req('a', 'https://a.example/config', { idempotencyKey: 'e:a:0' }),
      req('a', 'https://a.example/v2/collect?n=1', { idempotencyKey: 'e:a:1' }),
      req('a', 'https://a.example/collect?n=1', { method: 'POST', idempotencyKey: 'e:a:2' }),
      req('a', 'https://ads.example/px', { idempotencyKey: 'e:a:3' }),
    ];
    const [d] = diffRequests(before, after);
    expect(d).to.include({ partner: 'a', before: 3, after: 4, unchanged: 1 });
    expect(d?.changed.map((c) => [c.before.endpoint, c.after.endpoint, c.endpointChanged])).to.deep.equal([
      ['GET https://a.example/collect', 'GET https://a.example/v2/collect', true],
      ['GET https://a.example/old', 'POST https://a.example/collect', true],
    ]);
    expect(d?.added.map((r) => [r.endpoint, r.key])).to.deep.equal([['GET https://ads.example/px', 'e:a:3']]);
    expect(d?.removed).to.deep.equal([]);
  });

  it('a partner that stopped sending: its requests are removed; a new partner: added; unattributed ones are their own group', () => {
    const diff = diffRequests([req('a', 'https://a.example/p'), req(null, 'https://x.example/y')], [req('b', 'https://b.example/p'), req(null, 'https://x.example/y')]);
    expect(diff.map((d) => [d.partner, d.removed.length, d.added.length, d.unchanged])).to.deep.equal([['-', 0, 0, 1], ['a', 1, 0, 0], ['b', 0, 1, 0]]);
  });

  it('endpoints are method + origin + path; long values are cut', () => {
    expect(endpointOf({ method: 'post', url: 'https://a.example:8443/p/q?x=1#h' })).to.equal('POST https://a.example:8443/p/q');
    const [d] = diffRequests([req('a', `https://a.example/p?big=${'x'.repeat(1000)}`)], [req('a', 'https://a.example/p?big=y')]);
    expect(d?.changed[0]?.params[0]?.before).to.match(/^x{300}…\(1000 chars\)$/);
  });
});
