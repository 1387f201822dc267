/**
 * A segment: one `.log` file of record batches plus its two derived sparse
 * indexes, all named by the segment's base offset as 20 decimal digits
 * (`00000000000000000042.log`, `.index`, `.timeindex`), as in Kafka.
 *
 * Invariants:
 * - Batches in the `.log` are back to back; their base offsets are dense:
 *   each batch starts at the previous batch's base offset + record count.
 * - `size` is the number of valid bytes (for the active segment: the bytes
 *   known durable); readers never read past it.
 * - A closed segment never changes until retention deletes it whole.
 * - Index files are derived: written without fsync on the hot path, fsynced
 *   when the segment closes, rebuilt from the `.log` when missing or damaged.
 */
import type { LogFileHandle, LogFileSystem } from './file-system.ts';
import { LogError, fromFsError } from './errors.ts';
import {
  BATCH_HEADER_BYTES,
  BatchFormatError,
  type BatchHeader,
  type RecordCursor,
  batchCrcOk,
  decodeRecords,
  readBatchHeader,
  recordTimestamps,
} from './record-batch.ts';
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex } from './offset-index.ts';
import { TIME_INDEX_ENTRY_BYTES, TimeIndex } from './time-index.ts';
import { readFully, scanLog, type ScanProblem } from './log-scan.ts';
import type { RecordSink } from './record-block.ts';
import type { DecodedChunk } from './chunk-decode.ts';
import { canDecode, decodeWorker } from './decode-worker.ts';
import type { ChunkPool } from './chunk-pool.ts';

/** The least a chunk bounded by the records wanted is (see readFrom). */
const MIN_BOUNDED_CHUNK = 1 << 20;

/** No record yet: the smallest timestamp a segment reports. */
export const NO_TIMESTAMP = Number.MIN_SAFE_INTEGER;

export function segmentName(baseOffset: number): string {
  return String(baseOffset).padStart(20, '0');
}

/** Parses `00000000000000000042.log` → 42; anything else → null. */
export function parseSegmentFile(name: string): { baseOffset: number; kind: 'log' | 'index' | 'timeindex' } | null {
  const m = /^(\d{20})\.(log|index|timeindex)$/.exec(name);
  if (!m) return null;
  return { baseOffset: Number(m[1]), kind: m[2] as 'log' | 'index' | 'timeindex' };
}

export interface SegmentContext {
  fs: LogFileSystem;
  dir: string;
  topic: string;
  partition: number;
  readOnly: boolean;
  /** See LogStoreOptions.decodeOffloadBytes. */
  decodeOffloadBytes: number;
  /** The store's read buffers (see ChunkPool). */
  chunks: ChunkPool;
}

/** The chunk a segment read last, kept for the reads after (followers ask for a few records at a time). */
interface LastChunk {
  pos: number;
  buf: Buffer;
  /** Positions of the batches whose CRC was checked. */
  crcChecked: Set<number>;
  cursor?: RecordCursor;
  /** The decode worker's positions of the chunk's records, and each batch's index there by position. */
  decoded?: { chunk: DecodedChunk; at: Map<number, number> };
}

/** What `Segment.readRecords` found. */
export interface SegmentRead {
  /** Offset after the last record returned (or the start offset). */
  nextOffset: number;
  bytes: number;
  /** Damage met before `max` records were read: the caller throws LOG_CORRUPT when nothing was returned. */
  corrupt: LogError | null;
}

export class Segment {
  readonly name: string;
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  /** Valid (for the active segment: durable) bytes of the `.log`. */
  size = 0;
  /** Offset after the last record. */
  nextOffset: number;
  maxTimestamp = NO_TIMESTAMP;
  /** When the segment got its first record (ms, the store's clock); the basis of segmentMs rolls. */
  createdAtMs = 0;

  /** Loaded lazily for closed segments. */
  private index: OffsetIndex | null = null;
  private timeIndex: TimeIndex | null = null;
  private indexLoading: Promise<void> | null = null;
  /** Position of the last index entry (or 0): entries are added every indexIntervalBytes after it. */
  private lastIndexedPos = 0;

  // Active segment only: write handles and how many index entries are on disk.
  logWriter: LogFileHandle | null = null;
  private indexWriter: LogFileHandle | null = null;
  private timeWriter: LogFileHandle | null = null;
  private indexEntriesWritten = 0;
  private timeEntriesWritten = 0;
  /** Set when the active segment's indexes were rebuilt in memory: the next index write rewrites both files. */
  private rewriteIndexFiles = false;

  private reader: Promise<LogFileHandle> | null = null;
  /**
   * The last chunk read (null: none). Never written while cached; its memory
   * is read into again only through the chunk pool, once nothing views it.
   */
  private lastChunk: LastChunk | null = null;
  private readers = 0;
  private closeWhenIdle = false;
  private deleted = false;

