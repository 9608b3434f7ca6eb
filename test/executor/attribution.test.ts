/**
 * Which partner sent a request, what transport it was, and each partner's outcome: the pure
 * functions of processors/executor/page/attribution.ts, without Chromium.
 */
import { expect } from 'chai';
import {
  attributeRequests,
  outcomes,
  partnerErrors,
  singlePartner,
  type Captured,
  type Hint,
  type RunFacts,
} from '../../processors/executor/page/attribution.ts';
import { parsePartners, type PartnerConfig } from '../../processors/executor/index.ts';

function captured(url: string, extra: Partial<Captured> = {}): Captured {
  return { partner: null, method: 'GET', url, headers: {}, body: null, bodyEncoding: 'utf8', transport: 'other', at: 0, fromPolicy: false, ...extra };
}

const ids = (...list: string[]): Set<string> => new Set(list);

describe('executor attribution (pure)', () => {
  it('keeps the policy partner, else takes the page hint, else the only partner, else null', () => {
    const hints: Hint[] = [{ url: 'https://x.example/hinted', partner: 'b', transport: 'image' }];
    const list = [
      captured('https://collect.a.example/p', { partner: 'a', transport: 'image', at: 10 }),
      captured('https://x.example/hinted', { transport: 'image', at: 20 }),
      captured('https://nobody.example/', { transport: 'image', at: 30 }),
    ];
    const several = attributeRequests(list, hints, [], ids('a', 'b'), null);
    expect(several.requests.map((r) => r.partner)).to.deep.equal(['a', 'b', null]);
    expect([...several.lastAt]).to.deep.equal([
      ['a', 10],
      ['b', 20],
    ]);
    // With one partner in the page, what nobody claims is that partner's.
    const one = attributeRequests([captured('https://nobody.example/', { at: 5 })], [], [], ids('a'), 'a');
    expect(one.requests[0]?.partner).to.equal('a');
    expect(one.lastAt.get('a')).to.equal(5);
  });

  it('ignores a hint naming a partner that is not in the page, and uses each hint once', () => {
    const hints: Hint[] = [{ url: 'https://x.example/p', partner: 'ghost', transport: 'image' }];
    const r = attributeRequests([captured('https://x.example/p'), captured('https://x.example/p')], hints, [], ids('a', 'b'), null);
    expect(r.requests.map((q) => q.partner)).to.deep.equal([null, null]);
    const twice: Hint[] = [{ url: 'https://x.example/p', partner: 'a', transport: 'image' }];
    const r2 = attributeRequests([captured('https://x.example/p'), captured('https://x.example/p')], twice, [], ids('a', 'b'), null);
    expect(r2.requests.map((q) => q.partner)).to.deep.equal(['a', null]);
  });

  it('corrects the transport the Fetch domain reports from what the page saw', () => {
    const hints: Hint[] = [
      { url: 'https://c.example/f', partner: 'a', transport: 'fetch' },
      { url: 'https://c.example/b', partner: 'a', transport: 'beacon' },
      { url: 'https://c.example/form', partner: 'a', transport: 'form' },
      { url: 'https://c.example/get-form#x', partner: 'a', transport: 'form' },
    ];
    const r = attributeRequests(
      [
        captured('https://c.example/f', { transport: 'xhr' }),
        captured('https://c.example/b', { transport: 'other' }),
        captured('https://c.example/form', { transport: 'iframe' }),
        // A GET form's URL is its action plus the fields.
        captured('https://c.example/get-form?a=1', { transport: 'iframe' }),
        captured('https://c.example/img', { transport: 'image' }),
      ],
      hints,
      [],
      ids('a'),
      'a',
    );
    expect(r.requests.map((q) => q.transport)).to.deep.equal(['fetch', 'beacon', 'form', 'form', 'image']);
  });

  it('names a worker fetch() by the URLs its hook reported, each once', () => {
    const workerFetches = ['https://w.example/f'];
    const r = attributeRequests(
      [captured('https://w.example/f', { transport: 'xhr' }), captured('https://w.example/f', { transport: 'xhr' })],
      [],
      workerFetches,
      ids('a'),
      'a',
    );
    expect(r.requests.map((q) => q.transport)).to.deep.equal(['fetch', 'xhr']);
    expect(workerFetches).to.deep.equal([]);
  });

  it('keeps only the contract fields of a captured request', () => {
    const r = attributeRequests([captured('https://c.example/', { partner: 'a', method: 'POST', body: 'x' })], [], [], ids('a'), 'a');
    expect(Object.keys(r.requests[0] ?? {})).to.deep.equal(['partner', 'method', 'url', 'headers', 'body', 'bodyEncoding', 'transport']);
  });

  it("keeps each partner's first error; an unclaimed one is the only partner's", () => {
    const errors = [
      { partner: 'a', message: 'first' },
      { partner: 'a', message: 'second' },
      { partner: null, message: 'nobody' },
      { partner: 'ghost', message: 'not in the page' },
    ];
    expect([...partnerErrors(errors, ids('a', 'b'), null)]).to.deep.equal([['a', 'first']]);
    expect([...partnerErrors([{ partner: null, message: 'x' }], ids('a'), 'a')]).to.deep.equal([['a', 'x']]);
    expect(singlePartner([{ id: 'a' }])).to.equal('a');
    expect(singlePartner([{ id: 'a' }, { id: 'b' }])).to.equal(null);
  });
});

