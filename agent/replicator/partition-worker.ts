/**
 * Replicates one (local topic, partition): reads from its durable position,
 * produces in order, advances the position only after the cluster
 * acknowledged. One batch is in flight at a time, so order holds; the next
 * batch is read from the log while the current one is being produced, so
 * memory is bounded by two batches (`batchRecords`, `batchBytes`).
 *
 * A batch that failed is sent again unchanged (same records, same grouping),
 * so the idempotent producer's sequence numbers let the broker drop a copy
 * it already stored. MESSAGE_TOO_LARGE halves the batch until one record is
 * left; that record goes to the local dead-letter topic with the reason.
 */
import { isLogError } from '../../log-store/index.ts';
import type { LogRecord, RecordBlock } from '../../log-store/index.ts';
import { AgentError } from '../errors.ts';
import { BodyBufferPool, encodeProduce, releaseEncoded } from '../kafka-client.ts';
import type { EncodedProduce, KafkaProducer } from '../kafka-client.ts';
import type { KafkaSession } from './kafka-session.ts';
import { backoffMs } from './options.ts';
import type { ResolvedOptions } from './options.ts';
import type { PositionCommitter } from './position-committer.ts';
import type { PartitionState, PartitionStatus, StatusError, TopicStatus } from './status.ts';

/** Headers added to every replicated record. Dedup rule for central consumers: drop a record whose (gateway, topic, partition, offset) ≤ the highest seen for that (gateway, topic, partition). */
export const MILLSTREAM_HEADERS = Object.freeze({
  gateway: 'millstream.gateway',
  topic: 'millstream.topic',
  partition: 'millstream.partition',
  offset: 'millstream.offset',
});

/** Headers added to dead-lettered records and gap markers. */
export const DEAD_LETTER_HEADERS = Object.freeze({
  code: 'millstream.dead-letter.code',
  reason: 'millstream.dead-letter.reason',
  centralTopic: 'millstream.dead-letter.central-topic',
});

/** Bytes asked of the log for the first batch (capped by batchBytes); later reads are sized by what records took. */
const FIRST_READ_BYTES = 1024 * 1024;
/** The least bytes asked of the log for a batch. */
const MIN_READ_BYTES = 64 * 1024;

/** At most this many gaps are listed per partition (all are counted in lostRecords). */
const MAX_GAPS_LISTED = 20;

/** What a worker shares with its topic. */
export interface TopicRuntime {
  readonly topic: string;
  readonly centralTopic: string;
  readonly localPartitions: number;
  readonly status: TopicStatus;
  readonly abort: AbortController;
  centralPartitions: number | undefined;
  /** Stops the topic after a non-retriable error; the other topics go on. */
  stop(error: AgentError): void;
}

export interface WorkerHooks {
  /** Counts acknowledgements: a failure of an attempt started before the latest one is stale. */
  successes(): number;
  /** The cluster acknowledged a request. */
  succeeded(): void;
  /** A Kafka request failed with a retriable error; `successesAtStart` is `successes()` when the attempt began. */
  failed(error: AgentError, successesAtStart: number): void;
}

export function toStatusError(e: AgentError, at: number): StatusError {
  return {
    code: e.code,
    message: e.message,
    retriable: e.retriable,
    ...(typeof e.context.kafkaType === 'string' ? { kafkaType: e.context.kafkaType } : {}),
    at,
  };
}

/**
 * About how many bytes a record of `records` takes in the log: key, value
 * and header strings (of the first record, headers being alike) plus the
 * log's per-record framing, with a quarter to spare (a read asking for too
 * little returns a smaller batch).
 */
export function storedBytesPerRecord(records: readonly LogRecord[]): number {
  let bytes = 0;
  for (const r of records) bytes += r.value.length;
  const r0 = records[0];
  let perRecord = 16 + (r0.key?.length ?? 0);
  for (const k in r0.headers) perRecord += 2 + k.length + r0.headers[k].length;
  return (1.25 * bytes) / records.length + 1.25 * perRecord;
}

/** `storedBytesPerRecord` for blocks of `readBatches`: the span of their records in the read buffer, with a quarter to spare. */
export function storedBytesPerBlockRecord(blocks: readonly RecordBlock[]): number {
  let bytes = 0;
  let count = 0;
  for (const b of blocks) {
    if (b.count === 0) continue;
    // From the first record's value to the last record's value end: keys and headers of all but the last lie in between.
    bytes += b.valueEnds[b.count - 1] - b.valueStarts[0] + 16 * b.count;
    count += b.count;
  }
  return (1.25 * bytes) / Math.max(1, count);
}

/** A batch read from the log and encoded: only the bytes are kept, with where it starts and ends. */
interface PreparedBatch {
  encoded: EncodedProduce;
  /** Local offset of its first record. */
  offset: number;
  /** One past its last record: the position once it is acknowledged. */
  nextOffset: number;
  /** Event time of its first record (lag in seconds). */
  firstTimestamp: number;
}

