/**
 * A crash of the dispatcher (kill -9 of a child process) in the middle of a run: the next member
 * restores the delivered keys from the changelog and delivers the rest. Nothing is lost; a
 * duplicate is a request the partner answered before its key's changelog write was acknowledged,
 * so duplicates ≤ the in-flight limit (docs/dispatcher.md "Idempotency").
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PartnerConfigInput } from '../../core/contracts/index.ts';
import { realBroker } from '../helpers/kafka.ts';
import { waitFor } from '../runner/helpers.ts';
import { fakePartner, makeCert, requestRecord, type FakePartner } from './helpers.ts';
import { createDispatcherTopics, dispatcherSettings, FAST, Harness, names } from './setup.ts';

const A = 'collect.partner-a.example';
const N = 400;
const IN_FLIGHT = 16;
const child = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

describe('dispatcher: crash (kill -9) mid-run', function () {
  this.timeout(120_000);
  let h: Harness;
  let a: FakePartner;
  let proc: ChildProcess | undefined;
  afterEach(async () => {
    proc?.kill('SIGKILL');
    await h.close();
    await a.close();
  });

  it(`duplicates ≤ the in-flight limit (${IN_FLIGHT}), none lost`, async () => {
    h = new Harness();
    const cert = makeCert([A]);
    a = await fakePartner(cert, () => ({ status: 204, delayMs: 25 }));
    const { topics, group } = names();
    const admin = h.client();
    await createDispatcherTopics(admin, topics);
    const partners: PartnerConfigInput[] = [{ id: 'pa', html: '', captureHosts: [A], delivery: { concurrency: 64 } }];
    const dispatcher = { ...FAST, concurrency: IN_FLIGHT, resolve: [`${A}:443=127.0.0.1:${a.port}`], topics: { retry: topics.retry, delivered: topics.delivered } };
    const producer = await admin.producer();
    await producer.send(Array.from({ length: N }, (_, i) => requestRecord(`c-${i}`, 'pa', `https://${A}/hit`)).map((r) => ({ topic: topics.requests, key: String(r.userId), value: JSON.stringify(r) })));
    await producer.close();

    proc = spawn(process.execPath, ['--import', 'tsx', child], {
      env: { ...process.env, DISPATCHER_CHILD: JSON.stringify({ brokers: realBroker().brokers, topics, group, partners, dispatcher, ca: cert.cert }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const running = proc;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    await waitFor('a quarter delivered by the child', () => a.delivered().size >= N / 4, 60_000);
    running.kill('SIGKILL');
    await exited;
    const atCrash = a.delivered().size;

    const d = await h.start(dispatcherSettings(topics, group), partners, dispatcher, cert.cert);
    await waitFor('every request delivered', () => a.delivered().size >= N, 90_000);
    const duplicates = [...a.delivered().values()].reduce((s, n) => s + n - 1, 0);
    console.log(`      crash figures: ${N} requests, ${atCrash} delivered before kill -9, ${duplicates} duplicates after restart (in-flight limit ${IN_FLIGHT}), ${d.stats().duplicates} skipped by the idempotency store`);
    expect(a.delivered().size, 'none lost').to.equal(N);
    expect(duplicates).to.be.at.most(IN_FLIGHT);
  });
});
