import { expect } from 'chai';
import { InvalidInputError } from '../../core/errors.ts';
import { consentGranted, parseEvent, parseJar, parsePartners } from '../../processors/executor/index.ts';
import { makeEvent } from './helpers.ts';

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidInputError);
    return String((err as InvalidInputError).context.field);
  }
  throw new Error('expected an InvalidInputError');
}

describe('executor input contracts', () => {
  it('accepts the DESIGN.md event and fills device defaults', () => {
    const e = parseEvent({ eventId: 'e', userId: 'u', timestamp: '2026-11-29T10:00:00.000Z', page: { url: 'https://s.example/' } });
    expect(e.device.viewport).to.deep.equal({ width: 1280, height: 720 });
    expect(e.consent).to.deep.equal({});
    expect(e.data).to.deep.equal({});
    expect(parseEvent(makeEvent()).device.language).to.equal('fr-FR');
  });

  it('names the offending field', () => {
    expect(fieldOf(() => parseEvent({ ...makeEvent(), timestamp: 'yesterday' }))).to.equal('event.timestamp');
    expect(fieldOf(() => parseEvent({ ...makeEvent(), page: { url: 'javascript:alert(1)' } }))).to.equal('event.page.url');
    expect(fieldOf(() => parseEvent({ ...makeEvent(), consent: { analytics: 'yes' } }))).to.equal('event.consent.analytics');
    expect(fieldOf(() => parsePartners([{ id: 'a', html: '', allowHosts: ['bad host/'] }]))).to.equal('partners[0].allowHosts[0]');
    expect(fieldOf(() => parsePartners([{ id: 'a', html: '' }, { id: 'a', html: '' }]))).to.equal('partners[1].id');
    expect(fieldOf(() => parsePartners({}))).to.equal('partners');
    expect(fieldOf(() => parseJar({ cookies: [{ name: 'a', value: 'b', domain: 'x', sameSite: 'lax' }] }))).to.equal(
      'jar.cookies[0].sameSite',
    );
  });

  it('accepts host, host:port, [v6]:port and URL prefix entries', () => {
    const [p] = parsePartners([
      { id: 'a', html: '', allowHosts: ['cdn.a.example', '127.0.0.1:8080', '[::1]:9', 'https://cdn.a.example/t.js'] },
    ]);
    expect(p?.timeoutMs).to.equal(5000);
  });

  it('runs a partner only when every purpose it needs is granted', () => {
    const [none, one, both] = parsePartners([
      { id: 'n', html: '' },
      { id: 'o', html: '', consent: 'analytics' },
      { id: 'b', html: '', consent: ['analytics', 'advertising'] },
    ]);
    const consent = { analytics: true, advertising: false };
    expect([none, one, both].map((p) => (p ? consentGranted(p, consent) : null))).to.deep.equal([true, true, false]);
    expect(one ? consentGranted(one, {}) : null).to.equal(false);
  });
});
