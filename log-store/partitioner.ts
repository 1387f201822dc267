/**
 * Kafka's default partitioner for keyed records: murmur2 (the 32-bit
 * MurmurHash2 variant of the Java client's `Utils.murmur2`, seed 0x9747b28c)
 * of the key's UTF-8 bytes, then `toPositive(hash) % partitions` where
 * `toPositive(h) = h & 0x7fffffff`. Bit-compatible with the Java client and
 * kafkajs's default partitioner, so a key lands on the same partition number
 * here and in the central cluster. Null keys are not handled here: the store
 * spreads them round-robin.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** MurmurHash2 as Kafka computes it; returns a signed 32-bit integer. Strings hash as UTF-8. */
export function murmur2(key: string | Uint8Array): number {
  const data = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const length = data.length;
  let h = (SEED ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length % 4;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner picks for a non-null key. */
export function kafkaPartition(key: string | Uint8Array, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
  return (murmur2(key) & 0x7fffffff) % partitions;
}
