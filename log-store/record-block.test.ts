import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodeChunk } from './chunk-decode.ts';
import { BatchFormatError, decodePositions, decodeRecords, encodeBatch, readBatchHeader, sealBatch } from './record-batch.ts';
import { RecordBlockBuilder, blockRecord, recordBlockOf } from './record-block.ts';
import type { LogRecord, RecordInput } from './types.ts';

function sealed(records: RecordInput[], base: number): Buffer {
  const b = encodeBatch(records, null, 0);
  sealBatch(b.buf, base);
  return Buffer.from(b.buf);
}

/** Records with every shape the format allows: null and non-ASCII keys, empty and binary values, headers, negative deltas, multi-byte varints. */
function mixed(n: number): RecordInput[] {
  return Array.from({ length: n }, (_, i) => ({
    key: i % 5 === 0 ? null : i % 7 === 0 ? `clé-${i}-ü` : `aa-${i}`,
    value: i % 11 === 0 ? new Uint8Array([0, 255, i & 0xff]) : i % 13 === 0 ? '' : JSON.stringify({ i, pad: 'x'.repeat(i % 3 === 0 ? 200 : 10) }),
    timestamp: 1_700_000_000_000 + (i % 4 === 0 ? -i * 1000 : i * 100_000),
    headers: i % 3 === 0 ? { source: 'mqtt', 'gä': `v${i}` } : undefined,
  }));
}

function viaBlock(buf: Buffer, base: number, from: number, max: number): LogRecord[] {
  const h = readBatchHeader(buf, 0);
  const b = new RecordBlockBuilder(buf, Math.max(from, base), 1);
  decodePositions(buf, 0, h, from, b, max);
  const block = b.finish('t', 3);
  return Array.from({ length: block.count }, (_, i) => blockRecord(block, i));
}

function viaRecords(buf: Buffer, from: number, max: number): LogRecord[] {
  const out: LogRecord[] = [];
  decodeRecords(buf, 0, readBatchHeader(buf, 0), 't', 3, from, out, max);
  return out;
}

describe('record positions (readBatches decoding)', () => {
  it('describes exactly the records decodeRecords builds, from any offset, up to any count', () => {
    const buf = sealed(mixed(40), 1000);
    for (const [from, max] of [[0, Infinity], [1000, 40], [1017, 5], [1039, 10], [1005, 0]] as const) {
      const got = viaBlock(buf, 1000, from, max);
      expect(got).toEqual(viaRecords(buf, from, max));
    }
    expect(viaBlock(buf, 1000, 1017, 5).map((r) => r.offset)).toEqual([1017, 1018, 1019, 1020, 1021]);
  });

  it('grows its arrays as records come (starting smaller than a batch)', () => {
    const buf = sealed(mixed(300), 0);
    const got = viaBlock(buf, 0, 0, Infinity);
    expect(got).toHaveLength(300);
    expect(got).toEqual(viaRecords(buf, 0, Infinity));
  });

  it('rejects a record whose fields run past it, as decodeRecords does', () => {
    const buf = sealed([{ key: 'k', value: 'hello', timestamp: 0 }], 0);
    // record layout after the 38-byte header: length(4) ts(1) keyLen(1) key(1) valueLen(1) value(5) headerCount(1)
    buf[38 + 4 + 1 + 1 + 1] = 60; // value length past the record
    expect(() => viaBlock(buf, 0, 0, Infinity)).toThrow(BatchFormatError);
    expect(() => viaRecords(buf, 0, Infinity)).toThrow(BatchFormatError);
  });

  it("takes the decode worker's records as views of its arrays while they follow one another there, else copies them", () => {
    // three batches back to back in one chunk, decoded as the worker does
    const chunk = Buffer.concat([sealed(mixed(30), 0), sealed(mixed(20), 30), sealed(mixed(10), 50)]);
    const d = decodeChunk(chunk, crc32);
    const all: LogRecord[] = [];
    for (let b = 0; b < d.batches; b++) decodeRecords(chunk, d.meta[b * 4]!, readBatchHeader(chunk, d.meta[b * 4]!), 't', 3, 0, all, Infinity);
    expect(all).toHaveLength(60);
    const records = (b: RecordBlockBuilder): LogRecord[] => {
      const block = b.finish('t', 3);
      return Array.from({ length: block.count }, (_, i) => blockRecord(block, i));
    };
    // the first batch from record 5, then the next two whole: one view, no arrays of its own
    const viewed = new RecordBlockBuilder(chunk, 5, 1);
    viewed.takeDecoded(d, 5, 25);
    viewed.takeDecoded(d, 30, 20);
    viewed.takeDecoded(d, 50, 10);
    const block = viewed.finish('t', 3);
    expect(block.timestamps.buffer).toBe(d.timestamps.buffer);
    expect(block.valueStarts.buffer).toBe(d.valueStarts.buffer);
    expect(block.count).toBe(55);
    expect(records(viewed)).toEqual(all.slice(5));
    // records that do not follow on (a gap) are copied, with those viewed before
    const gap = new RecordBlockBuilder(chunk, 0, 1);
    gap.takeDecoded(d, 0, 10);
    gap.takeDecoded(d, 30, 20);
    expect(gap.finish('t', 3).timestamps.buffer).not.toBe(d.timestamps.buffer);
    expect(records(gap).map((r) => [r.key, r.value, r.timestamp, r.headers])).toEqual([...all.slice(0, 10), ...all.slice(30, 50)].map((r) => [r.key, r.value, r.timestamp, r.headers]));
    // records decoded here after viewed ones: the view is copied first
    const mixedBlock = new RecordBlockBuilder(chunk, 30, 1);
    mixedBlock.takeDecoded(d, 30, 20);
    decodePositions(chunk, d.meta[2 * 4]!, readBatchHeader(chunk, d.meta[2 * 4]!), 50, mixedBlock, Infinity);
    expect(records(mixedBlock)).toEqual(all.slice(30));
  });

  it('recordBlockOf turns records back into a block that reads the same', () => {
    const buf = sealed(mixed(25), 7);
    const records = viaRecords(buf, 7, Infinity);
    const block = recordBlockOf(records)!;
    expect(Array.from({ length: block.count }, (_, i) => blockRecord(block, i))).toEqual(records);
    expect(recordBlockOf([])).toBeNull();
    expect(() => recordBlockOf([records[0]!, records[2]!])).toThrow(RangeError);
  });
});
