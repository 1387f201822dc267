/**
 * Public types of the log store. The API is small on purpose: every other
 * module (bridges, rules, replicator, replay) builds on it, so it stays stable.
 *
 * Units: offsets are record positions within a partition (0-based, dense);
 * timestamps are milliseconds since the Unix epoch; sizes are bytes.
 */

/** A record handed to `append` / `appendBatch`. */
export interface RecordInput {
  /** Partitioning key (the sensor id for readings). `null`: records spread round-robin. */
  key: string | null;
  /** The payload. Strings are stored as UTF-8. JSON objects: pass `JSON.stringify(obj)`. */
  value: Uint8Array | string;
  /** Event time in ms. Default: the store's clock at append time. */
  timestamp?: number;
  /** UTF-8 headers (source kind, device, gateway...). Default: none. */
  headers?: Readonly<Record<string, string>>;
  /** Explicit partition; overrides the key. Default: Kafka's default partitioner. */
  partition?: number;
}

/** A stored record as readers see it. */
export interface LogRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  /** The payload bytes. May share memory with the read buffer: copy it to keep it past the next read. */
  value: Buffer;
  headers: Record<string, string>;
}

/** Acknowledgement of a durable single-record append. */
export interface AppendAck {
  partition: number;
  offset: number;
}

/** Acknowledgement of `appendBatch`: one entry per partition the batch touched, in order of first appearance. */
export interface BatchAck {
  /** Total records stored. */
  count: number;
  partitions: Array<{ partition: number; baseOffset: number; count: number }>;
}

/**
 * Per-topic settings. Every option names its unit; the default is stated
 * beside it and applied by `resolveTopicConfig`.
 */
export interface TopicConfig {
  /** Number of partitions, fixed at creation. Default 1. */
  partitions: number;
  /** Delete closed segments whose newest record is older than this. Default 604800000 (7 days); -1 keeps forever. */
  retentionMs: number;
  /** Delete the oldest closed segments while a partition holds more than this. Default -1 (no size limit). */
  retentionBytes: number;
  /** Roll the active segment when it would grow past this. Default 67108864 (64 MiB). */
  segmentBytes: number;
  /** Roll the active segment when its first record was written longer ago than this. Default 604800000 (7 days). */
  segmentMs: number;
  /** Group commit: wait at most this long to gather appends into one fsync. Default 0 (flush as soon as the disk is free; appends arriving during an fsync share the next one). */
  flushIntervalMs: number;
  /** Group commit: flush at once when this many bytes are waiting. Default 1048576 (1 MiB). */
  flushBytes: number;
  /** `'always'`: an append resolves only after fdatasync. `'never'`: resolves after write(); for bulk tools only, a crash can lose acknowledged records. Default 'always'. */
  fsync: 'always' | 'never';
  /** Add a sparse index entry every this many bytes of log. Default 4096. */
  indexIntervalBytes: number;
}

export interface TopicInfo {
  name: string;
  config: Readonly<TopicConfig>;
}

export interface PartitionDescription {
  partition: number;
  earliestOffset: number;
  /** Next offset to be written; records below it are durable (or written, with fsync 'never'). */
  endOffset: number;
  bytes: number;
  segments: number;
}

export interface TopicDescription extends TopicInfo {
  partitionsInfo: PartitionDescription[];
}

export interface ReadOptions {
  /** Stop after this many records. Default 1000. */
  maxRecords?: number;
  /** Stop after roughly this many bytes of batches (at least one batch is returned). Default 1048576. */
  maxBytes?: number;
  /**
   * `readBatches` only: the caller hands the blocks back (`releaseBlocks`)
   * once done, so the read buffers this read makes may be reused. Default
   * false: the store keeps no account of them at all.
   */
  handBack?: boolean;
}

export interface ReadResult {
  records: LogRecord[];
  /** Offset to read next: one past the last record returned (or the start offset when nothing was returned). */
  nextOffset: number;
}

/**
 * Records of `readBatches`, without an object per record: the log bytes as
 * read (each batch CRC-checked, as for `read`) and, per record, where its
 * parts lie in `buf`. Record i (0 ≤ i < count) has offset `baseOffset + i`
 * (offsets are dense within a block), timestamp `timestamps[i]`, key bytes
 * `buf[keyStarts[i], keyEnds[i])` (UTF-8; `keyStarts[i] === -1`: null key),
 * value bytes `buf[valueStarts[i], valueEnds[i])`, and headers encoded at
 * `headerStarts[i]` (see the README's record format; `blockHeaders` decodes
 * them). `blockRecord(block, i)` builds the `LogRecord` that `read` returns.
 *
 * `buf` is a read buffer the store never writes to again: positions stay
 * valid as long as the block is held (holding it keeps the whole buffer,
 * up to about `maxBytes` + 64 KiB, alive). Do not write into it.
 */
