/**
 * Hostile and buggy partner tags through the real processor (Chromium + the real Kafka broker):
 * one tag must neither stop the processor nor wipe the other partners' visitor ids. The tags are
 * inline scripts as operators' partners ship them; every send is captured, never sent.
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { parsePartners, type EventDeadLetter, type RequestRecord, type StoredJar } from '../../core/contracts/index.ts';
import { silentLogger } from '../../core/log.ts';
import { loadSettings, type Settings } from '../../runtime/config.ts';
import { createKafkaClient } from '../../runtime/kafka/index.ts';
import type { ConsumedRecord } from '../../runtime/kafka/types.ts';
import { createProcessorRole } from '../../runtime/roles/index.ts';
import { createTopics } from '../../runtime/topics.ts';
import { realBroker, uniqueTopic } from '../helpers/kafka.ts';
import { readAll, waitFor } from '../runner/helpers.ts';

const PARTITIONS = 2;
const parse = <T>(r: ConsumedRecord): T => JSON.parse(r.value!.toString('utf8')) as T;

function settingsFor(prefix: string): Settings {
  return loadSettings({
    env: {},
    flags: {
      brokers: realBroker().brokers,
      partitions: PARTITIONS,
      requestPartitions: PARTITIONS,
      topics: { events: `${prefix}-events`, cookies: `${prefix}-cookies`, requests: `${prefix}-requests`, requestsDlq: `${prefix}-requests-dlq`, eventsDlq: `${prefix}-events-dlq` },
      groups: { processor: `${prefix}-processor` },
      state: { store: 'memory' },
      executor: { pagesPerBrowser: 2 },
      runner: { sessionTimeoutMs: 10_000 },
    },
  });
}

const event = (eventId: string, userId: string, data: Record<string, unknown> = {}): string =>
  JSON.stringify({ eventId, userId, timestamp: '2026-12-01T10:00:00.000Z', page: { url: 'https://shop.example/p/1' }, consent: { analytics: true }, data });

/** A well-behaved partner: an id in localStorage and in a cookie, sent by a pixel; a second value on later views. */
const GOOD = {
  id: 'good',
  captureHosts: ['collect.good.example'],
  html: `<script>
    var id = localStorage.getItem('good_id') || 'g-' + dataLayer[0].n;
    localStorage.setItem('good_id', id);
    if (dataLayer[0].n > 1) localStorage.setItem('good_seen', 'yes');
    document.cookie = 'good_c=' + id + '; path=/; max-age=3600';
    new Image().src = 'https://collect.good.example/p?id=' + id;
  </script>`,
};
const HOG = {
  id: 'hog',
  consent: 'hog',
  html: "<script>var s='x'.repeat(1048576);for(var i=0;i<4;i++)localStorage.setItem('k'+i,s);for(var j=0;j<60;j++)document.cookie='c'+j+'='+'z'.repeat(3000)+'; path=/; max-age=3600';</script>",
};
const LOOPER = { id: 'looper', consent: 'looper', timeoutMs: 2000, html: '<script>while(true){}</script>' };
const POSTER = {
  id: 'poster',
  consent: 'poster',
  captureHosts: ['collect.poster.example'],
  html: "<script>fetch('https://collect.poster.example/batch', { method: 'POST', body: 'b'.repeat(2 * 1024 * 1024) });</script>",
};

describe('hostile partner tags through the processor (real Chromium, real broker)', function () {
  this.timeout(180_000);

  it('a hog, a looping neighbour and a 2 MB poster: the processor goes on, jars stay within the budget, the good partner keeps its ids', async () => {
    const settings = settingsFor(uniqueTopic('hostile'));
    const client = createKafkaClient('platformatic', { brokers: settings.brokers, clientId: 'hostile' });
    const admin = await client.admin();
    await createTopics(admin, settings);
    await admin.close();
    const role = createProcessorRole({ settings: { ...settings, executor: { ...settings.executor, allowPrivateNetwork: false } }, client, partners: parsePartners([GOOD, HOG, LOOPER, POSTER]), registry: new Registry(), logger: silentLogger() });
    const producer = await client.producer();
    const { topics } = settings;
    await role.start();
    try {
      await producer.send([
        // hog visitor: the hog runs beside the good partner, twice.
        { topic: topics.events, key: 'v-hog', value: event('h1', 'v-hog', { n: 1 }).replace('"analytics":true', '"analytics":true,"hog":true') },
        { topic: topics.events, key: 'v-hog', value: event('h2', 'v-hog', { n: 2 }).replace('"analytics":true', '"analytics":true,"hog":true') },
        // looping neighbour: the good partner's first and second values must both survive.
        { topic: topics.events, key: 'v-loop', value: event('l1', 'v-loop', { n: 1 }).replace('"analytics":true', '"analytics":true,"looper":true') },
        { topic: topics.events, key: 'v-loop', value: event('l2', 'v-loop', { n: 2 }).replace('"analytics":true', '"analytics":true,"looper":true') },
        { topic: topics.events, key: 'v-post', value: event('p1', 'v-post', { n: 1 }).replace('"analytics":true', '"analytics":true,"poster":true') },
        { topic: topics.events, key: 'v-calm', value: event('c1', 'v-calm', { n: 1 }) },
      ]);
      const status = (): ReturnType<typeof role.readiness> => role.readiness();
      await waitFor('every event processed (or the processor stopped)', async () => {
        const jars = await readAll(client, topics.cookies, PARTITIONS);
        return jars.length >= 6 || !status().ready;
      }, 150_000, 500);
      expect(status(), 'the processor still runs').to.deep.equal({ ready: true, reasons: [] });

      const jars = await readAll(client, topics.cookies, PARTITIONS);
      const last = (user: string): StoredJar => parse<StoredJar>(jars.filter((r) => r.key?.toString() === user).at(-1)!);
      for (const r of jars) expect(r.value!.length, `jar of ${r.key?.toString()}`).to.be.at.most(settings.limits.jar.jarBytes + 100);
      const hogJar = last('v-hog');
      expect(hogJar.localStorage['https://shop.example']?.good_id, "the good partner's id survives the hog").to.equal('g-1');
      expect(hogJar.cookies.find((c) => c.name === 'good_c')?.value).to.equal('g-1');
      const loopJar = last('v-loop');
      expect(loopJar.localStorage['https://shop.example'], 'first and second values of the good partner, despite the looping neighbour').to.deep.include({ good_id: 'g-1', good_seen: 'yes' });
      expect(last('v-calm').localStorage['https://shop.example']).to.deep.equal({ good_id: 'g-1' });

      const requests = (await readAll(client, topics.requests, PARTITIONS)).map((r) => parse<RequestRecord>(r));
      const goodPixels = requests.filter((r) => r.partner === 'good').map((r) => `${r.userId}:${new URL(r.url).searchParams.get('id') ?? ''}`);
      expect(goodPixels.sort()).to.deep.equal(['v-calm:g-1', 'v-hog:g-1', 'v-hog:g-1', 'v-loop:g-1', 'v-loop:g-1', 'v-post:g-1']);
      expect(requests.filter((r) => r.partner === 'poster'), 'the 2 MB body is not published').to.deep.equal([]);
      const letters = (await readAll(client, topics.eventsDlq, PARTITIONS)).map((r) => parse<EventDeadLetter>(r));
      expect(letters.map((l) => [l.reason, l.code])).to.deep.equal([['output-too-large', 'ERR_KAFKA_RECORD_TOO_LARGE']]);
      expect(letters[0]?.error).to.match(/poster|collect\.poster/);
    } finally {
      await role.stop(10_000);
      await producer.close();
      await client.close();
    }
  });
});
