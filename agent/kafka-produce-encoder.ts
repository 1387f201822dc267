/**
 * Encodes Kafka Produce request bodies (v3–v7, the non-flexible versions that
 * carry record batch v2) straight into one Buffer: no object per record, no
 * intermediate Buffer per field. The kafkajs-based client
 * (kafka-client.ts) hands the body to kafkajs's connection, which frames it.
 *
 * Produce request body (v3–v7 are identical on the wire), big-endian:
 *
 *     transactional_id  int16 -1 (null string: not transactional)
 *     acks              int16
 *     timeout_ms        int32
 *     topic_data        int32 count = 1
 *       topic           int16 length, UTF-8
 *       partition_data  int32 count = 1
 *         partition     int32
 *         records       int32 size, then one record batch
 *
 * Record batch v2 (61-byte header, KIP-98):
 *
 * | offset | size | field                | value |
 * |-------:|-----:|----------------------|-------|
 * | 0      | 8    | baseOffset           | 0 (the broker assigns offsets) |
 * | 8      | 4    | batchLength          | bytes after this field |
 * | 12     | 4    | partitionLeaderEpoch | -1 (producers send none) |
 * | 16     | 1    | magic                | 2 |
 * | 17     | 4    | crc                  | CRC-32C of bytes [21, end) |
 * | 21     | 2    | attributes           | bits 0–2 compression (0 none, 1 gzip); create time; not transactional |
 * | 23     | 4    | lastOffsetDelta      | records − 1 |
 * | 27     | 8    | baseTimestamp        | smallest record timestamp (ms) |
 * | 35     | 8    | maxTimestamp         | largest record timestamp (ms) |
 * | 43     | 8    | producerId           | from InitProducerId |
 * | 51     | 2    | producerEpoch        | from InitProducerId |
 * | 53     | 4    | baseSequence         | sequence of the first record |
 * | 57     | 4    | recordCount          | records |
 * | 61     |      | records              | gzip: the records section compressed as one gzip stream |
 *
 * Record: length varint (of what follows), attributes int8 0,
 * timestampDelta varlong, offsetDelta varint, key (varint length, −1 for
 * null, bytes), value (same), header count varint, per header key (varint
 * length, UTF-8) and value (varint length, UTF-8). Varints are zigzag LEB128.
 * `AddedHeaders` follow a record's own headers and replace own headers of
 * the same name.
 */
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { addonCrc32c } from '../log-store/crc32.ts';
import type { RecordBlock } from '../log-store/index.ts';

const gzip = promisify(gzipCallback);

/** Bytes of a record batch v2 header before the first record. */
export const RECORD_BATCH_HEADER_BYTES = 61;
/** Record batch v2 magic byte. */
export const RECORD_BATCH_MAGIC = 2;
/** Attribute bits of the compression codec. */
export const COMPRESSION_CODEC = Object.freeze({ none: 0, gzip: 1 });
/** Sequence numbers are int32 and wrap from this to 0 (as Kafka's producer and broker do). */
export const MAX_SEQUENCE = 0x7fffffff;

/** One record as the encoder takes it. Header values are UTF-8 strings. */
export interface EncodableRecord {
  key: string | Uint8Array | null;
  value: Uint8Array | null;
  /** Milliseconds since the epoch. */
  timestamp: number;
  headers: Readonly<Record<string, string>>;
  /** Where the record comes from (a local log offset); needed with `AddedHeaders.offsetName`. */
  offset?: number;
}

/**
 * Headers the encoder adds to every record of a batch, after the record's
 * own; an own header with one of these names is left out (these win).
 */
export interface AddedHeaders {
  /** The same for every record: encoded once per batch, copied into each. Default: none. */
  fixed?: Readonly<Record<string, string>>;
  /** Name of a header written last whose value is the record's `offset` in decimal. Default: none. */
  offsetName?: string;
}

// ---------------------------------------------------------------- CRC-32C

