/**
 * The jar cache's bounded queue (state/cache-queue.ts): one pending write per visitor, drop-oldest
 * upsert when full, erasures kept in preference, one operation per key at a time.
 */
import { expect } from 'chai';
import { LatestPerKeyQueue, type CacheOp } from '../../state/cache-queue.ts';

const up = (key: string, value = `{"v":"${key}"}`): CacheOp => ({ kind: 'upsert', key, value, attempts: 1 });
const rm = (key: string): CacheOp => ({ kind: 'remove', key, attempts: 1 });
const keys = (q: LatestPerKeyQueue): string[] => q.drain().map((op) => `${op.kind}:${op.key}`);

describe('jar cache queue', () => {
  it('keeps one pending write per visitor: the newest value, in the place of the first', () => {
    const q = new LatestPerKeyQueue(10);
    q.push(up('a', '1'));
    q.push(up('b'));
    q.push(up('a', '2'));
    expect(q.size).to.equal(2);
    const first = q.take(new Set());
    expect(first).to.deep.include({ key: 'a', value: '2' });
    q.push(up('b', 'x'));
    q.push(rm('b'));
    expect(keys(q), 'an erasure replaces the queued upsert of the same visitor').to.deep.equal(['remove:b']);
  });

  it('when full, drops the oldest upsert for a new visitor and never grows past the bound', () => {
    const q = new LatestPerKeyQueue(3);
    const dropped: string[] = [];
    for (const k of ['a', 'b', 'c', 'd', 'e']) {
      const d = q.push(up(k));
      if (d) dropped.push(d.key);
      expect(q.size).to.be.at.most(3);
    }
    expect(dropped).to.deep.equal(['a', 'b']);
    expect(keys(q)).to.deep.equal(['upsert:c', 'upsert:d', 'upsert:e']);
  });

  it('keeps erasures in preference to upserts', () => {
    const q = new LatestPerKeyQueue(3);
    q.push(up('a'));
    q.push(rm('x'));
    q.push(up('b'));
    expect(q.push(rm('y'))?.key, 'the oldest upsert makes room for an erasure').to.equal('a');
    expect(q.push(rm('z'))?.key).to.equal('b');
    expect(keys(q)).to.deep.equal(['remove:x', 'remove:y', 'remove:z']);

    const full = new LatestPerKeyQueue(2);
    full.push(rm('x'));
    full.push(rm('y'));
    const newcomer = up('n');
    expect(full.push(newcomer), 'an upsert arriving at a queue of erasures is itself dropped').to.equal(newcomer);
    expect(full.push(rm('z'))?.key, 'an erasure there drops the oldest erasure').to.equal('x');
    expect(keys(full)).to.deep.equal(['remove:y', 'remove:z']);
  });

  it('takes the oldest operation whose key is not busy, and a retry never overwrites a newer write', () => {
    const q = new LatestPerKeyQueue(5);
    q.push(up('a', 'old'));
    q.push(up('b'));
    const a = q.take(new Set()) as CacheOp;
    q.push(up('a', 'new'));
    expect(q.take(new Set(['b']))?.key, 'b is busy: a goes first').to.equal('a');
    expect(q.retry(a)).to.equal(undefined);
    expect(q.size).to.equal(2);
    const again = q.take(new Set(['b']));
    expect(again, 'the failed write comes back with its attempt counted').to.deep.include({ key: 'a', value: 'old', attempts: 2 });
    q.push(up('a', 'newest'));
    q.retry({ ...up('a', 'stale'), attempts: 2 });
    expect(q.take(new Set(['b']))).to.deep.include({ value: 'newest' });
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => new LatestPerKeyQueue(0)).to.throw(RangeError, /positive integer/);
  });
});
