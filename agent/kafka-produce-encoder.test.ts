import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextSequence } from './kafka-client.ts';
import type { AddedHeaders, EncodableRecord } from './kafka-produce-encoder.ts';
import { recordBlockOf } from '../log-store/index.ts';
import type { LogRecord } from '../log-store/index.ts';
import { addonCrc32c } from '../log-store/crc32.ts';
import { seededRandom } from '../test/support/seeded-random.ts';
import { ByteWriter, MAX_SEQUENCE, crc32c, crc32cTables, encodeProduceBody, encodeProduceBodyFromBlocks, sealBatch, uvarintSize, writeDecimalString, writeVarint, zigzag } from './kafka-produce-encoder.ts';

const require = createRequire(import.meta.url);
/** kafkajs's own encoders: the reference our bytes must equal. */
const KafkajsEncoder = require('kafkajs/src/protocol/encoder.js') as new () => {
  writeVarInt(v: number): unknown;
  writeVarLong(v: number): unknown;
  buffer: Buffer;
};
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
const kafkajsProduceV3 = require('kafkajs/src/protocol/requests/produce/v3/request.js') as (args: object) => { encode(): Promise<{ buffer: Buffer }> };

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('crc32c', () => {
  it.each([
    ['"123456789"', ascii('123456789'), 0xe3069283],
    ['32 zero bytes (RFC 3720)', Buffer.alloc(32), 0x8a9136aa],
    ['32 0xFF bytes (RFC 3720)', Buffer.alloc(32, 0xff), 0x62a8ab43],
    ['0..31 (RFC 3720)', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
    ['31..0 (RFC 3720)', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
    ['nothing', Buffer.alloc(0), 0],
  ])('%s', (_name, bytes, expected) => {
    expect(crc32c(bytes)).toBe(expected);
  });

  it('equals kafkajs’s CRC-32C for any bytes at any start, length and alignment, short (tables) or long (the SIMD addon); a CRC can be continued across the two', () => {
    fc.assert(
      // lengths drawn on their own (from 0 to past the addon's threshold, evenly) and bytes from a seed: a failure shrinks fast
      fc.property(fc.nat(1500), fc.integer(), fc.nat(16), fc.nat(1500), (length, seed, pad, cut) => {
        const rnd = seededRandom(seed);
        const bytes = Uint8Array.from({ length }, () => Math.floor(rnd() * 256));
        const buf = Buffer.alloc(pad + bytes.length);
        buf.set(bytes, pad);
        const expected = kafkajsCrc32c(Buffer.from(bytes));
        expect(crc32c(buf, pad, buf.length)).toBe(expected);
        expect(crc32cTables(buf, pad, buf.length)).toBe(expected);
        const mid = pad + Math.min(cut, bytes.length);
        expect(crc32c(buf, mid, buf.length, crc32c(buf, pad, mid))).toBe(expected);
        expect(crc32cTables(buf, mid, buf.length, crc32c(buf, pad, mid))).toBe(expected);
      }),
    );
  });

  it('goes to the SIMD addon here (it installs on this platform)', () => {
    expect(addonCrc32c).not.toBeNull();
  });
});

describe('varints', () => {
  const cases = [0, 1, -1, 63, -64, 64, -65, 127, 128, 8191, -8192, 8192, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 35 + 7, -(2 ** 40) - 3, 2 ** 52, -(2 ** 52)];
  it.each(cases)('%d is written as kafkajs writes a varint/varlong (zigzag LEB128), in uvarintSize bytes', (v) => {
    const ours = Buffer.alloc(12);
    const end = writeVarint(ours, 1, v);
    const ref = new KafkajsEncoder();
    if (v >= -(2 ** 31) && v < 2 ** 31) ref.writeVarInt(v);
    else ref.writeVarLong(v);
    expect(ours.subarray(1, end)).toEqual(ref.buffer);
    expect(end - 1).toBe(uvarintSize(zigzag(v)));
  });

  it('zigzag maps 0, -1, 1, -2, 2 to 0, 1, 2, 3, 4', () => {
    expect([0, -1, 1, -2, 2].map(zigzag)).toEqual([0, 1, 2, 3, 4]);
  });

  it.each([0, 7, 9, 10, 99, 100, 12345, 2 ** 31, 2 ** 53 - 1])('writeDecimalString(%d) writes a varint length and the decimal digits', (v) => {
    const buf = Buffer.alloc(20);
    const end = writeDecimalString(buf, 0, v);
    const w = new ByteWriter(20);
    w.varintString(String(v));
    expect(buf.subarray(0, end)).toEqual(w.buf.subarray(0, w.pos));
  });

  it('ByteWriter.varintString writes UTF-8 (non-ASCII, long strings) with its byte length', () => {
    for (const s of ['', 'a', 'größe °C', '温度', '😀x', 'x'.repeat(63), 'x'.repeat(64), 'é'.repeat(40), 'y'.repeat(5000)]) {
      const w = new ByteWriter(8);
      w.varintString(s);
      const ref = new KafkajsEncoder() as unknown as { writeVarIntString(s: string): void; buffer: Buffer };
      ref.writeVarIntString(s);
      expect(w.buf.subarray(0, w.pos)).toEqual(ref.buffer);
    }
  });
});

describe('nextSequence', () => {
  it('advances by the record count and wraps from 2^31-1 to 0 as Kafka does', () => {
    expect(nextSequence(0, 5000)).toBe(5000);
    expect(nextSequence(MAX_SEQUENCE, 1)).toBe(0);
    expect(nextSequence(MAX_SEQUENCE - 9, 20)).toBe(10);
  });
});

/** What kafkajs produces for the same records: a v3 Produce body (identical on the wire for v3–v7). */
async function kafkajsBody(records: EncodableRecord[], o: { topic: string; partition: number; producerId: string; producerEpoch: number; baseSequence: number; compression: 'none' | 'gzip'; timeoutMs: number }, added?: AddedHeaders): Promise<Buffer> {
  const messages = records.map((r) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) if (!(added?.fixed && Object.hasOwn(added.fixed, k)) && k !== added?.offsetName) headers[k] = v;
    Object.assign(headers, added?.fixed ?? {});
    if (added?.offsetName !== undefined) headers[added.offsetName] = String(r.offset);
    return { key: r.key === null ? null : Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value), timestamp: String(r.timestamp), headers };
  });
  const request = kafkajsProduceV3({
    acks: -1,
    timeout: o.timeoutMs,
    compression: o.compression === 'gzip' ? 1 : 0,
    producerId: o.producerId,
    producerEpoch: o.producerEpoch,
    topicData: [{ topic: o.topic, partitions: [{ partition: o.partition, firstSequence: o.baseSequence, messages }] }],
  });
  return (await request.encode()).buffer;
}

