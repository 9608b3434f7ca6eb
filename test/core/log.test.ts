import { expect } from 'chai';
import { Writable } from 'node:stream';
import { componentLogger, createRootLogger } from '../../core/log.ts';

describe('core/log', () => {
  it('nested components are one key (processor.runner), never the same key twice in a line', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const root = createRootLogger({ level: 'info', destination });
    componentLogger(componentLogger(root, 'processor'), 'runner').info({ partition: 3 }, 'restored');
    expect(lines).to.have.length(1);
    expect(lines[0]?.match(/"component"/g)).to.have.length(1);
    expect(JSON.parse(lines[0] ?? '{}')).to.deep.include({ component: 'processor.runner', partition: 3, msg: 'restored' });
  });
});
