/**
 * runtime/roles/compose.ts without a broker or a browser: fake roles behind the real HTTP endpoint,
 * probed over HTTP as a load balancer would; the broker probe against a closed loopback port.
 */
import { expect } from 'chai';
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import { createEmbeddedClient } from '../../runtime/kafka/embedded/index.ts';
import { freePort } from '../../runtime/kafka-local/broker.ts';
import { createBrokerProbe } from '../../runtime/roles/broker-probe.ts';
import { startRoles, type RunningRoles, type StartRolesOptions } from '../../runtime/roles/compose.ts';
import { READY, type Readiness, type Role, type RoleName } from '../../runtime/roles/role.ts';

interface FakeRole extends Role {
  state: Readiness;
  events: string[];
  /** Makes start() wait until released. */
  holdStart(): () => void;
  /** Makes stop() wait until released. */
  holdStop(): () => void;
  fail(error: Error): void;
  failStart?: Error;
}

function fakeRole(name: RoleName, events: string[] = []): FakeRole {
  let resolveClosed!: () => void;
  let rejectClosed!: (e: unknown) => void;
  const closed = new Promise<void>((resolve, reject) => {
    resolveClosed = resolve;
    rejectClosed = reject;
  });
  closed.catch(() => undefined);
  let startGate: Promise<void> = Promise.resolve();
  let stopGate: Promise<void> = Promise.resolve();
  const role: FakeRole = {
    name,
    closed,
    state: READY,
    events,
    async start() {
      events.push(`start ${name}`);
      await startGate;
      if (role.failStart) throw role.failStart;
    },
    async stop() {
      events.push(`stop ${name}`);
      await stopGate;
      resolveClosed();
    },
    readiness: () => role.state,
    holdStart() {
      let release!: () => void;
      startGate = new Promise((r) => (release = r));
      return release;
    },
    holdStop() {
      let release!: () => void;
      stopGate = new Promise((r) => (release = r));
      return release;
    },
    fail: (error) => rejectClosed(error),
  };
  return role;
}

const endpoint: StartRolesOptions = { metrics: { host: '127.0.0.1', port: 9464 }, port: 0, registry: new Registry(), signals: [] };

async function getReady(running: RunningRoles): Promise<{ status: number; body: { status: string; reasons?: string[] } }> {
  const res = await request(`http://127.0.0.1:${running.address!.port}/ready`);
  return { status: res.statusCode, body: (await res.body.json()) as { status: string; reasons?: string[] } };
}

async function getHealth(running: RunningRoles): Promise<number> {
  const res = await request(`http://127.0.0.1:${running.address!.port}/health`);
  await res.body.dump();
  return res.statusCode;
}

/** Polls /ready until `accept` holds (bounded: 100 polls, ~10 s); returns the last answer. */
async function readyUntil(running: RunningRoles, accept: (r: Awaited<ReturnType<typeof getReady>>) => boolean): Promise<Awaited<ReturnType<typeof getReady>>> {
  let last = await getReady(running);
  for (let i = 0; i < 100 && !accept(last); i++) {
    await new Promise((r) => setTimeout(r, 100));
    last = await getReady(running);
  }
  return last;
}

