import { expect } from 'chai';
import { assignCoPartitioned } from '../../runtime/kafka/co-partitioned-assignment.ts';

describe('co-partitioned group assignment', () => {
  const counts = new Map([['requests', 6], ['requests.retry', 6]]);

  it('gives partition p of every topic to the same member', () => {
    const a = assignCoPartitioned(['m-b', 'm-a'], counts);
    for (const byTopic of a.values()) {
      expect(byTopic.get('requests')).to.deep.equal(byTopic.get('requests.retry'));
    }
    expect(a.get('m-a')?.get('requests')).to.deep.equal([0, 2, 4]);
    expect(a.get('m-b')?.get('requests')).to.deep.equal([1, 3, 5]);
  });

  it('covers every partition exactly once and splits within one of even', () => {
    const a = assignCoPartitioned(['x', 'y', 'z', 'w'], counts);
    const owned = [...a.values()].map((t) => t.get('requests') ?? []);
    expect(owned.flat().sort((p, q) => p - q)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    const sizes = owned.map((o) => o.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).to.be.at.most(1);
  });

  it('is the same whatever order the members come in (every member computes the same answer)', () => {
    const one = assignCoPartitioned(['a', 'b', 'c'], counts);
    const two = assignCoPartitioned(['c', 'a', 'b'], counts);
    expect([...two].sort()).to.deep.equal([...one].sort());
  });

  it('leaves extra members idle and skips partitions a shorter topic lacks', () => {
    const a = assignCoPartitioned(['a', 'b', 'c'], new Map([['t', 2], ['u', 1]]));
    expect(a.get('a')).to.deep.equal(new Map([['t', [0]], ['u', [0]]]));
    expect(a.get('b')).to.deep.equal(new Map([['t', [1]]]));
    expect(a.get('c')?.size).to.equal(0);
  });
});
