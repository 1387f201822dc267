/**
 * A partition: a folder `<topic>-<n>/` of segments, the last one active.
 *
 * Appends and group commit: `enqueue` assigns offsets and seals the encoded
 * batch synchronously (so file order = offset order = call order), then
 * queues it. One flush at a time takes every queued batch, writes them with
 * one `writev` and one `fdatasync`, then resolves them all. Appends that
 * arrive during a flush share the next one. With `flushIntervalMs` > 0 the
 * flush waits up to that long to gather more, unless `flushBytes` are queued.
 *
 * Failure (tidwall/wal habit): if a write fails, the file is truncated back
 * to the last durable byte and every queued append is rejected; the
 * partition goes on. If that truncate fails, or an fdatasync fails (the
 * kernel may have dropped dirty pages: the file's state is unknown), the
 * partition refuses every call with LOG_FAILED until the store is reopened,
 * when recovery re-checks the tail.
 */
import { LogError, fromFsError, isLogError } from './errors.ts';
import { writeFully, type LogFileSystem } from './file-system.ts';
import type { BufferPool } from './buffer-pool.ts';
import type { ChunkPool } from './chunk-pool.ts';
import { sealBatch, type EncodedBatch } from './record-batch.ts';
import type { ScanProblem } from './log-scan.ts';
import { NO_TIMESTAMP, Segment, parseSegmentFile, type SegmentContext } from './segment.ts';
import { RecordBlockSink, RecordListSink, type RecordSink } from './record-block.ts';
import type { BatchReadResult, Clock, Logger, ReadResult, RecoveryReport, Timers, TopicConfig, VerifyProblem } from './types.ts';

/** Settles one appendBatch call across the partitions it touched: one promise per call. */
export class Completion {
  private remaining: number;
  private settled = false;
  readonly promise: Promise<void>;
  private resolveFn!: () => void;
  private rejectFn!: (err: unknown) => void;
  constructor(parts: number) {
    this.remaining = parts;
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
  }
  done(): void {
    if (--this.remaining === 0 && !this.settled) {
      this.settled = true;
      this.resolveFn();
    }
  }
  fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectFn(err);
  }
}

interface Pending {
  buf: Buffer;
  backing: Buffer;
  baseOffset: number;
  recordCount: number;
  maxTimestamp: number;
  completion: Completion;
}

export interface PartitionDeps {
  fs: LogFileSystem;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  readOnly: boolean;
  /** Encode buffers go back here once written. */
  pool: BufferPool;
  /** See LogStoreOptions.decodeOffloadBytes. */
  decodeOffloadBytes: number;
  /** The store's read buffers (see ChunkPool). */
  chunks: ChunkPool;
}

/** Closed segments per partition that keep a read handle open. */
const OPEN_CLOSED_READERS = 4;

export class Partition {
  readonly dir: string;
  private segments: Segment[] = [];
  /** Next offset to assign (>= endOffset while appends are queued). */
  private assignOffset = 0;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  /** A write (or a roll) is in flight. */
  private writing = false;
  /** An fdatasync is in flight. */
  private syncing = false;
  /** Batches written to the active `.log` but not yet durable (fsync 'always'). */
  private written: Array<Pending & { position: number; segment: Segment }> = [];
  /** Bytes in the active `.log`, durable or only written. */
  private writtenSize = 0;
  /** A pump is queued as a microtask (appends of the same tick join one write). */
  private pumpQueued = false;
  /** flushIntervalMs elapsed (or was 0, or flushBytes reached): the writer may take the queue. */
  private flushDue = false;
  private flushTimer: unknown = null;
  private indexWrites: Promise<void> = Promise.resolve();
  private failure: LogError | null = null;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  /** Followers waiting for new records: woken after each group commit, and on close. */
  private waiters = new Set<() => void>();
  /** Closed segments with an open read handle, most recently read first. */
  private recentReaders: Segment[] = [];

  private constructor(
    readonly topic: string,
    readonly partition: number,
    private config: Readonly<TopicConfig>,
    private readonly deps: PartitionDeps,
    private readonly ctx: SegmentContext,
  ) {
    this.dir = ctx.dir;
  }

