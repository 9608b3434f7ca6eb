/**
 * Topology descriptions in three formats: Kafka Streams' `TopologyDescription#toString()` text (so
 * people who know Kafka Streams, and its visualizers, can read it), JSON for tools, Mermaid for docs.
 */
import type { NodeKind, NodeType, TopologyModel, TopologyNode } from './model.ts';

export type DescribeFormat = 'text' | 'json' | 'mermaid';
export const DESCRIBE_FORMATS: readonly DescribeFormat[] = ['text', 'json', 'mermaid'];

export interface NodeDescription {
  name: string;
  type: NodeType;
  kind: NodeKind;
  /** Sources only. */
  topics?: string[];
  /** Sinks only. */
  topic?: string;
  stores: string[];
  successors: string[];
  predecessors: string[];
  /** process() only. */
  concurrency?: number;
  perKeyOrder?: boolean;
  timeoutMs?: number;
}

export interface SubtopologyDescription {
  id: number;
  nodes: NodeDescription[];
}

export interface TopologyDescriptionJson {
  subtopologies: SubtopologyDescription[];
  stores: { name: string; changelogTopic: string }[];
  /** Topics consumed as streams (the consumer group's subscription). */
  streamTopics: string[];
  sinkTopics: string[];
  /** Topics that must be compacted (the stores' changelogs). */
  compactedTopics: string[];
  copartitionGroups: string[][];
  perKeyOrdered: boolean;
}

export class TopologyDescription {
  constructor(readonly data: TopologyDescriptionJson) {}

  /** Kafka Streams' text format, byte for byte (including its indentation quirks). */
  toString(): string {
    // Kafka writes "Topologies:\n " then "  " before each sub-topology: the first gets three
    // spaces, the next ones two. Each sub-topology ends with an empty line.
    let out = 'Topologies:\n ';
    for (const sub of this.data.subtopologies) {
      out += `  Sub-topology: ${sub.id}\n`;
      for (const node of sub.nodes) out += `    ${nodeText(node)}\n`;
      out += '\n';
    }
    return out;
  }

  toJSON(): TopologyDescriptionJson {
    return this.data;
  }