export interface RecordBlock {
  readonly topic: string;
  readonly partition: number;
  readonly buf: Buffer;
  /** Records in the block (≥ 1); the typed arrays may be longer: only [0, count) is meaningful. */
  readonly count: number;
  /** Offset of record 0. */
  readonly baseOffset: number;
  /** Timestamps in ms. */
  readonly timestamps: Float64Array;
  readonly keyStarts: Int32Array;
  readonly keyEnds: Int32Array;
  readonly valueStarts: Int32Array;
  readonly valueEnds: Int32Array;
  readonly headerStarts: Int32Array;
}

export interface BatchReadResult {
  /** In offset order; consecutive blocks continue each other's offsets. Empty when nothing was read. */
  blocks: RecordBlock[];
  /** Records in all blocks. */
  count: number;
  /** Offset to read next: one past the last record returned (or the start offset when nothing was returned). */
  nextOffset: number;
}

export interface FollowOptions extends ReadOptions {
  /** Ends the iteration (the iterator returns, it does not throw). */
  signal?: AbortSignal;
}

/** Minimal pino-compatible logger: structured fields first, message second. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface Clock {
  /** Wall-clock time in ms since the epoch. */
  now(): number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RecoveryReport {
  topic: string;
  partition: number;
  segment: string;
  /** Bytes cut from the end of the active segment (torn or corrupt tail). */
  bytesTruncated: number;
  /** Index files that were missing or damaged and were rebuilt. */
  indexesRebuilt: string[];
  /** Damage found: the torn or corrupt batch that was cut (active segment), or a corrupt batch in a closed segment (kept; readers of that range get LOG_CORRUPT). */
  problems: VerifyProblem[];
}

export interface VerifyProblem {
  topic: string;
  partition: number;
  file: string;
  position: number;
  message: string;
}

export interface VerifyReport {
  segments: number;
  batches: number;
  records: number;
  problems: VerifyProblem[];
}

export interface RetentionReport {
  deletedSegments: Array<{ topic: string; partition: number; file: string; reason: 'age' | 'size'; bytes: number; lastOffset: number }>;
}

/**
 * One partition's batch, encoded as records are added: for writers that
 * make many records one at a time (rules' output), with no array and no
 * object per record. From `LogStoreApi.batchBuilder`, appended with
 * `appendBuilt` (which leaves it empty for the next batch). Records are
 * checked as they are added: a malformed one throws LOG_INVALID_ARGUMENT
 * and is not added.
 */
export interface RecordBatchBuilder {
  /** Records added since the last `appendBuilt` or `clear`. */
  readonly count: number;
  /** Adds one record: what a RecordInput holds, with `timestamp` (integer ms) required. */
  add(timestamp: number, key: string | null, value: string | Uint8Array, headers?: Readonly<Record<string, string>> | null): void;
  /**
   * Adds one record whose key is bytes `[keyStart, keyEnd)` of `src`
   * (keyStart < 0: a null key) and whose value is bytes `[valueStart, valueEnd)`
   * of `src`: a record passed through from a read block, copied now.
   */
  addBytes(timestamp: number, src: Uint8Array, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, headers?: Readonly<Record<string, string>> | null): void;
  /** Drops the records added. */
  clear(): void;
}

/** Durable committed positions of one named consumer. */
export interface ConsumerPositions {
  readonly name: string;
  /** The committed position (next offset to read) or undefined when never committed. */
  get(topic: string, partition: number): number | undefined;
  /** Every committed position of this consumer: topic → partition → offset. */
  all(): Record<string, Record<number, number>>;
  /** Atomically commits several positions (temp file + fsync + rename): all or none survive a crash. */
  commit(positions: ReadonlyArray<{ topic: string; partition: number; offset: number }>): Promise<void>;
}

/**
 * The log store: topics of partitions of segment files in one data directory.
 * One process owns a data directory at a time (lock file); `readOnly` opens
 * skip the lock and never write.
 */
