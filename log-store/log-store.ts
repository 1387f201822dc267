/**
 * The log store: topics of partitions of segments in one data directory.
 *
 * Layout of the data directory:
 *   .lock                 owner's pid (see lock-file.ts)
 *   topics.json           topics and their settings (see topic-config.ts)
 *   consumers/<name>.json committed positions (see consumer-positions.ts)
 *   <topic>-<n>/          one folder per partition: <20-digit base offset>.log/.index/.timeindex
 *
 * Invariants: `endOffset` only moves forward and every record below it is
 * durable (with fsync 'always'); offsets are dense per partition; records of
 * one `appendBatch` keep their order within each partition.
 */
import { LogError, isLogError } from './errors.ts';
import { nodeFileSystem, type LogFileSystem } from './file-system.ts';
import { FileConsumerPositions } from './consumer-positions.ts';
import { BufferPool } from './buffer-pool.ts';
import { ChunkPool } from './chunk-pool.ts';
import { DiskGuard } from './disk-guard.ts';
import { acquireLock, type HeldLock } from './lock-file.ts';
import { Completion, Partition, type PartitionDeps } from './partition.ts';
import { kafkaPartition } from './partitioner.ts';
import { BatchBuilder, BatchFormatError, encodeBatch, type EncodedBatch } from './record-batch.ts';
import { readTopicsFile, resolveTopicConfig, validateName, writeTopicsFile } from './topic-config.ts';
import type {
  AppendAck,
  BatchAck,
  Clock,
  ConsumerPositions,
  FollowOptions,
  LogRecord,
  LogStoreApi,
  LogStoreOptions,
  Logger,
  ReadOptions,
  ReadResult,
  BatchReadResult,
  RecordBatchBuilder,
  RecordBlock,
  RecordInput,
  RecoveryReport,
  RetentionReport,
  Timers,
  TopicConfig,
  TopicDescription,
  TopicInfo,
  VerifyReport,
} from './types.ts';

const DEFAULT_MIN_FREE_BYTES = 67_108_864;
const DEFAULT_RETENTION_CHECK_MS = 60_000;
const DEFAULT_DISK_CHECK_MS = 1000;
const DEFAULT_MAX_RECORDS = 1000;
const DEFAULT_MAX_BYTES = 1_048_576;
/** Keys → partition cached per topic (sensor ids are a bounded set); cleared when it grows past this. */
const KEY_CACHE_MAX = 65_536;

const silentLogger: Logger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} });
const systemClock: Clock = Object.freeze({ now: () => Date.now() });
const systemTimers: Timers = Object.freeze({
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimeout: (h: unknown): void => clearTimeout(h as ReturnType<typeof setTimeout>),
});

interface TopicState {
  name: string;
  config: Readonly<TopicConfig>;
  partitions: Partition[];
  roundRobin: number;
  keyCache: Map<string, number>;
}

/** Opens (creating if needed) a data directory, takes its lock, recovers every partition. */
export async function openLogStore(options: LogStoreOptions): Promise<LogStoreApi> {
  if (typeof options?.dataDir !== 'string' || options.dataDir === '')
    throw new LogError('LOG_INVALID_ARGUMENT', 'dataDir must be a non-empty path', {});
  const store = new LogStore(options);
  await store.open();
  return store;
}

class LogStore implements LogStoreApi {
  readonly dataDir: string;
  readonly recovery: RecoveryReport[] = [];
  private readonly fs: LogFileSystem;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly readOnly: boolean;
  private readonly decodeOffloadBytes: number;
  private readonly topicDefaults: Partial<TopicConfig>;
  private readonly retentionCheckIntervalMs: number;
  private readonly disk: DiskGuard;
  private readonly pool = new BufferPool();
  private readonly chunks: ChunkPool;
  private readonly topicMap = new Map<string, TopicState>();
  private readonly consumers = new Map<string, Promise<ConsumerPositions>>();
  private lock: HeldLock | null = null;
  private metaChain: Promise<unknown> = Promise.resolve();
  private retentionTimer: unknown = null;
  private retentionRun: Promise<RetentionReport> | null = null;
  private closing: Promise<void> | null = null;

