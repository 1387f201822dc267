/**
 * CRC-32 (zlib's: the record batch format's checksum, see README.md) for
 * the log store, and the SIMD CRC-32C for the Kafka encoder: the one module
 * that loads `@node-rs/crc32`. For CRC-32 it picks the implementation:
 *
 * - inputs of 4 KiB or more go to `@node-rs/crc32` (crc32fast,
 *   carry-less multiplication): 6.6-7.6 GB/s against 2.8 for `node:zlib`
 *   over 9 MB out of cache, measured here. Batches are checked on every read
 *   and sealed on every append, so this was half of the decode worker's time
 *   and 4% of a filter rule's thread;
 * - smaller ones to `node:zlib`, whose call costs less (105 against 284 ns
 *   for 12 bytes);
 * - everything to `node:zlib` where the addon does not load (no prebuilt
 *   binary for the platform): the same values, slower.
 *
 * Both compute the same function, so a CRC begun with one goes on with the
 * other (`value`: the CRC of the bytes before).
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

/** `crc32(data, value)`: the CRC of `data` following bytes whose CRC is `value` (0: none). */
export type Crc32 = (data: Uint8Array, value?: number) => number;

const require = createRequire(import.meta.url);

/** Where the addon's module is, for threads that load it themselves (the decode worker); null when it does not load. */
export const SIMD_CRC32_MODULE: string | null = (() => {
  try {
    const path = require.resolve('@node-rs/crc32');
    const addon = require(path) as { crc32?: unknown };
    return typeof addon.crc32 === 'function' ? path : null;
  } catch {
    return null;
  }
})();

/**
 * The CRC function over `small` (node:zlib's) and `big` (the addon's, or
 * null). Self-contained: the decode worker runs its source text.
 */
export function pickCrc32(small: Crc32, big: Crc32 | null): Crc32 {
  const min = 4096;
  if (big === null) return (data, value = 0) => small(data, value);
  return (data, value = 0) => (data.length >= min ? big(data, value) : small(data, value));
}

export const crc32: Crc32 = pickCrc32(zlibCrc32, SIMD_CRC32_MODULE === null ? null : (require(SIMD_CRC32_MODULE) as { crc32: Crc32 }).crc32);

/** Whether big inputs go to the addon here (tests, logs). */
export const simdCrc32 = SIMD_CRC32_MODULE !== null;

/**
 * The addon's CRC-32C (Castagnoli: Kafka's record batch checksum, which the
 * replicator computes), `crc32c(data, value)` as `Crc32`; null where the
 * addon does not load. Measured here against the Kafka encoder's
 * slice-by-8: 3.7 against 1.15 GB/s over 64 KiB, 273 against 450 ns for
 * 512 bytes, 226 against 276 for 256 (kafka-produce-encoder.ts picks).
 */
export const addonCrc32c: Crc32 | null = SIMD_CRC32_MODULE === null ? null : (require(SIMD_CRC32_MODULE) as { crc32c: Crc32 }).crc32c;