/** Slice-by-8 tables of CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): table k at [k*256, k*256+256). Built once; never written after. */
const CRC32C_TABLES: Int32Array = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** Whether this machine stores integers little-endian (then whole words are read at once). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Ranges this long or longer go to the SIMD addon, when it loads (see log-store/crc32.ts). */
const ADDON_CRC32C_BYTES = 512;

/**
 * CRC-32C of bytes [start, end) of `buf` (unsigned 32-bit). Pass a previous
 * result as `crc` to continue it. Ranges of ADDON_CRC32C_BYTES or more go to
 * `@node-rs/crc32` (SIMD), when it loads; the rest to `crc32cTables`.
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  if (addonCrc32c !== null && end - start >= ADDON_CRC32C_BYTES) return addonCrc32c(buf.subarray(start, end), crc) >>> 0;
  return crc32cTables(buf, start, end, crc);
}

/**
 * `crc32c` by slice-by-8; on little-endian machines the aligned middle of a
 * long range is read as 32-bit words (2 loads per 8 bytes instead of 8).
 */
export function crc32cTables(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  const t = CRC32C_TABLES;
  let c = ~crc;
  let i = start;
  if (LITTLE_ENDIAN && end - i >= 64) {
    for (; ((buf.byteOffset + i) & 3) !== 0; i++) c = t[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
    const words = new Int32Array(buf.buffer, buf.byteOffset + i, ((end - i) >>> 3) << 1);
    for (let j = 0; j < words.length; j += 2) {
      c ^= words[j];
      const w = words[j + 1];
      c =
        t[1792 + (c & 0xff)] ^
        t[1536 + ((c >>> 8) & 0xff)] ^
        t[1280 + ((c >>> 16) & 0xff)] ^
        t[1024 + (c >>> 24)] ^
        t[768 + (w & 0xff)] ^
        t[512 + ((w >>> 8) & 0xff)] ^
        t[256 + ((w >>> 16) & 0xff)] ^
        t[w >>> 24];
    }
    i += words.length * 4;
  }
  for (const last8 = end - 8; i <= last8; i += 8) {
    c ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    c =
      t[1792 + (c & 0xff)] ^
      t[1536 + ((c >>> 8) & 0xff)] ^
      t[1280 + ((c >>> 16) & 0xff)] ^
      t[1024 + (c >>> 24)] ^
      t[768 + buf[i + 4]] ^
      t[512 + buf[i + 5]] ^
      t[256 + buf[i + 6]] ^
      t[buf[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------- varints

/** Bytes of `v` (a non-negative integer below 2^53) as unsigned LEB128. */
export function uvarintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Zigzag of an integer within ±2^52 (exact in doubles): 0,-1,1,-2 → 0,1,2,3. */
export function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

/** Writes `v` (non-negative integer below 2^53) as unsigned LEB128 at `pos`; returns the position after it. */
export function writeUvarint(buf: Uint8Array, pos: number, v: number): number {
  while (v > 0x7fffffff) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  while (v >= 128) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

/** Writes a signed integer (within ±2^52) zigzag-encoded; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  return writeUvarint(buf, pos, zigzag(v));
}

// ---------------------------------------------------------------- writer

/** Copies `src` into `dst` at `pos` (room checked by the caller); returns the position after it. (`set` beats a byte loop from a few bytes up.) */
function copyBytes(src: Uint8Array, dst: Uint8Array, pos: number): number {
  dst.set(src, pos);
  return pos + src.length;
}

/**
 * Buffers for request bodies, reused once their request is done, so a
 * steady stream of batches allocates (and leaves for the GC) nothing. Keeps
 * at most `maxBuffers`; a buffer given back must no longer be read by anyone.
 */
export class BodyBufferPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly maxBuffers: number) {}

  /** A buffer of at least `minBytes` (contents undefined). */
  take(minBytes: number): Buffer {
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i].length >= minBytes) return this.free.splice(i, 1)[0];
    }
    if (this.free.length > 0) this.free.shift(); // too small for what batches now need: let it go
    return Buffer.allocUnsafeSlow(minBytes);
  }

  give(buf: Buffer): void {
    if (this.free.length < this.maxBuffers) this.free.push(buf);
  }
}

/** A growable byte buffer: `buf` may be replaced as it grows; `pos` is the end of what was written. */
export class ByteWriter {
  buf: Buffer;
  pos = 0;

  /** With a pool, buffers come from it and one outgrown goes back to it. */
  constructor(
    initialBytes: number,
    private readonly pool?: BodyBufferPool,
  ) {
    const bytes = Math.max(64, initialBytes);
    this.buf = pool ? pool.take(bytes) : Buffer.allocUnsafe(bytes);
  }

  /** Makes room for `n` more bytes after `pos`. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bytes = Math.max(this.pos + n, this.buf.length * 2);
    const next = this.pool ? this.pool.take(bytes) : Buffer.allocUnsafe(bytes);
    this.buf.copy(next, 0, 0, this.pos);
    this.pool?.give(this.buf);
    this.buf = next;
  }

  /** Writes a varint-length-prefixed UTF-8 string (Kafka record key, header key or value). */
  varintString(s: string): void {
    const n = s.length;
    // ASCII of at most 63 bytes (the common case): one length byte, characters copied in place.
    if (n <= 63) {
      this.ensure(n + 1);
      const buf = this.buf;
      const p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p + i] = c;
      }
      if (i === n) {
        buf[this.pos] = n << 1;
        this.pos = p + n;
        return;
      }
    }
    const bytes = Buffer.byteLength(s, 'utf8');
    this.ensure(bytes + 10);
    this.pos = writeVarint(this.buf, this.pos, bytes);
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }

  /** Writes varint-length-prefixed bytes; null is length -1. */
  varintBytes(b: Uint8Array | null): void {
    if (b === null) {
      this.ensure(1);
      this.buf[this.pos++] = 1; // zigzag(-1)
      return;
    }
    this.ensure(b.length + 10);
    this.pos = copyBytes(b, this.buf, writeVarint(this.buf, this.pos, b.length));
  }
}

