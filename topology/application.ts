/** Moved: the processor's topology is topology/app/processor.ts; the contracts are core/contracts. */
export {
  processorTopology as applicationTopology,
  DEFAULT_PROCESSOR_TOPICS as DEFAULT_TOPICS,
  DEFAULT_COOKIE_STORE,
  EXECUTOR_NODE,
  describeOnlyExecutor,
  type Executor,
  type ProcessorTopologyOptions as ApplicationTopologyOptions,
  type ProcessorTopics as ApplicationTopics,
} from './app/processor.ts';
export type { PageViewEvent, StoredJar, RequestRecord, EventDeadLetter, ExecuteResult as ExecutionResult, Jar, JarCookie, CapturedRequest, TrackerOutcome } from '../core/contracts/index.ts';
