/**
 * Entry point of the Kafka client layer: picks the adapter of the KafkaClient interface.
 *
 * - `platformatic` (default): @platformatic/kafka on a real cluster;
 * - `kafkajs`: kafkajs 2.2.4 on a real cluster (per-partition pause);
 * - `embedded`: the in-process broker (no infrastructure; `options.brokers` is ignored).
 */
import { InvalidInputError } from '../../core/errors.ts';
import { createEmbeddedClient } from './embedded/index.ts';
import { createKafkajsClient } from './kafkajs/index.ts';
import { createPlatformaticClient } from './platformatic/index.ts';
import type { KafkaClient, KafkaClientKind, KafkaClientOptions } from './types.ts';

export type * from './types.ts';

export const KAFKA_CLIENT_KINDS: readonly KafkaClientKind[] = ['platformatic', 'kafkajs', 'embedded'];

export function createKafkaClient(kind: KafkaClientKind, options: KafkaClientOptions): KafkaClient {
  switch (kind) {
    case 'platformatic':
      return createPlatformaticClient(withBrokers(kind, options));
    case 'kafkajs':
      return createKafkajsClient(withBrokers(kind, options));
    case 'embedded':
      return createEmbeddedClient();
    default:
      // Reached from untyped input (settings file, CLI flag): name the field and the choices.
      throw new InvalidInputError('client', `unknown Kafka client "${String(kind)}" (expected one of ${KAFKA_CLIENT_KINDS.join(', ')})`);
  }
}

function withBrokers(kind: KafkaClientKind, options: KafkaClientOptions): KafkaClientOptions {
  if (options.brokers.length === 0) {
    throw new InvalidInputError('brokers', `the ${kind} client needs at least one bootstrap broker (host:port)`);
  }
  for (const broker of options.brokers) parseBroker(broker);
  return options;
}

/**
 * Parses a bootstrap list `host:port,host:port` (spaces around entries allowed, IPv6 hosts in
 * brackets: `[::1]:9092`). A blank string is an empty list. Throws InvalidInputError on the field
 * `brokers` for an entry without a valid port, so a typo fails at startup, not at first connect.
 */
export function parseBrokers(s: string): string[] {
  return s
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
    .map((entry) => {
      parseBroker(entry);
      return entry;
    });
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(\d{1,5})$/;

function parseBroker(entry: string): { host: string; port: number } {
  const match = HOST_PORT.exec(entry);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65_535) {
    throw new InvalidInputError('brokers', `"${entry}" is not host:port (port 1-65535, IPv6 as [addr]:port)`, { entry });
  }
  return { host: match[1] ?? match[2]!, port };
}
