/** The engine lives in topology/engine/; this path stays because the runtime imports it. */
export { TopologyEngine, type EngineOptions } from './engine/engine.ts';
export type { NodeEvent } from './engine/observe.ts';
export type { InputRecord, OutputRecord, ProcessedRecord, EngineStats, ProcessStepStats } from './engine/records.ts';