  /** Opens (creating if needed) a partition folder and recovers its active segment. */
  static async open(
    dataDir: string,
    topic: string,
    partition: number,
    config: Readonly<TopicConfig>,
    deps: PartitionDeps,
    reports: RecoveryReport[],
  ): Promise<Partition> {
    const dir = `${dataDir}/${topic}-${partition}`;
    const ctx: SegmentContext = { fs: deps.fs, dir, topic, partition, readOnly: deps.readOnly, decodeOffloadBytes: deps.decodeOffloadBytes, chunks: deps.chunks };
    const p = new Partition(topic, partition, config, deps, ctx);
    const { fs, logger } = deps;
    let names: string[];
    try {
      if (!deps.readOnly) await fs.mkdir(dir);
      names = await fs.readdir(dir);
    } catch (err) {
      if (deps.readOnly && (err as NodeJS.ErrnoException).code === 'ENOENT') names = [];
      else throw fromFsError(err, 'open partition', { topic, partition, file: dir });
    }
    const logs: number[] = [];
    const indexFiles: Array<{ name: string; base: number }> = [];
    for (const name of names) {
      const parsed = parseSegmentFile(name);
      if (parsed === null) continue;
      if (parsed.kind === 'log') logs.push(parsed.baseOffset);
      else indexFiles.push({ name, base: parsed.baseOffset });
    }
    logs.sort((a, b) => a - b);
    // Index files whose .log is gone (retention interrupted by a crash) are removed.
    const logSet = new Set(logs);
    if (!deps.readOnly) {
      for (const f of indexFiles) if (!logSet.has(f.base)) await fs.unlink(`${dir}/${f.name}`).catch(() => {});
    }
    const now = deps.clock.now();
    if (logs.length === 0) {
      if (deps.readOnly) {
        // Nothing on disk: an empty view.
        const seg = new Segment(ctx, 0);
        p.segments.push(seg);
        return p;
      }
      const seg = await Segment.create(ctx, 0, now);
      await fs.fsyncDir(dir).catch((err: unknown) => {
        throw fromFsError(err, 'fsync', { topic, partition, file: dir });
      });
      p.segments.push(seg);
      return p;
    }
    const report = (segment: string, bytesTruncated: number, indexesRebuilt: string[], problem: ScanProblem | null): void => {
      if (bytesTruncated === 0 && indexesRebuilt.length === 0 && problem === null) return;
      const problems: VerifyProblem[] = problem ? [{ topic, partition, file: segment, position: problem.position, message: problem.message }] : [];
      reports.push({ topic, partition, segment, bytesTruncated, indexesRebuilt, problems });
    };
    for (let i = 0; i < logs.length - 1; i++) {
      const { segment, indexesRebuilt, problem } = await Segment.openClosed(ctx, logs[i]!, logs[i + 1]!, config.indexIntervalBytes);
      if (problem) logger.error({ topic, partition, file: segment.logPath, position: problem.position, problem: problem.message }, 'corrupt batch in a closed segment; readers of that range get LOG_CORRUPT');
      if (indexesRebuilt.length) logger.warn({ topic, partition, files: indexesRebuilt }, 'rebuilt missing or damaged indexes');
      report(segment.logPath, 0, indexesRebuilt, problem);
      segment.releaseReadHandle();
      p.segments.push(segment);
    }
    const { segment, bytesTruncated, indexesRebuilt, problem } = await Segment.recoverActive(ctx, logs[logs.length - 1]!, config.indexIntervalBytes, now);
    if (bytesTruncated > 0)
      logger.warn({ topic, partition, file: segment.logPath, bytesTruncated, position: segment.size, problem: problem?.message }, 'recovery truncated a torn or corrupt tail');
    if (indexesRebuilt.length) logger.warn({ topic, partition, files: indexesRebuilt }, 'rebuilt missing or damaged indexes');
    report(segment.logPath, bytesTruncated, indexesRebuilt, bytesTruncated > 0 ? problem : null);
    p.segments.push(segment);
    p.assignOffset = segment.nextOffset;
    p.writtenSize = segment.size;
    return p;
  }

  get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  get earliestOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** Next offset to be made durable: every record below it is durable. */
  get endOffset(): number {
    return this.active.nextOffset;
  }