  constructor(options: LogStoreOptions) {
    this.dataDir = options.dataDir.replace(/\/+$/, '') || '/';
    this.fs = options.fs ?? nodeFileSystem;
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.chunks = new ChunkPool({ timers: this.timers });
    this.logger = options.logger ?? silentLogger;
    this.readOnly = options.readOnly ?? false;
    this.decodeOffloadBytes = options.decodeOffloadBytes ?? 1 << 20;
    this.topicDefaults = resolveTopicConfig(options.topicDefaults ?? {});
    this.retentionCheckIntervalMs = options.retentionCheckIntervalMs ?? DEFAULT_RETENTION_CHECK_MS;
    const minFree = options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
    this.disk = new DiskGuard(this.fs, this.dataDir, this.readOnly ? 0 : minFree, options.diskCheckIntervalMs ?? DEFAULT_DISK_CHECK_MS, this.clock);
  }

  async open(): Promise<void> {
    try {
      if (!this.readOnly) {
        await this.fs.mkdir(this.dataDir).catch((err: unknown) => {
          throw new LogError('LOG_IO', `create data directory ${this.dataDir}: ${(err as Error).message}`, { file: this.dataDir }, err);
        });
        this.lock = await acquireLock(this.fs, this.dataDir, process.pid);
      }
      const topics = await readTopicsFile(this.fs, this.dataDir);
      for (const [name, config] of topics) await this.openTopic(name, config);
    } catch (err) {
      await this.closePartitions();
      this.chunks.close();
      await this.lock?.release();
      throw err;
    }
    this.scheduleRetention();
  }

  private deps(): PartitionDeps {
    return { fs: this.fs, clock: this.clock, timers: this.timers, logger: this.logger, readOnly: this.readOnly, pool: this.pool, decodeOffloadBytes: this.decodeOffloadBytes, chunks: this.chunks };
  }

  private async openTopic(name: string, config: Readonly<TopicConfig>): Promise<TopicState> {
    const state: TopicState = { name, config, partitions: [], roundRobin: 0, keyCache: new Map() };
    this.topicMap.set(name, state);
    for (let p = 0; p < config.partitions; p++) {
      state.partitions.push(await Partition.open(this.dataDir, name, p, config, this.deps(), this.recovery));
    }
    return state;
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new LogError('LOG_CLOSED', `log store ${this.dataDir} is closed`, { file: this.dataDir });
  }

  private checkWritable(): void {
    if (this.readOnly) throw new LogError('LOG_INVALID_ARGUMENT', `log store ${this.dataDir} was opened readOnly`, { file: this.dataDir });
  }

  private topicState(topic: string): TopicState {
    this.checkOpen();
    const t = this.topicMap.get(topic);
    if (!t) throw new LogError('LOG_TOPIC_NOT_FOUND', `topic ${JSON.stringify(topic)} does not exist in ${this.dataDir}`, { topic });
    return t;
  }

  private partitionOf(topic: string, partition: number): Partition {
    const t = this.topicState(topic);
    const p = Number.isInteger(partition) ? t.partitions[partition] : undefined;
    if (!p) throw new LogError('LOG_INVALID_ARGUMENT', `topic ${topic} has no partition ${partition} (it has ${t.partitions.length})`, { topic, partition });
    return p;
  }

