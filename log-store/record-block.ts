/**
 * Record blocks: what `readBatches` returns (see `RecordBlock` in types.ts).
 * A block is one read buffer and typed arrays of record positions in it, so
 * a reader that scans values in place pays no object per record. The
 * builder grows its arrays by doubling; the accessors turn one record of a
 * block into the strings, bytes and `LogRecord` that `read` returns.
 */
import { BATCH_HEADER_BYTES, decodeHeadersAt, decodePositions, decodeRecords, writeVarint, type BatchHeader, type RecordCursor, type RecordPositions } from './record-batch.ts';
import type { DecodedChunk } from './chunk-decode.ts';
import type { LogRecord, RecordBlock } from './types.ts';
import type { ChunkPool } from './chunk-pool.ts';

const NO_FLOATS = new Float64Array(0);
const NO_INTS = new Int32Array(0);

/**
 * Collects the positions of one buffer's records (see `decodePositions`).
 * Records the decode worker decoded are taken as views of its arrays while
 * they follow one another there (`takeDecoded`): a block of a worker-decoded
 * chunk then has no arrays of its own to allocate and fill (a third of the
 * reading thread's time in a loop of raw reads, measured). Its own arrays
 * are made when it needs them, at `capacity` records at first.
 */
export class RecordBlockBuilder implements RecordPositions {
  count = 0;
  timestamps: Float64Array = NO_FLOATS;
  keyStarts: Int32Array = NO_INTS;
  keyEnds: Int32Array = NO_INTS;
  valueStarts: Int32Array = NO_INTS;
  valueEnds: Int32Array = NO_INTS;
  headerStarts: Int32Array = NO_INTS;
  /** The decode worker's arrays whose records [#viewFrom, #viewFrom + count) this block's are, while it has none of its own. */
  #view: DecodedChunk | null = null;
  #viewFrom = 0;
  readonly #capacity: number;

  constructor(
    readonly buf: Buffer,
    /** Offset of record 0 (set again while the block is empty). */
    public baseOffset: number,
    capacity: number,
  ) {
    this.#capacity = Math.max(16, capacity);
  }

