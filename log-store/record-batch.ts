/**
 * The record-batch codec. A `.log` file is a sequence of batches, back to
 * back, with nothing between them. All integers are big-endian.
 *
 * Batch (38-byte header, then the records):
 *
 * | offset | size | field          | meaning |
 * |-------:|-----:|----------------|---------|
 * | 0      | 8    | baseOffset     | int64, offset of the first record |
 * | 8      | 4    | batchLength    | uint32, bytes after this field (whole batch = 12 + batchLength) |
 * | 12     | 4    | crc            | CRC-32 (IEEE, zlib) of bytes [0,12) then [16,end): everything but itself |
 * | 16     | 1    | magic          | format version, 1 |
 * | 17     | 1    | attributes     | 0 (reserved for compression) |
 * | 18     | 4    | recordCount    | uint32 ≥ 1; record i has offset baseOffset + i |
 * | 22     | 8    | firstTimestamp | int64 ms, the first record's timestamp (base of the deltas) |
 * | 30     | 8    | maxTimestamp   | int64 ms, the largest timestamp in the batch |
 *
 * Record (repeated recordCount times):
 *
 * | field          | encoding |
 * |----------------|----------|
 * | length         | uint32, bytes after this field |
 * | timestampDelta | zigzag varint, timestamp − firstTimestamp |
 * | keyLength      | varint, UTF-8 byte length + 1; 0 means a null key |
 * | key            | UTF-8 bytes |
 * | valueLength    | varint |
 * | value          | bytes |
 * | headerCount    | varint |
 * | headers        | per header: nameLength varint, name UTF-8, valueLength varint, value UTF-8 |
 *
 * Varints are unsigned LEB128 (7 bits a byte, low group first), up to 2^53.
 * The CRC covers the base offset and length too, so any flipped bit in a
 * batch is caught; recovery additionally checks that base offsets follow
 * on from each other.
 *
 * Encoding writes a whole batch into one Buffer: strings are written in
 * place (no intermediate Buffer per record), with the length prefix patched
 * afterwards.
 */
import { crc32 } from './crc32.ts';
import type { BufferPool } from './buffer-pool.ts';
import type { LogRecord, RecordBatchBuilder, RecordInput } from './types.ts';

export const BATCH_HEADER_BYTES = 38;
/** Bytes before batchLength's end: baseOffset + batchLength. */
export const BATCH_LOG_OVERHEAD = 12;
export const BATCH_MAGIC = 1;
/** Batches larger than this are treated as corrupt framing (a damaged length field). */
export const MAX_BATCH_BYTES = 256 * 1024 * 1024;

const OFF_BASE_OFFSET = 0;
const OFF_LENGTH = 8;
const OFF_CRC = 12;
const OFF_MAGIC = 16;
const OFF_ATTRIBUTES = 17;
const OFF_COUNT = 18;
const OFF_FIRST_TS = 22;
const OFF_MAX_TS = 30;

export interface BatchHeader {
  baseOffset: number;
  /** Whole batch size in bytes, header included. */
  totalBytes: number;
  crc: number;
  magic: number;
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

/** An encoded batch, not yet given its base offset (see `sealBatch`). */
export interface EncodedBatch {
  /** The batch bytes (a view of `backing`). */
  buf: Buffer;
  /** The whole buffer the batch was encoded into; give it back to the pool once written. */
  backing: Buffer;
  recordCount: number;
  firstTimestamp: number;
  maxTimestamp: number;
}

/** Thrown by the codec on malformed input; callers turn it into LOG_CORRUPT or LOG_INVALID_ARGUMENT. */
export class BatchFormatError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = 'BatchFormatError';
  }
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as an unsigned LEB128 varint at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Buffer.prototype.utf8Write skips write()'s argument normalization; it is there on every Node release, write() is the fallback. */
const utf8Write: (this: Buffer, s: string, offset: number) => number =
  typeof (Buffer.prototype as unknown as { utf8Write?: unknown }).utf8Write === 'function'
    ? (Buffer.prototype as unknown as { utf8Write: (this: Buffer, s: string, offset: number) => number }).utf8Write
    : function (this: Buffer, s: string, offset: number): number {
        return this.write(s, offset);
      };