// ---------------------------------------------------------------- records

/** Writes `v` (a non-negative integer below 2^53) as a varint-length-prefixed decimal string; returns the position after it. */
export function writeDecimalString(buf: Uint8Array, pos: number, v: number): number {
  let digits = 1;
  for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
  buf[pos] = digits << 1; // zigzag length: at most 16 digits, one byte
  let q = v;
  for (let i = digits; i >= 1; i--) {
    const d = q % 10;
    buf[pos + i] = 48 + d;
    q = (q - d) / 10;
  }
  return pos + 1 + digits;
}

/**
 * The decimal digits of a number that mostly goes up by one (record
 * offsets in a batch): `next(v)` adds one in place, like an odometer,
 * instead of dividing by ten for every digit.
 */
class DecimalCounter {
  private readonly digits = new Uint8Array(17);
  private length = 0;
  private value = -2;

  /** Writes `v` as a varint-length-prefixed decimal string at `pos`; returns the position after it. */
  write(buf: Uint8Array, pos: number, v: number): number {
    const d = this.digits;
    if (v === this.value + 1) {
      let i = this.length - 1;
      while (i >= 0 && d[i] === 57) d[i--] = 48;
      if (i >= 0) d[i]++;
      else {
        // 99…9 + 1: one digit more, 10…0
        d[this.length++] = 48;
        d[0] = 49;
      }
    } else {
      const end = writeDecimalString(d, 0, v);
      this.length = end - 1;
      d.copyWithin(0, 1, end);
    }
    this.value = v;
    const n = this.length;
    buf[pos] = n << 1;
    for (let i = 0; i < n; i++) buf[pos + 1 + i] = d[i];
    return pos + 1 + n;
  }
}

