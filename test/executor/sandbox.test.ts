import { expect } from 'chai';
import { chromiumArgs } from '../../processors/executor/index.ts';

describe('executor: Chromium sandbox flag', () => {
  it('keeps the OS sandbox unless told otherwise (partner code is untrusted)', () => {
    expect(chromiumArgs({ headless: 'shell', sandbox: true })).to.not.include('--no-sandbox');
    expect(chromiumArgs({ headless: 'shell', sandbox: false })).to.include('--no-sandbox');
  });

  it('defaults to no sandbox only as root, where Chromium refuses to start with it', () => {
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    expect(chromiumArgs({ headless: 'shell' }).includes('--no-sandbox')).to.equal(root);
  });
});
