import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeChunk } from './chunk-decode.ts';
import { BatchBuilder, BatchFormatError, type BatchHeader, batchCrcOk, decodePositions, readBatchHeader, sealBatch } from './record-batch.ts';
import { RecordBlockBuilder } from './record-block.ts';
import { decodeWorker, killDecodeWorker } from './decode-worker.ts';
import { recordArbitrary } from '../test/support/log-store-arbitraries.ts';

const record = recordArbitrary({ text: 60, bytes: 200, headerName: 8, headers: 3 });

/** Batches back to back, as in a .log file, from base offset 0. */
function chunkOf(batches: Array<Array<{ timestamp: number; key: string | null; value: string | Uint8Array; headers?: Record<string, string> }>>): Buffer {
  const parts: Buffer[] = [];
  let base = 0;
  for (const records of batches) {
    const builder = new BatchBuilder(null);
    for (const r of records) builder.add(r.timestamp, r.key, r.value, r.headers);
    const b = builder.take();
    sealBatch(b.buf, base);
    base += records.length;
    parts.push(Buffer.from(b.buf));
  }
  return Buffer.concat(parts);
}

/** Calls `fn` with each batch of `chunk` whose header parses and which lies whole in it, in order, until one does not. */
function eachBatch(chunk: Buffer, fn: (at: number, header: BatchHeader) => void): void {
  for (let at = 0; at + 38 <= chunk.length; ) {
    let header: BatchHeader;
    try {
      header = readBatchHeader(chunk, at);
    } catch {
      return;
    }
    if (at + header.totalBytes > chunk.length) return;
    fn(at, header);
    at += header.totalBytes;
  }
}

/** What the reader's own checks say of each batch of `chunk` (until one whose header does not parse). */
function readerSays(chunk: Buffer): Array<{ at: number; crc: boolean; positions: RecordBlockBuilder | 'malformed' }> {
  const out: Array<{ at: number; crc: boolean; positions: RecordBlockBuilder | 'malformed' }> = [];
  eachBatch(chunk, (at, header) => {
    const crc = batchCrcOk(chunk, at, header);
    let positions: RecordBlockBuilder | 'malformed' = new RecordBlockBuilder(chunk, header.baseOffset, header.recordCount);
    try {
      decodePositions(chunk, at, header, 0, positions, Infinity);
    } catch (err) {
      expect(err).toBeInstanceOf(BatchFormatError);
      positions = 'malformed';
    }
    out.push({ at, crc, positions });
  });
  return out;
}

/** decodeChunk's good batches are exactly the reader's: the same positions; the rest it leaves to the reader. */
function agrees(chunk: Buffer): number {
  const d = decodeChunk(chunk, crc32);
  const want = readerSays(chunk);
  let good = 0;
  for (let b = 0; b < Math.min(d.batches, want.length); b++) {
    const w = want[b]!;
    expect(d.meta[b * 4]).toBe(w.at);
    expect(d.meta[b * 4 + 1] === 1).toBe(w.crc);
    const decoded = d.meta[b * 4 + 3]!;
    if (decoded < 0) continue;
    // marked good: the reader accepts it, with the same positions
    expect(w.crc).toBe(true);
    expect(w.positions).not.toBe('malformed');
    const p = w.positions as RecordBlockBuilder;
    expect(decoded).toBe(p.count);
    const from = d.meta[b * 4 + 2]!;
    for (const k of ['timestamps', 'keyStarts', 'keyEnds', 'valueStarts', 'valueEnds', 'headerStarts'] as const) {
      expect([...d[k].subarray(from, from + decoded)]).toEqual([...p[k].subarray(0, p.count)]);
    }
    good++;
  }
  return good;
}