/** `AddedHeaders` prepared once per batch. */
interface PreparedHeaders {
  fixedBytes: Buffer;
  fixedCount: number;
  offsetNameBytes: Buffer | undefined;
  /** Names an own header must not have. */
  reserved: Set<string>;
}

/**
 * Appends a record's added headers (the batch's fixed ones, then the offset
 * header when asked for) at `w.pos`; returns how many headers it wrote.
 */
function writeAddedHeaders(w: ByteWriter, ph: PreparedHeaders, offsets: DecimalCounter, offset: number): number {
  let count = 0;
  if (ph.fixedCount > 0) {
    w.ensure(ph.fixedBytes.length);
    w.pos = copyBytes(ph.fixedBytes, w.buf, w.pos);
    count += ph.fixedCount;
  }
  if (ph.offsetNameBytes !== undefined) {
    w.ensure(ph.offsetNameBytes.length + 17);
    w.pos = offsets.write(w.buf, copyBytes(ph.offsetNameBytes, w.buf, w.pos), offset);
    count++;
  }
  return count;
}

function prepareHeaders(added: AddedHeaders | undefined): PreparedHeaders | undefined {
  if (added === undefined || (added.fixed === undefined && added.offsetName === undefined)) return undefined;
  const fixed = new ByteWriter(256);
  const reserved = new Set<string>();
  let fixedCount = 0;
  for (const k in added.fixed) {
    fixed.varintString(k);
    fixed.varintString(added.fixed[k]);
    reserved.add(k);
    fixedCount++;
  }
  let offsetNameBytes: Buffer | undefined;
  if (added.offsetName !== undefined) {
    const w = new ByteWriter(64);
    w.varintString(added.offsetName);
    offsetNameBytes = w.buf.subarray(0, w.pos);
    reserved.add(added.offsetName);
  }
  return { fixedBytes: fixed.buf.subarray(0, fixed.pos), fixedCount, offsetNameBytes, reserved };
}

/**
 * Ends the record that starts at `start` (its length prefix reserved at
 * `lengthBytes` bytes) and whose header count byte is at `countAt`: writes
 * the count (widened past 63) and the length, moving the body when its
 * prefix needs another size. Returns the prefix size used, the guess for
 * the next record.
 */
function finishRecord(w: ByteWriter, start: number, lengthBytes: number, countAt: number, count: number): number {
  if (count < 64) w.buf[countAt] = count << 1;
  else {
    const extra = uvarintSize(zigzag(count)) - 1;
    w.ensure(extra);
    w.buf.copyWithin(countAt + 1 + extra, countAt + 1, w.pos);
    w.pos += extra;
    writeVarint(w.buf, countAt, count);
  }
  const bodyBytes = w.pos - start - lengthBytes;
  const needed = uvarintSize(zigzag(bodyBytes));
  if (needed !== lengthBytes) {
    w.ensure(needed - lengthBytes);
    w.buf.copyWithin(start + needed, start + lengthBytes, w.pos);
    w.pos += needed - lengthBytes;
  }
  writeVarint(w.buf, start, bodyBytes);
  return needed;
}

/**
 * Writes the records section (no count) for a batch whose base timestamp
 * is `baseTimestamp`. Each record's length prefix (and its header count) is
 * reserved at the size the previous record needed and moved only when this
 * one differs.
 */