  constructor(
    private readonly ctx: SegmentContext,
    readonly baseOffset: number,
  ) {
    this.name = segmentName(baseOffset);
    this.logPath = `${ctx.dir}/${this.name}.log`;
    this.indexPath = `${ctx.dir}/${this.name}.index`;
    this.timeIndexPath = `${ctx.dir}/${this.name}.timeindex`;
    this.nextOffset = baseOffset;
  }

  get isEmpty(): boolean {
    return this.nextOffset === this.baseOffset;
  }

  private ioError(err: unknown, action: string, file: string): LogError {
    return fromFsError(err, action, { topic: this.ctx.topic, partition: this.ctx.partition, file });
  }

  /** Creates a new, empty active segment (files created or emptied). The caller fsyncs the directory. */
  static async create(ctx: SegmentContext, baseOffset: number, nowMs: number): Promise<Segment> {
    const seg = new Segment(ctx, baseOffset);
    seg.index = new OffsetIndex();
    seg.timeIndex = new TimeIndex();
    seg.createdAtMs = nowMs;
    await seg.openWriters(true);
    return seg;
  }

  private async openWriters(empty: boolean): Promise<void> {
    const { fs } = this.ctx;
    try {
      this.logWriter = await fs.open(this.logPath, 'create');
      this.indexWriter = await fs.open(this.indexPath, 'create');
      this.timeWriter = await fs.open(this.timeIndexPath, 'create');
      if (empty) {
        await this.logWriter.truncate(0);
        await this.indexWriter.truncate(0);
        await this.timeWriter.truncate(0);
      }
    } catch (err) {
      await this.closeWriters().catch(() => {});
      throw this.ioError(err, 'create segment', this.logPath);
    }
  }

  /**
   * Recovers the active (last) segment after open: loads its indexes, finds
   * the last index entry that points at a valid batch, scans from there to
   * the end, truncates the first torn or corrupt batch and everything after
   * it, and rewrites indexes that were missing or damaged.
   */
  static async recoverActive(
    ctx: SegmentContext,
    baseOffset: number,
    indexIntervalBytes: number,
    nowMs: number,
  ): Promise<{ segment: Segment; bytesTruncated: number; indexesRebuilt: string[]; problem: ScanProblem | null }> {
    const seg = new Segment(ctx, baseOffset);
    const { fs } = ctx;
    let fileSize: number;
    let birth = 0;
    try {
      const st = await fs.stat(seg.logPath);
      fileSize = st.size;
      birth = st.birthtimeMs;
    } catch (err) {
      throw seg.ioError(err, 'stat', seg.logPath);
    }
    const idxBuf = await readOptional(fs, seg.indexPath);
    const timeBuf = await readOptional(fs, seg.timeIndexPath);
    const index = new OffsetIndex(idxBuf ?? undefined);
    const time = new TimeIndex(timeBuf ?? undefined);
    let damaged =
      (fileSize > 0 && (idxBuf === null || timeBuf === null)) ||
      (idxBuf !== null && idxBuf.length % OFFSET_INDEX_ENTRY_BYTES !== 0) ||
      (timeBuf !== null && timeBuf.length % TIME_INDEX_ENTRY_BYTES !== 0);
    let k = Math.min(index.validPrefix(fileSize), time.count);
    for (let i = 0; i < k; i++) {
      if (time.relOffset(i) !== index.relOffset(i) || (i > 0 && time.timestamp(i) < time.timestamp(i - 1))) {
        k = i;
        break;
      }
    }
    // Entries past a torn tail are expected after a crash; entries that are out of order are damage.
    if (k < index.count && index.validPrefix(Number.MAX_SAFE_INTEGER) < index.count) damaged = true;
    const fh = await seg.openReader();
    try {
      // Walk back from the last entry until one points at a valid batch with the expected offset.
      while (k > 0) {
        const pos = index.position(k - 1);
        const ok = await seg.batchAtIs(fh, pos, baseOffset + index.relOffset(k - 1), fileSize);
        if (ok) break;
        damaged = true;
        k--;
      }
      index.truncate(k);
      time.truncate(k);
      const startPos = k > 0 ? index.position(k - 1) : 0;
      const startOffset = k > 0 ? baseOffset + index.relOffset(k - 1) : baseOffset;
      const startMax = k > 0 ? time.timestamp(k - 1) : NO_TIMESTAMP;
      seg.index = index;
      seg.timeIndex = time;
      seg.lastIndexedPos = startPos;
      let runningMax = startMax;
      const scan = await scanLog(fh, seg.logPath, fileSize, startPos, startOffset, startMax, ({ position, header }) => {
        seg.maybeIndex(position, header.baseOffset, runningMax, indexIntervalBytes);
        if (header.maxTimestamp > runningMax) runningMax = header.maxTimestamp;
      });
      seg.size = scan.validBytes;
      seg.nextOffset = scan.nextOffset;
      seg.maxTimestamp = scan.maxTimestamp;
      seg.createdAtMs = birth > 0 ? Math.min(birth, nowMs) : nowMs;
      const bytesTruncated = fileSize - scan.validBytes;
      const indexesRebuilt: string[] = [];
      if (!ctx.readOnly) {
        await seg.openWriters(false);
        if (bytesTruncated > 0) {
          try {
            await seg.logWriter!.truncate(scan.validBytes);
            await seg.logWriter!.datasync();
          } catch (err) {
            throw seg.ioError(err, 'truncate', seg.logPath);
          }
        }
        // Rewrite both index files from memory: the prefix we trusted plus what the scan added.
        const idxBytes = index.bytes();
        const timeBytes = time.bytes();
        const idxChanged = idxBuf === null || !idxBuf.equals(idxBytes);
        const timeChanged = timeBuf === null || !timeBuf.equals(timeBytes);
        if (idxChanged || timeChanged) {
          try {
            await rewrite(seg.indexWriter!, idxBytes);
            await rewrite(seg.timeWriter!, timeBytes);
          } catch (err) {
            throw seg.ioError(err, 'rewrite index', seg.indexPath);
          }
        }
        if (damaged && (idxChanged || timeChanged)) indexesRebuilt.push(seg.indexPath, seg.timeIndexPath);
        seg.indexEntriesWritten = index.count;
        seg.timeEntriesWritten = time.count;
      } else if (damaged) indexesRebuilt.push(seg.indexPath, seg.timeIndexPath);
      return { segment: seg, bytesTruncated, indexesRebuilt, problem: scan.problem };
    } finally {
      seg.releaseReader();
    }
  }

