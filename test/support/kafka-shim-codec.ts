/**
 * The slice of the Kafka wire protocol the mock shim (kafka-mock-shim.ts)
 * decodes: framing, Metadata responses v0–v8, Produce requests and
 * responses v3–v7 with record batch v2 headers (CRC-32C checked). All of it
 * is the non-flexible encoding kafkajs 2.x speaks. Anything else throws:
 * the shim must fail loudly rather than guess.
 *
 * Big-endian throughout. Frames carry their int32 size prefix.
 */
import { createRequire } from 'node:module';

/** kafkajs 2.2.4's CRC-32C (kafkajs has no types for its internals). */
const kafkajsCrc32c = createRequire(import.meta.url)('kafkajs/src/protocol/recordBatch/crc32C') as (buffer: Buffer) => number;

/** Kafka api keys the shim names. */
export const API_KEY = Object.freeze({ PRODUCE: 0, METADATA: 3, SASL_HANDSHAKE: 17, API_VERSIONS: 18, SASL_AUTHENTICATE: 36 });

/** Highest Metadata version decoded (v9 on is flexible). */
export const MAX_METADATA_VERSION = 8;
/** Produce versions decoded: v3 is the first with record batch v2 (producer id, sequence); v9 is flexible. */
export const MIN_PRODUCE_VERSION = 3;
export const MAX_PRODUCE_VERSION = 8;

/** Splits a byte stream into Kafka frames (size prefix included). Chunks are joined once per frame, not per chunk. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.length < 4) break;
      if (this.chunks[0].length < 4) this.join();
      const size = this.chunks[0].readInt32BE(0);
      if (size < 0) throw new Error(`negative frame size ${size}`);
      if (this.length < 4 + size) break;
      if (this.chunks[0].length < 4 + size) this.join();
      const head = this.chunks[0];
      frames.push(head.subarray(0, 4 + size));
      const rest = head.subarray(4 + size);
      this.length -= 4 + size;
      if (rest.length > 0) this.chunks[0] = rest;
      else this.chunks.shift();
    }
    return frames;
  }

  private join(): void {
    this.chunks = [Buffer.concat(this.chunks, this.length)];
  }
}

export class Cursor {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos = 0,
  ) {
    this.pos = pos;
  }
  int8(): number {
    this.need(1);
    return this.buf.readInt8(this.pos++);
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  nullableString(): string | null {
    const len = this.int16();
    if (len === -1) return null;
    if (len < -1) throw new Error(`bad string length ${len}`);
    this.need(len);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  string(): string {
    const s = this.nullableString();
    if (s === null) throw new Error('null where a string is required');
    return s;
  }
  nullableBytes(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    if (len < -1) throw new Error(`bad bytes length ${len}`);
    this.need(len);
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  arrayLength(max = 100_000): number {
    const n = this.int32();
    if (n < 0 || n > max) throw new Error(`bad array length ${n}`);
    return n;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new Error(`${this.buf.length - this.pos} unexpected trailing bytes`);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error(`truncated: need ${n} bytes at ${this.pos} of ${this.buf.length}`);
  }
}

export function int16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v);
  return b;
}
export function int32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
}
export function int64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(v);
  return b;
}
export function nullableString(s: string | null): Buffer {
  if (s === null) return int16(-1);
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([int16(bytes.length), bytes]);
}
/** Prefixes a frame body with its size. */
export function frame(body: Buffer): Buffer {
  return Buffer.concat([int32(body.length), body]);
}

/**
 * CRC-32C (Castagnoli), as record batches v2 use: kafkajs's own
 * implementation, so the peer checks the producer's batches with code that
 * is not the producer's (the agent encodes batches itself with its own
 * slice-by-8 CRC-32C). About 3 ns per byte: the peer's cost, not the
 * producer's, in the replicator benchmark.
 */
export function crc32c(bytes: Uint8Array): number {
  return kafkajsCrc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) >>> 0;
}

export interface MetadataBroker {
  nodeId: number;
  host: string;
  port: number;
  rack: string | null;
}

/**
 * Rewrites one Metadata response frame. `advertise` maps a broker to the
 * host and port clients should use; a controller id naming no listed broker
 * becomes the lowest listed id. Everything after the controller id (topic
 * metadata) is copied verbatim.
 */