describe('executor outcomes (pure)', () => {
  const partners: PartnerConfig[] = parsePartners([
    { id: 'a', html: '', timeoutMs: 1000 },
    { id: 'b', html: '', timeoutMs: 2000 },
    { id: 'off', html: '', consent: 'advertising' },
  ]);
  const active = ids('a', 'b');
  const report = { marks: { a: { begin: 1100, end: 1200 }, b: { begin: 1200, end: 1300 } }, timedOut: {}, loadedAt: 1400, errors: [] };
  const facts = (over: Partial<RunFacts> = {}): RunFacts => ({
    t0: 1000,
    end: 5000,
    report,
    lastAt: new Map(),
    terminatedAt: [],
    suspects: new Set(),
    hung: false,
    navError: undefined,
    ...over,
  });

  it('reports ok, skipped without consent, durations to the last request or the end of the section', () => {
    const t = outcomes(partners, active, facts({ lastAt: new Map([['a', 1600]]) }));
    expect(t).to.deep.equal([
      { partner: 'a', status: 'ok', durationMs: 600, error: null },
      { partner: 'b', status: 'ok', durationMs: 300, error: null },
      { partner: 'off', status: 'skipped', durationMs: 0, error: null },
    ]);
  });

  it('reports an uncaught error as error with its message', () => {
    const t = outcomes(partners, active, facts({ report: { ...report, errors: [{ partner: 'b', message: 'boom' }] } }));
    expect(t[1]).to.deep.include({ partner: 'b', status: 'error', error: 'boom' });
    expect(t[0]?.status).to.equal('ok');
  });

  it('names the timeout: the section open at the termination, a suspect, or everyone when hung', () => {
    // The termination at 1250 fell in b's section (1200-1300).
    const t = outcomes(partners, active, facts({ terminatedAt: [1250] }));
    expect(t.map((x) => x.status)).to.deep.equal(['ok', 'timeout', 'skipped']);
    expect(t[1]?.error).to.equal('did not yield within 2000 ms');
    expect(outcomes(partners, active, facts({ suspects: new Set(['a']) }))[0]?.status).to.equal('timeout');
    expect(outcomes(partners, active, facts({ hung: true })).map((x) => x.status)).to.deep.equal(['timeout', 'timeout', 'skipped']);
    // A termination outside any section, with a single partner in the page, can only be that one.
    const lone = outcomes(partners, ids('a'), facts({ report: null, terminatedAt: [4000] }));
    expect(lone[0]?.status).to.equal('timeout');
  });

  it('reports every partner as error when the page run itself failed', () => {
    const t = outcomes(partners, active, facts({ report: null, navError: 'net::ERR_FAILED' }));
    expect(t.slice(0, 2).map((x) => [x.status, x.error])).to.deep.equal([
      ['error', 'page run failed: net::ERR_FAILED'],
      ['error', 'page run failed: net::ERR_FAILED'],
    ]);
    // Without a report the duration runs to the end of the run.
    expect(t[0]?.durationMs).to.equal(4000);
  });
});