  /**
   * Opens a closed segment cheaply: stats the `.log` and reads only the last
   * time-index entry (the final one written at close). When an index file
   * is missing or inconsistent, both are rebuilt by scanning the `.log`;
   * damage found by that scan is returned (never skipped silently).
   */
  static async openClosed(
    ctx: SegmentContext,
    baseOffset: number,
    nextBaseOffset: number,
    indexIntervalBytes: number,
  ): Promise<{ segment: Segment; indexesRebuilt: string[]; problem: ScanProblem | null }> {
    const seg = new Segment(ctx, baseOffset);
    const { fs } = ctx;
    let logSize: number;
    try {
      const st = await fs.stat(seg.logPath);
      logSize = st.size;
      seg.createdAtMs = st.birthtimeMs || st.mtimeMs;
    } catch (err) {
      throw seg.ioError(err, 'stat', seg.logPath);
    }
    seg.size = logSize;
    seg.nextOffset = nextBaseOffset;
    const idxSize = await statSize(fs, seg.indexPath);
    const timeSize = await statSize(fs, seg.timeIndexPath);
    let consistent = idxSize !== null && timeSize !== null && idxSize % OFFSET_INDEX_ENTRY_BYTES === 0 && timeSize % TIME_INDEX_ENTRY_BYTES === 0 && timeSize > 0;
    if (consistent) {
      const fh = await fs.open(seg.timeIndexPath, 'read').catch(() => null);
      if (fh === null) consistent = false;
      else {
        try {
          const last = await readFully(fh, seg.timeIndexPath, TIME_INDEX_ENTRY_BYTES, timeSize! - TIME_INDEX_ENTRY_BYTES);
          const t = new TimeIndex(last);
          if (t.count === 1 && t.relOffset(0) === nextBaseOffset - baseOffset) seg.maxTimestamp = t.timestamp(0);
          else consistent = false;
        } finally {
          await fh.close().catch(() => {});
        }
      }
    }
    if (consistent) return { segment: seg, indexesRebuilt: [], problem: null };
    const problem = await seg.rebuildIndexes(indexIntervalBytes);
    return { segment: seg, indexesRebuilt: [seg.indexPath, seg.timeIndexPath], problem };
  }

  /**
   * Rebuilds both indexes of a closed segment from its `.log` (in memory;
   * written to disk unless read-only). Returns the damage the scan met: the
   * indexes then cover only the valid prefix.
   */
  async rebuildIndexes(indexIntervalBytes: number): Promise<ScanProblem | null> {
    const fh = await this.openReader();
    try {
      const active = this.logWriter !== null;
      const index = new OffsetIndex();
      const time = new TimeIndex();
      let lastIndexedPos = 0;
      let runningMax = NO_TIMESTAMP;
      const scan = await scanLog(fh, this.logPath, this.size, 0, this.baseOffset, NO_TIMESTAMP, ({ position, header }) => {
        if (position > 0 && position - lastIndexedPos >= indexIntervalBytes) {
          index.append(header.baseOffset - this.baseOffset, position);
          time.append(runningMax, header.baseOffset - this.baseOffset);
          lastIndexedPos = position;
        }
        if (header.maxTimestamp > runningMax) runningMax = header.maxTimestamp;
      });
      if (active) {
        // Appends may have indexed batches past the scanned size meanwhile: keep the rebuilt entries
        // only, and let the next index write rewrite both files from the start.
        this.index = index;
        this.timeIndex = time;
        this.lastIndexedPos = Math.max(lastIndexedPos, this.lastIndexedPos);
        this.rewriteIndexFiles = true;
        return scan.problem;
      }
      this.index = index;
      this.timeIndex = time;
      this.lastIndexedPos = lastIndexedPos;
      if (scan.problem === null) this.maxTimestamp = scan.maxTimestamp;
      else if (scan.maxTimestamp > this.maxTimestamp) this.maxTimestamp = scan.maxTimestamp;
      // The final entry: every record of the segment is at or below maxTimestamp.
      time.append(this.maxTimestamp, this.nextOffset - this.baseOffset);
      if (!this.ctx.readOnly) {
        try {
          await writeWhole(this.ctx.fs, this.indexPath, index.bytes());
          await writeWhole(this.ctx.fs, this.timeIndexPath, time.bytes());
        } catch (err) {
          throw this.ioError(err, 'write index', this.indexPath);
        }
      }
      return scan.problem;
    } finally {
      this.releaseReader();
    }
  }