async function ourBody(records: EncodableRecord[], o: Parameters<typeof kafkajsBody>[1], added?: AddedHeaders): Promise<Buffer> {
  // kafkajs writes partition leader epoch 0 (producers normally send -1; brokers ignore it and the CRC does not cover it).
  const body = await encodeProduceBody(records, { topic: o.topic, partition: o.partition, acks: -1, timeoutMs: o.timeoutMs, compression: o.compression, addedHeaders: added, partitionLeaderEpoch: 0 });
  sealBatch(body.body, body, o);
  return body.body;
}

const t0 = Date.parse('2020-02-14T12:19:27Z');
const readings: EncodableRecord[] = Array.from({ length: 60 }, (_, i) => ({
  key: i % 7 === 0 ? null : i % 5 === 0 ? Buffer.from([0, 255, i & 0xff]) : `aa-${100 + (i % 17)}`,
  value: i % 11 === 0 ? Buffer.alloc(9000, i & 0xff) : Buffer.from(JSON.stringify({ sensor: i, temp: 15 + (i % 20), unit: '°C' })),
  // Out of order on purpose: the base timestamp is the smallest, deltas are non-negative.
  timestamp: t0 + ((i * 7919) % 60) * 250,
  headers: i % 3 === 0 ? {} : { source: 'mqtt', device: `dev-${i % 8}`, 'größe': 'ü', ...(i % 9 === 0 ? { 'millstream.offset': 'own', 'millstream.gateway': 'own' } : {}) },
  offset: 1_000_000 + i,
}));

