import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { kafkaPartition, murmur2 } from './partitioner.ts';

/** Java client test vectors (org.apache.kafka.common.utils.UtilsTest#testMurmur2). */
const JAVA_MURMUR2: Array<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

/** Key → partition pairs (toPositive(murmur2) % n) for n = 3, 6, 10, 12. */
const GOLDEN_PARTITIONS: Array<[string, number, number, number, number]> = [
  ['aa-101', 1, 4, 2, 4],
  ['aa-102', 2, 2, 6, 2],
  ['bb-7', 1, 1, 1, 1],
  ['sensor-ü', 0, 3, 9, 9],
  ['温度计-3', 1, 4, 8, 4],
  ['', 0, 3, 1, 9],
  ['x', 1, 4, 6, 10],
  ['xyz', 2, 2, 8, 2],
];

describe('Kafka default partitioner', () => {
  it('matches the Java client murmur2 vectors', () => {
    for (const [key, hash] of JAVA_MURMUR2) expect(murmur2(key), key).toBe(hash);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
  });

  it('maps keys to the golden partitions', () => {
    for (const [key, p3, p6, p10, p12] of GOLDEN_PARTITIONS) {
      expect([3, 6, 10, 12].map((n) => kafkaPartition(key, n)), key).toEqual([p3, p6, p10, p12]);
    }
  });

  it('agrees with kafkajs own murmur2 on many keys', () => {
    const require = createRequire(import.meta.url);
    const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (k: string | Buffer) => number;
    for (let i = 0; i < 500; i++) {
      const key = `sensor-${i}-${'é'.repeat(i % 5)}${'z'.repeat(i % 7)}`;
      expect(murmur2(key)).toBe(kafkajsMurmur2(key));
    }
  });

  it('rejects a bad partition count', () => {
    expect(() => kafkaPartition('a', 0)).toThrow(RangeError);
  });
});