  /** Adds an index entry for a batch at `position` when the interval since the last entry is reached. */
  private maybeIndex(position: number, baseOffset: number, maxTsBefore: number, indexIntervalBytes: number): void {
    if (position === 0 || position - this.lastIndexedPos < indexIntervalBytes) return;
    const rel = baseOffset - this.baseOffset;
    this.index!.append(rel, position);
    this.timeIndex!.append(maxTsBefore, rel);
    this.lastIndexedPos = position;
  }

  /** True when a batch with `expectedOffset` starts at `pos` (and, with `checkCrc`, is intact). */
  private async batchAtIs(fh: LogFileHandle, pos: number, expectedOffset: number, fileSize: number, checkCrc = true): Promise<boolean> {
    if (pos + BATCH_HEADER_BYTES > fileSize) return false;
    const head = await readFully(fh, this.logPath, BATCH_HEADER_BYTES, pos);
    if (head.length < BATCH_HEADER_BYTES) return false;
    let header: BatchHeader;
    try {
      header = readBatchHeader(head, 0);
    } catch {
      return false;
    }
    if (header.baseOffset !== expectedOffset || pos + header.totalBytes > fileSize) return false;
    if (!checkCrc) return true;
    const whole = await readFully(fh, this.logPath, header.totalBytes, pos);
    return whole.length === header.totalBytes && batchCrcOk(whole, 0, header);
  }

  /**
   * Records that batches were written (and, with fsync, made durable) at the
   * end of the `.log`: advances size, offsets, timestamps and in-memory indexes.
   */
  appended(position: number, baseOffset: number, recordCount: number, bytes: number, maxTimestamp: number, indexIntervalBytes: number, nowMs: number): void {
    if (this.isEmpty) this.createdAtMs = nowMs;
    this.maybeIndex(position, baseOffset, this.maxTimestamp, indexIntervalBytes);
    this.size = position + bytes;
    this.nextOffset = baseOffset + recordCount;
    if (maxTimestamp > this.maxTimestamp) this.maxTimestamp = maxTimestamp;
  }

  /** Writes index entries not yet on disk (no fsync: derived data). */
  async writeNewIndexEntries(): Promise<void> {
    const index = this.index!;
    const time = this.timeIndex!;
    if (this.indexWriter === null || this.timeWriter === null) return;
    if (this.rewriteIndexFiles) {
      // After an in-memory rebuild: both files are rewritten from the start.
      this.rewriteIndexFiles = false;
      this.indexEntriesWritten = 0;
      this.timeEntriesWritten = 0;
      await this.indexWriter.truncate(0);
      await this.timeWriter.truncate(0);
    }
    if (index.count > this.indexEntriesWritten) {
      const from = this.indexEntriesWritten;
      const bytes = index.bytes(from);
      this.indexEntriesWritten = index.count;
      await this.indexWriter.write(bytes, 0, bytes.length, from * OFFSET_INDEX_ENTRY_BYTES);
    }
    if (time.count > this.timeEntriesWritten) {
      const from = this.timeEntriesWritten;
      const bytes = time.bytes(from);
      this.timeEntriesWritten = time.count;
      await this.timeWriter.write(bytes, 0, bytes.length, from * TIME_INDEX_ENTRY_BYTES);
    }
  }

  /**
   * Closes the active segment for writing: writes the final time-index
   * entry, fsyncs the `.log` and both indexes, closes the write handles.
   */
  async seal(): Promise<void> {
    this.timeIndex!.append(this.maxTimestamp, this.nextOffset - this.baseOffset);
    try {
      await this.writeNewIndexEntries();
      await this.logWriter?.datasync();
      await this.indexWriter?.datasync();
      await this.timeWriter?.datasync();
    } catch (err) {
      throw this.ioError(err, 'seal segment', this.logPath);
    }
    await this.closeWriters();
  }

  async closeWriters(): Promise<void> {
    const handles = [this.logWriter, this.indexWriter, this.timeWriter];
    this.logWriter = this.indexWriter = this.timeWriter = null;
    for (const h of handles) await h?.close().catch(() => {});
  }