/** Strings up to this many UTF-16 units are tried as ASCII in JS first. */
const SHORT_STRING = 32;

function putVarint(buf: Buffer, pos: number, n: number): number {
  if (n < 0x80) {
    buf[pos] = n;
    return pos + 1;
  }
  return writeVarint(buf, pos, n);
}

/**
 * Writes varint(byteLength + bias) and the UTF-8 bytes of `s` at `pos`
 * (capacity already ensured: reserve + 3 × length + 10), guessing the prefix
 * takes `reserve` bytes and moving the bytes when it does not. Returns the new position.
 */
function putString(buf: Buffer, pos: number, s: string, bias: number, reserve: number): number {
  const start = pos + reserve;
  const len = s.length;
  if (len <= SHORT_STRING && len + bias < 0x80 && reserve === 1) {
    // Short ASCII (keys, header names): a JS loop beats the call into C++.
    let i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    if (i === len) {
      buf[pos] = len + bias;
      return start + len;
    }
  }
  const n = utf8Write.call(buf, s, start);
  const need = varintSize(n + bias);
  if (need !== reserve) buf.copyWithin(pos + need, start, start + n);
  writeVarint(buf, pos, n + bias);
  return pos + need + n;
}

function invalid(message: string, index: number): never {
  throw new BatchFormatError(`record ${index}: ${message}`, index);
}

/**
 * Encodes records into one batch buffer. `indices` selects records of
 * `records` (for one partition of an appendBatch); null means all. Records
 * without a timestamp get `nowMs`. The base offset and CRC are left to
 * `sealBatch`, once the partition assigns the offset.
 * Throws BatchFormatError on a malformed record (caller: LOG_INVALID_ARGUMENT).
 */
export function encodeBatch(records: readonly RecordInput[], indices: readonly number[] | null, nowMs: number, pool: BufferPool | null = null): EncodedBatch {
  const count = indices === null ? records.length : indices.length;
  if (count === 0) throw new BatchFormatError('empty batch', 0);
  // Size the buffer from a sample of the records (batches are usually alike); it grows if they are not.
  const sample = Math.min(count, 8);
  let sampled = 0;
  for (let i = 0; i < sample; i++) {
    const r = records[indices === null ? i : indices[i]!]!;
    const v = r?.value;
    const k = r?.key;
    sampled += 24 + (typeof k === 'string' ? k.length : 0) + (typeof v === 'string' || v instanceof Uint8Array ? v.length : 0);
  }
  const estimate = BATCH_HEADER_BYTES + Math.ceil((sampled / sample) * count);
  const builder = new BatchBuilder(pool, estimate + (estimate >>> 3));
  for (let i = 0; i < count; i++) {
    const idx = indices === null ? i : indices[i]!;
    const r = records[idx];
    if (r === null || typeof r !== 'object') invalid('not an object', idx);
    builder.put(r.timestamp === undefined ? nowMs : r.timestamp, r.key, r.value, r.headers, idx);
  }
  return builder.take();
}

/** A builder's source memory when it has none (see BatchBuilder's #srcMemory). */
const EMPTY_MEMORY = new ArrayBuffer(0);

/**
 * Encodes one batch record by record, as records come (no array of records,
 * no object per record): the batch `encodeBatch` makes from an array. Each
 * `add` writes the record's bytes at once into a buffer from the pool
 * (doubling when full). `take` hands the batch over and leaves the builder
 * empty; the next batch starts at the size the last one reached.
 */
export class BatchBuilder implements RecordBatchBuilder {
  #buf: Buffer | null = null;
  #pos = 0;
  #count = 0;
  #firstTs = 0;
  #maxTs = 0;
  /**
   * `addBytes`' last source, its memory and where it starts there: its
   * records' values are copied from new views of that memory, not from
   * views of `src.buffer` read once a record (reading `.buffer` of a Buffer
   * is a call into the runtime; both together cost more than the copy) nor
   * from `subarray`s of one view (a `subarray` looks up the species
   * constructor: 30% slower than the constructor called here, measured).
   * Dropped with the batch (`take`, `clear`): it may be a 16 MiB read buffer.
   */
  #src: Uint8Array | null = null;
  #srcMemory: ArrayBufferLike = EMPTY_MEMORY;
  #srcOffset = 0;

