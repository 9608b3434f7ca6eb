import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { processorTopology as applicationTopology, describeOnlyExecutor } from '../../topology/app/processor.ts';
import { topology, type TopologyDescriptionJson } from '../../topology/index.ts';

const golden = readFileSync(new URL('./fixtures/application.describe.txt', import.meta.url), 'utf8');

describe('topology describe()', () => {
  const app = applicationTopology({ executor: describeOnlyExecutor });

  it('prints the application topology in the Kafka Streams text format (golden)', () => {
    expect(app.describe().toString()).to.equal(golden);
  });

  it('is deterministic: building twice gives the same description', () => {
    const again = applicationTopology({ executor: describeOnlyExecutor });
    expect(again.describe().toString()).to.equal(app.describe().toString());
  });

  it('uses the given topic and store names', () => {
    const custom = applicationTopology({
      executor: describeOnlyExecutor,
      topics: { events: 'e', cookies: 'c', requests: 'r', eventsDlq: 'e.dlq' },
      cookieStore: 'jars',
    });
    const text = custom.describe().toString();
    expect(text).to.contain('Source: events-source (topics: [e])');
    expect(text).to.contain('Source: cookies-source (topics: [c])');
    expect(text).to.contain('(topic: r)');
    expect(text).to.contain('(topic: e.dlq)');
    expect(text).to.contain('Processor: join-cookie-jar (stores: [jars])');
    expect(text).to.contain('Sink: jar-changelog-sink (topic: c)');
    expect(text).not.to.contain('tracking.');
  });

  it('gives JSON with the wiring facts the runner needs', () => {
    const json = JSON.parse(app.describe().format('json')) as TopologyDescriptionJson;
    expect(json.subtopologies).to.have.length(1);
    const nodes = json.subtopologies[0]?.nodes ?? [];
    // Every node named for what it does (Kafka Streams' Named): no generated KSTREAM-… name left.
    expect(nodes).to.have.length(29);
    for (const n of nodes) expect(n.name).not.to.match(/^K(STREAM|TABLE)-/);
    expect(json.streamTopics).to.deep.equal(['tracking.events']);
    expect(json.sinkTopics).to.have.members(['tracking.requests', 'tracking.cookies', 'tracking.events.dlq']);
    expect(json.stores).to.deep.equal([{ name: 'cookie-jars', changelogTopic: 'tracking.cookies' }]);
    expect(json.copartitionGroups).to.deep.equal([['tracking.events', 'tracking.cookies']]);
    expect(json.perKeyOrdered).to.equal(true);
    const executor = nodes.find((n) => n.name === 'execute-tags');
    expect(executor).to.include({ type: 'processor', kind: 'process', concurrency: 4, perKeyOrder: true });
    // Edges are consistent both ways.
    for (const n of nodes) {
      for (const s of n.successors) expect(nodes.find((m) => m.name === s)?.predecessors).to.include(n.name);
    }
  });

  it('gives a Mermaid flowchart naming every node, topic and store', () => {
    const mermaid = app.describe().toMermaid();
    expect(mermaid.startsWith('flowchart TD\n')).to.equal(true);
    for (const name of app.nodes.keys()) expect(mermaid).to.contain(name);
    for (const topic of ['tracking.events', 'tracking.cookies', 'tracking.requests', 'tracking.events.dlq', 'cookie-jars']) {
      expect(mermaid).to.contain(`"${topic}"`);
    }
    expect(mermaid).to.match(/subgraph sub0\["Sub-topology: 0"\]/);
  });

  it('splits unconnected parts into sub-topologies with Kafka’s indentation (3 spaces, then 2)', () => {
    const b = topology();
    b.stream('a').mapValues((v: unknown) => v).to('a-out');
    b.stream('b').filter(() => true, { name: 'keep' }).to('b-out', { name: 'b-sink' });
    expect(b.build().describe().toString()).to.equal(
      [
        'Topologies:',
        '   Sub-topology: 0',
        '    Source: KSTREAM-SOURCE-0000000000 (topics: [a])',
        '      --> KSTREAM-MAPVALUES-0000000001',
        '    Processor: KSTREAM-MAPVALUES-0000000001 (stores: [])',
        '      --> KSTREAM-SINK-0000000002',
        '      <-- KSTREAM-SOURCE-0000000000',
        '    Sink: KSTREAM-SINK-0000000002 (topic: a-out)',
        '      <-- KSTREAM-MAPVALUES-0000000001',
        '',
        '  Sub-topology: 1',
        '    Source: KSTREAM-SOURCE-0000000003 (topics: [b])',
        '      --> keep',
        '    Processor: keep (stores: [])',
        '      --> b-sink',
        '      <-- KSTREAM-SOURCE-0000000003',
        '    Sink: b-sink (topic: b-out)',
        '      <-- keep',
        '',
        '',
      ].join('\n'),
    );
  });

  it('joins a stream and the table it reads into one sub-topology (shared store)', () => {
    const b = topology();
    const t = b.table<string>('t', 'store');
    b.stream<string>('s')
      .leftJoin(t, (v, tv) => `${v}${tv ?? ''}`)
      .to('out');
    const json = b.build().describe().toJSON();
    expect(json.subtopologies).to.have.length(1);
    expect(json.copartitionGroups).to.deep.equal([['s', 't']]);
  });
});