  /** Ensures the indexes of a closed segment are in memory; rebuilds them when damaged. */
  private async ensureIndexes(indexIntervalBytes: number): Promise<void> {
    if (this.index !== null) return;
    this.indexLoading ??= (async () => {
      const idxBuf = await readOptional(this.ctx.fs, this.indexPath);
      const timeBuf = await readOptional(this.ctx.fs, this.timeIndexPath);
      const index = new OffsetIndex(idxBuf ?? undefined);
      const time = new TimeIndex(timeBuf ?? undefined);
      const ok =
        idxBuf !== null &&
        timeBuf !== null &&
        index.validPrefix(this.size) === index.count &&
        time.count === index.count + 1 &&
        time.relOffset(time.count - 1) === this.nextOffset - this.baseOffset;
      if (ok) {
        this.index = index;
        this.timeIndex = time;
      } else {
        await this.rebuildIndexes(indexIntervalBytes);
      }
    })().finally(() => {
      this.indexLoading = null;
    });
    await this.indexLoading;
  }

  private openReader(): Promise<LogFileHandle> {
    if (this.deleted) throw new LogError('LOG_OUT_OF_RANGE', `segment ${this.logPath} was deleted by retention`, { topic: this.ctx.topic, partition: this.ctx.partition, file: this.logPath });
    this.readers++;
    this.reader ??= this.ctx.fs.open(this.logPath, 'read').catch((err: unknown) => {
      this.reader = null;
      throw this.ioError(err, 'open', this.logPath);
    });
    return this.reader.catch((err: unknown) => {
      this.readers--;
      throw err;
    });
  }

  private releaseReader(): void {
    this.readers--;
    if ((this.deleted || this.closeWhenIdle) && this.readers === 0) {
      this.closeWhenIdle = false;
      void this.closeReader();
    }
  }

  /** Closes the read handle (now, or when the reads in flight finish) and drops the cached chunk; reads reopen it. */
  releaseReadHandle(): void {
    this.cacheChunk(null);
    if (this.readers === 0) void this.closeReader();
    else this.closeWhenIdle = true;
  }

  /**
   * Reads `length` bytes at `pos` into a chunk from the pool and makes it
   * the last chunk. A big one read for positions (readBatches) is
   * CRC-checked and decoded on the decode worker meanwhile.
   */
  private async loadChunk(fh: LogFileHandle, pos: number, length: number, out: RecordSink): Promise<Buffer> {
    const pool = out.handBack ? this.ctx.chunks : null;
    let chunk = length > 0 ? await readFully(fh, this.logPath, length, pos, pool === null ? undefined : (n) => pool.take(n)) : Buffer.alloc(0);
    const offload = this.ctx.decodeOffloadBytes;
    // a chunk from the pool may be the first bytes of a longer idle one's memory: all of it is the chunk's to transfer
    const owned = pool !== null && pool.owns(chunk);
    const worker = out.positions && offload > 0 && chunk.length >= offload && canDecode(chunk, owned) ? decodeWorker() : null;
    const back = worker === null ? null : await worker.decode(chunk, owned);
    // the worker failed with the chunk's memory: read it again
    if (worker !== null && back === null) chunk = await readFully(fh, this.logPath, length, pos);
    if (back !== null) chunk = back.chunk;
    // the memory came back under a new ArrayBuffer: still the pool's, to read into again as a view of its start
    if (back !== null && owned) pool!.ownAgain(chunk);
    const entry: LastChunk = { pos, buf: chunk, crcChecked: new Set() };
    if (back !== null) {
      const at = new Map<number, number>();
      for (let b = 0; b < back.decoded.batches; b++) at.set(back.decoded.meta[b * 4]!, b);
      entry.decoded = { chunk: back.decoded, at };
    }
    this.cacheChunk(entry, pool !== null);
    return chunk;
  }

  /** Makes `next` the chunk later reads may reuse (null: none; `pooled`: read for blocks that come back, see ChunkPool); the one before goes back to the pool once nothing sees it. */
  private cacheChunk(next: LastChunk | null, pooled = false): void {
    const before = this.lastChunk;
    this.lastChunk = next;
    if (before !== null && before.buf !== next?.buf) this.ctx.chunks.uncache(before.buf);
    if (pooled && next !== null && next.buf !== before?.buf) this.ctx.chunks.track(next.buf);
  }

  private async closeReader(): Promise<void> {
    const r = this.reader;
    this.reader = null;
    if (r) await r.then((h) => h.close()).catch(() => {});
  }

  /**
   * Reads records from `offset` (within this segment) up to byte `limit`,
   * giving them to `out` until it holds `maxRecords` or about `maxBytes` of
   * batches were read (at least one batch).
   */
  async readRecords(offset: number, limit: number, maxRecords: number, maxBytes: number, indexIntervalBytes: number, out: RecordSink): Promise<SegmentRead> {
    await this.ensureIndexes(indexIntervalBytes);
    const fh = await this.openReader();
    try {
      return await this.readFrom(fh, offset, limit, maxRecords, maxBytes, indexIntervalBytes, out, true);
    } finally {
      this.releaseReader();
    }
  }