  constructor(
    private readonly pool: BufferPool | null,
    /** Bytes to start a batch with. */
    private capacity = 64 * 1024,
    /** What `add` and `addBytes` throw for a malformed record. Default: the BatchFormatError itself. */
    private readonly wrap: (err: BatchFormatError) => Error = (err) => err,
  ) {}

  /** Records added since the last `take`. */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds one record (what a RecordInput holds; `timestamp` required). Throws
   * BatchFormatError on a malformed record, naming it by its index in the batch.
   */
  add(timestamp: number, key: string | null, value: string | Uint8Array, headers?: Readonly<Record<string, string>> | null): void {
    try {
      this.put(timestamp, key, value, headers, this.#count);
    } catch (err) {
      throw err instanceof BatchFormatError ? this.wrap(err) : err;
    }
  }

  /**
   * Adds one record whose key and value are bytes of `src`: key
   * `[keyStart, keyEnd)` (keyStart < 0: a null key), value `[valueStart, valueEnd)`.
   * The bytes are copied now.
   */
  addBytes(timestamp: number, src: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, headers?: Readonly<Record<string, string>> | null): void {
    try {
      this.#putBytes(timestamp, src, keyStart, keyEnd, valueStart, valueEnd, headers);
    } catch (err) {
      throw err instanceof BatchFormatError ? this.wrap(err) : err;
    }
  }

  #putBytes(timestamp: number, src: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, headers: Readonly<Record<string, string>> | null | undefined): void {
    const idx = this.#count;
    const keyBytes = keyStart < 0 ? -1 : keyEnd - keyStart;
    const valueBytes = valueEnd - valueStart;
    if (keyBytes < -1 || valueBytes < 0 || keyEnd > src.length || valueEnd > src.length || valueStart < 0) invalid('key or value bytes out of range', idx);
    let p = this.#open(timestamp, keyBytes + valueBytes, idx);
    const buf = this.#buf!;
    if (keyBytes < 0) buf[p++] = 0;
    else {
      p = putVarint(buf, p, keyBytes + 1);
      p = copyBytes(src, keyStart, keyEnd, buf, p);
    }
    p = putVarint(buf, p, valueBytes);
    if (valueBytes <= 32) p = copyBytes(src, valueStart, valueEnd, buf, p);
    else {
      if (src !== this.#src) {
        this.#src = src;
        this.#srcMemory = src.buffer;
        this.#srcOffset = src.byteOffset;
      }
      buf.set(new Uint8Array(this.#srcMemory, this.#srcOffset + valueStart, valueBytes), p);
      p += valueBytes;
    }
    this.#close(p, timestamp, headers, idx);
  }

  /** `add` with the index to name in errors (encodeBatch: the record's index in its array). */
  put(timestamp: number | undefined, key: string | null | undefined, value: string | Uint8Array, headers: Readonly<Record<string, string>> | null | undefined, idx: number): void {
    let keyChars = 0;
    if (typeof key === 'string') keyChars = key.length;
    else if (key !== null && key !== undefined) invalid('key must be a string or null', idx);
    let valueBytes: number;
    if (typeof value === 'string') valueBytes = value.length * 3;
    else if (value instanceof Uint8Array) valueBytes = value.length;
    else invalid('value must be a string or bytes', idx);
    // One capacity check per record: the UTF-8 upper bound of every field (headers checked on their own).
    let p = this.#open(timestamp, keyChars * 3 + valueBytes, idx);
    const buf = this.#buf!;
    if (typeof key === 'string') p = putString(buf, p, key, 1, 1);
    else buf[p++] = 0;
    if (typeof value === 'string') p = putString(buf, p, value, 0, value.length < 64 ? 1 : 2);
    else {
      p = putVarint(buf, p, value.length);
      buf.set(value, p);
      p += value.length;
    }
    this.#close(p, timestamp as number, headers, idx);
  }

  /** Checks the timestamp, makes room for a record of about `bytes` key and value bytes, writes its timestamp delta; returns where the key goes. */
  #open(ts: number | undefined, bytes: number, idx: number): number {
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts)) invalid('timestamp must be an integer number of ms', idx);
    if (this.#count === 0) this.#firstTs = ts;
    if (this.#buf === null) {
      this.#buf = this.pool ? this.pool.take(this.capacity) : Buffer.allocUnsafe(Math.max(this.capacity, 256));
      this.#pos = BATCH_HEADER_BYTES;
    }
    this.#room(this.#pos, 4 + 10 + 5 + bytes + 5 + 5);
    const delta = ts - this.#firstTs;
    return putVarint(this.#buf!, this.#pos + 4, delta >= 0 ? delta * 2 : -delta * 2 - 1);
  }

  /** Writes the headers from `p` on and the record's length prefix: the record (timestamp `ts`) is added. */
  #close(p: number, ts: number, headers: Readonly<Record<string, string>> | null | undefined, idx: number): void {
    if (headers === undefined || headers === null) this.#buf![p++] = 0;
    else {
      const names = Object.keys(headers);
      this.#room(p, 10);
      p = putVarint(this.#buf!, p, names.length);
      for (const name of names) {
        const hv = headers[name];
        if (typeof hv !== 'string') invalid(`header ${name} must be a string`, idx);
        this.#room(p, 2 * 10 + 3 * (name.length + hv.length));
        p = putString(this.#buf!, p, name, 0, 1);
        p = putString(this.#buf!, p, hv, 0, 1);
      }
    }
    const out = this.#buf!;
    const recStart = this.#pos;
    const len = p - recStart - 4;
    out[recStart] = len >>> 24;
    out[recStart + 1] = (len >>> 16) & 0xff;
    out[recStart + 2] = (len >>> 8) & 0xff;
    out[recStart + 3] = len & 0xff;
    if (p > MAX_BATCH_BYTES) invalid(`the batch would outgrow ${MAX_BATCH_BYTES} bytes`, idx);
    this.#pos = p;
    if (this.#count++ === 0 || ts > this.#maxTs) this.#maxTs = ts;
  }

  /** Room for `n` bytes from `p` on, where bytes [0, p) are written (the current record's too): doubles the buffer (one copy) when short. */
  #room(p: number, n: number): void {
    const buf = this.#buf!;
    if (p + n <= buf.length) return;
    const size = Math.max(buf.length * 2, p + n);
    const next = this.pool ? this.pool.take(size) : Buffer.allocUnsafe(size);
    buf.copy(next, 0, 0, p);
    this.pool?.give(buf);
    this.#buf = next;
  }

  /** The batch (header written but for base offset and CRC, see `sealBatch`); the builder is empty after. Throws BatchFormatError when empty. */
  take(): EncodedBatch {
    const backing = this.#buf;
    const count = this.#count;
    if (backing === null || count === 0) throw new BatchFormatError('empty batch', 0);
    const end = this.#pos;
    this.#buf = null;
    this.#count = 0;
    this.#pos = 0;
    this.#forgetSource();
    this.capacity = Math.max(this.capacity, end);
    const buf = backing.subarray(0, end);
    buf.writeUInt32BE(end - BATCH_LOG_OVERHEAD, OFF_LENGTH);
    buf[OFF_MAGIC] = BATCH_MAGIC;
    buf[OFF_ATTRIBUTES] = 0;
    buf.writeUInt32BE(count, OFF_COUNT);
    writeInt64(buf, OFF_FIRST_TS, this.#firstTs);
    writeInt64(buf, OFF_MAX_TS, this.#maxTs);
    return { buf, backing, recordCount: count, firstTimestamp: this.#firstTs, maxTimestamp: this.#maxTs };
  }

  /** Drops the records added since the last `take` (their buffer goes back to the pool). */
  clear(): void {
    if (this.#buf !== null) this.pool?.give(this.#buf);
    this.#buf = null;
    this.#count = 0;
    this.#pos = 0;
    this.#forgetSource();
  }

  #forgetSource(): void {
    this.#src = null;
    this.#srcMemory = EMPTY_MEMORY;
  }
}

/**
 * Copies bytes [start, end) of `src` to `dst` at `at`; returns the position
 * after them. Measured per copy: a JS loop is fastest up to about 32 bytes
 * (60-80 ns); past that a plain Uint8Array view and `set` (90-105 ns for 161
 * bytes, against 200-220 for Buffer `subarray` + `set` or `copy`, 380-460 for the loop).
 */
function copyBytes(src: Uint8Array, start: number, end: number, dst: Buffer, at: number): number {
  const n = end - start;
  if (n <= 32) {
    for (let i = 0; i < n; i++) dst[at + i] = src[start + i]!;
  } else dst.set(new Uint8Array(src.buffer, src.byteOffset + start, n), at);
  return at + n;
}

/** Writes the base offset and the CRC: the batch is then final. */
export function sealBatch(buf: Buffer, baseOffset: number): void {
  writeInt64(buf, OFF_BASE_OFFSET, baseOffset);
  buf.writeUInt32BE(batchCrc(buf, 0, buf.length), OFF_CRC);
}

function batchCrc(buf: Buffer, start: number, end: number): number {
  const head = crc32(buf.subarray(start, start + OFF_CRC));
  return crc32(buf.subarray(start + OFF_MAGIC, end), head);
}

function writeInt64(buf: Buffer, pos: number, n: number): void {
  // Two's complement split into 32-bit halves; exact for safe integers.
  const hi = Math.floor(n / 0x100000000);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(n - hi * 0x100000000, pos + 4);
}

function readInt64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * 0x100000000 + buf.readUInt32BE(pos + 4);
}

/**
 * Parses the fixed header at `pos` (needs BATCH_HEADER_BYTES available).
 * Checks framing only (magic, length, count), not the CRC.
 * Throws BatchFormatError on bad framing.
 */
export function readBatchHeader(buf: Buffer, pos: number): BatchHeader {
  const length = buf.readUInt32BE(pos + OFF_LENGTH);
  const header: BatchHeader = {
    baseOffset: readInt64(buf, pos + OFF_BASE_OFFSET),
    totalBytes: length + BATCH_LOG_OVERHEAD,
    crc: buf.readUInt32BE(pos + OFF_CRC),
    magic: buf[pos + OFF_MAGIC]!,
    recordCount: buf.readUInt32BE(pos + OFF_COUNT),
    firstTimestamp: readInt64(buf, pos + OFF_FIRST_TS),
    maxTimestamp: readInt64(buf, pos + OFF_MAX_TS),
  };
  if (header.magic !== BATCH_MAGIC) throw new BatchFormatError(`unknown batch magic ${header.magic}`, pos);
  if (header.totalBytes < BATCH_HEADER_BYTES || header.totalBytes > MAX_BATCH_BYTES)
    throw new BatchFormatError(`implausible batch length ${length}`, pos);
  if (header.recordCount === 0 || header.recordCount > header.totalBytes) throw new BatchFormatError(`implausible record count ${header.recordCount}`, pos);
  if (header.baseOffset < 0) throw new BatchFormatError(`negative base offset ${header.baseOffset}`, pos);
  return header;
}

/** True when the batch at `pos` (its whole `totalBytes` present in `buf`) has a matching CRC. */
export function batchCrcOk(buf: Buffer, pos: number, header: BatchHeader): boolean {
  return batchCrc(buf, pos, pos + header.totalBytes) === header.crc;
}

/** Longest string `decodeUtf8` builds in JavaScript; longer ones go to Node's decoder. */
const SHORT_STRING_BYTES = 12;

/**
 * `buf.toString('utf8', start, end)`, faster for the short ASCII strings
 * keys and headers mostly are (sensor ids, header names): those are built
 * here without a call into Node's decoder, which costs more than the
 * decoding. Anything else (longer, or with a byte ≥ 0x80) goes to Node's
 * UTF-8 decoder, so the result is always the same.
 */
export function decodeUtf8(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  if (n > SHORT_STRING_BYTES) return buf.toString('utf8', start, end);
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return buf.toString('utf8', start, end);
  const b = buf;
  const s = start;
  switch (n) {
    case 0:
      return '';
    case 1:
      return String.fromCharCode(b[s]!);
    case 2:
      return String.fromCharCode(b[s]!, b[s + 1]!);
    case 3:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!);
    case 4:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!);
    case 5:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!);
    case 6:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!);
    case 7:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!);
    case 8:
      return String.fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!);
    default:
      return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  }
}

