/**
 * The in-page scripts (processors/executor/inject/*.js) as the tabs get them, and the one URL
 * matcher the page and the router share. No Chromium: the bundles are compiled, not run.
 */
import { expect } from 'chai';
import {
  asScriptBody,
  BOOTSTRAP_FUNCTION,
  BOOTSTRAP_INJECTION,
  bundleOf,
  compact,
  frameStorageInjection,
  workerHook,
} from '../../processors/executor/in-page.ts';
import { entryMatch, longestMatch, matchPolicy } from '../../processors/executor/egress.ts';
import { ExecutorUnavailableError } from '../../core/errors.ts';

describe('executor in-page scripts', () => {
  it('assemble into sources that compile, with no comment lines and nothing that ends a <script>', () => {
    for (const source of [BOOTSTRAP_FUNCTION, BOOTSTRAP_INJECTION, frameStorageInjection('t0k3n'), workerHook({ hardwareConcurrency: 4, deviceMemory: null })]) {
      expect(() => new Function(source)).not.to.throw();
      expect(source).not.to.match(/<\/script|<!--/i);
      expect(source.split('\n').some((l) => l.startsWith('//') || l.startsWith('/*'))).to.equal(false);
      expect(source).not.to.match(/^\s*(import|export)\b/m);
    }
    // The bootstrap carries the router's matcher itself, not a copy.
    expect(BOOTSTRAP_FUNCTION).to.contain('function entryMatch(entry, url)');
    expect(BOOTSTRAP_FUNCTION).to.contain('function longestMatch(entries, url)');
  });

  it('follow imports once and refuse what plain concatenation cannot keep', () => {
    const files: Record<string, string> = {
      'a.js': "import { b } from './b.js';\nimport { c } from './c.js';\nexport function a() { return b() + c(); }",
      'b.js': "import { c } from './c.js';\nexport function b() { return c(); }",
      'c.js': 'export function c() { return 1; }',
    };
    const text = bundleOf('a.js', (f) => files[f] ?? '');
    expect(text.split('\n')).to.deep.equal(['function c() { return 1; }', 'function b() { return c(); }', 'function a() { return b() + c(); }']);
    expect(() => bundleOf('x.js', (f) => (f === 'x.js' ? "import { y } from './y.js';\nfunction c() {}" : 'function c() {}'))).to.throw(
      ExecutorUnavailableError,
      /function c is also declared/,
    );
    expect(() => asScriptBody('d.js', 'export default function () {}')).to.throw(ExecutorUnavailableError, /unsupported module syntax/);
    expect(() => asScriptBody('d.js', "import * as x from './x.js';")).to.throw(ExecutorUnavailableError);
    expect(() => asScriptBody('d.js', 'export const X = 1;')).to.throw(ExecutorUnavailableError);
  });

  it('compact drops comment lines and indentation, keeps code after a closing comment', () => {
    const src = ['/**', ' * doc', ' */', 'function f() {', '  // why', '  var x = /** @type {number} */ (1);', '  /* a */ return x;', '}'].join('\n');
    expect(compact(src)).to.equal(['function f() {', 'var x = /** @type {number} */ (1);', 'return x;', '}'].join('\n'));
  });
});

describe('executor URL matcher (shared by the page and the router)', () => {
  const entries = [
    { partner: 'a', kind: 'allow' as const, entry: 'cdn.shared.example' },
    { partner: 'b', kind: 'capture' as const, entry: 'CDN.shared.example' },
    { partner: 'a', kind: 'capture' as const, entry: 'https://cdn.shared.example/a/' },
  ];

  it('lets the longest entry decide and says when another partner matches as well', () => {
    const u = new URL('https://cdn.shared.example/x.js');
    expect(longestMatch(entries, u)).to.deep.equal({ match: entries[0], shared: true });
    expect(longestMatch(entries, new URL('https://cdn.shared.example/a/p'))).to.deep.equal({ match: entries[2], shared: false });
    expect(longestMatch(entries, new URL('https://other.example/'))).to.deep.equal({ match: null, shared: false });
    expect(matchPolicy(entries, 'https://cdn.shared.example/a/p')?.kind).to.equal('capture');
    expect(matchPolicy(entries, 'not a url')).to.equal(null);
  });

  it('normalises URL-prefix entries as the URL parser writes them, and compares ports with defaults', () => {
    expect(entryMatch('https://CDN.p.example:443/p.js', new URL('https://cdn.p.example/p.js?v=1'))).to.be.greaterThan(1000);
    expect(entryMatch('https://[not a url', new URL('https://cdn.p.example/'))).to.equal(0);
    expect(entryMatch('cdn.p.example:80', new URL('http://cdn.p.example/'))).to.be.greaterThan(500);
    expect(entryMatch('cdn.p.example:80', new URL('https://cdn.p.example/'))).to.equal(0);
  });
});