export function writeRecords(w: ByteWriter, records: readonly EncodableRecord[], baseTimestamp: number, added?: AddedHeaders): void {
  const ph = prepareHeaders(added);
  const offsets = new DecimalCounter();
  let lengthBytes = 2;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const start = w.pos;
    w.ensure(lengthBytes + 1 + 10 + 5);
    let p = start + lengthBytes;
    w.buf[p++] = 0; // attributes
    p = writeVarint(w.buf, p, r.timestamp - baseTimestamp);
    p = writeVarint(w.buf, p, i);
    w.pos = p;
    if (typeof r.key === 'string') w.varintString(r.key);
    else w.varintBytes(r.key);
    w.varintBytes(r.value);
    // Header count: one byte reserved (up to 63 headers), widened afterwards if needed.
    w.ensure(1);
    const countAt = w.pos++;
    let count = 0;
    const h = r.headers;
    for (const k in h) {
      if (ph !== undefined && ph.reserved.has(k)) continue;
      w.varintString(k);
      w.varintString(h[k]);
      count++;
    }
    if (ph !== undefined) {
      if (ph.offsetNameBytes !== undefined && r.offset === undefined) throw new TypeError('AddedHeaders.offsetName needs every record to carry its offset');
      count += writeAddedHeaders(w, ph, offsets, r.offset ?? 0);
    }
    lengthBytes = finishRecord(w, start, lengthBytes, countAt, count);
  }
}

/**
 * Records as the log store's `readBatches` hands them out: one buffer and,
 * per record i, where its parts lie (see `RecordBlock`). Headers at
 * headerStarts[i] are the log's format: the count, then per header its name
 * and value, each after its length, all lengths unsigned LEB128.
 */
export type RawRecordBlock = Pick<RecordBlock, 'buf' | 'count' | 'baseOffset' | 'timestamps' | 'keyStarts' | 'keyEnds' | 'valueStarts' | 'valueEnds' | 'headerStarts'>;

/** Copies src[start, end) to dst at pos (room checked by the caller); returns the position after it. Short runs by loop; long ones by `set` from a bare view (half the cost of Buffer#copy's checks). */
function copyRange(src: Buffer, start: number, end: number, dst: Buffer, pos: number): number {
  const n = end - start;
  if (n > 24) dst.set(new Uint8Array(src.buffer, src.byteOffset + start, n), pos);
  else for (let i = 0; i < n; i++) dst[pos + i] = src[start + i];
  return pos + n;
}

/** Reads an unsigned LEB128 varint (the log's) at `pos` of `buf`: [value, position after it]. */
function readUvarint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    const b = buf[pos++];
    result += (b & 0x7f) * mul;
    if (b < 0x80) return [result, pos];
    mul *= 128;
  }
}

/** True when buf[start, start + name.length) holds exactly `name`'s bytes. */
function bytesEqual(buf: Buffer, start: number, name: Buffer): boolean {
  for (let i = 0; i < name.length; i++) if (buf[start + i] !== name[i]) return false;
  return true;
}

/**
 * `writeRecords` for records in log blocks: keys, values and headers are
 * copied byte for byte (lengths re-encoded as Kafka's zigzag varints); the
 * record offset (for `AddedHeaders.offsetName`) is the block's base offset
 * plus the index. An own header named like an added one is left out.
 */
