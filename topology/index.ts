export {
  topology,
  TopologyBuilder,
  Topology,
  Stream,
  Table,
} from './dsl.ts';
export type {
  RecordKey,
  RecordContext,
  ProcessContext,
  ProcessOptions,
  Named,
  StreamOptions,
  TableOptions,
  ToTableOptions,
  BranchOptions,
  SinkOptions,
  NodeKind,
  NodeType,
  TopologyNode,
  SourceNode,
  SinkNode,
  ProcessorNode,
  ProcessNode,
  StoreSpec,
  StoreUsage,
  TopologyModel,
} from './model.ts';
export { validateTopology, assertValidTopology } from './validate.ts';
export {
  TopologyDescription,
  describeTopology,
  DESCRIBE_FORMATS,
  type DescribeFormat,
  type NodeDescription,
  type SubtopologyDescription,
  type TopologyDescriptionJson,
} from './describe.ts';
export { TopologyEngine, type NodeEvent, type InputRecord, type OutputRecord, type ProcessedRecord, type EngineStats, type EngineOptions, type ProcessStepStats } from './engine.ts';
export { TopologyTestDriver, type DriverOptions, type PipeRecord } from './driver.ts';
export { jsonSerde, stringSerde, type Serde } from './serde.ts';
export * from './app/processor.ts';
