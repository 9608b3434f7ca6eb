/** The stream runtime: runs any Topology on Kafka (see streams.ts and docs/runner.md). */
export { startStreams, topologyRequirements, recordLimits, DEFAULT_MAX_MESSAGE_BYTES, type StreamsHandle, type StreamsOptions, type StateOptions } from './streams.ts';
export { eventDeadLetters, EVENT_DEAD_LETTER_CODES, type DeadLetterRouter } from './dead-letters.ts';
export { TopologyState, type ClosableStoreProvider } from './state.ts';
export { BatchingProducer, type BatchingProducerOptions } from './batching-producer.ts';
