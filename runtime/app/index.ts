/** The processor role: application topology + state stores + consumer-group runner. See docs/processor.md. */
export { startProcessor, type ProcessorHandle, type ProcessorOptions, type InvalidEventDeadLetter } from './processor.ts';
export { poolExecutor, type ExecutorPool } from './executor-adapter.ts';
export { loadPartners } from './partners.ts';
export { BatchingProducer, type BatchingProducerOptions } from './batching-producer.ts';
