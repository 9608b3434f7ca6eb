/** The engine's record shapes: what goes in (decoded), what comes out of the sinks, and stats. */
import type { TagstreamError } from '../../core/errors.ts';
import type { RecordKey } from '../model.ts';

export interface InputRecord<V = unknown> {
  topic: string;
  partition: number;
  offset: number;
  key: RecordKey;
  value: V;
  /** Milliseconds since the epoch. */
  timestamp: number;
}

export interface OutputRecord {
  topic: string;
  key: RecordKey;
  value: unknown;
  /** The sink node that emitted it. */
  sink: string;
  /**
   * Set for a table's changelog (toTable): the partition of the input record, so the changelog
   * record lands in the partition of the store that holds it, whatever the producer's partitioner.
   */
  partition?: number;
}

export interface ProcessedRecord {
  input: InputRecord;
  outputs: OutputRecord[];
  /** Set when processing failed (then `outputs` is empty: no partial output is reported). */
  error?: TagstreamError;
}

export interface ProcessStepStats {
  active: number;
  waiting: number;
  /** Highest `active` seen since the engine started. */
  maxActive: number;
}

export interface EngineStats {
  /** Submitted records not settled yet (running, or waiting for their key's lane). */
  pending: number;
  /** Keys with at least one pending record (0 when idle: idle keys cost nothing). */
  activeKeys: number;
  process: Record<string, ProcessStepStats>;
}