describe('encodeProduceBody: the same bytes kafkajs encodes', () => {
  const base = { topic: 'gw1.widgets', partition: 2, producerId: '4000000000123', producerEpoch: 3, baseSequence: 77, timeoutMs: 30000 };

  it.each(['none', 'gzip'] as const)('a batch of keyed, null-key and binary-key records, large values, UTF-8 headers (compression %s)', async (compression) => {
    const o = { ...base, compression };
    expect(await ourBody(readings, o)).toEqual(await kafkajsBody(readings, o));
  });

  it('with added headers: own headers first (same-named ones left out), then the fixed ones, then the offset', async () => {
    const added = { fixed: { 'millstream.gateway': 'gw1', 'millstream.topic': 'widgets', 'millstream.partition': '2' }, offsetName: 'millstream.offset' };
    const o = { ...base, compression: 'none' as const };
    expect(await ourBody(readings, o, added)).toEqual(await kafkajsBody(readings, o, added));
  });

  it('offset headers across carries (9→10, 99→100, 999→1000), gaps and a fall back', async () => {
    const offsets = [7, 8, 9, 10, 11, 98, 99, 100, 101, 999, 1000, 5, 2 ** 40 - 1, 2 ** 40, 2 ** 53 - 2, 2 ** 53 - 1];
    const records: EncodableRecord[] = offsets.map((offset, i) => ({ key: null, value: Buffer.from([i]), timestamp: t0 + i, headers: {}, offset }));
    const o = { ...base, compression: 'none' as const };
    expect(await ourBody(records, o, { offsetName: 'off' })).toEqual(await kafkajsBody(records, o, { offsetName: 'off' }));
  });

  it('a record with more than 63 headers (two-byte header count) and one of 20 KB (three-byte length)', async () => {
    const many = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`h${i}`, `v${i}`]));
    const records: EncodableRecord[] = [
      { key: 'a', value: Buffer.from('small'), timestamp: t0, headers: many, offset: 1 },
      { key: 'b', value: Buffer.alloc(20_000, 7), timestamp: t0 + 1, headers: {}, offset: 2 },
      { key: 'c', value: Buffer.from('small again'), timestamp: t0 + 2, headers: { x: 'y' }, offset: 3 },
    ];
    const o = { ...base, compression: 'none' as const };
    expect(await ourBody(records, o, { offsetName: 'o' })).toEqual(await kafkajsBody(records, o, { offsetName: 'o' }));
  });

  it('random records (fast-check): byte for byte what kafkajs encodes', async () => {
    const record = fc.record({
      key: fc.oneof(fc.constant(null), fc.string({ maxLength: 80 }), fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b))),
      value: fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
      timestamp: fc.integer({ min: t0 - 10_000_000, max: t0 + 10_000_000 }),
      headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => k !== '__proto__'), fc.string({ maxLength: 30 }), { maxKeys: 5 }),
      offset: fc.nat(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 40 }), fc.nat(MAX_SEQUENCE), async (records, baseSequence) => {
        const o = { ...base, baseSequence, compression: 'none' as const };
        expect(await ourBody(records, o, { fixed: { g: 'w' }, offsetName: 'off' })).toEqual(await kafkajsBody(records, o, { fixed: { g: 'w' }, offsetName: 'off' }));
      }),
      { numRuns: 60 },
    );
  });

  it('sealBatch fills producer id, epoch and sequence and the CRC; resealing with other fields changes them, the same fields are a no-op', async () => {
    const o = { ...base, compression: 'none' as const };
    const body = await encodeProduceBody(readings.slice(0, 20), { topic: o.topic, partition: o.partition, acks: -1, timeoutMs: o.timeoutMs, compression: 'none', partitionLeaderEpoch: 0 });
    sealBatch(body.body, body, { producerId: '1', producerEpoch: 0, baseSequence: 0 });
    sealBatch(body.body, body, o);
    const sealed = Buffer.from(body.body);
    expect(sealed).toEqual(await kafkajsBody(readings.slice(0, 20), o));
    body.body[body.batchStart + 17] ^= 0xff; // a same-field reseal does not recompute (and so would not repair) the CRC
    sealBatch(body.body, body, o);
    expect(body.body[body.batchStart + 17]).toBe(sealed[body.batchStart + 17] ^ 0xff);
  });

  it('from log blocks (readBatches): the same bytes as from the records, across blocks, null keys, UTF-8, own headers named like added ones, >63 headers', async () => {
    const many = Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`h${i}`, `v${i}`]));
    const logRecords: LogRecord[] = readings.map((r, i) => ({
      topic: 't',
      partition: 2,
      offset: 500 + i,
      timestamp: r.timestamp,
      key: r.key === null ? null : typeof r.key === 'string' ? r.key : `bin-${i}`,
      value: Buffer.from(r.value!),
      headers: i === 4 ? many : { ...r.headers },
    }));
    // Two blocks that continue each other, as readBatches returns them.
    const blocks = [recordBlockOf(logRecords.slice(0, 25))!, recordBlockOf(logRecords.slice(25))!];
    const added = { fixed: { 'millstream.gateway': 'gw1', 'millstream.topic': 'widgets' }, offsetName: 'millstream.offset' };
    for (const compression of ['none', 'gzip'] as const) {
      const o = { topic: 'gw1.widgets', partition: 2, acks: -1, timeoutMs: 30000, compression, addedHeaders: added };
      const fromBlocks = await encodeProduceBodyFromBlocks(blocks, o, undefined, 16);
      const fromRecords = await encodeProduceBody(logRecords, o);
      const fields = { producerId: '77', producerEpoch: 1, baseSequence: 9 };
      sealBatch(fromBlocks.body, fromBlocks, fields);
      sealBatch(fromRecords.body, fromRecords, fields);
      expect(fromBlocks.body).toEqual(fromRecords.body);
      expect(fromBlocks.headroom).toBe(16);
    }
  });

  it('refuses an empty batch', async () => {
    await expect(encodeProduceBody([], { topic: 't', partition: 0, acks: -1, timeoutMs: 1, compression: 'none' })).rejects.toThrow(RangeError);
  });
});
