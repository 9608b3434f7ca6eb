import { expect } from 'chai';
import {
  eventDeadLetter,
  eventDeadLetterSchema,
  mergeCookies,
  parseEventsTopicValue,
  parsePartners,
  parseRequestRecord,
  type JarCookie,
} from '../../core/contracts/index.ts';
import { InvalidInputError, TopologyNodeFailedError } from '../../core/errors.ts';

const event = { eventId: 'e1', userId: 'u1', timestamp: '2026-11-29T10:00:00.000Z', page: { url: 'https://shop.example/' } };
const cookie = (name: string, value: string, over: Partial<JarCookie> = {}): JarCookie => ({
  name,
  value,
  domain: 'shop.example',
  path: '/',
  expires: -1,
  httpOnly: false,
  secure: false,
  sameSite: 'Lax',
  ...over,
});

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidInputError);
    return String((error as InvalidInputError).context.field);
  }
  throw new Error('expected an InvalidInputError');
}

describe('core/contracts', () => {
  describe('values of tracking.events', () => {
    it('a page view gets its defaults; control records are told apart by type', () => {
      const view = parseEventsTopicValue(event);
      expect(view.kind).to.equal('event');
      if (view.kind === 'event') expect(view.event).to.deep.include({ type: 'page_view', consent: {}, data: {} });
      expect(parseEventsTopicValue({ type: 'erase' })).to.deep.equal({ kind: 'erase', record: { type: 'erase' } });
      const merge = parseEventsTopicValue({ type: 'jar-merge', cookies: [{ name: 'id', value: '1', domain: 'p.example' }] });
      expect(merge.kind).to.equal('jar-merge');
      if (merge.kind === 'jar-merge') expect(merge.record.cookies[0]).to.deep.include({ path: '/', expires: -1, sameSite: 'Lax' });
    });

    it('a malformed value is an InvalidInputError naming the field', () => {
      expect(fieldOf(() => parseEventsTopicValue({ ...event, page: { url: 'javascript:alert(1)' } }))).to.equal('event.page.url');
      expect(fieldOf(() => parseEventsTopicValue({ ...event, eventId: '' }))).to.equal('event.eventId');
      expect(fieldOf(() => parseEventsTopicValue({ type: 'jar-merge', cookies: [] }))).to.equal('event.cookies');
      expect(fieldOf(() => parseEventsTopicValue({ type: 'jar-merge', cookies: [{ name: 'a', value: 'b', domain: 'x', sameSite: 'Sometimes' }] }))).to.equal('event.cookies[0].sameSite');
      expect(fieldOf(() => parseEventsTopicValue(null))).to.equal('event');
      expect(fieldOf(() => parseEventsTopicValue([event]))).to.equal('event');
    });
  });

  describe('jar merge (Set-Cookie semantics)', () => {
    it('replaces the cookie with the same name, domain and path, keeps others, removes expired ones', () => {
      const jar = { cookies: [cookie('a', '1'), cookie('b', '1'), cookie('a', 'other-path', { path: '/x' })], localStorage: {} };
      const merged = mergeCookies(jar, [cookie('a', '2', { domain: '.shop.example' }), cookie('b', '', { expires: 100 }), cookie('c', '3')], 1_000);
      expect(merged.cookies.map((c) => `${c.name}${c.path}=${c.value}`).sort()).to.deep.equal(['a/=2', 'a/x=other-path', 'c/=3']);
      expect(jar.cookies).to.have.length(3);
    });
  });

  describe('partners', () => {
    it('delivery options default as the dispatcher documents them; a bad one names the field', () => {
      const [p] = parsePartners([{ id: 'p1', html: '' }]);
      expect(p?.delivery).to.deep.equal({ forwardIp: 'truncated', retryWindowMs: 4 * 60 * 60 * 1000, concurrency: 32, timeoutMs: 10_000 });
      expect(fieldOf(() => parsePartners([{ id: 'p1', html: '', delivery: { forwardIp: 'half' } }]))).to.equal('partners[0].delivery.forwardIp');
      expect(fieldOf(() => parsePartners([{ id: 'p1', html: '', delivery: { retries: 3 } }]))).to.equal('partners[0].delivery');
      expect(fieldOf(() => parsePartners([{ id: 'p1', html: '' }, { id: 'p1', html: '' }]))).to.equal('partners[1].id');
    });
  });

  describe('request records and dead letters', () => {
    it('a request record needs its idempotency key', () => {
      const request = { partner: 'p1', method: 'GET', url: 'https://c.example/p', transport: 'image', eventId: 'e1', userId: 'u1', idempotencyKey: 'e1:p1:0' };
      expect(parseRequestRecord(request)).to.deep.include({ headers: {}, body: null, bodyEncoding: 'utf8' });
      expect(fieldOf(() => parseRequestRecord({ ...request, idempotencyKey: undefined }))).to.equal('request.idempotencyKey');
      expect(fieldOf(() => parseRequestRecord({ ...request, transport: 'pigeon' }))).to.equal('request.transport');
    });

    it('one events-DLQ shape: why, where from, attempts, the raw bytes', () => {
      const letter = eventDeadLetter({
        reason: 'processing-failed',
        error: new TopologyNodeFailedError('node "x" failed: boom'),
        attempts: 1,
        source: { topic: 'tracking.events', partition: 2, offset: 7, timestamp: 5 },
        value: Buffer.from([0xff, 0x00]),
        now: () => 0,
      });
      expect(eventDeadLetterSchema.parse(letter)).to.deep.equal({
        reason: 'processing-failed',
        code: 'ERR_TOPOLOGY_NODE_FAILED',
        error: 'node "x" failed: boom',
        source: { topic: 'tracking.events', partition: 2, offset: 7, timestamp: 5 },
        attempts: 1,
        value: Buffer.from([0xff, 0x00]).toString('base64'),
        valueEncoding: 'base64',
        failedAt: '1970-01-01T00:00:00.000Z',
      });
      expect(eventDeadLetter({ reason: 'invalid-event', error: 'x', attempts: 0, source: { topic: 't', partition: 0, offset: 0, timestamp: 0 }, value: null }).code).to.equal('ERR_UNKNOWN');
    });
  });
});
