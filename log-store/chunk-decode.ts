/**
 * What `readBatches` does to every batch of a read chunk (CRC check, then the
 * position of each record's parts, see `decodePositions`), for a whole chunk
 * at once, so it can run on the decode worker (decode-worker.ts) while the
 * reader's thread does other work.
 *
 * `decodeChunk` is self-contained on purpose: the worker runs its source
 * text (`decodeChunk.toString()`), so it references nothing outside its body
 * (the CRC function comes in as an argument); its one inner function closes
 * over nothing.
 *
 * It only ever says less than the reader's own checks would: a batch it
 * marks good (CRC matches, every record decoded) is one `batchCrcOk` and
 * `decodePositions` accept with the same positions; anything else (a CRC
 * mismatch, a record running past its batch, a varint too long) is left to
 * those, which then say what is wrong. It does not check headers beyond
 * their lengths and counts: the reader parses every header itself.
 */

import type { Crc32 } from './crc32.ts';
import type { RecordPositions } from './record-batch.ts';

/** The results of `decodeChunk`: arrays as a RecordBlock holds them, for every record of every batch found. */
export interface DecodedChunk extends Omit<RecordPositions, 'count' | 'reserve'> {
  /** Batches found, from the chunk's first byte, each whole in the chunk. */
  batches: number;
  /**
   * Per batch, 4 words: its position in the chunk; 1 when its CRC matches;
   * the index of its first record in the arrays; its records decoded (-1:
   * not decoded, because the CRC does not match or a record is malformed).
   */
  meta: Int32Array;
}