describe('decodeChunk (the decode worker\'s program)', () => {
  it('finds every batch of a chunk and the positions decodePositions finds (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(record, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 6 }), fc.nat(), (batches, cut) => {
        const chunk = chunkOf(batches);
        expect(agrees(chunk)).toBe(batches.length);
        // a chunk cut anywhere: the whole batches before the cut, no more
        const part = chunk.subarray(0, cut % (chunk.length + 1));
        agrees(Buffer.from(part));
        expect(decodeChunk(part, crc32).batches).toBe(readerSays(Buffer.from(part)).length);
      }),
      { numRuns: 200 },
    );
  });

  it('never marks good a batch the reader refuses: flipped bytes, and malformed records under a valid CRC (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(record, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(), (batches, flips, reseal) => {
        const chunk = chunkOf(batches);
        for (const [at, x] of flips) chunk[at % chunk.length]! ^= x;
        if (reseal) {
          // the records are damaged but each batch's CRC matches them again: only the record checks can tell
          eachBatch(chunk, (at, header) => {
            const copy = Buffer.from(chunk.subarray(at, at + header.totalBytes));
            sealBatch(copy, header.baseOffset);
            copy.copy(chunk, at);
          });
        }
        agrees(chunk);
      }),
      { numRuns: 400 },
    );
  });

  it('checks batches longer than its CRC steps whole: a byte flipped at any step boundary, or at the end, unmarks that batch alone', () => {
    // two batches of about 300 KiB (the CRC goes 64 KiB at a time just ahead of the records decoded)
    const batches = [0, 1].map((b) => Array.from({ length: 1000 }, (_, i) => ({ timestamp: 1_600_000_000_000 + b * 10_000 + i * 7, key: `k-${i % 37}`, value: `{"i":${i},"pad":"${'x'.repeat(260 + (i % 50))}"}` })));
    const clean = chunkOf(batches);
    expect(agrees(clean)).toBe(2);
    const second = readerSays(clean)[1]!.at;
    const end = clean.length;
    for (const start of [0, second]) {
      const batchEnd = start === 0 ? second : end;
      const spots = [start + 38, batchEnd - 1, start + 16 + 65_536 - 1, start + 16 + 65_536, start + 16 + 2 * 65_536 + 1, start + 16 + 4 * 65_536];
      for (const at of spots) {
        expect(at).toBeLessThan(batchEnd);
        const chunk = Buffer.from(clean);
        chunk[at]! ^= 0x20;
        const d = decodeChunk(chunk, crc32);
        const b = start === 0 ? 0 : 1;
        expect([d.meta[b * 4 + 1], d.meta[b * 4 + 3]]).toEqual([0, -1]);
        expect([d.meta[(1 - b) * 4 + 1], d.meta[(1 - b) * 4 + 3]]).toEqual([1, 1000]);
        expect(agrees(chunk)).toBe(1);
      }
      // the first record's length damaged under a CRC that matches again: the CRC still checked to the batch's end
      const chunk = Buffer.from(clean);
      chunk[start + 38]! ^= 0x7f;
      const copy = Buffer.from(chunk.subarray(start, batchEnd));
      sealBatch(copy, start === 0 ? 0 : 1000);
      copy.copy(chunk, start);
      const d = decodeChunk(chunk, crc32);
      const b = start === 0 ? 0 : 1;
      expect([d.meta[b * 4 + 1], d.meta[b * 4 + 3]]).toEqual([1, -1]);
      agrees(chunk);
    }
  });

  it('never marks good a batch with any single record byte set to any value under a valid CRC (exhaustive)', () => {
    const clean = chunkOf([[{ timestamp: 5, key: 'k', value: 'abc', headers: { h: 'v' } }, { timestamp: 6, key: null, value: 'xy' }, { timestamp: 7, key: 'kk', value: '' }]]);
    let refused = 0;
    for (let at = 38; at < clean.length; at++) {
      for (let v = 0; v < 256; v++) {
        const chunk = Buffer.from(clean);
        chunk[at] = v;
        sealBatch(chunk, 0);
        // a batch still whole in the chunk (a record length byte can make it run past: then there is nothing to mark)
        if (agrees(chunk) === 0) refused++;
      }
    }
    expect(refused).toBeGreaterThan(1000);
  });

  it('leaves to the reader a varint longer than 8 bytes (the reader says: varint too long)', () => {
    const one = chunkOf([[{ timestamp: 0, key: null, value: '' }]]);
    // the record [length 4][ts 0][key null][value 0 bytes][0 headers] with its timestamp delta as a 9-byte varint
    const record = Buffer.from([0, 0, 0, 12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0, 0]);
    const chunk = Buffer.concat([one.subarray(0, 38), record]);
    chunk.writeUInt32BE(chunk.length - 12, 8);
    sealBatch(chunk, 0);
    expect(readerSays(chunk)).toMatchObject([{ crc: true, positions: 'malformed' }]);
    expect(decodeChunk(chunk, crc32).meta[3]).toBe(-1);
    // with 8 bytes it is a varint both read
    const eight = Buffer.concat([one.subarray(0, 38), Buffer.from([0, 0, 0, 11, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0, 0])]);
    eight.writeUInt32BE(eight.length - 12, 8);
    sealBatch(eight, 0);
    expect(agrees(eight)).toBe(1);
  });
});

describe('decode worker', () => {
  it('gives the chunk back with what decodeChunk finds here; once dead, it answers null and is not offered again', async () => {
    const chunk = chunkOf([[{ timestamp: 5, key: 'k', value: 'v'.repeat(100) }], [{ timestamp: 6, key: null, value: 'w' }]]);
    const here = decodeChunk(chunk, crc32);
    const worker = decodeWorker()!;
    expect(worker.usable).toBe(true);
    const owned = Buffer.allocUnsafeSlow(chunk.length);
    chunk.copy(owned);
    // a Buffer from the shared pool is refused: its memory holds other Buffers' bytes
    expect(() => worker.decode(Buffer.from(chunk))).toThrow(RangeError);
    const back = await worker.decode(owned);
    // the memory went to the worker and came back
    expect(owned.length).toBe(0);
    expect(back!.chunk.equals(chunk)).toBe(true);
    expect({ ...back!.decoded }).toEqual({ ...here });
    // the first bytes of a longer memory that is the chunk's alone (a chunk pool's idle chunk read into again): taken
    // only when the caller says so, and given back as those bytes of the whole memory
    const longer = Buffer.allocUnsafeSlow(chunk.length + 100);
    chunk.copy(longer);
    const view = longer.subarray(0, chunk.length);
    expect(() => worker.decode(view)).toThrow(RangeError);
    const viewBack = await worker.decode(view, true);
    expect(viewBack!.chunk.length).toBe(chunk.length);
    expect(viewBack!.chunk.buffer.byteLength).toBe(chunk.length + 100);
    expect(viewBack!.chunk.equals(chunk)).toBe(true);
    expect({ ...viewBack!.decoded }).toEqual({ ...here });
    await killDecodeWorker();
    expect(worker.usable).toBe(false);
    expect(await worker.decode(Buffer.allocUnsafeSlow(64))).toBeNull();
    expect(decodeWorker()).toBeNull();
  });
});