/** Streaming varint reader over a batch's record area. */
class Decoder {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new BatchFormatError('record runs past its batch', this.pos);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new BatchFormatError('varint too long', this.pos);
  }
  take(n: number): number {
    const start = this.pos;
    if (n > this.end - start) throw new BatchFormatError('field runs past its record', start);
    this.pos += n;
    return start;
  }
}

/**
 * Decodes the records of a CRC-checked batch at `pos`, appending those with
 * offset >= `fromOffset` to `out`, at most `max` of them. Values share
 * memory with `buf`. Throws BatchFormatError on malformed records.
 */
export function decodeRecords(
  buf: Buffer,
  pos: number,
  header: BatchHeader,
  topic: string,
  partition: number,
  fromOffset: number,
  out: LogRecord[],
  max: number,
  resume?: RecordCursor,
): RecordCursor {
  const end = pos + header.totalBytes;
  const start = startOf(pos, header, fromOffset, resume);
  let p = start.position;
  let i = start.offset - header.baseOffset;
  for (; i < header.recordCount && out.length < max; i++) {
    if (p + 4 > end) throw new BatchFormatError('record header runs past its batch', p);
    const len = buf.readUInt32BE(p);
    const recEnd = p + 4 + len;
    if (recEnd > end) throw new BatchFormatError('record runs past its batch', p);
    const offset = header.baseOffset + i;
    if (offset < fromOffset) {
      p = recEnd;
      continue;
    }
    const d = new Decoder(buf, p + 4, recEnd);
    const zz = d.varint();
    const timestamp = header.firstTimestamp + (zz % 2 === 0 ? zz / 2 : -(zz + 1) / 2);
    const keyLen = d.varint();
    let key: string | null = null;
    if (keyLen > 0) {
      const k = d.take(keyLen - 1);
      key = decodeUtf8(buf, k, k + keyLen - 1);
    }
    const valueLen = d.varint();
    const v = d.take(valueLen);
    const value = buf.subarray(v, v + valueLen);
    const headers = decodeHeadersAt(buf, d.pos, recEnd);
    out.push({ topic, partition, offset, timestamp, key, value, headers });
    p = recEnd;
  }
  return { offset: header.baseOffset + i, position: p };
}

