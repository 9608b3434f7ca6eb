/**
 * Partner frames' storage keys and the tab's exchange with inject/frame-storage.js (no Chromium).
 */
import { expect } from 'chai';
import { FrameExchange, frameKeys, frameStorageKey, jarFrameOrigins, siteOf } from '../../processors/executor/page/frame-storage.ts';
import { frameStoragePath } from '../../processors/executor/in-page.ts';

describe('executor frame storage (pure)', () => {
  it('computes the top-level site with the public suffix list, private suffixes included', () => {
    expect(siteOf(new URL('https://shop.example/p'))).to.equal('https://shop.example');
    expect(siteOf(new URL('https://www.shop.co.uk/'))).to.equal('https://shop.co.uk');
    expect(siteOf(new URL('https://a.b.shop.com.au/'))).to.equal('https://shop.com.au');
    // github.io is a public suffix: each project page is its own site (the old two-label guess said github.io).
    expect(siteOf(new URL('https://shop.github.io/p/1'))).to.equal('https://shop.github.io');
    expect(siteOf(new URL('https://github.io/'))).to.equal('https://github.io');
    expect(siteOf(new URL('http://127.0.0.1:8080/'))).to.equal('http://127.0.0.1');
    expect(siteOf(new URL('http://[::1]:8080/'))).to.equal('http://[::1]');
    expect(siteOf(new URL('http://localhost/'))).to.equal('http://localhost');
  });

  it('gives a cross-site frame a partitioned key and a same-site frame its own', () => {
    const page = new URL('https://www.shop.example/p');
    expect(frameStorageKey('https://cdn.partner.example', page)).to.equal('https://cdn.partner.example/^0https://shop.example');
    expect(frameStorageKey('https://static.shop.example', page)).to.equal('https://static.shop.example/');
    const keys = frameKeys(new Set(['https://www.shop.example', 'https://f.example']), ['https://j.example'], page);
    expect([...keys.keys()]).to.deep.equal(['https://f.example', 'https://j.example']);
    const jar = { cookies: [], localStorage: { 'https://www.shop.example': {}, 'https://j.example': {}, 'chrome-extension://x': {} } };
    expect(jarFrameOrigins(jar, page)).to.deep.equal(['https://j.example']);
  });

  it("answers a frame's restore from the jar and keeps its pagehide snapshot", () => {
    const jar = { cookies: [], localStorage: { 'https://f.example': { fid: 'F1' } } };
    const x = new FrameExchange('tok', jar);
    const base = `https://f.example${frameStoragePath('tok')}`;
    const restore = x.answer(`${base}in`, 'GET', () => null);
    expect(restore?.status).to.equal(200);
    expect(JSON.parse(restore?.json?.toString() ?? '')).to.deep.equal({ fid: 'F1' });
    expect(JSON.parse(x.answer(`https://g.example${frameStoragePath('tok')}in`, 'GET', () => null)?.json?.toString() ?? '')).to.deep.equal({});
    expect(x.answer(`${base}out`, 'POST', () => '{"fid":"F2"}')).to.deep.equal({ status: 204, json: null });
    expect(x.snapshots.get('https://f.example')).to.deep.equal({ fid: 'F2' });
    expect(x.answer(`${base}out`, 'POST', () => 'not json')?.status).to.equal(204);
    // Another tab's token is not this exchange.
    expect(x.answer(`https://f.example${frameStoragePath('other')}in`, 'GET', () => null)).to.equal(null);
  });
});