function asAgentError(err: unknown, code: 'REPL_LOCAL_LOG' | 'KAFKA_OTHER'): AgentError {
  if (err instanceof AgentError) return err;
  return new AgentError(code, (err as Error)?.message ?? String(err), {}, err);
}

export class PartitionWorker {
  /** Event time of the oldest record not yet acknowledged, when known. */
  private oldestUnsent: number | undefined;
  /** Request body buffers: the batch in flight, the one read ahead, and one spare. */
  private readonly bodies = new BodyBufferPool(2);
  /** Stored bytes per record of the last batch read, about (sizes the next read). */
  private bytesPerRecord: number | undefined;
  /** The dedup headers every record of this partition gets (the offset header is added per record). */
  private readonly sourceHeaders: Readonly<Record<string, string>>;

  constructor(
    private readonly opts: Readonly<ResolvedOptions>,
    private readonly rt: TopicRuntime,
    readonly status: PartitionStatus,
    private readonly session: KafkaSession,
    private readonly committer: PositionCommitter,
    private readonly hooks: WorkerHooks,
  ) {
    this.sourceHeaders = Object.freeze({
      [MILLSTREAM_HEADERS.gateway]: opts.gatewayId,
      [MILLSTREAM_HEADERS.topic]: rt.topic,
      [MILLSTREAM_HEADERS.partition]: String(status.partition),
    });
  }

  get topic(): string {
    return this.rt.topic;
  }

  /** Lag in seconds (event time of the oldest unsent record); 0 when caught up. */
  lagSeconds(now: number): number {
    if (this.status.lagRecords === 0 || this.oldestUnsent === undefined) return 0;
    return Math.max(0, (now - this.oldestUnsent) / 1000);
  }