async function closedLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('roles composition (runtime/roles/compose.ts)', function () {
  this.timeout(30_000);

  it('/health 200; /ready 503 with the role\'s reason while it is not ready, 200 once it is', async () => {
    const role = fakeRole('processor');
    role.state = { ready: false, reasons: ['processor: 2 of 6 partitions restoring'] };
    const running = await startRoles([role], endpoint);
    try {
      expect(await getHealth(running)).to.equal(200);
      expect(await getReady(running)).to.deep.equal({ status: 503, body: { status: 'not-ready', reasons: ['processor: 2 of 6 partitions restoring'] } });
      role.state = READY;
      expect(await getReady(running)).to.deep.equal({ status: 200, body: { status: 'ready' } });
    } finally {
      await running.stop();
    }
  });

  it('starts roles in order, stops them in reverse; while a role starts, /health is 200 and /ready 503 says so', async () => {
    const events: string[] = [];
    const first = fakeRole('collector', events);
    const second = fakeRole('processor', events);
    const release = second.holdStart();
    // A known port: the endpoint is up before startRoles resolves (the roles start behind it).
    const port = await freePort();
    const started = startRoles([first, second], { ...endpoint, port });
    try {
      for (let i = 0; i < 200 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(events).to.deep.equal(['start collector', 'start processor']);
      const health = await request(`http://127.0.0.1:${port}/health`);
      await health.body.dump();
      expect(health.statusCode).to.equal(200);
      const ready = await request(`http://127.0.0.1:${port}/ready`);
      expect(ready.statusCode).to.equal(503);
      expect(await ready.body.json()).to.deep.equal({ status: 'not-ready', reasons: ['processor: starting'] });
    } finally {
      release();
    }
    const running = await started;
    expect(running.readiness()).to.deep.equal({ ready: true, reasons: [] });
    await running.stop();
    expect(events).to.deep.equal(['start collector', 'start processor', 'stop processor', 'stop collector']);
  });

  it('draining: /ready turns 503 as soon as stop() begins, before the roles have stopped; /health still 200', async () => {
    const role = fakeRole('processor');
    const running = await startRoles([role], endpoint);
    expect((await getReady(running)).status).to.equal(200);
    const release = role.holdStop();
    const stopped = running.stop();
    try {
      const during = await getReady(running);
      expect(during.status).to.equal(503);
      expect(during.body.reasons).to.include('draining: the process is shutting down');
      expect(await getHealth(running)).to.equal(200);
      expect(role.events).to.include('stop processor');
    } finally {
      release();
    }
    await stopped;
    await running.closed;
  });

  it('a role whose `closed` rejects stops the others and `closed` rejects with its error (the CLI exits 1)', async () => {
    const events: string[] = [];
    const a = fakeRole('collector', events);
    const b = fakeRole('processor', events);
    const running = await startRoles([a, b], endpoint);
    b.fail(new Error('runner failed'));
    const outcome = await running.closed.then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    expect(outcome).to.equal('runner failed');
    expect(events.slice(2)).to.deep.equal(['stop processor', 'stop collector']);
  });

  it('a start that fails stops the roles already started and rejects with its error; later roles never start', async () => {
    const events: string[] = [];
    const a = fakeRole('collector', events);
    const b = fakeRole('processor', events);
    const c = fakeRole('dispatcher', events);
    b.failStart = new Error('cannot join the group');
    const outcome = await startRoles([a, b, c], endpoint).then(
      () => 'started',
      (e: Error) => e.message,
    );
    expect(outcome).to.equal('cannot join the group');
    expect(events).to.deep.equal(['start collector', 'start processor', 'stop processor', 'stop collector']);
  });

  it('metrics.port 0 without an explicit port: no endpoint (the setting turns it off)', async () => {
    const running = await startRoles([fakeRole('processor')], { metrics: { host: '127.0.0.1', port: 0 }, signals: [] });
    expect(running.address).to.equal(undefined);
    expect(running.readiness().ready).to.equal(true);
    await running.stop();
  });

  it('a port in use fails with ERR_METRICS_LISTEN before any role starts', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const role = fakeRole('processor');
    try {
      const err = await startRoles([role], { ...endpoint, port }).then(
        () => undefined,
        (e: { code: string }) => e,
      );
      expect(err?.code).to.equal('ERR_METRICS_LISTEN');
      expect(role.events).to.deep.equal([]);
    } finally {
      blocker.close();
    }
  });

  it('a signal drains and stops the roles; the listeners are removed afterwards', async () => {
    const role = fakeRole('processor');
    const running = await startRoles([role], { ...endpoint, signals: ['SIGUSR2'] });
    process.emit('SIGUSR2', 'SIGUSR2');
    expect(running.readiness().reasons).to.include('draining: the process is shutting down');
    await running.closed;
    expect(role.events).to.deep.equal(['start processor', 'stop processor']);
    expect(process.listenerCount('SIGUSR2')).to.equal(0);
  });

  describe('broker probe (runtime/roles/broker-probe.ts)', () => {
    it('/ready is 503 "kafka: broker unreachable (…)" while the broker does not answer', async () => {
      const port = await closedLoopbackPort();
      const client = createKafkaClient('platformatic', { brokers: [`127.0.0.1:${port}`], clientId: 'probe-test', connectTimeoutMs: 500, requestTimeoutMs: 1000 });
      const probe = createBrokerProbe({ client, intervalMs: 200, timeoutMs: 1000 });
      const running = await startRoles([fakeRole('processor')], { ...endpoint, sources: [probe] });
      try {
        const answer = await readyUntil(running, (r) => (r.body.reasons ?? []).some((x) => x.startsWith('kafka: broker unreachable')));
        expect(answer.status).to.equal(503);
        expect(answer.body.reasons?.join('\n')).to.match(/^kafka: broker unreachable \(.+\)$/m);
      } finally {
        await running.stop();
        await client.close();
      }
      expect(probe.readiness().ready).to.equal(false);
    });

    it('is always ready on the embedded broker', async () => {
      const probe = createBrokerProbe({ client: createEmbeddedClient() });
      probe.start();
      expect(probe.readiness()).to.deep.equal(READY);
      expect(await probe.check()).to.deep.equal(READY);
      await probe.close();
    });
  });
});