/** Checks and decodes the batches in `buf`, from its first byte while a whole batch follows (the record-batch.ts format). */
export function decodeChunk(buf: Uint8Array, crc32: Crc32): DecodedChunk {
  // The varint at d (at most 8 bytes, none at or past end): its value, its end in at[0]; -1 when it is not one. Declared
  // here (the worker runs this function's text alone) and closing over nothing.
  function longVarint(buf: Uint8Array, d: number, end: number, at: Int32Array): number {
    let v = 0;
    let mul = 1;
    for (let k = 0; k < 8 && d < end; k++, mul *= 128) {
      const x = buf[d++]!;
      v += (x & 0x7f) * mul;
      if (x < 0x80) {
        at[0] = d;
        return v;
      }
    }
    return -1;
  }
  // the CRC's steps, and how far past the record being decoded it has gone at least (see below)
  const CRC_STEP = 65_536;
  const CRC_LEAD = 2048;
  const at = new Int32Array(1);
  const size = buf.length;
  // first pass: how many batches lie whole in the chunk, and their records
  let p = 0;
  let batches = 0;
  let records = 0;
  while (p + 38 <= size) {
    const total = 12 + buf[p + 8]! * 16777216 + ((buf[p + 9]! << 16) | (buf[p + 10]! << 8) | buf[p + 11]!);
    const count = buf[p + 18]! * 16777216 + ((buf[p + 19]! << 16) | (buf[p + 20]! << 8) | buf[p + 21]!);
    if (total < 38 || p + total > size || count === 0 || count > total) break;
    batches++;
    records += count;
    p += total;
  }
  const meta = new Int32Array(batches * 4);
  const timestamps = new Float64Array(records);
  const keyStarts = new Int32Array(records);
  const keyEnds = new Int32Array(records);
  const valueStarts = new Int32Array(records);
  const valueEnds = new Int32Array(records);
  const headerStarts = new Int32Array(records);
  p = 0;
  let r = 0;
  for (let b = 0; b < batches; b++) {
    const total = 12 + buf[p + 8]! * 16777216 + ((buf[p + 9]! << 16) | (buf[p + 10]! << 8) | buf[p + 11]!);
    const count = buf[p + 18]! * 16777216 + ((buf[p + 19]! << 16) | (buf[p + 20]! << 8) | buf[p + 21]!);
    const end = p + total;
    const crc = buf[p + 12]! * 16777216 + ((buf[p + 13]! << 16) | (buf[p + 14]! << 8) | buf[p + 15]!);
    // The CRC goes CRC_STEP bytes at a time just ahead of the records decoded, so they are read from the cache the
    // CRC filled (a batch is bigger than a core's cache: 1-10% less time than checking all of it first, in runs
    // alternating the two); the records are decoded whether it matches or not, and count only when it does.
    let sum = crc32(buf.subarray(p, p + 12));
    let summed = p + 16;
    meta[b * 4] = p;
    meta[b * 4 + 2] = r;
    let decoded = count;
    // int64 big-endian firstTimestamp at 22: the high word signed
    const hi = (buf[p + 22]! << 24) | (buf[p + 23]! << 16) | (buf[p + 24]! << 8) | buf[p + 25]!;
    const first = hi * 4294967296 + buf[p + 26]! * 16777216 + ((buf[p + 27]! << 16) | (buf[p + 28]! << 8) | buf[p + 29]!);
    let q = p + 38;
    for (let i = 0; i < count; i++) {
      if (q + CRC_LEAD > summed && summed < end) {
        const to = Math.min(end, summed + CRC_STEP);
        sum = crc32(buf.subarray(summed, to), sum);
        summed = to;
      }
      if (q + 4 > end) {
        decoded = -1;
        break;
      }
      const recEnd = q + 4 + buf[q]! * 16777216 + ((buf[q + 1]! << 16) | (buf[q + 2]! << 8) | buf[q + 3]!);
      if (recEnd > end) {
        decoded = -1;
        break;
      }
      let d = q + 4;
      // the record's varints in order (timestamp delta, key length, value length, header count, then per header two
      // lengths), one after another; the first four read here when of one or two bytes (written out: a loop over
      // the steps, or a call for each, took 13-20% longer, measured), longer ones and the headers' through longVarint
      let x = 0;
      let y = 0;
      let v = 0;
      // the timestamp delta, zigzag
      x = d < recEnd ? buf[d]! : 0x80;
      y = d + 1 < recEnd ? buf[d + 1]! : 0x80;
      if (x < 0x80) {
        v = x;
        d += 1;
      } else if (y < 0x80) {
        v = (x & 0x7f) + y * 128;
        d += 2;
      } else if ((v = longVarint(buf, d, recEnd, at)) >= 0) {
        d = at[0]!;
      } else {
        decoded = -1;
        break;
      }
      timestamps[r + i] = first + (v % 2 === 0 ? v / 2 : -(v + 1) / 2);
      // the key length + 1 (0: no key)
      x = d < recEnd ? buf[d]! : 0x80;
      y = d + 1 < recEnd ? buf[d + 1]! : 0x80;
      if (x < 0x80) {
        v = x;
        d += 1;
      } else if (y < 0x80) {
        v = (x & 0x7f) + y * 128;
        d += 2;
      } else if ((v = longVarint(buf, d, recEnd, at)) >= 0) {
        d = at[0]!;
      } else {
        decoded = -1;
        break;
      }
      if (v === 0) {
        keyStarts[r + i] = -1;
        keyEnds[r + i] = -1;
      } else {
        if (v - 1 > recEnd - d) {
          decoded = -1;
          break;
        }
        keyStarts[r + i] = d;
        d += v - 1;
        keyEnds[r + i] = d;
      }
      // the value length
      x = d < recEnd ? buf[d]! : 0x80;
      y = d + 1 < recEnd ? buf[d + 1]! : 0x80;
      if (x < 0x80) {
        v = x;
        d += 1;
      } else if (y < 0x80) {
        v = (x & 0x7f) + y * 128;
        d += 2;
      } else if ((v = longVarint(buf, d, recEnd, at)) >= 0) {
        d = at[0]!;
      } else {
        decoded = -1;
        break;
      }
      if (v > recEnd - d) {
        decoded = -1;
        break;
      }
      valueStarts[r + i] = d;
      d += v;
      valueEnds[r + i] = d;
      headerStarts[r + i] = d;
      // the header count
      x = d < recEnd ? buf[d]! : 0x80;
      y = d + 1 < recEnd ? buf[d + 1]! : 0x80;
      if (x < 0x80) {
        v = x;
        d += 1;
      } else if (y < 0x80) {
        v = (x & 0x7f) + y * 128;
        d += 2;
      } else if ((v = longVarint(buf, d, recEnd, at)) >= 0) {
        d = at[0]!;
      } else {
        decoded = -1;
        break;
      }
      // each header's name and value length
      for (let left = v * 2; left > 0; left--) {
        v = longVarint(buf, d, recEnd, at);
        if (v < 0) {
          decoded = -1;
          break;
        }
        d = at[0]!;
        if (v > recEnd - d) {
          decoded = -1;
          break;
        }
        d += v;
      }
      if (decoded < 0) break;
      q = recEnd;
    }
    if (summed < end) sum = crc32(buf.subarray(summed, end), sum);
    const ok = sum === crc;
    meta[b * 4 + 1] = ok ? 1 : 0;
    meta[b * 4 + 3] = ok ? decoded : -1;
    r += count;
    p = end;
  }
  return { batches, meta, timestamps, keyStarts, keyEnds, valueStarts, valueEnds, headerStarts };
}
