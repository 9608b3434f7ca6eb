export {
  topology,
  TopologyBuilder,
  Topology,
  Stream,
  Table,
  type RecordKey,
  type RecordContext,
  type ProcessContext,
  type ProcessOptions,
  type Named,
  type NodeKind,
  type NodeType,
  type TopologyNode,
  type SourceNode,
  type SinkNode,
  type ProcessorNode,
  type StoreSpec,
} from './dsl.ts';
export {
  TopologyDescription,
  describeTopology,
  DESCRIBE_FORMATS,
  type DescribeFormat,
  type NodeDescription,
  type SubtopologyDescription,
  type TopologyDescriptionJson,
} from './describe.ts';
export { TopologyEngine, type InputRecord, type OutputRecord, type ProcessedRecord, type EngineStats, type EngineOptions, type ProcessStepStats } from './engine.ts';
export { TopologyTestDriver, type DriverOptions, type PipeRecord } from './driver.ts';
export { jsonSerde, stringSerde, type Serde } from './serde.ts';
export * from './application.ts';
