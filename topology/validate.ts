/**
 * Validation of a topology's nodes and stores, done once by TopologyBuilder#build(): the engine and
 * the stream runtime then trust the graph. Every problem is listed, not just the first, so one build
 * tells the author everything to fix.
 */
import { TopologyInvalidError } from '../core/errors.ts';
import type { SourceNode, StoreSpec, TopologyNode } from './model.ts';

/** Kafka's topic name rule (legal characters, 1–249 long; "." and ".." are refused separately). */
const TOPIC_RE = /^[a-zA-Z0-9._-]{1,249}$/;
/** Names appear in Kafka's describe text between brackets and after commas: keep those out. */
const NAME_RE = /^[^\s,[\]()]{1,249}$/;

/** Throws ERR_TOPOLOGY_INVALID listing every problem; returns when the topology is valid. */
export function assertValidTopology(nodes: readonly TopologyNode[], stores: readonly StoreSpec[]): void {
  const problems = validateTopology(nodes, stores);
  if (problems.length > 0) {
    throw new TopologyInvalidError(`invalid topology: ${problems.join('; ')}`, { problems });
  }
}

/** The problems of a topology, in a stable order (empty when it is valid). */
export function validateTopology(nodes: readonly TopologyNode[], stores: readonly StoreSpec[]): string[] {
  const problems: string[] = [];
  if (nodes.length === 0) problems.push('the topology has no source');
  problems.push(...nameProblems(nodes, stores), ...topicProblems(nodes));
  for (const n of nodes) problems.push(...nodeProblems(n, nodes, stores));
  return problems;
}

function nameProblems(nodes: readonly TopologyNode[], stores: readonly StoreSpec[]): string[] {
  const problems: string[] = [];
  const seenNames = new Set<string>();
  for (const n of nodes) {
    if (seenNames.has(n.name)) problems.push(`duplicate node name "${n.name}"`);
    seenNames.add(n.name);
    if (!NAME_RE.test(n.name)) problems.push(`invalid node name "${n.name}" (no spaces, commas, brackets or parentheses)`);
  }
  const seenStores = new Set<string>();
  for (const s of stores) {
    if (seenStores.has(s.name)) problems.push(`duplicate store name "${s.name}"`);
    seenStores.add(s.name);
    if (!NAME_RE.test(s.name)) problems.push(`invalid store name "${s.name}"`);
  }
  return problems;
}

function topicProblems(nodes: readonly TopologyNode[]): string[] {
  const problems: string[] = [];
  const sourceTopics = new Map<string, string>();
  for (const n of nodes) {
    if (n.type === 'source' || n.type === 'sink') {
      if (!TOPIC_RE.test(n.topic) || n.topic === '.' || n.topic === '..') {
        problems.push(`node "${n.name}": invalid topic name "${n.topic}"`);
      }
    }
    if (n.type === 'source') {
      const other = sourceTopics.get(n.topic);
      // Kafka refuses it too: one record would be processed twice, possibly on different paths.
      if (other !== undefined) problems.push(`topic "${n.topic}" is read by two sources ("${other}" and "${n.name}")`);
      sourceTopics.set(n.topic, n.name);
    }
  }
  return problems;
}

function nodeProblems(n: TopologyNode, nodes: readonly TopologyNode[], stores: readonly StoreSpec[]): string[] {
  if (n.type === 'sink') {
    const source = nodes.find((s): s is SourceNode => s.type === 'source' && s.topic === n.topic);
    // toTable() sinks write their table's changelog; a loop sink feeds a stream topic back on purpose.
    if (source === undefined || n.table !== undefined || (n.loop === true && source.table === undefined)) return [];
    return [
      source.table === undefined
        ? `sink "${n.name}" writes to "${n.topic}", which this topology reads: a loop`
        : `sink "${n.name}" writes to "${n.topic}", the changelog of table "${source.table}": use toTable() so the store sees the write`,
    ];
  }
  const problems: string[] = [];
  for (const store of n.stores) {
    // The DSL only hands out tables it registered; this guards hand-made node lists.
    if (!stores.some((s) => s.name === store)) problems.push(`node "${n.name}" uses unknown store "${store}"`);
  }
  if (n.type === 'processor' && n.kind === 'table-source') return problems; // materializing the store is its output
  if (n.successors.length === 0) {
    problems.push(`node "${n.name}" is dangling: its output goes nowhere (end the stream with to() or toTable())`);
  }
  if (n.type === 'processor' && n.kind === 'process') {
    const { concurrency, timeoutMs } = n.options;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      problems.push(`process "${n.name}": concurrency must be an integer >= 1 (got ${concurrency})`);
    }
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      problems.push(`process "${n.name}": timeoutMs must be > 0 (got ${timeoutMs})`);
    }
  }
  return problems;
}