  get bytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.size;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  setConfig(config: Readonly<TopicConfig>): void {
    this.config = config;
  }

  /** Throws when the partition cannot take calls. */
  checkUsable(): void {
    if (this.closed) throw new LogError('LOG_CLOSED', `partition ${this.topic}-${this.partition} is closed`, { topic: this.topic, partition: this.partition });
    if (this.failure)
      throw new LogError(
        'LOG_FAILED',
        `partition ${this.topic}-${this.partition} failed (${this.failure.message}); reopen the store to recover`,
        { topic: this.topic, partition: this.partition },
        this.failure,
      );
  }

  /**
   * Assigns offsets to an encoded batch, seals it and queues it for the next
   * group commit. Synchronous up to the queueing, so call order is offset order.
   */
  enqueue(batch: EncodedBatch, completion: Completion): number {
    this.checkUsable();
    if (this.deps.readOnly) throw new LogError('LOG_INVALID_ARGUMENT', 'the store was opened readOnly', { topic: this.topic, partition: this.partition });
    const baseOffset = this.assignOffset;
    sealBatch(batch.buf, baseOffset);
    this.assignOffset += batch.recordCount;
    this.queue.push({ buf: batch.buf, backing: batch.backing, baseOffset, recordCount: batch.recordCount, maxTimestamp: batch.maxTimestamp, completion });
    this.queuedBytes += batch.buf.length;
    this.scheduleFlush();
    // flushBytes waiting and the disk idle: start writing now, while the caller goes on encoding.
    if (this.queuedBytes >= this.config.flushBytes && !this.writing) this.pump();
    return baseOffset;
  }

  /**
   * Group commit as a two-stage pipeline: the writer takes every queued
   * batch and writes it with one writev; the syncer fdatasyncs and then
   * acknowledges every batch written before that fdatasync started. A write
   * may run while the previous fdatasync is in flight (the page-cache copy
   * overlaps the disk flush); acknowledgements still only follow an
   * fdatasync that began after the batch's write completed.
   */
  private scheduleFlush(): void {
    const { flushIntervalMs, flushBytes } = this.config;
    if (flushIntervalMs <= 0 || this.queuedBytes >= flushBytes) {
      this.flushDue = true;
      if (this.flushTimer !== null) {
        this.deps.timers.clearTimeout(this.flushTimer);
        this.flushTimer = null;
      }
    } else if (!this.flushDue && this.flushTimer === null) {
      this.flushTimer = this.deps.timers.setTimeout(() => {
        this.flushTimer = null;
        this.flushDue = true;
        this.pump();
      }, flushIntervalMs);
    }
    if (!this.pumpQueued) {
      // process.nextTick runs once the microtask queue is empty: every append that callers make in
      // reaction to the last acknowledgements (awaiting resolved promises) joins this write.
      this.pumpQueued = true;
      process.nextTick(() => {
        this.pumpQueued = false;
        this.pump();
      });
    }
  }

  /** Starts whatever stage can run now. */
  private pump(): void {
    if (this.failure !== null) return this.settleIdle();
    if (!this.writing && this.queue.length > 0 && this.flushDue) {
      if (this.needsRoll(this.active, this.queue[0]!.buf.length, this.deps.clock.now())) {
        // A roll waits until everything written is durable.
        if (this.written.length === 0 && !this.syncing) void this.rollThenPump();
      } else void this.writeQueued();
    }
    if (!this.syncing && this.written.length > 0) void this.syncWritten();
    this.settleIdle();
  }

