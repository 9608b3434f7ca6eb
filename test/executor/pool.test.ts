import { expect } from 'chai';
import { Registry, register } from 'prom-client';
import { createExecutor, executorMetrics, ExecutorFailedError, ExecutorUnavailableError, type Executor } from '../../processors/executor/index.ts';
import { byPath, makeEvent, one, startFixtureServer, tagPartner, type FixtureServer } from './helpers.ts';

describe('executor pool', function () {
  this.timeout(90_000);
  let srv: FixtureServer;
  before(async () => {
    srv = await startFixtureServer();
  });
  after(async () => {
    await srv?.close();
  });

  it('replaces a crashed browser and retries the events that were on it', async () => {
    const ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true });
    try {
      const [pid] = ex.browserPids();
      expect(pid).to.be.a('number');
      // The tag's script is slow to arrive: the browser is killed while the event runs.
      const partner = { ...tagPartner(srv, 'slow', 'cookie-id'), html: `<script src="${srv.origin}/tags/cookie-id.js?delay=1500"></script>` };
      const running = ex.execute(makeEvent(), null, [partner]);
      await new Promise((r) => setTimeout(r, 400));
      process.kill(pid as number, 'SIGKILL');
      const r = await running;
      expect(r.trackers[0]?.status).to.equal('ok');
      expect(byPath(r.requests, '/cookie-id')).to.have.length(1);
      const stats = ex.stats();
      expect(stats.retried).to.equal(1);
      expect(stats.browsersReplaced).to.equal(1);
      expect(ex.browserPids()).to.have.length(1).and.not.include(pid);
      // And it keeps serving.
      const again = await ex.execute(makeEvent(), null, [tagPartner(srv, 'ids', 'cookie-id')]);
      expect(again.trackers[0]?.status).to.equal('ok');
    } finally {
      await ex.close();
    }
  });

  it('runs concurrent events on several tabs without mixing visitors, recycling tabs after N uses', async () => {
    const ex = await createExecutor({ browsers: 1, pagesPerBrowser: 2, maxUsesPerPage: 3, allowPrivateNetwork: true });
    try {
      const partners = [tagPartner(srv, 'ids', 'cookie-id'), tagPartner(srv, 'ls', 'ls-id')];
      const firsts = await Promise.all(Array.from({ length: 6 }, () => ex.execute(makeEvent(), null, partners)));
      const ids = firsts.map((r) => new URL(one(r.requests, '/cookie-id').url).searchParams.get('id'));
      expect(new Set(ids).size).to.equal(6);
      // Each visitor's next view sees their own ids, whichever tab it lands on.
      const seconds = await Promise.all(firsts.map((r) => ex.execute(makeEvent(), r.jar, partners)));
      seconds.forEach((r, i) => {
        expect(new URL(one(r.requests, '/cookie-id').url).searchParams.get('id')).to.equal(ids[i]);
        expect(JSON.parse(one(r.requests, '/ls-id').body ?? '{}')).to.include({ new: false });
        expect(r.jar.cookies.filter((c) => c.name === '_tid')).to.have.length(1);
      });
      await new Promise((r) => setTimeout(r, 200));
      const stats = ex.stats();
      expect(stats.executed).to.equal(12);
      expect(stats.pagesRecycled).to.be.at.least(2);
      expect(stats.slots).to.equal(2);
    } finally {
      await ex.close();
    }
    let err: unknown;
    await ex.execute(makeEvent(), null, [tagPartner(srv, 'ids', 'cookie-id')]).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(ExecutorUnavailableError);
  });
});

