/** The embedded in-process Kafka broker and its KafkaClient (kind 'embedded'). */
export { EmbeddedKafka, type EmbeddedKafkaOptions } from './broker.ts';
export { createEmbeddedClient, defaultEmbeddedKafka } from './client.ts';
export type { StoredRecord } from './log.ts';