/**
 * Where decoding the batch at `pos` starts: its first record, or `resume`
 * (a cursor from an earlier call on this batch) when that lies inside the
 * batch at or before `fromOffset`, so the records before it are not walked again.
 */
function startOf(pos: number, header: BatchHeader, fromOffset: number, resume: RecordCursor | undefined): RecordCursor {
  const first = pos + BATCH_HEADER_BYTES;
  if (
    resume !== undefined &&
    resume.offset <= fromOffset &&
    resume.offset > header.baseOffset &&
    resume.offset < header.baseOffset + header.recordCount &&
    resume.position > first &&
    resume.position < pos + header.totalBytes
  )
    return resume;
  return { offset: header.baseOffset, position: first };
}

/** Where the next record of a batch starts: `offset` and its byte `position` in the buffer. */
export interface RecordCursor {
  offset: number;
  position: number;
}

/** The timestamps of a batch's records, in order (used by time lookups without building records). */
export function recordTimestamps(buf: Buffer, pos: number, header: BatchHeader): number[] {
  const end = pos + header.totalBytes;
  const result: number[] = [];
  let p = pos + BATCH_HEADER_BYTES;
  for (let i = 0; i < header.recordCount; i++) {
    if (p + 4 > end) throw new BatchFormatError('record header runs past its batch', p);
    const len = buf.readUInt32BE(p);
    const d = new Decoder(buf, p + 4, Math.min(end, p + 4 + len));
    const zz = d.varint();
    result.push(header.firstTimestamp + (zz % 2 === 0 ? zz / 2 : -(zz + 1) / 2));
    p += 4 + len;
  }
  return result;
}

