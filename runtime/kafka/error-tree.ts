/**
 * Kafka clients wrap the broker's real error: in `cause`, in `errors` (aggregates), or in
 * `originalError` (kafkajs, retries exceeded). The adapters search that tree to map errors to ours.
 */
export type ErrorNode = Record<string, unknown>;

export function isErrorNode(value: unknown): value is ErrorNode {
  return typeof value === 'object' && value !== null;
}

export function findInErrorTree(error: unknown, predicate: (node: ErrorNode) => boolean): ErrorNode | undefined {
  const seen = new Set<unknown>();
  const stack: unknown[] = [error];
  while (stack.length > 0) {
    const node = stack.pop();
    if (!isErrorNode(node) || seen.has(node)) continue;
    seen.add(node);
    if (predicate(node)) return node;
    if (Array.isArray(node.errors)) stack.push(...(node.errors as unknown[]));
    if ('cause' in node) stack.push(node.cause);
    if ('originalError' in node) stack.push(node.originalError);
  }
  return undefined;
}