export function rewriteMetadataResponse(
  responseFrame: Buffer,
  apiVersion: number,
  advertise: (broker: MetadataBroker) => { host: string; port: number },
): Buffer {
  if (apiVersion < 0 || apiVersion > MAX_METADATA_VERSION) {
    throw new Error(`Metadata response v${apiVersion} is not supported (decodes v0–v${MAX_METADATA_VERSION})`);
  }
  const c = new Cursor(responseFrame, 4);
  c.int32(); // correlation id (response header v0)
  const headerEnd = c.pos;
  const throttle = apiVersion >= 3 ? c.int32() : undefined;
  const count = c.arrayLength(10_000);
  const brokers: MetadataBroker[] = [];
  for (let i = 0; i < count; i++) {
    const nodeId = c.int32();
    const host = c.string();
    const port = c.int32();
    const rack = apiVersion >= 1 ? c.nullableString() : null;
    brokers.push({ nodeId, host, port, rack });
  }
  const clusterId = apiVersion >= 2 ? c.nullableString() : undefined;
  let controllerId = apiVersion >= 1 ? c.int32() : undefined;
  const rest = responseFrame.subarray(c.pos);
  if (controllerId !== undefined && brokers.length > 0 && !brokers.some((b) => b.nodeId === controllerId)) {
    controllerId = Math.min(...brokers.map((b) => b.nodeId));
  }
  const parts: Buffer[] = [responseFrame.subarray(4, headerEnd)];
  if (throttle !== undefined) parts.push(int32(throttle));
  parts.push(int32(brokers.length));
  for (const b of brokers) {
    const a = advertise(b);
    parts.push(int32(b.nodeId), nullableString(a.host), int32(a.port));
    if (apiVersion >= 1) parts.push(nullableString(b.rack));
  }
  if (clusterId !== undefined) parts.push(nullableString(clusterId));
  if (controllerId !== undefined) parts.push(int32(controllerId));
  parts.push(rest);
  return frame(Buffer.concat(parts));
}