  reserve(n: number): void {
    if (this.#view !== null) this.#own(n);
    const need = this.count + n;
    if (need <= this.timestamps.length) return;
    const size = Math.max(need, this.timestamps.length * 2, this.#capacity);
    this.timestamps = grow(this.timestamps, new Float64Array(size));
    this.keyStarts = grow(this.keyStarts, new Int32Array(size));
    this.keyEnds = grow(this.keyEnds, new Int32Array(size));
    this.valueStarts = grow(this.valueStarts, new Int32Array(size));
    this.valueEnds = grow(this.valueEnds, new Int32Array(size));
    this.headerStarts = grow(this.headerStarts, new Int32Array(size));
  }

  /**
   * Takes records [from, from + n) of the decode worker's arrays `d`: as a
   * view of them when the block is empty or they follow its records there,
   * else copied.
   */
  takeDecoded(d: DecodedChunk, from: number, n: number): void {
    if (n <= 0) return;
    if ((this.count === 0 && this.timestamps.length === 0) || (this.#view === d && this.#viewFrom + this.count === from)) {
      if (this.count === 0) {
        this.#view = d;
        this.#viewFrom = from;
      }
      this.count += n;
      return;
    }
    this.reserve(n);
    this.#copy(d, from, n);
  }

  /** Copies the records it views into arrays of its own, with room for `more`. */
  #own(more: number): void {
    const d = this.#view!;
    const from = this.#viewFrom;
    const n = this.count;
    this.#view = null;
    this.count = 0;
    this.reserve(n + more);
    this.#copy(d, from, n);
  }

  /** Appends records [from, from + n) of `d` to its own arrays (room made). */
  #copy(d: DecodedChunk, from: number, n: number): void {
    const at = this.count;
    const to = from + n;
    this.timestamps.set(d.timestamps.subarray(from, to), at);
    this.keyStarts.set(d.keyStarts.subarray(from, to), at);
    this.keyEnds.set(d.keyEnds.subarray(from, to), at);
    this.valueStarts.set(d.valueStarts.subarray(from, to), at);
    this.valueEnds.set(d.valueEnds.subarray(from, to), at);
    this.headerStarts.set(d.headerStarts.subarray(from, to), at);
    this.count = at + n;
  }

  finish(topic: string, partition: number): RecordBlock {
    const d = this.#view;
    const from = this.#viewFrom;
    const to = from + this.count;
    return {
      topic,
      partition,
      buf: this.buf,
      count: this.count,
      baseOffset: this.baseOffset,
      timestamps: d === null ? this.timestamps : d.timestamps.subarray(from, to),
      keyStarts: d === null ? this.keyStarts : d.keyStarts.subarray(from, to),
      keyEnds: d === null ? this.keyEnds : d.keyEnds.subarray(from, to),
      valueStarts: d === null ? this.valueStarts : d.valueStarts.subarray(from, to),
      valueEnds: d === null ? this.valueEnds : d.valueEnds.subarray(from, to),
      headerStarts: d === null ? this.headerStarts : d.headerStarts.subarray(from, to),
    };
  }
}

function grow<T extends Float64Array | Int32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Key of record `i` as `read` returns it (UTF-8 decoded; null for a null key). */
export function blockKey(block: RecordBlock, i: number): string | null {
  const start = block.keyStarts[i]!;
  return start < 0 ? null : block.buf.toString('utf8', start, block.keyEnds[i]!);
}

/** Value bytes of record `i` (a view of the block's buffer, no copy). */
export function blockValue(block: RecordBlock, i: number): Buffer {
  return block.buf.subarray(block.valueStarts[i]!, block.valueEnds[i]!);
}

/** Headers of record `i`. */
export function blockHeaders(block: RecordBlock, i: number): Record<string, string> {
  return decodeHeadersAt(block.buf, block.headerStarts[i]!, block.buf.length);
}

/** Record `i` as `read` returns it. */
export function blockRecord(block: RecordBlock, i: number): LogRecord {
  return {
    topic: block.topic,
    partition: block.partition,
    offset: block.baseOffset + i,
    timestamp: block.timestamps[i]!,
    key: blockKey(block, i),
    value: blockValue(block, i),
    headers: blockHeaders(block, i),
  };
}

/**
 * One block holding `records` (consecutive offsets of one partition), for
 * stores that keep records as objects (test doubles of LogStoreApi). Empty
 * input: null.
 */
export function recordBlockOf(records: readonly LogRecord[]): RecordBlock | null {
  if (records.length === 0) return null;
  const first = records[0]!;
  let size = 0;
  for (const r of records) {
    size += (r.key === null ? 0 : Buffer.byteLength(r.key)) + r.value.length + 1;
    for (const [k, v] of Object.entries(r.headers)) size += Buffer.byteLength(k) + Buffer.byteLength(v) + 10;
  }
  const buf = Buffer.alloc(size + 10 * records.length);
  const b = new RecordBlockBuilder(buf, first.offset, records.length);
  b.reserve(records.length);
  let p = 0;
  for (const [i, r] of records.entries()) {
    if (r.offset !== first.offset + i) throw new RangeError(`records must have consecutive offsets (${r.offset} after ${first.offset + i - 1})`);
    b.timestamps[i] = r.timestamp;
    if (r.key === null) b.keyStarts[i] = b.keyEnds[i] = -1;
    else {
      b.keyStarts[i] = p;
      p += buf.write(r.key, p);
      b.keyEnds[i] = p;
    }
    b.valueStarts[i] = p;
    buf.set(r.value, p);
    p += r.value.length;
    b.valueEnds[i] = p;
    b.headerStarts[i] = p;
    const names = Object.keys(r.headers);
    p = writeVarint(buf, p, names.length);
    for (const name of names) {
      const nb = Buffer.from(name);
      const vb = Buffer.from(r.headers[name]!);
      p = writeVarint(buf, p, nb.length);
      buf.set(nb, p);
      p += nb.length;
      p = writeVarint(buf, p, vb.length);
      buf.set(vb, p);
      p += vb.length;
    }
  }
  b.count = records.length;
  return b.finish(first.topic, first.partition);
}

/**
 * Where a segment read puts the records it decodes: `LogRecord` objects
 * (`read`) or blocks of positions (`readBatches`). `count` and `nextOffset`
 * span every segment of one read.
 */
export interface RecordSink {
  readonly count: number;
  /** Offset after the last record taken (meaningful when count > 0). */
  readonly nextOffset: number;
  /** True when the sink takes record positions (a chunk's batches may then be decoded on the decode worker, see `pre`). */
  readonly positions: boolean;
  /** True when the blocks taken come back (ReadOptions.handBack): the chunks read for them come from the pool and may go back there. */
  readonly handBack: boolean;
  /**
   * Takes the records of the CRC-checked batch at `at` in `chunk` with offset >= fromOffset, until `count` reaches `max`. Throws BatchFormatError.
   * `pre`: the batch's records as the decode worker decoded them (batch `batch` of `chunk`, all its records).
   */
  take(chunk: Buffer, at: number, header: BatchHeader, fromOffset: number, max: number, resume: RecordCursor | undefined, pre?: { chunk: DecodedChunk; batch: number }): RecordCursor;
}

/** The sink of `read`: LogRecord objects. */
export class RecordListSink implements RecordSink {
  readonly records: LogRecord[] = [];
  readonly positions = false;
  readonly handBack = false;
  constructor(
    private readonly topic: string,
    private readonly partition: number,
    /** The records' values are views of the chunks read: those are never reused. */
    private readonly chunks: ChunkPool | null = null,
  ) {}
  get count(): number {
    return this.records.length;
  }
  get nextOffset(): number {
    return this.records[this.records.length - 1]!.offset + 1;
  }
  take(chunk: Buffer, at: number, header: BatchHeader, fromOffset: number, max: number, resume: RecordCursor | undefined): RecordCursor {
    this.chunks?.pin(chunk);
    return decodeRecords(chunk, at, header, this.topic, this.partition, fromOffset, this.records, max, resume);
  }
}

/**
 * `decodePositions` of a batch the decode worker decoded: its records with
 * offset >= fromOffset, at most `max`, copied from the worker's arrays.
 * Returns the batch's start as the cursor (always a valid one to resume from).
 */
function takeDecoded(d: DecodedChunk, batch: number, header: BatchHeader, fromOffset: number, out: RecordBlockBuilder, max: number): RecordCursor {
  const skip = Math.max(0, fromOffset - header.baseOffset);
  out.takeDecoded(d, d.meta[batch * 4 + 2]! + skip, Math.min(header.recordCount - skip, max));
  return { offset: header.baseOffset, position: d.meta[batch * 4]! + BATCH_HEADER_BYTES };
}

/** The sink of `readBatches`: one block per read buffer. */
export class RecordBlockSink implements RecordSink {
  readonly blocks: RecordBlock[] = [];
  readonly positions = true;
  count = 0;
  nextOffset = 0;
  private current: RecordBlockBuilder | null = null;
  constructor(
    private readonly topic: string,
    private readonly partition: number,
    /** Expected records in all: sizes the first block's arrays. */
    private readonly expected: number,
    /** The store's read buffers: each block leases its chunk until it is handed back (LogStoreApi.releaseBlocks), or pins it when blocks do not come back. */
    private readonly chunks: ChunkPool | null = null,
    /** The blocks come back (ReadOptions.handBack). */
    readonly handBack = false,
  ) {}
  take(chunk: Buffer, at: number, header: BatchHeader, fromOffset: number, max: number, resume: RecordCursor | undefined, pre?: { chunk: DecodedChunk; batch: number }): RecordCursor {
    let b = this.current;
    if (b === null || b.buf !== chunk) {
      this.seal();
      const from = Math.max(fromOffset, header.baseOffset);
      // size for the rest of the read, bounded by what this chunk can hold (a record takes at least 8 bytes)
      b = this.current = new RecordBlockBuilder(chunk, from, Math.min(this.expected - this.count, Math.ceil((chunk.length - at) / 8)));
      // The block in the making holds its chunk from its first record on: the read may load another chunk of the
      // segment before this block is sealed, and the segment then lets go of this one (ChunkPool.uncache).
      if (this.handBack) this.chunks?.lease(b);
      else this.chunks?.pin(chunk);
    }
    if (b.count === 0) b.baseOffset = Math.max(fromOffset, header.baseOffset);
    const before = b.count;
    const cursor = pre === undefined ? decodePositions(chunk, at, header, fromOffset, b, max - this.count + b.count, resume) : takeDecoded(pre.chunk, pre.batch, header, fromOffset, b, max - this.count);
    this.count += b.count - before;
    if (b.count > 0) this.nextOffset = b.baseOffset + b.count;
    return cursor;
  }
  /** The blocks taken, in offset order. */
  finish(): RecordBlock[] {
    this.seal();
    return this.blocks;
  }
  private seal(): void {
    const b = this.current;
    this.current = null;
    if (b === null) return;
    if (b.count > 0) {
      const block = b.finish(this.topic, this.partition);
      this.blocks.push(block);
      // the block takes over the builder's lease (a block that does not come back pinned its chunk for good)
      if (this.handBack) this.chunks?.lease(block);
    }
    if (this.handBack) this.chunks?.release(b);
  }
}
