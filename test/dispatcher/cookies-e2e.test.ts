/**
 * Set-Cookie from a partner → a jar-merge record on the events topic → the visitor's next page
 * view in the processor runs with that cookie (fake executor, real broker, real dispatcher).
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import type { JarCookie, JarMergeRecord } from '../../core/contracts/index.ts';
import { loadSettings } from '../../runtime/config.ts';
import { startProcessor } from '../../runtime/roles/processor.ts';
import { createTopics } from '../../runtime/topics.ts';
import type { Executor } from '../../topology/app/processor.ts';
import { waitFor } from '../runner/helpers.ts';
import { fakePartner, makeCert, requestRecord, type FakePartner } from './helpers.ts';
import { dispatcherSettings, FAST, Harness, names, PARTITIONS, readJson } from './setup.ts';

const B = 'collect.partner-b.example';

describe('dispatcher → processor: a partner cookie reaches the next page view', function () {
  this.timeout(90_000);
  let h: Harness;
  let b: FakePartner;
  afterEach(async () => {
    await h.close();
    await b.close();
  });

  it('Set-Cookie → jar-merge on the events topic → the executor sees the cookie in the jar', async () => {
    h = new Harness();
    const cert = makeCert([B]);
    b = await fakePartner(cert, () => ({ status: 200, headers: { 'set-cookie': 'pbid=visitor-42; Domain=partner-b.example; Path=/; Max-Age=86400; Secure; SameSite=None' } }));
    const { topics, group } = names();
    const client = h.client();
    const processorSettings = loadSettings({
      env: {},
      flags: {
        partitions: PARTITIONS,
        requestPartitions: PARTITIONS,
        topics: { events: topics.events, cookies: `${topics.events}-cookies`, requests: topics.requests, requestsDlq: topics.dlq, eventsDlq: `${topics.events}-dlq` },
        groups: { processor: `${group}-processor` },
        state: { store: 'memory' },
        runner: { sessionTimeoutMs: 10_000 },
      },
    });
    const admin = await client.admin();
    await createTopics(admin, processorSettings);
    await admin.createTopics([
      { name: topics.retry, partitions: PARTITIONS },
      { name: topics.delivered, partitions: PARTITIONS, configs: { 'cleanup.policy': 'compact' } },
    ]);
    await admin.close();

    const seen: JarCookie[][] = [];
    const executor: Executor = (_event, jar) => {
      seen.push(jar?.cookies ?? []);
      return Promise.resolve({ requests: [], jar: jar ?? { cookies: [], localStorage: {} }, trackers: [] });
    };
    const processor = await startProcessor({ settings: processorSettings, client: h.client(), executor, registry: new Registry() });
    try {
      await h.start(dispatcherSettings(topics, group), [{ id: 'pb', html: '', captureHosts: [B] }], { ...FAST, resolve: [`${B}:443=127.0.0.1:${b.port}`], topics: { retry: topics.retry, delivered: topics.delivered } }, cert.cert);
      const request = requestRecord('ck-1', 'pb', `https://${B}/hit`);
      const producer = await client.producer();
      await producer.send([{ topic: topics.requests, key: String(request.userId), value: JSON.stringify(request) }]);
      await waitFor('jar-merge written', async () => (await readJson<JarMergeRecord>(client, topics.events)).length >= 1, 30_000);
      await producer.send([
        {
          topic: topics.events,
          key: String(request.userId),
          value: JSON.stringify({ eventId: 'pv-2', userId: request.userId, timestamp: new Date().toISOString(), type: 'page_view', page: { url: 'https://shop.example/next' }, device: { userAgent: 'Mozilla/5.0 (test visitor)' } }),
        },
      ]);
      await producer.close();
      await waitFor('the next page view executed', () => seen.length >= 1, 30_000);
      expect(seen[0]?.find((c) => c.name === 'pbid')).to.deep.include({ value: 'visitor-42', domain: '.partner-b.example', secure: true, sameSite: 'None' });
    } finally {
      await processor.stop(2_000);
    }
  });
});