export function writeBlockRecords(w: ByteWriter, blocks: readonly RawRecordBlock[], baseTimestamp: number, added?: AddedHeaders): void {
  const ph = prepareHeaders(added);
  const reservedNames = ph === undefined ? [] : [...ph.reserved].map((n) => Buffer.from(n, 'utf8'));
  const offsets = new DecimalCounter();
  let lengthBytes = 2;
  let offsetDelta = 0;
  for (const block of blocks) {
    const src = block.buf;
    for (let i = 0; i < block.count; i++, offsetDelta++) {
      const ks = block.keyStarts[i];
      const ke = block.keyEnds[i];
      const vs = block.valueStarts[i];
      const ve = block.valueEnds[i];
      const start = w.pos;
      w.ensure(lengthBytes + 1 + 10 + 5 + 5 + (ks < 0 ? 0 : ke - ks) + 5 + (ve - vs) + 1);
      const buf = w.buf;
      let p = start + lengthBytes;
      buf[p++] = 0; // attributes
      p = writeVarint(buf, p, block.timestamps[i] - baseTimestamp);
      p = writeVarint(buf, p, offsetDelta);
      if (ks < 0) buf[p++] = 1; // zigzag(-1): null key
      else p = copyRange(src, ks, ke, buf, writeVarint(buf, p, ke - ks));
      p = copyRange(src, vs, ve, buf, writeVarint(buf, p, ve - vs));
      // Header count: one byte reserved (up to 63 headers), widened afterwards if needed.
      const countAt = p++;
      w.pos = p;
      let [ownCount, h] = readUvarint(src, block.headerStarts[i]);
      let count = 0;
      for (; ownCount > 0; ownCount--) {
        let nl: number;
        let vl: number;
        [nl, h] = readUvarint(src, h);
        const ns = h;
        h += nl;
        [vl, h] = readUvarint(src, h);
        const hvs = h;
        h += vl;
        let reserved = false;
        for (const name of reservedNames) if (name.length === nl && bytesEqual(src, ns, name)) reserved = true;
        if (reserved) continue;
        w.ensure(nl + vl + 10);
        w.pos = copyRange(src, hvs, hvs + vl, w.buf, writeVarint(w.buf, copyRange(src, ns, ns + nl, w.buf, writeVarint(w.buf, w.pos, nl)), vl));
        count++;
      }
      if (ph !== undefined) count += writeAddedHeaders(w, ph, offsets, block.baseOffset + i);
      lengthBytes = finishRecord(w, start, lengthBytes, countAt, count);
    }
  }
}

/** Smallest and largest timestamp of `records` (non-empty). */
function timestampRange(records: readonly EncodableRecord[]): [number, number] {
  let min = records[0].timestamp;
  let max = min;
  for (let i = 1; i < records.length; i++) {
    const t = records[i].timestamp;
    if (t < min) min = t;
    else if (t > max) max = t;
  }
  return [min, max];
}

/** Rough bytes of the encoded records, so the buffer rarely grows. */
function estimateBytes(records: readonly EncodableRecord[], added?: AddedHeaders): number {
  const r0 = records[0];
  let headerChars = 0;
  for (const k in r0.headers) headerChars += k.length + r0.headers[k].length + 2;
  if (added?.fixed) for (const k in added.fixed) headerChars += k.length + added.fixed[k].length + 2;
  if (added?.offsetName !== undefined) headerChars += added.offsetName.length + 18;
  const keyBytes = r0.key === null ? 0 : r0.key.length;
  let valueBytes = 0;
  for (let i = 0; i < records.length; i++) valueBytes += records[i].value?.length ?? 0;
  return valueBytes + records.length * (keyBytes + headerChars + 24) + 256;
}

/** Where a batch's producer fields and CRC go, and what they were last sealed with. */
export interface BatchSeal {
  /** Offset of the record batch in the body. */
  readonly batchStart: number;
  /** `producerId/epoch/sequence` the CRC was computed for; '' before the first seal. */
  sealedFor: string;
}

export interface ProducerFields {
  /** int64 as a decimal string; '-1' when not idempotent. */
  producerId: string;
  producerEpoch: number;
  /** Sequence of the first record (int32); -1 when not idempotent. */
  baseSequence: number;
}

/** Writes the 61-byte batch header at `start` (records already follow it, ending at `end`), producer fields left for `sealBatch`. */
function writeBatchHeader(buf: Buffer, start: number, end: number, count: number, compression: 'none' | 'gzip', partitionLeaderEpoch: number, timestamps: [number, number]): void {
  buf.writeBigInt64BE(0n, start);
  buf.writeInt32BE(end - start - 12, start + 8);
  buf.writeInt32BE(partitionLeaderEpoch, start + 12);
  buf[start + 16] = RECORD_BATCH_MAGIC;
  buf.writeInt16BE(COMPRESSION_CODEC[compression], start + 21);
  buf.writeInt32BE(count - 1, start + 23);
  buf.writeBigInt64BE(BigInt(timestamps[0]), start + 27);
  buf.writeBigInt64BE(BigInt(timestamps[1]), start + 35);
  buf.writeInt32BE(count, start + 57);
}

