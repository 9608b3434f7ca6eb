import { TagstreamError, TopologyNodeFailedError } from '../../core/errors.ts';
import type { RecordContext } from '../model.ts';

/** Wraps a user function's failure with where it happened (keys are user ids: not logged here). */
export function nodeError(node: string, ctx: RecordContext, err: unknown): TagstreamError {
  if (err instanceof TagstreamError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TopologyNodeFailedError(
    `node "${node}" failed: ${message}`,
    { node, topic: ctx.topic, partition: ctx.partition, offset: ctx.offset },
    { cause: err },
  );
}

/** Any rejection as a TagstreamError, for ProcessedRecord.error. */
export function asTagstreamError(err: unknown): TagstreamError {
  if (err instanceof TagstreamError) return err;
  return new TopologyNodeFailedError(err instanceof Error ? err.message : String(err), {}, { cause: err });
}