/**
 * Where the records of a CRC-checked batch lie, without building them: what
 * `readBatches` hands out. The same checks as `decodeRecords` (every field
 * inside its record, every record inside its batch).
 */
export interface RecordPositions {
  /** Records written so far; the next goes at this index. */
  count: number;
  /** Makes room for `n` more records. */
  reserve(n: number): void;
  timestamps: Float64Array;
  keyStarts: Int32Array;
  keyEnds: Int32Array;
  valueStarts: Int32Array;
  valueEnds: Int32Array;
  headerStarts: Int32Array;
}

/**
 * Like `decodeRecords`, but writes the positions of the records with offset
 * >= `fromOffset` into `out` (at most `max` of them) instead of objects.
 * Throws BatchFormatError on malformed records.
 */
export function decodePositions(buf: Buffer, pos: number, header: BatchHeader, fromOffset: number, out: RecordPositions, max: number, resume?: RecordCursor): RecordCursor {
  const end = pos + header.totalBytes;
  const start = startOf(pos, header, fromOffset, resume);
  let p = start.position;
  let i = start.offset - header.baseOffset;
  const skip = Math.max(0, fromOffset - header.baseOffset);
  out.reserve(Math.min(max - out.count, header.recordCount - Math.max(i, skip)));
  const { timestamps, keyStarts, keyEnds, valueStarts, valueEnds, headerStarts } = out;
  const first = header.firstTimestamp;
  let n = out.count;
  for (; i < header.recordCount && n < max; i++) {
    if (p + 4 > end) throw new BatchFormatError('record header runs past its batch', p);
    const recEnd = p + 4 + buf.readUInt32BE(p);
    if (recEnd > end) throw new BatchFormatError('record runs past its batch', p);
    if (i < skip) {
      p = recEnd;
      continue;
    }
    const d = new Decoder(buf, p + 4, recEnd);
    const zz = d.varint();
    timestamps[n] = first + (zz % 2 === 0 ? zz / 2 : -(zz + 1) / 2);
    let len = d.varint();
    if (len === 0) {
      keyStarts[n] = -1;
      keyEnds[n] = -1;
    } else {
      const k = d.take(len - 1);
      keyStarts[n] = k;
      keyEnds[n] = k + len - 1;
    }
    len = d.varint();
    const v = d.take(len);
    valueStarts[n] = v;
    valueEnds[n] = v + len;
    headerStarts[n] = d.pos;
    const headerCount = d.varint();
    for (let h = 0; h < headerCount; h++) {
      d.take(d.varint());
      d.take(d.varint());
    }
    n++;
    p = recEnd;
  }
  out.count = n;
  return { offset: header.baseOffset + i, position: p };
}

/** Decodes the headers encoded at `pos` (a record's headerCount varint), up to `end`. */
export function decodeHeadersAt(buf: Buffer, pos: number, end: number): Record<string, string> {
  const d = new Decoder(buf, pos, end);
  const headers: Record<string, string> = {};
  const count = d.varint();
  for (let h = 0; h < count; h++) {
    const nl = d.varint();
    const n = d.take(nl);
    const vl = d.varint();
    const hv = d.take(vl);
    const name = decodeUtf8(buf, n, n + nl);
    const value = decodeUtf8(buf, hv, hv + vl);
    // a header named __proto__ is a header like any other (an assignment would set the object's prototype and drop it)
    if (name === '__proto__') Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
    else headers[name] = value;
  }
  return headers;
}
