import { expect } from 'chai';
import { enforceJarBudget, jarBudgetSchema, jarBytes, type Jar, type JarCookie } from '../../core/contracts/index.ts';

const cookie = (name: string, value: string, domain = 'shop.example'): JarCookie => ({ name, value, domain, path: '/', expires: -1, httpOnly: false, secure: true, sameSite: 'Lax' });

describe('core/contracts: the jar budget', () => {
  it('keeps a jar within every limit as it is', () => {
    const jar: Jar = { cookies: [cookie('id', 'abc')], localStorage: { 'https://shop.example': { pid: '42' } } };
    const out = enforceJarBudget(jar);
    expect(out.dropped).to.deep.equal([]);
    expect(out.jar).to.equal(jar);
  });

  it("drops a hog's large values first and keeps the other partners' small ids, within the total", () => {
    const big = 'x'.repeat(1024 * 1024);
    const jar: Jar = {
      cookies: [cookie('_pa_id', 'pa-1'), ...Array.from({ length: 60 }, (_, i) => cookie(`c${i}`, 'z'.repeat(3000)))],
      localStorage: {
        'https://shop.example': { k0: big, k1: big, k2: big, k3: big, pb_id: 'pb-7' },
        'https://frame.partner.example': { small: 'v1' },
      },
    };
    const budget = jarBudgetSchema.parse({ jarBytes: 64 * 1024, originStorageBytes: 32 * 1024 });
    const out = enforceJarBudget(jar, budget);
    expect(jarBytes(out.jar)).to.be.at.most(64 * 1024);
    expect(out.jar.localStorage['https://shop.example']).to.deep.equal({ pb_id: 'pb-7' });
    expect(out.jar.localStorage['https://frame.partner.example']).to.deep.equal({ small: 'v1' });
    expect(out.jar.cookies.map((c) => c.name)).to.include('_pa_id');
    expect(out.dropped.filter((d) => d.limit === 'originStorageBytes').map((d) => d.name).sort()).to.deep.equal(['k0', 'k1', 'k2', 'k3']);
    expect(out.dropped.some((d) => d.limit === 'jarBytes' && d.kind === 'cookie')).to.equal(true);
    for (const d of out.dropped) expect(d).to.not.have.property('value');
  });

  it('is deterministic, bounds cookies per domain and per cookie like a browser', () => {
    const jar: Jar = {
      cookies: [cookie('huge', 'h'.repeat(5000)), ...Array.from({ length: 5 }, (_, i) => cookie(`n${i}`, 'v'.repeat(i + 1), 'ads.example'))],
      localStorage: {},
    };
    const budget = jarBudgetSchema.parse({ cookiesPerDomain: 3 });
    const a = enforceJarBudget(jar, budget);
    const b = enforceJarBudget(structuredClone(jar), budget);
    expect(a).to.deep.equal(b);
    expect(a.jar.cookies.map((c) => c.name)).to.deep.equal(['n0', 'n1', 'n2']);
    expect(a.dropped.map((d) => [d.name, d.limit])).to.deep.equal([
      ['huge', 'cookieBytes'],
      ['n4', 'cookiesPerDomain'],
      ['n3', 'cookiesPerDomain'],
    ]);
  });
});