/**
 * Fills in the producer id, epoch and base sequence of the batch at
 * `seal.batchStart` of `body` and its CRC-32C (which covers them). A no-op
 * when the batch is already sealed with the same fields (a resend).
 */
export function sealBatch(body: Buffer, seal: BatchSeal, f: ProducerFields): void {
  const key = `${f.producerId}/${f.producerEpoch}/${f.baseSequence}`;
  if (seal.sealedFor === key) return;
  const start = seal.batchStart;
  body.writeBigInt64BE(BigInt(f.producerId), start + 43);
  body.writeInt16BE(f.producerEpoch, start + 51);
  body.writeInt32BE(f.baseSequence, start + 53);
  body.writeUInt32BE(crc32c(body, start + 21, start + 12 + body.readInt32BE(start + 8)), start + 17);
  seal.sealedFor = key;
}

/** Records to encode, whichever form they come in. */
interface RecordSource {
  count: number;
  /** Smallest and largest timestamp. */
  timestamps: [number, number];
  /** Rough encoded bytes. */
  estimate: number;
  /** Writes the records section (`writeRecords` or `writeBlockRecords`). */
  write(w: ByteWriter, baseTimestamp: number, added: AddedHeaders | undefined): void;
}

function objectSource(records: readonly EncodableRecord[], added: AddedHeaders | undefined): RecordSource {
  if (records.length === 0) throw new RangeError('a record batch needs at least one record');
  return { count: records.length, timestamps: timestampRange(records), estimate: estimateBytes(records, added), write: (w, base, a) => writeRecords(w, records, base, a) };
}

function blockSource(blocks: readonly RawRecordBlock[], added: AddedHeaders | undefined): RecordSource {
  let count = 0;
  let min = Infinity;
  let max = -Infinity;
  let bytes = 0;
  for (const b of blocks) {
    count += b.count;
    for (let i = 0; i < b.count; i++) {
      const t = b.timestamps[i];
      if (t < min) min = t;
      if (t > max) max = t;
    }
    if (b.count > 0) bytes += b.valueEnds[b.count - 1] - b.valueStarts[0] + 64; // keys, values and headers lie in between
  }
  if (count === 0) throw new RangeError('a record batch needs at least one record');
  let addedBytes = 0;
  if (added?.fixed) for (const k in added.fixed) addedBytes += k.length + added.fixed[k].length + 2;
  if (added?.offsetName !== undefined) addedBytes += added.offsetName.length + 18;
  return { count, timestamps: [min, max], estimate: Math.ceil(bytes * 1.1) + count * (addedBytes + 16) + 256, write: (w, base, a) => writeBlockRecords(w, blocks, base, a) };
}

async function writeSourceBatch(w: ByteWriter, src: RecordSource, compression: 'none' | 'gzip', added: AddedHeaders | undefined, partitionLeaderEpoch: number): Promise<void> {
  const { timestamps } = src;
  if (compression === 'none') {
    w.ensure(RECORD_BATCH_HEADER_BYTES);
    const start = w.pos;
    w.pos += RECORD_BATCH_HEADER_BYTES;
    src.write(w, timestamps[0], added);
    writeBatchHeader(w.buf, start, w.pos, src.count, compression, partitionLeaderEpoch, timestamps);
    return;
  }
  const plain = new ByteWriter(src.estimate);
  src.write(plain, timestamps[0], added);
  const compressed = await gzip(plain.buf.subarray(0, plain.pos));
  w.ensure(RECORD_BATCH_HEADER_BYTES + compressed.length);
  const start = w.pos;
  w.buf.set(compressed, start + RECORD_BATCH_HEADER_BYTES);
  w.pos += RECORD_BATCH_HEADER_BYTES + compressed.length;
  writeBatchHeader(w.buf, start, w.pos, src.count, compression, partitionLeaderEpoch, timestamps);
}