describe('executor pool: renderer crash', function () {
  this.timeout(90_000);
  let srv: FixtureServer;
  before(async () => {
    srv = await startFixtureServer();
  });
  after(async () => {
    await srv?.close();
  });

  it('retries an event whose renderer crashed once on a fresh tab, reports one that crashes twice, and keeps serving others', async () => {
    // The renderer is crashed through CDP (Page.crash) while the event's slow script is loading.
    const crashOn = new Map<string, number>([['crash-once', 1], ['crash-always', 2]]);
    const ex = await createExecutor({
      browsers: 1,
      pagesPerBrowser: 2,
      allowPrivateNetwork: true,
      onAttempt: (session, { eventId, attempt }) => {
        if (attempt < (crashOn.get(eventId) ?? 0)) setTimeout(() => void session.send('Page.crash').catch(() => undefined), 300);
      },
    });
    try {
      const slow = { ...tagPartner(srv, 'slow', 'cookie-id'), html: `<script src="${srv.origin}/tags/cookie-id.js?delay=1200"></script>` };
      const once = ex.execute(makeEvent({ eventId: 'crash-once' }), null, [slow]);
      const always = ex.execute(makeEvent({ eventId: 'crash-always' }), null, [slow]).then(
        () => null,
        (err: unknown) => err,
      );
      // Other events keep flowing while tabs crash and are replaced.
      const others = await Promise.all([1, 2, 3, 4].map(() => ex.execute(makeEvent(), null, [tagPartner(srv, 'ids', 'cookie-id')])));
      for (const o of others) expect(o.trackers[0]?.status).to.equal('ok');
      const r = await once;
      expect(r.trackers[0]?.status).to.equal('ok');
      expect(byPath(r.requests, '/cookie-id')).to.have.length(1);
      const err = await always;
      expect(err).to.be.instanceOf(ExecutorFailedError);
      expect((err as ExecutorFailedError).code).to.equal('ERR_EXECUTOR_FAILED');
      expect(String((err as Error).message)).to.match(/crash-always.*renderer crashed/);
      // The pool's own retry was made: the caller (the processor) must not retry it again.
      expect((err as ExecutorFailedError).context).to.deep.include({ eventId: 'crash-always', attempts: 2 });
      const stats = ex.stats();
      expect(stats.retried).to.equal(2);
      expect(stats.pagesRecycled).to.be.at.least(3);
      expect(stats.browsersReplaced).to.equal(0);
      const after = await ex.execute(makeEvent(), null, [tagPartner(srv, 'ids', 'cookie-id')]);
      expect(after.trackers[0]?.status).to.equal('ok');
    } finally {
      await ex.close();
    }
  });
});

/** Polls `check` every few milliseconds until it holds (or fails after `ms`). */
async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('executor pool: readiness and metrics', function () {
  this.timeout(90_000);
  let srv: FixtureServer;
  before(async () => {
    srv = await startFixtureServer();
  });
  after(async () => {
    await srv?.close();
  });

  it('is up while a browser is connected, says why not while a killed one is replaced, and is down once closed', async () => {
    const ex: Executor = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true });
    try {
      expect(ex.health()).to.deep.equal({ up: true });
      const [pid] = ex.browserPids();
      process.kill(pid as number, 'SIGKILL');
      const seen: string[] = [];
      await until('the lost browser to show in health()', 10_000, () => {
        const h = ex.health();
        if (!h.up) seen.push(h.reason ?? '');
        return !h.up;
      });
      expect(seen[0]).to.match(/^executor: no browser connected/);
      // The pool replaces the browser in the background: up again, and serving.
      await until('the replacement browser', 30_000, () => ex.health().up);
      expect(ex.browserPids()).to.have.length(1).and.not.include(pid);
      const r = await ex.execute(makeEvent(), null, [tagPartner(srv, 'ids', 'cookie-id')]);
      expect(r.trackers[0]?.status).to.equal('ok');
    } finally {
      await ex.close();
    }
    expect(ex.health()).to.deep.equal({ up: false, reason: 'executor: closed' });
  });

  it('registers its metrics (and its script cache\'s) on the registry it is given; the default stays the default registry', async () => {
    const registry = new Registry();
    const ex = await createExecutor({ browsers: 1, pagesPerBrowser: 1, allowPrivateNetwork: true, registry });
    try {
      await ex.execute(makeEvent(), null, [tagPartner(srv, 'ids', 'cookie-id')]);
      const events = await registry.getSingleMetric('tagstream_executor_events_total')?.get();
      expect(events?.values.find((v) => v.labels.result === 'ok')?.value).to.equal(1);
      const outcomes = await registry.getSingleMetric('tagstream_executor_partner_outcomes_total')?.get();
      expect(outcomes?.values.find((v) => v.labels.partner === 'ids')?.labels.status).to.equal('ok');
      expect(registry.getSingleMetric('tagstream_executor_script_changes_total')).to.not.equal(undefined);
    } finally {
      await ex.close();
    }
    // Existing callers: executorMetrics() is the set on prom-client's default registry, made once.
    expect(executorMetrics()).to.equal(executorMetrics(register));
    expect(register.getSingleMetric('tagstream_executor_events_total')).to.equal(executorMetrics().events);
    expect(executorMetrics(registry)).to.not.equal(executorMetrics());
  });
});
