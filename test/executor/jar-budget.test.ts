/**
 * The jar budget on real page runs: a tag writing megabytes cannot make `execute` return a jar
 * over the budget (the processor would publish it as one record of tracking.cookies), the other
 * partners' ids in the same page survive, the hog is told in its outcome, and the drops are
 * counted. The real CLI's side is in cli.test.ts.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { DEFAULT_JAR_BUDGET, jarBytes } from '../../core/contracts/jar-budget.ts';
import { createExecutor, type ExecuteResult, type Executor } from '../../processors/executor/index.ts';
import { HOG_HTML, makeEvent, one, startFixtureServer, tagPartner, type FixtureServer } from './helpers.ts';

const PAGE = 'https://shop.example';

async function dropped(registry: Registry): Promise<[Partial<Record<string, string | number>>, number][]> {
  const m = await registry.getSingleMetric('tagstream_executor_jar_dropped_total')?.get();
  return (m?.values ?? []).map((v) => [v.labels, v.value]);
}

function ids(r: ExecuteResult): { cookie: string | null; ls: string } {
  return {
    cookie: new URL(one(r.requests, '/cookie-id').url).searchParams.get('id'),
    ls: (JSON.parse(one(r.requests, '/ls-id').body ?? '{}') as { id: string }).id,
  };
}

describe('executor: the jar budget', function () {
  this.timeout(120_000);
  let srv: FixtureServer;
  let ex: Executor;
  let registry: Registry;

  before(async () => {
    srv = await startFixtureServer();
    registry = new Registry();
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true, registry });
  });
  after(async () => {
    await ex?.close();
    await srv?.close();
  });

  it('cuts what a hog tag writes; the other partners\' ids survive; the hog is told and the drops counted', async () => {
    const partners = [{ id: 'hog', html: HOG_HTML }, tagPartner(srv, 'ck', 'cookie-id'), tagPartner(srv, 'ls', 'ls-id')];
    const r = await ex.execute(makeEvent(), null, partners);
    expect(jarBytes(r.jar)).to.be.at.most(DEFAULT_JAR_BUDGET.jarBytes);
    const first = ids(r);
    expect(r.jar.cookies.find((c) => c.name === '_tid')?.value).to.equal(first.cookie);
    expect(r.jar.localStorage[PAGE]).to.deep.equal({ ls_tid: first.ls });
    const [hog, ck, ls] = r.trackers;
    expect(hog).to.deep.include({ partner: 'hog', status: 'ok', error: null });
    expect(hog?.warnings).to.deep.equal(
      [0, 1, 2, 3].map((i) => `jar: dropped localStorage k${i} on ${PAGE} (1048578 bytes, originStorageBytes)`),
    );
    // The well-behaved partners are told nothing.
    expect([ck?.status, ck?.warnings, ls?.status, ls?.warnings]).to.deep.equal(['ok', undefined, 'ok', undefined]);
    expect(await dropped(registry)).to.deep.equal([[{ partner: 'hog', where: PAGE, kind: 'localStorage', limit: 'originStorageBytes' }, 4]]);

    // The cut jar is a jar: the next page view keeps both ids.
    const next = await ex.execute(makeEvent({ page: { url: `${PAGE}/cart` } }), r.jar, partners);
    expect(ids(next)).to.deep.equal(first);
    expect(jarBytes(next.jar)).to.be.at.most(DEFAULT_JAR_BUDGET.jarBytes);
  });

  it('cuts a jar passed in over the budget, even when no partner runs', async () => {
    const huge = 'y'.repeat(100_000);
    const jar = { cookies: [], localStorage: { [PAGE]: { huge, keep: '1' } } };
    const r = await ex.execute(makeEvent(), jar, [tagPartner(srv, 'ck', 'cookie-id')]);
    expect(r.jar.localStorage[PAGE]).to.deep.equal({ keep: '1' });
    // Nobody wrote it this visit and no partner's host serves the page: every partner that ran is told.
    expect(r.trackers[0]?.warnings).to.deep.equal([`jar: dropped localStorage huge on ${PAGE} (100004 bytes, originStorageBytes, unattributed)`]);

    const none = await ex.execute(makeEvent({ consent: { analytics: false } }), jar, [tagPartner(srv, 'ads', 'cookie-id', { consent: 'analytics' })]);
    expect(none.jar).to.deep.equal({ cookies: [], localStorage: { [PAGE]: { keep: '1' } } });
    expect(none.trackers).to.deep.equal([{ partner: 'ads', status: 'skipped', durationMs: 0, error: null }]);
    const unattributed = (await dropped(registry)).find(([l]) => l.partner === '' && l.where === PAGE);
    expect(unattributed?.[1]).to.equal(2);
  });
});

describe('executor: a tighter jar budget', function () {
  this.timeout(120_000);
  let srv: FixtureServer;
  let ex: Executor;
  const registry = new Registry();
  const budget = { ...DEFAULT_JAR_BUDGET, jarBytes: 64 * 1024 };

  before(async () => {
    srv = await startFixtureServer();
    ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true, registry, jarBudget: budget });
  });
  after(async () => {
    await ex?.close();
    await srv?.close();
  });

  it('drops the hog\'s cookies too, largest first, attributed to the code that set them', async () => {
    const partners = [{ id: 'hog', html: HOG_HTML }, tagPartner(srv, 'ck', 'cookie-id'), tagPartner(srv, 'ls', 'ls-id')];
    const r = await ex.execute(makeEvent(), null, partners);
    expect(jarBytes(r.jar)).to.be.at.most(budget.jarBytes);
    const { cookie, ls } = ids(r);
    expect(r.jar.cookies.find((c) => c.name === '_tid')?.value).to.equal(cookie);
    expect(r.jar.localStorage[PAGE]).to.deep.equal({ ls_tid: ls });
    const warnings = r.trackers[0]?.warnings ?? [];
    // 4 storage entries, then cookies c10..c59 (3003 bytes) before c0..c9 (3002): 20 lines and a sum.
    expect(warnings).to.have.length(21);
    expect(warnings[4]).to.equal('jar: dropped cookie c10 on shop.example (3003 bytes, jarBytes)');
    expect(warnings[20]).to.match(/^jar: dropped \d+ more entries \(\d+ bytes\)$/);
    const cookies = (await dropped(registry)).find(([l]) => l.kind === 'cookie');
    expect(cookies?.[0]).to.deep.equal({ partner: 'hog', where: 'shop.example', kind: 'cookie', limit: 'jarBytes' });
    expect(cookies?.[1]).to.be.greaterThan(30);
    expect(r.trackers.slice(1).map((t) => t.warnings)).to.deep.equal([undefined, undefined]);
  });
});