  toMermaid(): string {
    const lines = ['flowchart TD'];
    const ids = new Map<string, string>();
    const topicIds = new Map<string, string>();
    const storeIds = new Map<string, string>();
    const idOf = (map: Map<string, string>, prefix: string, key: string): string => {
      let id = map.get(key);
      if (id === undefined) {
        id = `${prefix}${map.size}`;
        map.set(key, id);
      }
      return id;
    };
    for (const sub of this.data.subtopologies) {
      lines.push(`  subgraph sub${sub.id}["Sub-topology: ${sub.id}"]`);
      for (const node of sub.nodes) lines.push(`    ${idOf(ids, 'n', node.name)}["${node.type === 'processor' ? node.name : `${node.type}: ${node.name}`}"]`);
      lines.push('  end');
    }
    for (const sub of this.data.subtopologies) {
      for (const node of sub.nodes) {
        const id = idOf(ids, 'n', node.name);
        for (const topic of node.topics ?? []) lines.push(`  ${idOf(topicIds, 't', topic)}[/"${topic}"/] --> ${id}`);
        for (const succ of node.successors) lines.push(`  ${id} --> ${idOf(ids, 'n', succ)}`);
        if (node.topic !== undefined) lines.push(`  ${id} --> ${idOf(topicIds, 't', node.topic)}[/"${node.topic}"/]`);
        for (const store of node.stores) lines.push(`  ${id} -.- ${idOf(storeIds, 's', store)}[("${store}")]`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  format(format: DescribeFormat): string {
    if (format === 'json') return `${JSON.stringify(this.data, null, 2)}\n`;
    if (format === 'mermaid') return this.toMermaid();
    return this.toString();
  }
}

function names(list: readonly string[]): string {
  return list.length === 0 ? 'none' : list.join(', ');
}

function nodeText(node: NodeDescription): string {
  if (node.type === 'source') {
    return `Source: ${node.name} (topics: [${(node.topics ?? []).join(', ')}])\n      --> ${names(node.successors)}`;
  }
  if (node.type === 'sink') {
    return `Sink: ${node.name} (topic: ${node.topic ?? ''})\n      <-- ${names(node.predecessors)}`;
  }
  return `Processor: ${node.name} (stores: [${node.stores.join(', ')}])\n      --> ${names(node.successors)}\n      <-- ${names(node.predecessors)}`;
}

export function describeTopology(topology: TopologyModel): TopologyDescription {
  const nodes = [...topology.nodes.values()];

  // Kafka's NodeComparator: larger sub-tree first (sources lead), ties by name. The size counts
  // paths like Kafka's incremental computation does, which only differs from a node count on diamonds.
  const sizes = new Map<string, number>();
  const sizeOf = (name: string): number => {
    const cached = sizes.get(name);
    if (cached !== undefined) return cached;
    const size = 1 + topology.node(name).successors.reduce((sum, s) => sum + sizeOf(s), 0);
    sizes.set(name, size);
    return size;
  };
  const compare = (a: string, b: string): number => {
    const d = sizeOf(b) - sizeOf(a);
    if (d !== 0) return d;
    return a < b ? -1 : a > b ? 1 : 0;
  };

  // Sub-topologies are the connected components, where sharing a store connects too (a table's
  // processor and the join reading its store must run in the same task).
  const parent = new Map<string, string>(nodes.map((n) => [n.name, n.name]));
  const find = (x: string): string => {
    let root = x;
    while (parent.get(root) !== root) root = parent.get(root) as string;
    parent.set(x, root);
    return root;
  };
  const union = (a: string, b: string): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(rb, ra);
  };
  const storeOwner = new Map<string, string>();
  for (const n of nodes) {
    for (const s of n.successors) union(n.name, s);
    for (const store of n.stores) {
      const owner = storeOwner.get(store);
      if (owner === undefined) storeOwner.set(store, n.name);
      else union(owner, n.name);
    }
  }
  const groups = new Map<string, TopologyNode[]>();
  for (const n of nodes) {
    const root = find(n.name);
    const group = groups.get(root) ?? [];
    group.push(n);
    groups.set(root, group);
  }
  const ordered = [...groups.values()].sort((a, b) => minOrder(a) - minOrder(b));

  const subtopologies = ordered.map((group, id) => ({
    id,
    nodes: group
      .map((n) => n.name)
      .sort(compare)
      .map((name) => describeNode(topology.node(name), compare)),
  }));

  return new TopologyDescription({
    subtopologies,
    stores: topology.stores.map((s) => ({ name: s.name, changelogTopic: s.changelogTopic })),
    streamTopics: topology.streamTopics,
    sinkTopics: topology.sinkTopics,
    compactedTopics: topology.compactedTopics,
    copartitionGroups: topology.copartitionGroups,
    perKeyOrdered: topology.perKeyOrdered,
  });
}

function minOrder(group: readonly TopologyNode[]): number {
  return Math.min(...group.map((n) => n.order));
}

function describeNode(node: TopologyNode, compare: (a: string, b: string) => number): NodeDescription {
  const base: NodeDescription = {
    name: node.name,
    type: node.type,
    kind: node.kind,
    stores: [...node.stores],
    successors: [...node.successors].sort(compare),
    predecessors: [...node.predecessors].sort(compare),
  };
  if (node.type === 'source') return { ...base, topics: [node.topic] };
  if (node.type === 'sink') return { ...base, topic: node.topic };
  if (node.kind === 'process') {
    return {
      ...base,
      concurrency: node.options.concurrency,
      perKeyOrder: node.options.perKeyOrder,
      ...(node.options.timeoutMs === undefined ? {} : { timeoutMs: node.options.timeoutMs }),
    };
  }
  return base;
}