  private settleIdle(): void {
    const idle = !this.writing && !this.syncing && this.written.length === 0 && (this.queue.length === 0 || this.failure !== null);
    if (!idle || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async rollThenPump(): Promise<void> {
    this.writing = true;
    try {
      await this.roll(this.queue[0]!.baseOffset);
      this.writtenSize = 0;
    } catch (err) {
      this.fail(fromFsError(err, 'roll segment', { topic: this.topic, partition: this.partition, file: this.dir }));
    } finally {
      this.writing = false;
    }
    this.pump();
  }

  /** Writer stage: one writev of every queued batch that fits in the active segment. */
  private async writeQueued(): Promise<void> {
    const seg = this.active;
    let n = 0;
    let total = 0;
    while (n < this.queue.length) {
      const len = this.queue[n]!.buf.length;
      if (n > 0 && this.writtenSize + total + len > this.config.segmentBytes) break;
      total += len;
      n++;
    }
    const group = this.queue.splice(0, n);
    this.queuedBytes -= total;
    if (this.config.flushIntervalMs > 0 && this.queuedBytes < this.config.flushBytes) this.flushDue = false;
    const position = this.writtenSize;
    this.writing = true;
    try {
      await writeFully(seg.logWriter!, group.map((g) => g.buf), position, total);
      this.writtenSize = position + total;
      let pos = position;
      for (const g of group) {
        this.written.push({ ...g, position: pos, segment: seg });
        pos += g.buf.length;
      }
      if (this.config.fsync === 'never') this.completeWritten(this.written.length);
    } catch (err) {
      const error = fromFsError(err, 'append to', { topic: this.topic, partition: this.partition, file: seg.logPath, position });
      // Cut the partial write so the file ends at the last batch written whole; the partition then goes on.
      try {
        await seg.logWriter!.truncate(position);
        this.rejectQueued(group, error);
      } catch (truncErr) {
        this.deps.logger.error({ topic: this.topic, partition: this.partition, file: seg.logPath, err: String(truncErr) }, 'truncate after a failed write failed');
        this.fail(error, group);
      }
    } finally {
      this.writing = false;
      // Written (or failed): the kernel holds the bytes now; only lengths are used from here on.
      for (const g of group) this.deps.pool.give(g.backing);
    }
    if (this.queue.length > 0 && !this.flushDue) this.scheduleFlush();
    this.pump();
  }

  /** Syncer stage: one fdatasync, then every batch written before it started is durable. */
  private async syncWritten(): Promise<void> {
    const count = this.written.length;
    const seg = this.written[0]!.segment;
    this.syncing = true;
    try {
      await seg.logWriter!.datasync();
    } catch (err) {
      this.syncing = false;
      this.fail(fromFsError(err, 'fdatasync', { topic: this.topic, partition: this.partition, file: seg.logPath }));
      return;
    }
    this.syncing = false;
    this.completeWritten(count);
    this.pump();
  }

  /** The first `count` written batches are durable: make them readable and resolve their appends. */
  private completeWritten(count: number): void {
    const done = this.written.splice(0, count);
    if (done.length === 0) return;
    const at = this.deps.clock.now();
    const seg = done[0]!.segment;
    for (const g of done) g.segment.appended(g.position, g.baseOffset, g.recordCount, g.buf.length, g.maxTimestamp, this.config.indexIntervalBytes, at);
    for (const g of done) g.completion.done();
    this.indexWrites = this.indexWrites.then(() =>
      seg.writeNewIndexEntries().catch((err: unknown) => {
        this.deps.logger.warn({ topic: this.topic, partition: this.partition, file: seg.indexPath, err: String(err) }, 'index write failed; it is rebuilt on next open');
      }),
    );
    this.wakeFollowers();
  }

  private needsRoll(seg: Segment, extraBytes: number, now: number): boolean {
    if (this.writtenSize === 0) return false;
    // Age counts from the first durable record; a segment with only written records is not rolled by age yet.
    return this.writtenSize + extraBytes > this.config.segmentBytes || (!seg.isEmpty && now - seg.createdAtMs >= this.config.segmentMs);
  }

  private wakeFollowers(): void {
    if (this.waiters.size === 0) return;
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const w of woken) w();
  }

  /** A write failed: rejects its group and everything queued after it (their offsets assumed the group). Written batches stay. */
  private rejectQueued(group: Pending[], error: LogError): void {
    const rest = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    const last = this.written[this.written.length - 1];
    this.assignOffset = last ? last.baseOffset + last.recordCount : this.active.nextOffset;
    for (const g of group) g.completion.fail(error);
    for (const g of rest) g.completion.fail(error);
  }

  /** Unrecoverable: rejects everything not yet durable and refuses every later call. */
  private fail(error: LogError, group: Pending[] = []): void {
    this.failure = error;
    this.deps.logger.error({ topic: this.topic, partition: this.partition, code: error.code, err: error.message }, 'partition failed; every call is refused until the store is reopened');
    const pending = [...this.written, ...group, ...this.queue];
    this.written = [];
    this.queue = [];
    this.queuedBytes = 0;
    for (const g of pending) g.completion.fail(error);
    this.wakeFollowers();
    this.settleIdle();
  }

  private async roll(baseOffset: number): Promise<void> {
    const old = this.active;
    await this.indexWrites;
    await old.seal();
    const seg = await Segment.create(this.ctx, baseOffset, this.deps.clock.now());
    await this.deps.fs.fsyncDir(this.dir);
    this.segments.push(seg);
    this.deps.logger.info({ topic: this.topic, partition: this.partition, segment: seg.name }, 'rolled segment');
  }

  /** Waits until every queued append is durable (or failed). */
  async flush(): Promise<void> {
    if (this.queue.length > 0 && !this.flushDue) {
      if (this.flushTimer !== null) this.deps.timers.clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.flushDue = true;
    }
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.pump();
    });
    await this.indexWrites;
  }

  private segmentFor(offset: number): Segment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid]!.baseOffset <= offset) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo]!;
  }

  private outOfRange(offset: number): LogError {
    return new LogError('LOG_OUT_OF_RANGE', `offset ${offset} is outside ${this.topic}-${this.partition} [${this.earliestOffset}, ${this.endOffset}]`, {
      topic: this.topic,
      partition: this.partition,
      offset,
      earliestOffset: this.earliestOffset,
      endOffset: this.endOffset,
    });
  }

  async read(offset: number, maxRecords: number, maxBytes: number): Promise<ReadResult> {
    const sink = new RecordListSink(this.topic, this.partition, this.deps.chunks);
    const nextOffset = await this.readInto(sink, offset, maxRecords, maxBytes);
    return { records: sink.records, nextOffset };
  }

  /** `read` without an object per record (see RecordBlock). */
  async readBatches(offset: number, maxRecords: number, maxBytes: number, handBack = false): Promise<BatchReadResult> {
    const sink = new RecordBlockSink(this.topic, this.partition, Math.max(0, Math.min(maxRecords, this.endOffset - offset)), this.deps.chunks, handBack);
    const nextOffset = await this.readInto(sink, offset, maxRecords, maxBytes);
    return { blocks: sink.finish(), count: sink.count, nextOffset };
  }

  /** Reads into `sink`; returns the next offset to read. */
  private async readInto(sink: RecordSink, offset: number, maxRecords: number, maxBytes: number): Promise<number> {
    try {
      return await this.readInner(sink, offset, maxRecords, maxBytes);
    } catch (err) {
      // Closed under a read in flight: say so, not whatever the closed file handle said.
      if (this.closed && !isLogError(err, 'LOG_CLOSED')) this.checkUsable();
      throw err;
    }
  }

  private async readInner(sink: RecordSink, offset: number, maxRecords: number, maxBytes: number): Promise<number> {
    this.checkUsable();
    if (!Number.isSafeInteger(offset) || offset < this.earliestOffset || offset > this.endOffset) throw this.outOfRange(offset);
    if (offset === this.endOffset || maxRecords <= 0) return offset;
    let next = offset;
    let bytes = 0;
    while (next < this.endOffset && sink.count < maxRecords && bytes < maxBytes) {
      const seg = this.segmentFor(next);
      if (seg !== this.active) this.touchClosedReader(seg);
      const r = await seg.readRecords(next, seg.size, maxRecords, maxBytes - bytes, this.config.indexIntervalBytes, sink);
      if (r.corrupt) {
        if (sink.count === 0) throw r.corrupt;
        break;
      }
      if (r.nextOffset === next) {
        if (sink.count > 0) break;
        // The segment holds fewer records than the next one's base offset says: never skip them silently.
        throw new LogError('LOG_CORRUPT', `${seg.logPath} ends before offset ${next}`, {
          topic: this.topic,
          partition: this.partition,
          file: seg.logPath,
          position: seg.size,
          offset: next,
          nextValidOffset: seg === this.active ? this.endOffset : seg.nextOffset,
        });
      }
      bytes += r.bytes;
      next = r.nextOffset;
    }
    // caught up: the read buffers kept for a reader going through the log go soon (see ChunkPool)
    if (next >= this.endOffset) this.deps.chunks.caughtUp();
    return sink.count > 0 ? sink.nextOffset : offset;
  }

  /** Keeps at most OPEN_CLOSED_READERS closed segments open for reading (least recently read closed first), so replaying a long history does not run out of file descriptors. */
  private touchClosedReader(seg: Segment): void {
    const i = this.recentReaders.indexOf(seg);
    if (i === 0) return;
    if (i > 0) this.recentReaders.splice(i, 1);
    this.recentReaders.unshift(seg);
    while (this.recentReaders.length > OPEN_CLOSED_READERS) this.recentReaders.pop()!.releaseReadHandle();
  }

  async offsetForTimestamp(ts: number): Promise<number> {
    this.checkUsable();
    for (const seg of this.segments) {
      if (seg.maxTimestamp === NO_TIMESTAMP || seg.maxTimestamp < ts) continue;
      if (seg !== this.active) this.touchClosedReader(seg);
      const found = await seg.offsetForTimestamp(ts, seg.size, this.config.indexIntervalBytes);
      if (found !== null) return found;
    }
    return this.endOffset;
  }

  /** Waits until records at or past `offset` are readable, the signal aborts or the partition closes. */
  waitForData(offset: number, signal?: AbortSignal): Promise<void> {
    const waiters = this.waiters;
    if (this.endOffset > offset || this.closed || this.failure || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        waiters.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      waiters.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Deletes closed segments past retention, oldest first. */
  async enforceRetention(now: number): Promise<Array<{ file: string; reason: 'age' | 'size'; bytes: number; lastOffset: number }>> {
    const deleted: Array<{ file: string; reason: 'age' | 'size'; bytes: number; lastOffset: number }> = [];
    if (this.closed || this.failure || this.deps.readOnly) return deleted;
    const { retentionMs, retentionBytes } = this.config;
    let total = this.bytes;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      let reason: 'age' | 'size' | null = null;
      if (retentionMs >= 0 && oldest.maxTimestamp !== NO_TIMESTAMP && oldest.maxTimestamp < now - retentionMs) reason = 'age';
      else if (retentionBytes >= 0 && total > retentionBytes) reason = 'size';
      if (reason === null) break;
      this.segments.shift();
      this.recentReaders = this.recentReaders.filter((s) => s !== oldest);
      total -= oldest.size;
      await oldest.delete();
      deleted.push({ file: oldest.logPath, reason, bytes: oldest.size, lastOffset: oldest.nextOffset - 1 });
      this.deps.logger.info({ topic: this.topic, partition: this.partition, file: oldest.logPath, reason, bytes: oldest.size }, 'retention deleted segment');
    }
    return deleted;
  }

  async verify(): Promise<{ segments: number; batches: number; records: number; problems: VerifyProblem[] }> {
    const out = { segments: 0, batches: 0, records: 0, problems: [] as VerifyProblem[] };
    const segments = [...this.segments];
    for (const seg of segments) {
      const r = await seg.verify(seg === segments[segments.length - 1]);
      if (seg !== this.active && !this.recentReaders.includes(seg)) seg.releaseReadHandle();
      out.segments++;
      out.batches += r.batches;
      out.records += r.records;
      for (const p of r.problems) out.problems.push({ topic: this.topic, partition: this.partition, ...p });
    }
    return out;
  }

  /** Flushes what is queued, writes indexes, closes files. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.failure === null) await this.flush().catch(() => {});
    this.closed = true;
    this.wakeFollowers();
    if (this.flushTimer !== null) this.deps.timers.clearTimeout(this.flushTimer);
    await this.indexWrites;
    for (const seg of this.segments) {
      if (seg.logWriter && this.failure === null) {
        try {
          await seg.writeNewIndexEntries();
          await seg.logWriter.datasync();
        } catch (err) {
          this.deps.logger.warn({ topic: this.topic, partition: this.partition, err: String(err) }, 'final sync on close failed');
        }
      }
      await seg.close();
    }
  }
}