/**
 * Encodes one record batch v2 of `records` (at least one) at the writer's
 * position, unsealed (see `sealBatch`). Reads `records` only synchronously,
 * before its first await; with gzip the records section is then compressed
 * on libuv's pool.
 */
export async function writeRecordBatch(w: ByteWriter, records: readonly EncodableRecord[], compression: 'none' | 'gzip', added?: AddedHeaders, partitionLeaderEpoch = -1): Promise<void> {
  return writeSourceBatch(w, objectSource(records, added), compression, added, partitionLeaderEpoch);
}

export interface ProduceBodyOptions {
  topic: string;
  partition: number;
  /** -1: all in-sync replicas. */
  acks: number;
  /** How long the broker may wait for the acks, in ms. */
  timeoutMs: number;
  compression: 'none' | 'gzip';
  /** Headers added to every record. Default: none. */
  addedHeaders?: AddedHeaders;
  /** Written into the batch header; producers send -1. Default -1. */
  partitionLeaderEpoch?: number;
}

/** A Produce request body (v3–v7) carrying one record batch for one partition, to be sealed before it is sent. */
export interface ProduceBody extends BatchSeal {
  /** The request body: a view of `backing` from `headroom` on. */
  readonly body: Buffer;
  /** The whole buffer (from the pool, when one was given: give it back when the request is done). */
  readonly backing: Buffer;
  /** Bytes of `backing` before the body, free for a request header to be written in place. */
  readonly headroom: number;
}

/**
 * Encodes the body of a Produce request for one partition (unsealed:
 * `sealBatch(body.body, body, fields)` before sending), after `headroom`
 * free bytes (room for the request header). Reads `records` only synchronously.
 */
export async function encodeProduceBody(records: readonly EncodableRecord[], o: ProduceBodyOptions, pool?: BodyBufferPool, headroom = 0): Promise<ProduceBody> {
  return encodeSourceBody(objectSource(records, o.addedHeaders), o, pool, headroom);
}

/** `encodeProduceBody` for records as the log store's `readBatches` returns them: bytes copied from the blocks, no object per record. */
export async function encodeProduceBodyFromBlocks(blocks: readonly RawRecordBlock[], o: ProduceBodyOptions, pool?: BodyBufferPool, headroom = 0): Promise<ProduceBody> {
  return encodeSourceBody(blockSource(blocks, o.addedHeaders), o, pool, headroom);
}

async function encodeSourceBody(src: RecordSource, o: ProduceBodyOptions, pool: BodyBufferPool | undefined, headroom: number): Promise<ProduceBody> {
  const topicBytes = Buffer.byteLength(o.topic, 'utf8');
  const prefixBytes = 2 + 2 + 4 + 4 + 2 + topicBytes + 4 + 4 + 4;
  const w = new ByteWriter(headroom + prefixBytes + RECORD_BATCH_HEADER_BYTES + src.estimate, pool);
  const b = w.buf;
  let p = b.writeInt16BE(-1, headroom);
  p = b.writeInt16BE(o.acks, p);
  p = b.writeInt32BE(o.timeoutMs, p);
  p = b.writeInt32BE(1, p);
  p = b.writeInt16BE(topicBytes, p);
  p += b.write(o.topic, p, topicBytes, 'utf8');
  p = b.writeInt32BE(1, p);
  p = b.writeInt32BE(o.partition, p);
  w.pos = p + 4;
  await writeSourceBatch(w, src, o.compression, o.addedHeaders, o.partitionLeaderEpoch ?? -1);
  w.buf.writeInt32BE(w.pos - p - 4, p);
  return { body: w.buf.subarray(headroom, w.pos), backing: w.buf, headroom, batchStart: p + 4 - headroom, sealedFor: '' };
}
