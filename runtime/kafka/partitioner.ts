/**
 * Kafka's default partitioner for keyed records, bit for bit: `Utils.murmur2` of the Java client
 * (32-bit signed arithmetic, seed 0x9747b28c) and `Utils.toPositive`. Every adapter (and the
 * embedded broker) must agree with the Java producers that also write our topics, otherwise a key
 * lands on a different partition than its co-partitioned state and the join silently misses.
 */

const SEED = 0x9747b28c;
// Mixing constants of MurmurHash2.
const M = 0x5bd1e995;
const R = 24;

/** MurmurHash2 as Kafka's Java `Utils.murmur2`: a signed 32-bit integer. */
export function murmur2(data: Buffer): number {
  const length = data.length;
  // `| 0` keeps every intermediate a signed 32-bit int like Java's `int`; Math.imul is Java's
  // overflowing int multiplication (a plain `*` would lose bits beyond 2^53).
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;

  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k =
      (data[i4]! & 0xff) | ((data[i4 + 1]! & 0xff) << 8) | ((data[i4 + 2]! & 0xff) << 16) | ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }

  // The last 1–3 bytes, with Java's switch fall-through.
  const tail = length & ~3;
  switch (length % 4) {
    case 3:
      h ^= (data[tail + 2]! & 0xff) << 16;
    // falls through
    case 2:
      h ^= (data[tail + 1]! & 0xff) << 8;
    // falls through
    case 1:
      h ^= data[tail]! & 0xff;
      h = Math.imul(h, M);
  }

  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * Kafka's `Utils.toPositive`: clears the sign bit (not Math.abs, which maps MIN_VALUE to itself
 * and would give a different partition than Java for some keys).
 */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/** The partition Kafka's default partitioner picks for a keyed record. Strings are UTF-8. */
export function partitionForKey(key: Buffer | string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  }
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return toPositive(murmur2(bytes)) % partitions;
}