export interface LogStoreApi {
  readonly dataDir: string;
  /** Creates a topic. Throws LOG_TOPIC_EXISTS if it exists with another partition count; returns it if it exists with the same. */
  createTopic(name: string, config?: Partial<TopicConfig>): Promise<TopicInfo>;
  /** Creates the topic if missing; otherwise checks the partition count and updates the other settings. */
  ensureTopic(name: string, config?: Partial<TopicConfig>): Promise<TopicInfo>;
  hasTopic(name: string): boolean;
  topics(): TopicInfo[];
  describe(topic: string): TopicDescription;
  /** The partition a key maps to (Kafka's default partitioner; null keys round-robin). */
  partitionFor(topic: string, key: string | null): number;
  /** Appends one record; resolves once it is durable (see TopicConfig.fsync). */
  append(topic: string, record: RecordInput): Promise<AppendAck>;
  /**
   * Appends records in order (per partition); one promise for the lot, resolved once all are durable.
   * Atomic per partition, not across partitions: if it rejects, the batches of other partitions may be stored.
   */
  appendBatch(topic: string, records: readonly RecordInput[]): Promise<BatchAck>;
  /** An empty builder of one batch (see RecordBatchBuilder). */
  batchBuilder(): RecordBatchBuilder;
  /**
   * Appends the records of `builder` to `partition` as one batch; resolves
   * once they are durable, as appendBatch does. Takes the records at the
   * call, before anything can fail: the builder is empty once this returns
   * (a promise), ready for the next batch. An empty builder appends nothing.
   */
  appendBuilt(topic: string, partition: number, builder: RecordBatchBuilder): Promise<BatchAck>;
  /** Reads durable records from `offset`. Throws LOG_OUT_OF_RANGE below the earliest offset or above the end. */
  read(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<ReadResult>;
  /**
   * The same records as `read` (same offsets, limits, errors and CRC checks),
   * as raw blocks without an object per record: for consumers that scan
   * values in place (rules). `maxRecords` and `maxBytes` as for `read`.
   */
  readBatches(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<BatchReadResult>;
  /**
   * Hands blocks from `readBatches` with `handBack: true` back once the
   * caller is done with them: the store may then read later records into
   * their memory (a fresh read buffer costs its page faults). After this
   * call nothing may read the blocks, their `buf` or any view of it. A block
   * handed back twice, one read without `handBack`, or one of another store
   * is ignored.
   */
  releaseBlocks(blocks: readonly RecordBlock[]): void;
  /** The first offset whose record timestamp is >= `timestamp`, or the end offset if none. */
  offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number>;
  /** Yields arrays of records from `offset` on, waiting (without polling) for new ones at the end. */
  follow(topic: string, partition: number, offset: number, options?: FollowOptions): AsyncIterableIterator<LogRecord[]>;
  earliestOffset(topic: string, partition: number): number;
  endOffset(topic: string, partition: number): number;
  consumer(name: string): Promise<ConsumerPositions>;
  /** Deletes closed segments past each topic's retention. Also runs on a timer (see LogStoreOptions). */
  enforceRetention(): Promise<RetentionReport>;
  /** Checks every batch's CRC and every index entry; reports, never repairs. */
  verify(): Promise<VerifyReport>;
  /** What recovery on open found and repaired. */
  readonly recovery: readonly RecoveryReport[];
  /** Waits for every pending append to be durable. */
  flush(): Promise<void>;
  /** Flushes, fsyncs, releases the lock. Idempotent. */
  close(): Promise<void>;
}

/**
 * The file-system port: every byte the log store reads or writes goes
 * through it, so tests inject faults (ENOSPC, EIO, short writes). The
 * default is `node:fs/promises` (see `nodeFileSystem`).
 */
export type { LogFileSystem } from './file-system.ts';

/** Options of `openLogStore`. Every option states its default and unit. */
export interface LogStoreOptions {
  /** The data directory; created if missing. Holds `<topic>-<n>/` folders, `topics.json`, the lock file and consumer positions. */
  dataDir: string;
  /** Settings for topics created without explicit ones. Default: the TopicConfig defaults. */
  topicDefaults?: Partial<TopicConfig>;
  /** Appends reject with LOG_DISK_FULL while the data directory's file system has less free space than this. Default 67108864 (64 MiB); 0 disables the check. */
  minFreeBytes?: number;
  /** Open without taking the lock and never write (verify, tail, describe from a second process). Default false. */
  readOnly?: boolean;
  /** Run `enforceRetention` every this many ms. Default 60000; 0 disables the timer. */
  retentionCheckIntervalMs?: number;
  /** The free-space estimate behind minFreeBytes is refreshed with statfs at least this often (ms), and on every append while below the floor. Default 1000. */
  diskCheckIntervalMs?: number;
  /** Default: Date.now. */
  clock?: Clock;
  /** Default: global setTimeout/clearTimeout. */
  timers?: Timers;
  /** Default: a logger that discards everything. */
  logger?: Logger;
  /** Default: node:fs. Tests inject faults here. */
  fs?: import('./file-system.ts').LogFileSystem;
  /**
   * `readBatches` chunks of at least this many bytes are CRC-checked and
   * decoded on a worker thread (decode-worker.ts) while this thread does
   * other work; smaller ones here. Default 1048576 (1 MiB); 0: never.
   */
  decodeOffloadBytes?: number;
}