  private async readFrom(
    fh: LogFileHandle,
    offset: number,
    limit: number,
    maxRecords: number,
    maxBytes: number,
    indexIntervalBytes: number,
    out: RecordSink,
    mayRebuild: boolean,
  ): Promise<SegmentRead> {
    const index = this.index!;
    const i = index.floor(offset - this.baseOffset);
    let pos = i >= 0 ? index.position(i) : 0;
    let expected = i >= 0 ? this.baseOffset + index.relOffset(i) : this.baseOffset;
    let bytes = 0;
    let next = offset;
    // Consecutive small reads (followers asking for one record at a time) reuse the last chunk read.
    const cached = this.lastChunk;
    const chunkBytes = Math.max(maxBytes, 64 * 1024) + indexIntervalBytes;
    // A chunk goes no further than the batches holding the records still wanted (up to the first indexed batch past
    // them), so a big read of fewer records than maxBytes holds checks and decodes only those before it returns; at
    // least MIN_BOUNDED_CHUNK, so small reads still read ahead for the ones after them. Measured: the rules' first
    // 50,000-record read of 16 MiB took 19-34 ms for a chunk of 94,000 records, 8-15 ms for one of the 50,000.
    const wantedEnd = this.positionFrom(offset + (maxRecords - out.count), limit);
    const chunkAt = (p: number, atLeast = 0): number => Math.min(limit - p, Math.max(atLeast, Math.min(chunkBytes, Math.max(MIN_BOUNDED_CHUNK, wantedEnd - p))));
    let chunk: Buffer;
    let chunkPos: number;
    if (cached !== null && pos >= cached.pos && pos + BATCH_HEADER_BYTES <= cached.pos + cached.buf.length && cached.pos + cached.buf.length <= limit) {
      chunk = cached.buf;
      chunkPos = cached.pos;
    } else {
      chunk = await this.loadChunk(fh, pos, chunkAt(pos), out);
      chunkPos = pos;
    }
    let first = true;
    while (pos < limit && out.count < maxRecords && (bytes < maxBytes || bytes === 0)) {
      let at = pos - chunkPos;
      let header: BatchHeader | null = null;
      let problem: string | null = null;
      if (at + BATCH_HEADER_BYTES > chunk.length) {
        if (bytes > 0) break;
        chunk = await this.loadChunk(fh, pos, chunkAt(pos), out);
        chunkPos = pos;
        at = 0;
      }
      if (chunk.length - at < BATCH_HEADER_BYTES) problem = 'batch header runs past the end of the segment';
      else {
        try {
          header = readBatchHeader(chunk, at);
        } catch (err) {
          problem = (err as Error).message;
        }
      }
      if (header !== null && header.baseOffset !== expected) {
        if (first && mayRebuild && i >= 0) {
          // The index entry points at the wrong place: the index is damaged, not the log.
          await this.rebuildIndexes(indexIntervalBytes);
          return this.readFrom(fh, offset, limit, maxRecords, maxBytes, indexIntervalBytes, out, false);
        }
        problem = `batch base offset ${header.baseOffset}, expected ${expected}`;
      }
      if (header !== null && problem === null) {
        if (pos + header.totalBytes > limit) problem = 'batch runs past the end of the segment';
        else if (at + header.totalBytes > chunk.length) {
          if (bytes > 0) break;
          // a chunk as long as any other of this read (or the batch, when longer), not the straddling batch alone: the
          // next read goes on in it
          chunk = await this.loadChunk(fh, pos, chunkAt(pos, header.totalBytes), out);
          chunkPos = pos;
          at = 0;
        }
        if (problem === null) {
          // A batch of the cached chunk is CRC-checked once, not on every small read.
          const cache = this.lastChunk !== null && this.lastChunk.buf === chunk ? this.lastChunk.crcChecked : null;
          if (cache === null || !cache.has(pos)) {
            // checked on the worker (a mismatch is checked again here, which says so)
            const d = cache === null ? undefined : this.lastChunk!.decoded;
            const k = d?.at.get(at);
            if (!(k !== undefined && d!.chunk.meta[k * 4 + 1] === 1) && !batchCrcOk(chunk, at, header)) problem = `batch CRC mismatch at offset ${expected}`;
            else cache?.add(pos);
          }
        }
      }
      if (problem !== null || header === null) {
        const corrupt = new LogError('LOG_CORRUPT', `${this.logPath} position ${pos}: ${problem}`, {
          topic: this.ctx.topic,
          partition: this.ctx.partition,
          file: this.logPath,
          position: pos,
          offset: expected,
          nextValidOffset: await this.nextValidOffset(fh, pos, limit),
        });
        return { nextOffset: next, bytes, corrupt };
      }
      first = false;
      const end = header.baseOffset + header.recordCount;
      if (end > offset) {
        try {
          const cache = this.lastChunk !== null && this.lastChunk.buf === chunk ? this.lastChunk : null;
          const d = cache?.decoded;
          const k = d?.at.get(at);
          // the worker's positions when it decoded the whole batch; else decoded here (which says what is wrong)
          const pre = k !== undefined && d!.chunk.meta[k * 4 + 3] === header.recordCount ? { chunk: d!.chunk, batch: k } : undefined;
          const cursor = out.take(chunk, at, header, offset, maxRecords, cache?.cursor, pre);
          if (cache !== null) cache.cursor = cursor;
        } catch (err) {
          const msg = err instanceof BatchFormatError ? err.message : String(err);
          const corrupt = new LogError('LOG_CORRUPT', `${this.logPath} position ${pos}: ${msg}`, {
            topic: this.ctx.topic,
            partition: this.ctx.partition,
            file: this.logPath,
            position: pos,
            offset: expected,
            nextValidOffset: await this.nextValidOffset(fh, pos, limit),
          });
          return { nextOffset: next, bytes, corrupt };
        }
        next = out.count > 0 ? out.nextOffset : next;
        bytes += header.totalBytes;
      }
      expected = end;
      pos += header.totalBytes;
    }
    return { nextOffset: next, bytes, corrupt: null };
  }

