import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BATCH_HEADER_BYTES, BatchBuilder, BatchFormatError, batchCrcOk, decodeRecords, decodeUtf8, encodeBatch, readBatchHeader, recordTimestamps, sealBatch } from './record-batch.ts';
import type { LogRecord, RecordInput } from './types.ts';
import { recordArbitrary } from '../test/support/log-store-arbitraries.ts';

function roundTrip(records: RecordInput[], base = 0, now = 0): LogRecord[] {
  const b = encodeBatch(records, null, now);
  sealBatch(b.buf, base);
  const h = readBatchHeader(b.buf, 0);
  expect(h.totalBytes).toBe(b.buf.length);
  expect(batchCrcOk(b.buf, 0, h)).toBe(true);
  const out: LogRecord[] = [];
  decodeRecords(b.buf, 0, h, 't', 0, 0, out, Infinity);
  return out;
}

describe('record batch codec', () => {
  it('encodes the documented byte layout (golden bytes)', () => {
    const b = encodeBatch(
      [
        { key: 'aa-101', value: '{"t":23}', timestamp: 1581682767000, headers: { src: 'mqtt' } },
        { key: null, value: new Uint8Array([1, 2]), timestamp: 1581682766999 },
      ],
      null,
      0,
    );
    sealBatch(b.buf, 42);
    expect(b.buf.toString('hex')).toBe(
      [
        '000000000000002a', // baseOffset 42
        '00000043', // batchLength 67 (79 - 12)
        'ecbebc42', // crc
        '01', // magic
        '00', // attributes
        '00000002', // recordCount
        '0000017043a3b498', // firstTimestamp 1581682767000
        '0000017043a3b498', // maxTimestamp
        '0000001b', '00', '07', '61612d313031', '08', '7b2274223a32337d', '01', '03', '737263', '04', '6d717474',
        '00000006', '01', '00', '02', '0102', '00',
      ].join(''),
    );
    // The CRC covers everything but itself.
    const expected = crc32(b.buf.subarray(16), crc32(b.buf.subarray(0, 12)));
    expect(b.buf.readUInt32BE(12)).toBe(expected);
  });

  it('round-trips keys, values, timestamps and headers', () => {
    const big = 'x'.repeat(20_000) + 'é';
    const records: RecordInput[] = [
      { key: 'aa-101', value: JSON.stringify({ sensor_id: 'aa-101', temp_celcius: 23 }), timestamp: 1_700_000_000_000 },
      { key: null, value: '', timestamp: 1_600_000_000_000, headers: { device: 'tty0', gateway: 'gw-ü' } },
      { key: '', value: new Uint8Array([0, 255, 7]), timestamp: 1_800_000_000_000 },
      { key: 'k'.repeat(300), value: big, timestamp: 5 },
      { key: '温度计', value: '温度'.repeat(100), timestamp: -1000 },
    ];
    const out = roundTrip(records, 7);
    expect(out.map((r) => r.offset)).toEqual([7, 8, 9, 10, 11]);
    expect(out.map((r) => r.key)).toEqual(['aa-101', null, '', 'k'.repeat(300), '温度计']);
    expect(out.map((r) => r.timestamp)).toEqual(records.map((r) => r.timestamp));
    expect(out[0]!.value.toString()).toBe(records[0]!.value);
    expect(out[1]!.headers).toEqual({ device: 'tty0', gateway: 'gw-ü' });
    expect([...out[2]!.value]).toEqual([0, 255, 7]);
    expect(out[3]!.value.toString()).toBe(big);
    expect(out[4]!.value.toString()).toBe('温度'.repeat(100));
    const b = encodeBatch(records, null, 0);
    sealBatch(b.buf, 0);
    expect(readBatchHeader(b.buf, 0)).toMatchObject({ firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_800_000_000_000, recordCount: 5 });
  });

  it('keeps a header named __proto__ as a header (found by the builder\'s fast-check round trip)', () => {
    const headers = JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string>;
    const [got] = roundTrip([{ key: null, value: 'v', timestamp: 1, headers }]);
    expect(Object.keys(got!.headers)).toEqual(['__proto__', 'a']);
    expect(got!.headers).toEqual(headers);
    expect(Object.getPrototypeOf(got!.headers)).toBe(Object.prototype);
  });

  it('encodes a selection of records and stamps missing timestamps with the clock', () => {
    const records: RecordInput[] = [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3', timestamp: 9 }];
    const b = encodeBatch(records, [2, 0], 1234);
    sealBatch(b.buf, 0);
    const h = readBatchHeader(b.buf, 0);
    expect(h.recordCount).toBe(2);
    const out: LogRecord[] = [];
    decodeRecords(b.buf, 0, h, 't', 0, 0, out, 10);
    expect(out.map((r) => [r.key, r.timestamp])).toEqual([['c', 9], ['a', 1234]]);
    expect(recordTimestamps(b.buf, 0, h)).toEqual([9, 1234]);
  });

  it('detects any flipped byte through the CRC or the framing', () => {
    const b = encodeBatch([{ key: 'aa-1', value: '{"v":1}', timestamp: 1 }, { key: 'aa-2', value: '{"v":2}', timestamp: 2 }], null, 0);
    sealBatch(b.buf, 3);
    for (let i = 0; i < b.buf.length; i++) {
      const copy = Buffer.from(b.buf);
      copy[i] ^= 0x10;
      let detected = false;
      try {
        const h = readBatchHeader(copy, 0);
        detected = h.totalBytes !== copy.length || !batchCrcOk(copy, 0, h);
      } catch (err) {
        expect(err).toBeInstanceOf(BatchFormatError);
        detected = true;
      }
      expect(detected, `flip at byte ${i}`).toBe(true);
    }
  });

  it('rejects malformed records with BatchFormatError', () => {
    expect(() => encodeBatch([{ key: 1 as unknown as string, value: 'x' }], null, 0)).toThrow(BatchFormatError);
    expect(() => encodeBatch([{ key: null, value: 5 as unknown as string }], null, 0)).toThrow(BatchFormatError);
    expect(() => encodeBatch([{ key: null, value: 'x', timestamp: 1.5 }], null, 0)).toThrow(BatchFormatError);
    expect(() => encodeBatch([{ key: null, value: 'x', headers: { a: 1 as unknown as string } }], null, 0)).toThrow(BatchFormatError);
    expect(() => encodeBatch([], null, 0)).toThrow(BatchFormatError);
    expect(BATCH_HEADER_BYTES).toBe(38);
  });
});

describe('BatchBuilder', () => {
  const records: RecordInput[] = [
    { key: 'aa-101', value: '{"t":23}', timestamp: 1581682767000, headers: { src: 'mqtt' } },
    { key: null, value: new Uint8Array([1, 2]), timestamp: 1581682766999 },
    { key: '温度计', value: 'v'.repeat(300), timestamp: 1581682768000 },
    { key: 'k'.repeat(40), value: '', timestamp: 1581682767500 },
    // headers bigger than the room a record is given up front: the buffer grows in the middle of the record
    { key: 'h', value: 'x', timestamp: 1581682767001, headers: { big: 'h'.repeat(2000), 'ü': 'y' } },
  ];

  it('builds, record by record, the bytes encodeBatch makes of the same records', () => {
    const expected = encodeBatch(records, null, 0);
    sealBatch(expected.buf, 42);
    const builder = new BatchBuilder(null, 16);
    for (const r of records) builder.add(r.timestamp!, r.key ?? null, r.value, r.headers);
    expect(builder.count).toBe(5);
    const built = builder.take();
    sealBatch(built.buf, 42);
    expect(built.buf.toString('hex')).toBe(expected.buf.toString('hex'));
    expect(built).toMatchObject({ recordCount: 5, firstTimestamp: 1581682767000, maxTimestamp: 1581682768000 });
    expect(builder.count).toBe(0);
  });

  it('decodes to the records added, whatever their sizes and wherever the buffer grows (fast-check)', () => {
    // each record added from strings, or from bytes of a buffer (`bytes`)
    const record = fc.tuple(recordArbitrary({ text: 300, bytes: 400, headerName: 20, headers: 4 }), fc.boolean()).map(([r, bytes]) => ({ ...r, bytes }));
    fc.assert(
      fc.property(fc.array(record, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 4096 }), (records, capacity) => {
        const builder = new BatchBuilder(null, capacity);
        for (const r of records) {
          if (r.bytes) {
            // the same record from bytes of one buffer: key, then value
            const key = r.key === null ? Buffer.alloc(0) : Buffer.from(r.key);
            const value = Buffer.from(r.value);
            const src = Buffer.concat([Buffer.from([9]), key, value]);
            builder.addBytes(r.timestamp, src, r.key === null ? -1 : 1, 1 + key.length, 1 + key.length, src.length, r.headers);
          } else builder.add(r.timestamp, r.key, r.value, r.headers);
        }
        const b = builder.take();
        sealBatch(b.buf, 0);
        const out: LogRecord[] = [];
        decodeRecords(b.buf, 0, readBatchHeader(b.buf, 0), 't', 0, 0, out, Infinity);
        expect(out.map((r) => [r.timestamp, r.key, r.value.toString('hex'), r.headers])).toEqual(
          records.map((r) => [r.timestamp, r.key, Buffer.from(r.value).toString('hex'), r.headers ?? {}]),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('adds records from bytes of two buffers in turn, batch after batch, as add does from strings (the last source is kept only within a batch)', () => {
    const texts = Array.from({ length: 40 }, (_, i) => `{"i":${i},"pad":"${'x'.repeat(20 + i * 7)}"}`);
    // two sources, one of them a view at an offset of a bigger buffer
    const one = Buffer.from(texts.join(''));
    const two = Buffer.concat([Buffer.from('....'), Buffer.from(texts.slice().reverse().join(''))]).subarray(4);
    const at = (src: Buffer, text: string): [number, number] => {
      const start = src.indexOf(text);
      return [start, start + Buffer.byteLength(text)];
    };
    const fromBytes = new BatchBuilder(null, 64);
    const fromText = new BatchBuilder(null, 64);
    for (let batch = 0; batch < 3; batch++) {
      for (let i = 0; i < texts.length; i++) {
        const src = (i + batch) % 3 === 0 ? two : one;
        const [start, end] = at(src, texts[i]!);
        fromBytes.addBytes(1000 + i, src, -1, -1, start, end, i === 0 ? { b: String(batch) } : null);
        fromText.add(1000 + i, null, texts[i]!, i === 0 ? { b: String(batch) } : null);
      }
      const a = fromBytes.take();
      const b = fromText.take();
      sealBatch(a.buf, 0);
      sealBatch(b.buf, 0);
      expect(a.buf.toString('hex')).toBe(b.buf.toString('hex'));
      // the source's bytes change between batches: a batch copies what they are then
      one.write('y', one.indexOf('x'));
      texts[0] = texts[0]!.replace('x', 'y');
      if (batch === 0) expect(one.toString()).toContain('"pad":"y');
    }
  });

  it('adds records from bytes of a buffer (keys and values passed through) as add does from strings', () => {
    const src = Buffer.from('xx' + 'aa-101' + '{"t":23}' + 'k'.repeat(40) + 'w'.repeat(100));
    const fromBytes = new BatchBuilder(null);
    fromBytes.addBytes(7, src, 2, 8, 8, 16, { src: 'mqtt' });
    fromBytes.addBytes(9, src, -1, -1, 56, 156);
    fromBytes.addBytes(8, src, 16, 56, 16, 16);
    const fromText = new BatchBuilder(null);
    fromText.add(7, 'aa-101', '{"t":23}', { src: 'mqtt' });
    fromText.add(9, null, 'w'.repeat(100));
    fromText.add(8, 'k'.repeat(40), '');
    const a = fromBytes.take();
    const b = fromText.take();
    sealBatch(a.buf, 0);
    sealBatch(b.buf, 0);
    expect(a.buf.toString('hex')).toBe(b.buf.toString('hex'));
    const out: LogRecord[] = [];
    decodeRecords(a.buf, 0, readBatchHeader(a.buf, 0), 't', 0, 0, out, 10);
    expect(out.map((r) => [r.key, r.value.toString(), r.timestamp, r.headers])).toEqual([
      ['aa-101', '{"t":23}', 7, { src: 'mqtt' }],
      [null, 'w'.repeat(100), 9, {}],
      ['k'.repeat(40), '', 8, {}],
    ]);
  });

  it('refuses a malformed record without adding it, and keeps the batch it builds intact', () => {
    const builder = new BatchBuilder(null, 64, (err) => new RangeError(`wrapped: ${err.message}`));
    builder.add(5, 'a', '1');
    expect(() => builder.add(99.5, 'b', '2')).toThrow('wrapped: record 1: timestamp must be an integer number of ms');
    expect(() => builder.add(99, 'b', '2', { h: 1 as unknown as string })).toThrow('wrapped: record 1: header h must be a string');
    expect(() => builder.addBytes(99, Buffer.from('abc'), 0, 1, 1, 9)).toThrow('wrapped: record 1: key or value bytes out of range');
    expect(() => builder.add(99, 3 as unknown as string, '2')).toThrow(RangeError);
    builder.add(6, 'c', '3');
    const b = builder.take();
    sealBatch(b.buf, 0);
    const out: LogRecord[] = [];
    decodeRecords(b.buf, 0, readBatchHeader(b.buf, 0), 't', 0, 0, out, 10);
    // the refused records left no trace, not even in the batch's largest timestamp
    expect(out.map((r) => [r.key, r.value.toString(), r.timestamp])).toEqual([['a', '1', 5], ['c', '3', 6]]);
    expect(b).toMatchObject({ recordCount: 2, firstTimestamp: 5, maxTimestamp: 6 });
    expect(() => builder.take()).toThrow(BatchFormatError);
    builder.add(1, null, 'x');
    builder.clear();
    expect(builder.count).toBe(0);
    expect(() => builder.take()).toThrow(BatchFormatError);
  });
});

describe('decodeUtf8', () => {
  it('equals Buffer#toString("utf8") for ASCII of every length around the short-string limit, and for non-ASCII and invalid UTF-8 at every position', () => {
    for (let n = 0; n <= 20; n++) {
      const ascii = Buffer.from('sensor-0123456789abc'.slice(0, n), 'latin1');
      const buf = Buffer.concat([Buffer.from('xy'), ascii, Buffer.from('z')]);
      expect(decodeUtf8(buf, 2, 2 + n)).toBe(buf.toString('utf8', 2, 2 + n));
      for (let at = 0; at < n; at++) {
        for (const bad of [0xc3, 0xff, 0x80]) {
          const b = Buffer.from(buf);
          b[2 + at] = bad;
          expect(decodeUtf8(b, 2, 2 + n)).toBe(b.toString('utf8', 2, 2 + n));
        }
      }
    }
    const mixed = Buffer.from('größe °C 温度 😀');
    expect(decodeUtf8(mixed, 0, mixed.length)).toBe('größe °C 温度 😀');
  });

  it('equals Buffer#toString("utf8") for any bytes (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.nat(4), (bytes, pad) => {
        const buf = Buffer.concat([Buffer.alloc(pad, 0x41), Buffer.from(bytes)]);
        expect(decodeUtf8(buf, pad, buf.length)).toBe(buf.toString('utf8', pad, buf.length));
      }),
    );
  });
});