  private setState(state: PartitionState): void {
    if (this.status.state === state) return;
    this.opts.logger.debug({ topic: this.rt.topic, partition: this.status.partition, from: this.status.state, to: state }, 'replicator: partition state');
    this.status.state = state;
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.opts.timers.clearTimeout(handle);
        resolve();
      };
      const handle = this.opts.timers.setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Resolves when a record exists at the position (the log store's follow waits without polling), or on abort. */
  private async waitForData(signal: AbortSignal): Promise<void> {
    const local = new AbortController();
    const combined = AbortSignal.any([signal, local.signal]);
    const it = this.opts.log.follow(this.rt.topic, this.status.partition, this.status.position, { signal: combined, maxRecords: 1, maxBytes: 1 });
    try {
      await it.next();
    } catch (err) {
      if (!isLogError(err, 'LOG_OUT_OF_RANGE') && !signal.aborted) throw err;
    } finally {
      local.abort();
      await it.return?.(undefined).catch(() => undefined);
    }
  }

  /** The record's own headers, then the dedup headers (ours win over same-named own headers). */
  private headersOf(r: LogRecord): Record<string, string> {
    return { ...r.headers, ...this.sourceHeaders, [MILLSTREAM_HEADERS.offset]: String(r.offset) };
  }

  private advance(position: number): void {
    this.status.position = position;
    this.committer.mark(this.rt.topic, this.status.partition, position);
  }

  /** Retention deleted [from, earliest): report it everywhere, then continue from `earliest`. */
  private async reportGap(from: number, earliest: number): Promise<void> {
    const { topic } = this.rt;
    const { partition } = this.status;
    const gap = { fromOffset: from, toOffset: earliest - 1, count: earliest - from, detectedAt: this.opts.clock.now() };
    this.status.gaps.push(gap);
    if (this.status.gaps.length > MAX_GAPS_LISTED) this.status.gaps.shift();
    this.status.lostRecords += gap.count;
    const error = new AgentError('REPL_RETENTION_GAP', `retention deleted ${gap.count} records (offsets ${gap.fromOffset}–${gap.toOffset}) of ${topic}[${partition}] before they were replicated`, { topic, partition, offset: from });
    this.status.lastError = toStatusError(error, gap.detectedAt);
    this.opts.logger.error({ code: error.code, topic, partition, fromOffset: gap.fromOffset, toOffset: gap.toOffset, count: gap.count }, 'replicator: retention deleted records before they were replicated');
    try {
      await this.opts.log.append(this.opts.deadLetterTopic, {
        key: `${topic}-${partition}`,
        value: JSON.stringify({ reason: 'retention-gap', gatewayId: this.opts.gatewayId, topic, partition, ...gap }),
        timestamp: gap.detectedAt,
        headers: { [DEAD_LETTER_HEADERS.code]: error.code, [DEAD_LETTER_HEADERS.reason]: error.message, [DEAD_LETTER_HEADERS.centralTopic]: this.rt.centralTopic },
      });
    } catch (err) {
      this.opts.logger.error({ err, topic, partition }, 'replicator: could not write the retention-gap marker to the dead-letter topic');
    }
    this.advance(earliest);
  }

  private async deadLetter(r: LogRecord, e: AgentError): Promise<void> {
    await this.opts.log.append(this.opts.deadLetterTopic, {
      key: r.key,
      value: r.value,
      timestamp: r.timestamp,
      headers: {
        ...this.headersOf(r),
        [DEAD_LETTER_HEADERS.code]: e.code,
        [DEAD_LETTER_HEADERS.reason]: e.message,
        [DEAD_LETTER_HEADERS.centralTopic]: this.rt.centralTopic,
      },
    });
    this.status.deadLettered++;
    this.opts.logger.warn({ code: e.code, topic: this.rt.topic, partition: r.partition, offset: r.offset, deadLetterTopic: this.opts.deadLetterTopic }, 'replicator: record refused by the cluster, moved to the dead-letter topic');
  }

  /**
   * Reads up to `maxRecords` from `offset` and encodes them at once (nothing
   * of the read is kept). To the same partition number centrally, the log's
   * raw blocks are transcoded byte for byte (`readBatches`, no object per
   * record); when the central partitioner decides, records are read as
   * objects (their keys are hashed). Undefined: nothing to read there.
   */
  private async readBatch(offset: number, maxRecords: number): Promise<PreparedBatch | undefined> {
    // The log store reads about maxBytes from disk per call: ask for about what this many records took last time, not more.
    const maxBytes = Math.min(this.opts.batchBytes, this.bytesPerRecord === undefined ? FIRST_READ_BYTES : Math.max(MIN_READ_BYTES, Math.ceil(this.bytesPerRecord * maxRecords)));
    const request = {
      topic: this.rt.centralTopic,
      addHeaders: this.sourceHeaders,
      offsetHeader: MILLSTREAM_HEADERS.offset,
      compression: this.opts.compression,
      timeoutMs: this.opts.kafka.requestTimeoutMs,
    };
    if (this.rt.centralPartitions === this.rt.localPartitions) {
      const { blocks, count, nextOffset } = await this.opts.log.readBatches(this.rt.topic, this.status.partition, offset, { maxRecords, maxBytes });
      if (count === 0) return undefined;
      this.bytesPerRecord = storedBytesPerBlockRecord(blocks);
      const encoded = await encodeProduce({ ...request, partition: this.status.partition, blocks }, this.bodies);
      return { encoded, offset, nextOffset, firstTimestamp: blocks[0].timestamps[0] };
    }
    const { records } = await this.opts.log.read(this.rt.topic, this.status.partition, offset, { maxRecords, maxBytes });
    if (records.length === 0) return undefined;
    this.bytesPerRecord = storedBytesPerRecord(records);
    const encoded = await encodeProduce({ ...request, partitionCount: this.rt.centralPartitions, records }, this.bodies);
    const last = records[records.length - 1];
    return { encoded, offset, nextOffset: last.offset + 1, firstTimestamp: records[0].timestamp };
  }

  /** Connects and learns the central partition count (encoding depends on it). */
  private async target(): Promise<KafkaProducer> {
    const producer = await this.session.get();
    this.rt.centralPartitions ??= await producer.partitionCount(this.rt.centralTopic);
    this.rt.status.centralPartitions = this.rt.centralPartitions;
    return producer;
  }

  async run(stopSignal: AbortSignal): Promise<void> {
    const { log, batchRecords } = this.opts;
    const { topic } = this.rt;
    const st = this.status;
    const signal = AbortSignal.any([stopSignal, this.rt.abort.signal]);
    /** The batch being sent (encoded); undefined when the next one must be read. */
    let pending: PreparedBatch | undefined;
    /** The batch after `pending`, read and encoded while `pending` is produced; used only if the position reaches `offset`. */
    let readAhead: { offset: number; batch: Promise<PreparedBatch | undefined> } | undefined;
    /** Records per batch: `batchRecords`, halved while the cluster answers MESSAGE_TOO_LARGE. */
    let sendCount = batchRecords;
    let attempt = 0;
    const backoff = async (e: AgentError): Promise<void> => {
      st.lastError = toStatusError(e, this.opts.clock.now());
      this.setState('backoff');
      await this.sleep(backoffMs(attempt++, this.opts.backoffInitialMs, this.opts.backoffMaxMs, this.opts.random), signal);
    };
    /** A Kafka error: stops the topic (non-retriable) or backs off. Returns false when the worker must stop. */
    const kafkaFailed = async (e: AgentError, producer: KafkaProducer | undefined, successesAtStart: number): Promise<boolean> => {
      if (!e.retriable) {
        st.lastError = toStatusError(e, this.opts.clock.now());
        this.rt.stop(e);
        return false;
      }
      this.hooks.failed(e, successesAtStart);
      if (e.code === 'KAFKA_PRODUCER_STATE' && producer) await this.session.reset(producer, e);
      await backoff(e);
      return true;
    };

    while (!signal.aborted) {
      if (pending === undefined) {
        let producer: KafkaProducer | undefined;
        const successesAtStart = this.hooks.successes();
        try {
          const earliest = log.earliestOffset(topic, st.partition);
          st.endOffset = log.endOffset(topic, st.partition);
          if (st.position < earliest) {
            await this.reportGap(st.position, earliest);
            continue;
          }
          if (st.position >= st.endOffset) {
            this.oldestUnsent = undefined;
            st.lagRecords = 0;
            this.setState('caught-up');
            await this.waitForData(signal);
            if (this.opts.lingerMs > 0) await this.sleep(this.opts.lingerMs, signal);
            continue;
          }
          this.setState('sending');
          if (this.rt.centralPartitions === undefined) producer = await this.target();
        } catch (err) {
          if (err instanceof AgentError && err.code.startsWith('KAFKA_')) {
            if (await kafkaFailed(err, producer, successesAtStart)) continue;
            break;
          }
          if (isLogError(err, 'LOG_OUT_OF_RANGE')) continue; // retention moved the start: the loop reports the gap
          await backoff(asAgentError(err, 'REPL_LOCAL_LOG'));
          continue;
        }
        try {
          const ahead = readAhead?.offset === st.position && sendCount === batchRecords ? await readAhead.batch : undefined;
          if (readAhead !== undefined && ahead === undefined) void readAhead.batch.then((b) => b && releaseEncoded(b.encoded, this.bodies));
          readAhead = undefined;
          pending = ahead ?? (await this.readBatch(st.position, sendCount));
          if (pending === undefined) throw new AgentError('REPL_LOCAL_LOG', `read at ${st.position} returned no records below end offset ${st.endOffset}`, { topic, partition: st.partition });
          this.oldestUnsent = pending.firstTimestamp;
        } catch (err) {
          if (isLogError(err, 'LOG_OUT_OF_RANGE')) continue;
          await backoff(asAgentError(err, 'REPL_LOCAL_LOG'));
          continue;
        }
      }

      const batch = pending;
      if (readAhead === undefined && sendCount === batchRecords && batch.nextOffset < log.endOffset(topic, st.partition)) {
        // A failed read-ahead is dropped; the normal read path then reports (or backs off on) the error.
        readAhead = { offset: batch.nextOffset, batch: this.readBatch(batch.nextOffset, batchRecords).catch(() => undefined) };
      }
      let producer: KafkaProducer | undefined;
      const successesAtStart = this.hooks.successes();
      try {
        producer = await this.target();
        await producer.send(batch.encoded);
      } catch (err) {
        const e = asAgentError(err, 'KAFKA_OTHER');
        if (e.code === 'KAFKA_MESSAGE_TOO_LARGE') {
          releaseEncoded(batch.encoded, this.bodies);
          pending = undefined;
          if (batch.encoded.recordCount > 1) {
            sendCount = Math.ceil(batch.encoded.recordCount / 2);
            continue;
          }
          try {
            const { records } = await log.read(topic, st.partition, batch.offset, { maxRecords: 1 });
            if (records[0]?.offset !== batch.offset) throw new AgentError('REPL_LOCAL_LOG', `record ${batch.offset} is no longer in the log`, { topic, partition: st.partition, offset: batch.offset });
            await this.deadLetter(records[0], e);
          } catch (dlqErr) {
            this.rt.stop(new AgentError('KAFKA_MESSAGE_TOO_LARGE', `${e.message}; writing it to the dead-letter topic failed: ${(dlqErr as Error).message}`, { topic, partition: st.partition, offset: batch.offset }, dlqErr));
            break;
          }
          this.advance(batch.nextOffset);
          this.oldestUnsent = undefined;
          st.lastError = toStatusError(e, this.opts.clock.now());
          sendCount = batchRecords;
          continue;
        }
        if (await kafkaFailed(e, producer, successesAtStart)) continue;
        break;
      }
      this.hooks.succeeded();
      releaseEncoded(batch.encoded, this.bodies);
      attempt = 0;
      sendCount = batchRecords;
      pending = undefined;
      st.sentRecords += batch.encoded.recordCount;
      this.advance(batch.nextOffset);
      this.oldestUnsent = undefined;
      st.endOffset = log.endOffset(topic, st.partition);
      st.lagRecords = Math.max(0, st.endOffset - st.position);
      if (st.state === 'backoff') this.setState('sending');
    }
    this.setState('stopped');
  }
}
