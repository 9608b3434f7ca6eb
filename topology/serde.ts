import { InvalidInputError } from '../core/errors.ts';

/**
 * How a topic's values cross the Kafka boundary. The topology itself works on decoded values; the
 * Kafka-backed runner uses the serde of each source to decode consumed records and the serde of
 * each sink to encode what it produces. `null` stays `null` both ways: it is a tombstone.
 */
export interface Serde<T> {
  readonly name: string;
  serialize(value: T | null): Buffer | null;
  deserialize(bytes: Buffer | null): T | null;
}

/** UTF-8 JSON, the format of every tagstream topic (DESIGN.md "Contracts"). */
export function jsonSerde<T>(): Serde<T> {
  return {
    name: 'json',
    serialize(value) {
      return value === null ? null : Buffer.from(JSON.stringify(value), 'utf8');
    },
    deserialize(bytes) {
      if (bytes === null) return null;
      try {
        return JSON.parse(bytes.toString('utf8')) as T;
      } catch (err) {
        // Malformed input is the caller's to route (the events DLQ), so it is an input error.
        throw new InvalidInputError('record value', `not valid JSON (${(err as Error).message})`, { bytes: bytes.length });
      }
    },
  };
}

export const stringSerde: Serde<string> = {
  name: 'string',
  serialize(value) {
    return value === null ? null : Buffer.from(value, 'utf8');
  },
  deserialize(bytes) {
    return bytes === null ? null : bytes.toString('utf8');
  },
};