  /** Where the first indexed batch at or past `offset` starts; `limit` when none is indexed. */
  private positionFrom(offset: number, limit: number): number {
    const index = this.index!;
    const rel = offset - this.baseOffset;
    let j = index.floor(rel);
    if (j < 0 || index.relOffset(j) < rel) j++;
    return j < index.count ? index.position(j) : limit;
  }

  /** The first offset past damage at `badPos` where a valid batch starts: the next index entry that checks out, else the segment's end. */
  private async nextValidOffset(fh: LogFileHandle, badPos: number, limit: number): Promise<number> {
    const index = this.index!;
    for (let i = 0; i < index.count; i++) {
      const pos = index.position(i);
      if (pos <= badPos) continue;
      const off = this.baseOffset + index.relOffset(i);
      if (await this.batchAtIs(fh, pos, off, limit)) return off;
    }
    return this.nextOffset;
  }

  /** The first offset in this segment whose record timestamp is >= ts, or null. */
  async offsetForTimestamp(ts: number, limit: number, indexIntervalBytes: number): Promise<number | null> {
    if (this.maxTimestamp < ts) return null;
    await this.ensureIndexes(indexIntervalBytes);
    const fh = await this.openReader();
    try {
      const time = this.timeIndex!;
      const j = time.lastBefore(ts);
      let startRel = j >= 0 ? time.relOffset(j) : 0;
      if (startRel >= this.nextOffset - this.baseOffset) return null;
      const index = this.index!;
      const i = index.floor(startRel);
      let pos = i >= 0 ? index.position(i) : 0;
      startRel = i >= 0 ? index.relOffset(i) : 0;
      while (pos < limit) {
        const head = await readFully(fh, this.logPath, BATCH_HEADER_BYTES, pos);
        if (head.length < BATCH_HEADER_BYTES) break;
        let header: BatchHeader;
        try {
          header = readBatchHeader(head, 0);
        } catch (err) {
          throw new LogError('LOG_CORRUPT', `${this.logPath} position ${pos}: ${(err as Error).message}`, {
            topic: this.ctx.topic,
            partition: this.ctx.partition,
            file: this.logPath,
            position: pos,
            nextValidOffset: await this.nextValidOffset(fh, pos, limit),
          });
        }
        if (header.maxTimestamp >= ts) {
          const whole = await readFully(fh, this.logPath, header.totalBytes, pos);
          if (whole.length < header.totalBytes || !batchCrcOk(whole, 0, header)) {
            throw new LogError('LOG_CORRUPT', `${this.logPath} position ${pos}: batch CRC mismatch`, {
              topic: this.ctx.topic,
              partition: this.ctx.partition,
              file: this.logPath,
              position: pos,
              nextValidOffset: await this.nextValidOffset(fh, pos, limit),
            });
          }
          const stamps = recordTimestamps(whole, 0, header);
          for (let r = 0; r < stamps.length; r++) if (stamps[r]! >= ts) return header.baseOffset + r;
        }
        pos += header.totalBytes;
      }
      return null;
    } finally {
      this.releaseReader();
    }
  }

