import { expect } from 'chai';
import { TagstreamError } from '../../core/errors.ts';
import { topology, type TopologyBuilder } from '../../topology/index.ts';

function buildError(define: (b: TopologyBuilder) => void): TagstreamError {
  const b = topology();
  define(b);
  try {
    b.build();
  } catch (err) {
    expect(err).to.be.instanceOf(TagstreamError);
    expect((err as TagstreamError).code).to.equal('ERR_TOPOLOGY_INVALID');
    return err as TagstreamError;
  }
  throw new Error('build() should have failed');
}

describe('topology DSL validation', () => {
  it('refuses an empty topology', () => {
    expect(buildError(() => undefined).message).to.contain('no source');
  });

  it('refuses dangling nodes', () => {
    const err = buildError((b) => {
      b.stream('in').mapValues((v: unknown) => v, { name: 'lost' });
    });
    expect(err.message).to.contain('"lost" is dangling');
    expect(buildError((b) => b.stream('in')).message).to.contain('"KSTREAM-SOURCE-0000000000" is dangling');
  });

  it('refuses duplicate node names', () => {
    const err = buildError((b) => {
      const s = b.stream('in');
      s.mapValues((v: unknown) => v, { name: 'same' }).to('o1');
      s.filter(() => true, { name: 'same' }).to('o2');
    });
    expect(err.message).to.contain('duplicate node name "same"');
  });

  it('refuses two sources on one topic and duplicate store names', () => {
    const err = buildError((b) => {
      b.stream('in').to('o1');
      b.stream('in').to('o2');
      b.table('t1', 'store');
      b.table('t2', 'store');
    });
    expect(err.message).to.contain('topic "in" is read by two sources');
    expect(err.message).to.contain('duplicate store name "store"');
  });

  it('refuses a sink to a topic the topology reads (loop), and to() on a table changelog', () => {
    const loop = buildError((b) => b.stream('in').to('in'));
    expect(loop.message).to.contain('a loop');
    const bypass = buildError((b) => {
      const t = b.table('jars', 'jar-store');
      b.stream('in')
        .leftJoin(t, (v: unknown) => v)
        .to('jars');
    });
    expect(bypass.message).to.contain('use toTable()');
  });

  it('accepts toTable() on the changelog of a table it reads', () => {
    const b = topology();
    const t = b.table<string>('jars', 'jar-store');
    b.stream<string>('in')
      .leftJoin(t, (v) => v)
      .toTable(t);
    const built = b.build();
    expect(built.sinkTopics).to.deep.equal(['jars']);
    expect(built.perKeyOrdered).to.equal(true);
  });

  it('refuses invalid topic names and process options', () => {
    const err = buildError((b) => {
      b.stream('bad topic').to('..');
      b.stream('in')
        .process('p', async (v: unknown) => v, { concurrency: 0, timeoutMs: -1 })
        .to('out');
    });
    expect(err.message).to.contain('invalid topic name "bad topic"');
    expect(err.message).to.contain('invalid topic name ".."');
    expect(err.message).to.contain('concurrency must be an integer >= 1');
    expect(err.message).to.contain('timeoutMs must be > 0');
    expect(err.context.problems).to.be.an('array').with.length(4);
  });

  it('refuses a table of another builder and changes after build()', () => {
    const other = topology().table('t', 's');
    const b = topology();
    const s = b.stream('in');
    expect(() => s.leftJoin(other, (v: unknown) => v)).to.throw(TagstreamError, /another TopologyBuilder/);
    s.to('out');
    b.build();
    expect(() => s.to('late')).to.throw(TagstreamError, /already built/);
  });

  it('refuses branch() without predicates', () => {
    expect(() => topology().stream('in').branch([])).to.throw(TagstreamError, /at least one predicate/);
  });

  it('generates Kafka-style names; given names do not consume an index', () => {
    const b = topology();
    const [x, y] = b
      .stream<number>('in')
      .mapValues((v) => v + 1, { name: 'inc' })
      .branch([(v) => v > 0, () => true]);
    x?.to('pos');
    y?.to('rest', { name: 'rest-sink' });
    expect([...b.build().nodes.keys()]).to.deep.equal([
      'KSTREAM-SOURCE-0000000000',
      'inc',
      'KSTREAM-BRANCH-0000000001',
      'KSTREAM-BRANCHCHILD-0000000002',
      'KSTREAM-BRANCHCHILD-0000000003',
      'KSTREAM-SINK-0000000004',
      'rest-sink',
    ]);
  });

  it('names branch children after a named branch', () => {
    const b = topology();
    const branches = b.stream('in').branch([() => true, () => false], { name: 'route' });
    branches.forEach((s, i) => s.to(`out-${i}`));
    expect([...b.build().nodes.keys()]).to.include.members(['route', 'route-0', 'route-1']);
  });

  it('lets the caller name every node: table source and KTABLE-SOURCE, toTable writer and sink, branch children, merge', () => {
    const b = topology();
    const jars = b.table<number>('jars', 'jar-store', { sourceName: 'jars-source', name: 'jar-table' });
    const retry = b.stream<number>('retry', { name: 'retry-source' });
    const [a, z] = b
      .stream<number>('in', { name: 'in-source' })
      .merge(retry, { name: 'both' })
      .leftJoin(jars, (v) => v, { name: 'join' })
      .branch([(v) => v > 0, () => true], { name: 'route', childNames: ['positive', 'other'] });
    a?.toTable(jars, { name: 'write', sinkName: 'jars-sink' });
    z?.to('out', { name: 'out-sink' });
    expect([...b.build().nodes.keys()]).to.deep.equal([
      'jars-source',
      'jar-table',
      'retry-source',
      'in-source',
      'both',
      'join',
      'route',
      'positive',
      'other',
      'write',
      'jars-sink',
      'out-sink',
    ]);
  });

  it('keeps generated names when only some nodes of an operation are named', () => {
    const b = topology();
    const t = b.table<number>('jars', 'jar-store', { name: 'jar-table' });
    b.stream<number>('in').toTable(t, { sinkName: 'jars-sink' });
    expect([...b.build().nodes.keys()]).to.deep.equal([
      'KSTREAM-SOURCE-0000000000',
      'jar-table',
      'KSTREAM-SOURCE-0000000001',
      'KSTREAM-TOTABLE-0000000002',
      'jars-sink',
    ]);
  });

  it('refuses branch child names that do not match the predicates, and merging a stream with itself or another builder’s', () => {
    const b = topology();
    const s = b.stream('in');
    expect(() => s.branch([() => true], { childNames: ['a', 'b'] })).to.throw(TagstreamError, /2 child names for 1 predicates/);
    expect(() => s.merge(s)).to.throw(TagstreamError, /with itself/);
    expect(() => s.merge(topology().stream('x'))).to.throw(TagstreamError, /another TopologyBuilder/);
  });

  it('accepts a sink back to a stream topic it reads only with loop: true (a retry topic)', () => {
    const refused = buildError((b) => {
      const retry = b.stream('retry');
      b.stream('in').merge(retry).to('retry');
    });
    expect(refused.message).to.contain('a loop');
    const b = topology();
    const retry = b.stream('retry');
    b.stream('in').merge(retry).to('retry', { loop: true });
    expect(b.build().sinkTopics).to.deep.equal(['retry']);
    // A changelog still needs toTable(), loop or not.
    const bypass = buildError((bb) => {
      bb.table('jars', 'store');
      bb.stream('in').to('jars', { loop: true });
    });
    expect(bypass.message).to.contain('use toTable()');
  });
});