/** The header of a record batch v2 (magic 2), as far as idempotence needs it. */
export interface BatchHeader {
  baseOffset: bigint;
  batchLength: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/** Decodes a record set holding exactly one record batch v2 and checks its CRC-32C. */
export function decodeBatchHeader(records: Buffer): BatchHeader {
  const c = new Cursor(records);
  const baseOffset = c.int64();
  const batchLength = c.int32();
  if (batchLength + 12 !== records.length) {
    throw new Error(`record set of ${records.length} bytes holds a batch of ${batchLength + 12}: one batch per partition expected`);
  }
  c.int32(); // partition leader epoch
  const magic = c.int8();
  if (magic !== 2) throw new Error(`record batch magic ${magic}: only v2 is supported`);
  const crc = c.uint32();
  const computed = crc32c(records.subarray(c.pos));
  if (computed !== crc) throw new Error(`record batch CRC-32C mismatch: stored ${crc}, computed ${computed}`);
  const attributes = c.int16();
  const lastOffsetDelta = c.int32();
  c.int64(); // first timestamp
  c.int64(); // max timestamp
  const producerId = c.int64();
  const producerEpoch = c.int16();
  const baseSequence = c.int32();
  const recordCount = c.int32();
  if (recordCount !== lastOffsetDelta + 1) throw new Error(`record count ${recordCount} disagrees with last offset delta ${lastOffsetDelta}`);
  return { baseOffset, batchLength, magic, crc, attributes, lastOffsetDelta, producerId, producerEpoch, baseSequence, recordCount };
}

export interface ProduceRequest {
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  topics: Array<{ topic: string; partitions: Array<{ partition: number; batch: BatchHeader }> }>;
}

/** Decodes a Produce request frame, v3–v8. */
export function decodeProduceRequest(requestFrame: Buffer): ProduceRequest {
  const c = new Cursor(requestFrame, 4);
  const apiKey = c.int16();
  if (apiKey !== API_KEY.PRODUCE) throw new Error(`api key ${apiKey} is not Produce`);
  const apiVersion = c.int16();
  if (apiVersion < MIN_PRODUCE_VERSION || apiVersion > MAX_PRODUCE_VERSION) {
    throw new Error(`Produce v${apiVersion} is not supported (decodes v${MIN_PRODUCE_VERSION}–v${MAX_PRODUCE_VERSION})`);
  }
  const correlationId = c.int32();
  const clientId = c.nullableString();
  const transactionalId = c.nullableString();
  const acks = c.int16();
  const timeoutMs = c.int32();
  const topics: ProduceRequest['topics'] = [];
  const nTopics = c.arrayLength();
  for (let i = 0; i < nTopics; i++) {
    const topic = c.string();
    const partitions: ProduceRequest['topics'][number]['partitions'] = [];
    const nParts = c.arrayLength();
    for (let j = 0; j < nParts; j++) {
      const partition = c.int32();
      const records = c.nullableBytes();
      if (records === null) throw new Error(`null record set for ${topic}[${partition}]`);
      partitions.push({ partition, batch: decodeBatchHeader(records) });
    }
    topics.push({ topic, partitions });
  }
  c.end();
  return { apiVersion, correlationId, clientId, transactionalId, acks, timeoutMs, topics };
}

export interface ProducePartitionResult {
  partition: number;
  errorCode: number;
  baseOffset: bigint;
  logAppendTime: bigint;
  logStartOffset: bigint;
}

export interface ProduceResponse {
  correlationId: number;
  topics: Array<{ topic: string; partitions: ProducePartitionResult[] }>;
  throttleTimeMs: number;
}

/** Decodes a Produce response frame of `apiVersion` (v3–v8). */
export function decodeProduceResponse(responseFrame: Buffer, apiVersion: number): ProduceResponse {
  if (apiVersion < MIN_PRODUCE_VERSION || apiVersion > MAX_PRODUCE_VERSION) throw new Error(`Produce response v${apiVersion} is not supported`);
  const c = new Cursor(responseFrame, 4);
  const correlationId = c.int32();
  const topics: ProduceResponse['topics'] = [];
  const nTopics = c.arrayLength();
  for (let i = 0; i < nTopics; i++) {
    const topic = c.string();
    const partitions: ProducePartitionResult[] = [];
    const nParts = c.arrayLength();
    for (let j = 0; j < nParts; j++) {
      const partition = c.int32();
      const errorCode = c.int16();
      const baseOffset = c.int64();
      const logAppendTime = c.int64();
      const logStartOffset = apiVersion >= 5 ? c.int64() : -1n;
      if (apiVersion >= 8) {
        const nRecordErrors = c.arrayLength();
        for (let k = 0; k < nRecordErrors; k++) {
          c.int32();
          c.nullableString();
        }
        c.nullableString();
      }
      partitions.push({ partition, errorCode, baseOffset, logAppendTime, logStartOffset });
    }
    topics.push({ topic, partitions });
  }
  const throttleTimeMs = c.int32();
  c.end();
  return { correlationId, topics, throttleTimeMs };
}

/** Encodes a Produce response frame of `apiVersion` (v3–v8). */
export function encodeProduceResponse(response: ProduceResponse, apiVersion: number): Buffer {
  if (apiVersion < MIN_PRODUCE_VERSION || apiVersion > MAX_PRODUCE_VERSION) throw new Error(`Produce response v${apiVersion} is not supported`);
  const parts: Buffer[] = [int32(response.correlationId), int32(response.topics.length)];
  for (const t of response.topics) {
    parts.push(nullableString(t.topic), int32(t.partitions.length));
    for (const p of t.partitions) {
      parts.push(int32(p.partition), int16(p.errorCode), int64(p.baseOffset), int64(p.logAppendTime));
      if (apiVersion >= 5) parts.push(int64(p.logStartOffset));
      if (apiVersion >= 8) parts.push(int32(0), int16(-1));
    }
  }
  parts.push(int32(response.throttleTimeMs));
  return frame(Buffer.concat(parts));
}

/** Offset of a request's body: after size, api key, version, correlation id and client id (request header v1, non-flexible). */
export function requestBodyStart(requestFrame: Buffer): Cursor {
  const c = new Cursor(requestFrame, 12);
  c.nullableString();
  return c;
}

/** Highest ApiVersions version rewritten (v3 on is flexible). */
export const MAX_API_VERSIONS_VERSION = 2;

/**
 * ApiVersions response v0–v2 with `overrides` (api key → [min, max])
 * replacing or adding those keys' ranges; an error response is returned as is.
 */
export function rewriteApiVersionsResponse(responseFrame: Buffer, apiVersion: number, overrides: ReadonlyMap<number, readonly [number, number]>): Buffer {
  if (apiVersion > MAX_API_VERSIONS_VERSION) throw new Error(`ApiVersions v${apiVersion} response not decoded`);
  const c = new Cursor(responseFrame, 4);
  const correlationId = c.int32();
  const errorCode = c.int16();
  if (errorCode !== 0) return responseFrame;
  const n = c.arrayLength();
  const ranges = new Map<number, [number, number]>();
  for (let i = 0; i < n; i++) {
    const key = c.int16();
    ranges.set(key, [c.int16(), c.int16()]);
  }
  const rest = responseFrame.subarray(c.pos); // throttle_time_ms (v1+)
  for (const [key, range] of overrides) ranges.set(key, [range[0], range[1]]);
  const entries = [...ranges].map(([key, [min, max]]) => Buffer.concat([int16(key), int16(min), int16(max)]));
  return frame(Buffer.concat([int32(correlationId), int16(0), int32(entries.length), ...entries, rest]));
}

/** SaslHandshake response v0/v1: error code and the enabled mechanisms. */
export function encodeSaslHandshakeResponse(correlationId: number, errorCode: number, mechanisms: readonly string[]): Buffer {
  return frame(Buffer.concat([int32(correlationId), int16(errorCode), int32(mechanisms.length), ...mechanisms.map((m) => nullableString(m))]));
}

/** SaslAuthenticate response v0/v1 (v1 adds session_lifetime_ms, 0: unlimited). */
export function encodeSaslAuthenticateResponse(correlationId: number, apiVersion: number, errorCode: number, errorMessage: string | null, authBytes: Buffer = Buffer.alloc(0)): Buffer {
  const parts = [int32(correlationId), int16(errorCode), nullableString(errorMessage), int32(authBytes.length), authBytes];
  if (apiVersion >= 1) parts.push(int64(0n));
  return frame(Buffer.concat(parts));
}