  /** Checks every batch of the segment (CRC, framing, offsets) and every index entry. Never repairs. */
  async verify(isLast: boolean): Promise<{ batches: number; records: number; problems: Array<{ file: string; position: number; message: string }> }> {
    const problems: Array<{ file: string; position: number; message: string }> = [];
    const fh = await this.openReader();
    try {
      const positions = new Map<number, number>();
      /** relative offset of a batch → largest timestamp of the records before it. */
      const maxBefore = new Map<number, number>();
      let running = NO_TIMESTAMP;
      const scan = await scanLog(fh, this.logPath, this.size, 0, this.baseOffset, NO_TIMESTAMP, ({ position, header, buf, at }) => {
        positions.set(header.baseOffset - this.baseOffset, position);
        maxBefore.set(header.baseOffset - this.baseOffset, running);
        if (header.maxTimestamp > running) running = header.maxTimestamp;
        try {
          decodeRecords(buf, at, header, this.ctx.topic, this.ctx.partition, Number.MAX_SAFE_INTEGER, [], 0);
          recordTimestamps(buf, at, header);
        } catch (err) {
          problems.push({ file: this.logPath, position, message: `malformed record: ${(err as Error).message}` });
        }
      });
      if (scan.problem) problems.push({ file: this.logPath, position: scan.problem.position, message: scan.problem.message });
      else if (scan.nextOffset !== this.nextOffset)
        problems.push({ file: this.logPath, position: scan.validBytes, message: `segment ends at offset ${scan.nextOffset}, expected ${this.nextOffset}` });
      // The last segment has no final time-index entry; when this store writes it, its indexes are in memory.
      const active = this.logWriter !== null;
      const idxBuf = active ? this.index!.bytes() : await readOptional(this.ctx.fs, this.indexPath);
      if (idxBuf === null) problems.push({ file: this.indexPath, position: 0, message: 'index file missing' });
      else {
        if (idxBuf.length % OFFSET_INDEX_ENTRY_BYTES !== 0) problems.push({ file: this.indexPath, position: idxBuf.length, message: 'index has a partial entry' });
        const idx = new OffsetIndex(idxBuf);
        for (let i = 0; i < idx.count; i++) {
          const rel = idx.relOffset(i);
          const pos = idx.position(i);
          // A read-only view of a log another process appends to: its index may already run past our snapshot.
          if (isLast && pos >= this.size) break;
          // Past log damage the sequential scan knows nothing: check the entry's batch directly.
          const ok = pos < scan.validBytes ? positions.get(rel) === pos : await this.batchAtIs(fh, pos, this.baseOffset + rel, this.size, false);
          if (!ok) {
            problems.push({ file: this.indexPath, position: i * OFFSET_INDEX_ENTRY_BYTES, message: `entry ${rel} → ${pos} does not point at that batch` });
            break;
          }
        }
      }
      const timeBuf = active ? this.timeIndex!.bytes() : await readOptional(this.ctx.fs, this.timeIndexPath);
      if (timeBuf === null) problems.push({ file: this.timeIndexPath, position: 0, message: 'time index file missing' });
      else if (scan.problem === null) {
        if (timeBuf.length % TIME_INDEX_ENTRY_BYTES !== 0) problems.push({ file: this.timeIndexPath, position: timeBuf.length, message: 'time index has a partial entry' });
        const time = new TimeIndex(timeBuf);
        const count = this.nextOffset - this.baseOffset;
        for (let i = 0; i < time.count; i++) {
          const rel = time.relOffset(i);
          if (isLast && rel >= count) break;
          const expected = rel === count ? scan.maxTimestamp : maxBefore.get(rel);
          if (expected !== time.timestamp(i)) {
            problems.push({ file: this.timeIndexPath, position: i * TIME_INDEX_ENTRY_BYTES, message: `entry ${time.timestamp(i)} → ${rel} does not match the log` });
            break;
          }
        }
        if (!isLast && (time.count === 0 || time.relOffset(time.count - 1) !== count))
          problems.push({ file: this.timeIndexPath, position: timeBuf.length, message: 'closed segment lacks its final time index entry' });
      }
      return { batches: scan.batches, records: scan.records, problems };
    } finally {
      this.releaseReader();
    }
  }

  /** Deletes the segment's files (retention). Readers holding it finish; new reads get LOG_OUT_OF_RANGE. */
  async delete(): Promise<void> {
    this.deleted = true;
    await this.closeWriters();
    if (this.readers === 0) await this.closeReader();
    const { fs } = this.ctx;
    for (const path of [this.logPath, this.indexPath, this.timeIndexPath]) {
      try {
        await fs.unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw this.ioError(err, 'delete', path);
      }
    }
  }

  async close(): Promise<void> {
    await this.closeWriters();
    await this.closeReader();
  }
}

async function readOptional(fs: LogFileSystem, path: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromFsError(err, 'read', { file: path });
  }
}

async function statSize(fs: LogFileSystem, path: string): Promise<number | null> {
  try {
    return (await fs.stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromFsError(err, 'stat', { file: path });
  }
}

async function rewrite(fh: LogFileHandle, bytes: Buffer): Promise<void> {
  await fh.truncate(0);
  let done = 0;
  while (done < bytes.length) {
    const n = await fh.write(bytes, done, bytes.length - done, done);
    if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += n;
  }
}

async function writeWhole(fs: LogFileSystem, path: string, bytes: Buffer): Promise<void> {
  const fh = await fs.open(path, 'create');
  try {
    await rewrite(fh, bytes);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