  /** Serializes topic-metadata changes (create, ensure). */
  private meta<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.metaChain.then(fn);
    this.metaChain = run.catch(() => {});
    return run;
  }

  createTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicInfo> {
    return this.meta(async () => {
      this.checkOpen();
      validateName('topic', name);
      const resolved = resolveTopicConfig(config, this.topicDefaults);
      const existing = this.topicMap.get(name);
      if (existing) {
        if (existing.config.partitions !== resolved.partitions)
          throw new LogError('LOG_TOPIC_EXISTS', `topic ${name} exists with ${existing.config.partitions} partitions, not ${resolved.partitions}`, { topic: name });
        return { name, config: existing.config };
      }
      this.checkWritable();
      await this.openTopic(name, resolved);
      await this.saveTopics();
      this.logger.info({ topic: name, partitions: resolved.partitions }, 'created topic');
      return { name, config: resolved };
    });
  }

  ensureTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicInfo> {
    return this.meta(async () => {
      this.checkOpen();
      validateName('topic', name);
      const existing = this.topicMap.get(name);
      if (!existing) {
        this.checkWritable();
        const resolved = resolveTopicConfig(config, this.topicDefaults);
        await this.openTopic(name, resolved);
        await this.saveTopics();
        this.logger.info({ topic: name, partitions: resolved.partitions }, 'created topic');
        return { name, config: resolved };
      }
      if (config.partitions !== undefined && config.partitions !== existing.config.partitions)
        throw new LogError('LOG_TOPIC_EXISTS', `topic ${name} exists with ${existing.config.partitions} partitions, not ${config.partitions}`, { topic: name });
      const updated = resolveTopicConfig(config, existing.config);
      const changed = (Object.keys(updated) as Array<keyof TopicConfig>).some((k) => updated[k] !== existing.config[k]);
      if (changed) {
        this.checkWritable();
        const previous = existing.config;
        existing.config = updated;
        try {
          await this.saveTopics();
        } catch (err) {
          existing.config = previous;
          throw err;
        }
        for (const p of existing.partitions) p.setConfig(updated);
      }
      return { name, config: existing.config };
    });
  }

  private async saveTopics(): Promise<void> {
    const m = new Map<string, Readonly<TopicConfig>>();
    for (const [name, t] of this.topicMap) m.set(name, t.config);
    try {
      await writeTopicsFile(this.fs, this.dataDir, m);
    } catch (err) {
      if (isLogError(err)) throw err;
      throw new LogError('LOG_IO', `write ${this.dataDir}/topics.json: ${(err as Error).message}`, { file: `${this.dataDir}/topics.json` }, err);
    }
  }

  hasTopic(name: string): boolean {
    return this.topicMap.has(name);
  }

  topics(): TopicInfo[] {
    this.checkOpen();
    return [...this.topicMap.values()].map((t) => ({ name: t.name, config: t.config }));
  }

  describe(topic: string): TopicDescription {
    const t = this.topicState(topic);
    return {
      name: t.name,
      config: t.config,
      partitionsInfo: t.partitions.map((p) => ({
        partition: p.partition,
        earliestOffset: p.earliestOffset,
        endOffset: p.endOffset,
        bytes: p.bytes,
        segments: p.segmentCount,
      })),
    };
  }

  partitionFor(topic: string, key: string | null): number {
    return this.pickPartition(this.topicState(topic), key, undefined, 0);
  }

  private pickPartition(t: TopicState, key: string | null | undefined, explicit: number | undefined, index: number): number {
    const n = t.config.partitions;
    if (explicit !== undefined) {
      if (!Number.isInteger(explicit) || explicit < 0 || explicit >= n)
        throw new LogError('LOG_INVALID_ARGUMENT', `record ${index}: topic ${t.name} has no partition ${explicit}`, { topic: t.name, partition: explicit });
      return explicit;
    }
    if (key === null || key === undefined) {
      const p = t.roundRobin % n;
      t.roundRobin = (t.roundRobin + 1) % n;
      return p;
    }
    if (typeof key !== 'string') throw new LogError('LOG_INVALID_ARGUMENT', `record ${index}: key must be a string or null`, { topic: t.name });
    if (n === 1) return 0;
    let p = t.keyCache.get(key);
    if (p === undefined) {
      p = kafkaPartition(key, n);
      if (t.keyCache.size >= KEY_CACHE_MAX) t.keyCache.clear();
      t.keyCache.set(key, p);
    }
    return p;
  }

  async append(topic: string, record: RecordInput): Promise<AppendAck> {
    const ack = await this.appendBatch(topic, [record]);
    const part = ack.partitions[0]!;
    return { partition: part.partition, offset: part.baseOffset };
  }

  async appendBatch(topic: string, records: readonly RecordInput[]): Promise<BatchAck> {
    const t = this.topicState(topic);
    this.checkWritable();
    if (!Array.isArray(records)) throw new LogError('LOG_INVALID_ARGUMENT', 'appendBatch takes an array of records', { topic });
    if (records.length === 0) return { count: 0, partitions: [] };
    // Route: partition of each record; one encoded batch per partition, in order of first appearance.
    const order: number[] = [];
    const groups: Array<number[] | undefined> = [];
    let single = -1;
    let mixed = false;
    const n = t.config.partitions;
    const routes = n === 1 ? null : new Int32Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      if (r === null || typeof r !== 'object') throw new LogError('LOG_INVALID_ARGUMENT', `record ${i}: not an object`, { topic });
      if (routes === null) {
        // One partition: nothing to route; only an explicit partition other than 0 is wrong.
        if (r.partition !== undefined && r.partition !== 0) this.pickPartition(t, r.key, r.partition, i);
        continue;
      }
      const key = r.key;
      // Fast path for the common case, a keyed record: the cached partition of the key.
      const p = (r.partition === undefined && typeof key === 'string' ? t.keyCache.get(key) : undefined) ?? this.pickPartition(t, key, r.partition, i);
      routes[i] = p;
      if (i === 0) single = p;
      else if (p !== single) mixed = true;
    }
    if (routes === null) single = 0;
    const now = this.clock.now();
    const encoded: Array<{ partition: Partition; batch: EncodedBatch }> = [];
    try {
      if (!mixed) {
        encoded.push({ partition: t.partitions[single]!, batch: encodeBatch(records, null, now, this.pool) });
      } else {
        for (let i = 0; i < records.length; i++) {
          const p = routes![i]!;
          let g = groups[p];
          if (!g) {
            groups[p] = g = [];
            order.push(p);
          }
          g.push(i);
        }
        for (const p of order) encoded.push({ partition: t.partitions[p]!, batch: encodeBatch(records, groups[p]!, now, this.pool) });
      }
    } catch (err) {
      if (err instanceof BatchFormatError) throw new LogError('LOG_INVALID_ARGUMENT', err.message, { topic }, err);
      throw err;
    }
    return this.enqueue(topic, encoded, records.length);
  }

  batchBuilder(): RecordBatchBuilder {
    return new BatchBuilder(this.pool, 64 * 1024, (err) => new LogError('LOG_INVALID_ARGUMENT', err.message, {}, err));
  }

  async appendBuilt(topic: string, partition: number, builder: RecordBatchBuilder): Promise<BatchAck> {
    // the builder's records are taken before anything can fail or wait: it is empty once this returns
    if (!(builder instanceof BatchBuilder)) throw new LogError('LOG_INVALID_ARGUMENT', 'appendBuilt takes a builder from batchBuilder()', { topic });
    const count = builder.count;
    const batch = count === 0 ? null : builder.take();
    const t = this.topicState(topic);
    this.checkWritable();
    const part = Number.isInteger(partition) ? t.partitions[partition] : undefined;
    if (part === undefined) throw new LogError('LOG_INVALID_ARGUMENT', `topic ${t.name} has no partition ${partition}`, { topic: t.name, partition });
    if (batch === null) return { count: 0, partitions: [] };
    return this.enqueue(topic, [{ partition: part, batch }], count);
  }

  /** Queues encoded batches for their partitions' next group commit; resolves once every one is durable. */
  private async enqueue(topic: string, encoded: ReadonlyArray<{ partition: Partition; batch: EncodedBatch }>, count: number): Promise<BatchAck> {
    let totalBytes = 0;
    for (const e of encoded) totalBytes += e.batch.buf.length;
    if (this.disk.needsRefresh(totalBytes)) await this.disk.refresh();
    this.checkOpen();
    for (const e of encoded) e.partition.checkUsable();
    this.disk.admit(totalBytes, { topic });
    const completion = new Completion(encoded.length);
    const ack: BatchAck = { count, partitions: [] };
    for (const e of encoded) {
      const baseOffset = e.partition.enqueue(e.batch, completion);
      ack.partitions.push({ partition: e.partition.partition, baseOffset, count: e.batch.recordCount });
    }
    await completion.promise;
    return ack;
  }

  async read(topic: string, partition: number, offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    const p = this.partitionOf(topic, partition);
    return p.read(offset, options.maxRecords ?? DEFAULT_MAX_RECORDS, options.maxBytes ?? DEFAULT_MAX_BYTES);
  }

  async readBatches(topic: string, partition: number, offset: number, options: ReadOptions = {}): Promise<BatchReadResult> {
    const p = this.partitionOf(topic, partition);
    return p.readBatches(offset, options.maxRecords ?? DEFAULT_MAX_RECORDS, options.maxBytes ?? DEFAULT_MAX_BYTES, options.handBack === true);
  }

  releaseBlocks(blocks: readonly RecordBlock[]): void {
    for (const block of blocks) this.chunks.release(block);
  }

  async offsetForTimestamp(topic: string, partition: number, timestamp: number): Promise<number> {
    const p = this.partitionOf(topic, partition);
    if (typeof timestamp !== 'number' || Number.isNaN(timestamp)) throw new LogError('LOG_INVALID_ARGUMENT', `timestamp must be a number of ms, got ${timestamp}`, { topic, partition });
    return p.offsetForTimestamp(timestamp);
  }

  /**
   * Follows a partition from `offset`: yields arrays of records as they
   * become durable, waits on an in-process notifier (no disk polling) at the
   * end. Returns when the signal aborts or the store closes.
   */
  async *follow(topic: string, partition: number, offset: number, options: FollowOptions = {}): AsyncGenerator<LogRecord[], void, undefined> {
    const p = this.partitionOf(topic, partition);
    const { signal } = options;
    const maxRecords = options.maxRecords ?? DEFAULT_MAX_RECORDS;
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    let next = offset;
    while (!signal?.aborted && !p.isClosed) {
      if (next < p.endOffset) {
        let r: ReadResult;
        try {
          r = await p.read(next, maxRecords, maxBytes);
        } catch (err) {
          // The store closed under a read in flight: the iteration ends, as documented.
          if (p.isClosed || signal?.aborted) return;
          throw err;
        }
        if (r.records.length > 0) {
          next = r.nextOffset;
          yield r.records;
          continue;
        }
      } else if (next > p.endOffset) {
        // Validates the offset (throws LOG_OUT_OF_RANGE).
        await p.read(next, 1, 1);
      }
      await p.waitForData(next, signal);
    }
  }

  earliestOffset(topic: string, partition: number): number {
    return this.partitionOf(topic, partition).earliestOffset;
  }

  endOffset(topic: string, partition: number): number {
    return this.partitionOf(topic, partition).endOffset;
  }

  consumer(name: string): Promise<ConsumerPositions> {
    this.checkOpen();
    let c = this.consumers.get(name);
    if (!c) {
      c = FileConsumerPositions.open(this.fs, this.dataDir, name, this.readOnly, () => this.checkOpen());
      this.consumers.set(name, c);
      c.catch(() => this.consumers.delete(name));
    }
    return c;
  }

  enforceRetention(): Promise<RetentionReport> {
    this.checkOpen();
    return this.runRetention();
  }

  private runRetention(): Promise<RetentionReport> {
    if (this.retentionRun) return this.retentionRun;
    this.retentionRun = (async () => {
      const report: RetentionReport = { deletedSegments: [] };
      const now = this.clock.now();
      for (const t of this.topicMap.values()) {
        for (const p of t.partitions) {
          for (const d of await p.enforceRetention(now)) report.deletedSegments.push({ topic: t.name, partition: p.partition, ...d });
        }
      }
      return report;
    })().finally(() => {
      this.retentionRun = null;
    });
    return this.retentionRun;
  }

  private scheduleRetention(): void {
    if (this.readOnly || this.retentionCheckIntervalMs <= 0 || this.closing !== null) return;
    this.retentionTimer = this.timers.setTimeout(() => {
      this.retentionTimer = null;
      if (this.closing !== null) return;
      this.runRetention()
        .catch((err: unknown) => this.logger.error({ err: String(err), code: (err as LogError).code }, 'retention check failed'))
        .finally(() => this.scheduleRetention());
    }, this.retentionCheckIntervalMs);
    (this.retentionTimer as { unref?: () => void } | null)?.unref?.();
  }

  async verify(): Promise<VerifyReport> {
    this.checkOpen();
    const report: VerifyReport = { segments: 0, batches: 0, records: 0, problems: [] };
    for (const t of this.topicMap.values()) {
      for (const p of t.partitions) {
        const r = await p.verify();
        report.segments += r.segments;
        report.batches += r.batches;
        report.records += r.records;
        report.problems.push(...r.problems);
      }
    }
    return report;
  }

  async flush(): Promise<void> {
    this.checkOpen();
    for (const t of this.topicMap.values()) for (const p of t.partitions) await p.flush();
  }

  private async closePartitions(): Promise<void> {
    for (const t of this.topicMap.values()) for (const p of t.partitions) await p.close();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.retentionTimer !== null) this.timers.clearTimeout(this.retentionTimer);
      this.retentionTimer = null;
      await this.retentionRun?.catch(() => {});
      await this.metaChain;
      await this.closePartitions();
      this.chunks.close();
      await this.lock?.release();
      this.lock = null;
    })();
    return this.closing;
  }
}
