/**
 * Runs one derived rule (`CREATE STREAM|TABLE ... AS SELECT`) over the log:
 * reads its input topic's partitions from its own positions, runs the
 * operator over each batch, appends the output to the derived topic (and
 * late/undecodable records to `<outputTopic>_late`), then checkpoints.
 *
 * A batch, in order:
 *   1. read up to `batchRecords` records per input partition from the positions;
 *   2. decode and process them (decoding only the top-level fields the plan
 *      reads, `plan.valueFields`, into an array (`SourceRow.fields`) with the
 *      block scanner or field-extractor.ts; JSON.parse of the
 *      whole value when the plan needs it or the scanners decline), merged
 *      across partitions by event time (ties:
 *      lower partition first; one partition keeps its offset order). The merge
 *      spans one batch: a partition with nothing to read does not hold the
 *      others back, so its records that arrive later may be late (as in Kafka
 *      Streams without max.task.idle.ms). Output and late records are
 *      encoded as they are emitted, into a log batch builder per partition;
 *   3. `appendBuilt` the outputs and the late records (durable on resolve);
 *   4. commit to SQLite in one transaction: operator state, the new input
 *      positions, the output topics' end offsets, stream time, batch number.
 * Steps 3-4 of a batch (the write) run while step 2 of the next batches
 * runs: a batch's write starts once the previous batch's is done, and a
 * batch waits for the write before the previous one (two writes queued at
 * most; processing yields to the event loop every few thousand records so
 * the writes' I/O steps go on). Step 1 of the batch after runs then too
 * (read ahead), so the disk waits overlap processing; the files change in
 * the same order as without the overlap. Records come from `readBatches`
 * (raw blocks): values are scanned in the read buffer, with no object per
 * input record, and the blocks are handed back after the batch
 * (`releaseBlocks`) so the log reads into their memory again.
 *
 * Exactly-once output. Processing is deterministic: the rows a batch emits
 * depend only on the checkpointed state and the batch's records. The first
 * record a batch writes to each output (and late) partition carries headers
 * `ms.rule` (rule name), `ms.batch` (batch number) and `ms.in` (the input
 * positions after the batch, `p:offset,...`, or `idle` for an idle close);
 * the other records carry none, so replicated output stays clean. If the
 * process dies between 3 and 4, the output topics hold records past the
 * checkpointed end offsets. On open the runner finds them (first record's
 * `ms.rule`, and `ms.batch` = last checkpointed batch + 1), re-reads exactly
 * the input range `ms.in` names, re-processes it to the same rows, and
 * appends only those past what each output partition already holds.
 * So after SIGKILL at any moment, the output equals an uninterrupted run's.
 * A batch that emitted nothing leaves no trace and is simply read again.
 * Output partitions are chosen here (key → Kafka's partitioner; null key →
 * the input partition modulo the output partitions), never round-robin, so
 * re-emitted rows land where the first attempt put them.
 * Assumption: no other rule writes the same output topics.
 *
 * Any error during a batch (append or commit failed) discards the in-memory
 * state and reopens from the checkpoint after `retryMs`, through the same
 * recovery, so a half-appended batch is never processed twice.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, LogStoreApi, Logger, RecordBatchBuilder, RecordBlock, Timers } from '../log-store/index.ts';
import { type Emitter, type LateReason, type Operator, type RawValue, rawBytes } from './operators/emitter.ts';
import { BlockFieldScanner } from './block-field-scanner.ts';
import { FieldExtractor, StringCache } from './field-extractor.ts';
import { AggregateOperator } from './operators/aggregate-operator.ts';
import { StreamOperator, passesRecords } from './operators/stream-operator.ts';
import type { DerivedPlan, Row, SourceRow } from './plan.ts';
import { type StateStore, type StoredCheckpoint, openStateStore } from './state-store.ts';

export interface RuleRunnerOptions {
  plan: DerivedPlan;
  log: LogStoreApi;
  /** Folder of the checkpoint files (created if missing); this rule's is `<stateDir>/<rule>.sqlite`. */
  stateDir: string;
  clock: Clock;
  timers: Timers;
  logger: Logger;
  /** Close every open window after this long without input (wall clock, ms). Default 60000; 0 disables. */
  idleCloseMs?: number;
  /** Records read per input partition per batch. Default 5000. */
  batchRecords?: number;
  /** Wait before reopening after a failed batch, and between checks for a missing input topic (ms). Default 1000. */
  retryMs?: number;
  /**
   * Default true. false: scratch mode for throw-away sandboxes (replays,
   * `rules test`): the checkpoint is written with SQLite `synchronous=OFF`
   * and the output/late topics this runner creates get `fsync: 'never'`, so
   * nothing is fsynced and a crash may lose or duplicate output.
   */
  durable?: boolean;
  /** `stop` waits at most this long for the batch in flight (ms); past it the state file is closed anyway and the next start recovers. Default 10000. */
  stopTimeoutMs?: number;
}

export interface RuleStatus {
  name: string;
  kind: 'stream' | 'table';
  file: string;
  inputTopic: string;
  outputTopic: string;
  state: 'idle' | 'running' | 'stopped' | 'failed';
  /** Input partition → next offset to read. */
  positions: Record<number, number>;
  /** Records behind the input's end offsets. */
  lag: number;
  streamTime: number | null;
  recordsIn: number;
  recordsOut: number;
  recordsLate: number;
  /** Wall-clock time (ms, from the injected clock) of the last batch that read input; null before the first. */
  lastInputAt: number | null;
  lastError: string | null;
}

export interface RuleRunner {
  readonly name: string;
  readonly plan: DerivedPlan;
  /** Opens state (recovering an interrupted batch) and runs until `stop`. Idempotent. */
  start(): Promise<void>;
  /** Finishes the batch in flight, then closes the state file. Idempotent. */
  stop(): Promise<void>;
  /** Opens if needed and processes batches until every input partition is at its end offset. Not with `start`. */
  drain(): Promise<void>;
  /** Closes every open window now (what the idle timer does), emitting EMIT FINAL rows. Not with `start`. */
  closeAllWindows(): Promise<void>;
  status(): RuleStatus;
}

const HEADER_RULE = 'ms.rule';
const HEADER_BATCH = 'ms.batch';
const HEADER_IN = 'ms.in';

/**
 * A batch's records for one output topic, encoded as they are emitted: one
 * builder per partition. Recovery drops the first `drop[p]` records of
 * partition p (already in the log); `seen[p]` counts the records emitted to
 * p, dropped ones included.
 */
interface Outputs {
  topic: string;
  builders: RecordBatchBuilder[];
  drop: number[] | null;
  seen: number[];
  /** Builder sets of finished batches, free again once their write took their records (see finishBatch). */
  spare: RecordBatchBuilder[][];
}

/**
 * One input partition's records of a batch, as the log's raw blocks
 * (`readBatches`: no object per record). Records are decoded one at a
 * time, just before they are processed (the head), so decoded values die
 * young instead of a whole batch of them being kept alive.
 */
interface Lane {
  partition: number;
  blocks: RecordBlock[];
  /** Records of each block in the batch (recovery reads up to a target offset and may cut the last block). */
  counts: number[];
  /** Records in all blocks. */
  total: number;
  /** The head: record `i` of `blocks[b]` (`block`, null when the lane is done), of `n` taken from it. */
  b: number;
  block: RecordBlock | null;
  i: number;
  n: number;
  // the decoded head:
  /** The whole decoded value, when `decoded` is false. */
  value: Row;
  /** The head was decoded into `fields` (the plan's valueFields), not `value`. */
  decoded: boolean;
  /** Event time, or -Infinity when the record is bad (bad records are processed first when at the head). */
  time: number;
  /** null: decoded fine; else why the record goes to `_late`. */
  bad: LateReason | null;
  /**
   * Records from the head on settled from the scan's results, 0 for none:
   * by the plan's prefilter (not decoded, only their event time, `time`, is
   * known), or, when `keyed`, a key run for the aggregate operator.
   */
  skip: number;
  /** The head's `skip` records are a key run (see `keyRuns`): their groups in `runKeys`, their aggregate arguments in `runValues`. */
  keyed: boolean;
  runKeys: string[] | null;
  runValues: Float64Array | null;
  /** Of those, the ones that pass WHERE (when the runner writes them itself, see `passRuns`): their number at 0, then their indices in `block`; null otherwise. */
  passed: Int32Array | null;
  /** The values of the plan's valueFields the scanners fill (reused record after record); null without them. */
  fields: unknown[] | null;
  /** Scans a whole block's values at once (WebAssembly); null before the lane's first record, and when the plan's fields do not suit it. */
  scanner: BlockFieldScanner | null;
  /** The block `scanner` holds the results of. */
  scanned: RecordBlock | null;
}

/**
 * The runner's one SourceRow, reused record after record: its key is
 * decoded from the block only when something reads it (most filtered-out
 * and aggregated records never do).
 */
class BlockRow implements SourceRow {
  value: Row = {};
  fields: unknown[] | null = null;
  timestamp = 0;
  partition = 0;
  offset = 0;
  #block: RecordBlock | null = null;
  #index = 0;
  /** undefined: not decoded yet. */
  #key: string | null | undefined = null;

  constructor(readonly keys: StringCache) {}

  /** Points the key at record `index` of `block`. */
  at(block: RecordBlock, index: number): void {
    this.#block = block;
    this.#index = index;
    this.#key = undefined;
  }

  get key(): string | null {
    if (this.#key === undefined) {
      const b = this.#block!;
      const start = b.keyStarts[this.#index]!;
      this.#key = start < 0 ? null : this.keys.text(b.buf, start, b.keyEnds[this.#index]!);
    }
    return this.#key;
  }

  set key(key: string | null) {
    this.#key = key;
  }
}

/** Passing records one prefilter run takes at most (see Lane.passed). */
const PASS_RUN = 1024;

/**
 * Records processed between two yields to the event loop (see processLanes):
 * a 50,000-record batch yields about 12 times. Measured on the tumbling
 * bench (A/B pairs): medians 0.93-0.95M against 0.77-0.87M records/s, the
 * wait for the previous write 0.17 -> 0.0003 us a record; filter unchanged.
 * setImmediate, not the injected timers: this is no clock, only a turn of
 * the event loop.
 */
const YIELD_RECORDS = 4096;

function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A batch as read (see readBatch): from positions `from` to `next`, each input partition's blocks. */
interface BatchRead {
  from: ReadonlyMap<number, number>;
  next: Map<number, number>;
  parts: Array<Pick<Lane, 'blocks' | 'counts' | 'total'>>;
}

/** `SourceRow.value` of a record decoded into `fields`: closures read those (see plan.ts). */
const NO_VALUE: Row = Object.freeze({});

function stateSignature(plan: DerivedPlan): string {
  return plan.kind === 'table' ? plan.stateSignature : `stream:${plan.source.topic}`;
}

export function createRuleRunner(options: RuleRunnerOptions): RuleRunner {
  const { plan, log, logger, timers } = options;
  const idleCloseMs = options.idleCloseMs ?? 60_000;
  const batchRecords = options.batchRecords ?? 5000;
  const retryMs = options.retryMs ?? 1000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const durable = options.durable ?? true;
  const name = plan.name;
  const inputTopic = plan.source.topic;
  const outputTopic = plan.outputTopic;
  const lateTopic = `${outputTopic}_late`;
  const signature = stateSignature(plan);
  const stateFile = join(options.stateDir, `${name}.sqlite`);
  /** Decodes only the fields the plan reads (null: the plan needs whole values). */
  const extractor = plan.valueFields ? new FieldExtractor(plan.valueFields) : null;
  const blockFields = plan.valueFields && BlockFieldScanner.supports(plan.valueFields) ? plan.valueFields : null;
  /**
   * WHERE `<field> = '<text>'` (plan.prefilter): the scanner may tell that a
   * record fails it, and that its event-time text is the last one parsed, from
   * the scan's results alone; such a record is not decoded (most records of a
   * filter rule fail its WHERE).
   */
  const fieldAt = (name: string, caseSensitive: boolean): number => blockFields?.findIndex((f) => f.name === name && f.caseSensitive === caseSensitive) ?? -1;
  const prefilter = plan.prefilter ?? null;
  const preField = prefilter === null ? -1 : fieldAt(prefilter.field.name, prefilter.field.caseSensitive);
  const timeField = plan.source.timestampField === null ? -1 : fieldAt(plan.source.timestampField, false);
  /** The event-time field's place among the decoded fields (valueFields holds it, case-insensitive, when there is one). */
  const timeSlot = plan.valueFields && plan.source.timestampField !== null ? plan.valueFields.findIndex((f) => f.name === plan.source.timestampField) : -1;
  const preText = preField >= 0 && timeField >= 0 ? prefilter!.equals : null;
  /** The prefilter settles passing records too when the operator would write them unchanged: the runner writes them from the block's bytes. */
  const passRuns = preText !== null && plan.kind === 'stream' && passesRecords(plan);
  /**
   * plan.keyRun: the scanner reads an aggregation's inputs (group string,
   * argument numbers) from the scan's results for runs of records with the
   * event-time text parsed last, and the operator folds them in without a
   * row per record (AggregateOperator.processRun).
   */
  const keyRun = plan.kind === 'table' ? (plan.keyRun ?? null) : null;
  const runGroup = keyRun === null ? -1 : fieldAt(keyRun.group.name, keyRun.group.caseSensitive);
  const runArgs = keyRun === null ? [] : keyRun.args.map((a) => (a === null ? -1 : fieldAt(a.name, a.caseSensitive)));
  const keyRuns = keyRun !== null && timeField >= 0 && runGroup >= 0 && keyRun.args.every((a, k) => a === null || runArgs[k]! >= 0);
  const runArgFields = Int32Array.from(runArgs);

  let store: StateStore | null = null;
  let operator: Operator | null = null;
  let positions = new Map<number, number>();
  let batchNo = 0;
  let outPartitions = 1;
  let inPartitions = 1;
  let out: Outputs = { topic: outputTopic, builders: [], drop: null, seen: [], spare: [] };
  let late: Outputs = { topic: lateTopic, builders: [], drop: null, seen: [], spare: [] };
  let headers: Record<string, string> = {};
  /** key → output partition (murmur2 is not free); bounded, cleared when full. */
  const partitionCache = new Map<string, number>();

  /** The builder of `o`'s partition p to add the next record to; null when recovery drops that record. */
  function builderFor(o: Outputs, p: number): RecordBatchBuilder | null {
    const n = ++o.seen[p]!;
    return o.drop !== null && n <= o.drop[p]! ? null : o.builders[p]!;
  }

  /** The output partition of a record (murmur2 of the key, cached: it is not free; null key: the input partition's share). */
  function partitionOf(key: string | null, inputPartition: number): number {
    if (outPartitions === 1) return 0;
    if (key === null) return inputPartition % outPartitions;
    let partition = partitionCache.get(key);
    if (partition === undefined) {
      partition = log.partitionFor(outputTopic, key);
      if (partitionCache.size >= 10_000) partitionCache.clear();
      partitionCache.set(key, partition);
    }
    return partition;
  }
  /** The write (appends + checkpoint) of the last finished batch, while in flight (see finishBatch). */
  let writing: Promise<void> | null = null;
  /** The write before that one, while in flight: a batch is finished only once it is done (see runBatch). */
  let writingBefore: Promise<void> | null = null;
  /** The read of the batch after the one being processed, from the positions it ends at (see runBatch); null: none. */
  let ahead: Promise<BatchRead | null> | null = null;

  let state: RuleStatus['state'] = 'idle';
  let lastError: string | null = null;
  let recordsIn = 0;
  let recordsOut = 0;
  let recordsLate = 0;
  let lastInputAt: number | null = null;

  const emitter: Emitter = {
    emit(key, value, timestamp, inputPartition) {
      const b = builderFor(out, partitionOf(key, inputPartition));
      // the batch headers go on the first record of each partition (recovery reads them there)
      b?.add(timestamp, key, value, b.count === 0 ? headers : null);
    },
    pass(row, raw) {
      passBytes(outPartitions === 1 ? null : row.key, row.partition, row.timestamp, raw.buf, raw.keyStart, raw.keyEnd, raw.start, raw.end);
    },
    late(reason, message, row, raw, streamTime) {
      const value = JSON.stringify({
        reason,
        message,
        rule: name,
        topic: inputTopic,
        partition: row.partition,
        offset: row.offset,
        eventTime: reason === 'WINDOW_CLOSED' ? row.timestamp : null,
        streamTime: Number.isFinite(streamTime) ? streamTime : null,
        key: row.key,
        // with the extractor, row.value holds only some fields: the late record carries the whole value
        value: reason === 'INVALID_JSON' ? Buffer.from(raw).toString('utf8') : extractor ? JSON.parse(Buffer.from(raw).toString('utf8')) : row.value,
      });
      const b = builderFor(late, 0);
      b?.add(row.timestamp, row.key, value, b.count === 0 ? headers : null);
    },
  };

  /** Writes an input record unchanged (its key and payload: bytes of `buf`) at `timestamp`, to the output partition of `key` (see partitionOf). */
  function passBytes(key: string | null, inputPartition: number, timestamp: number, buf: Buffer, keyStart: number, keyEnd: number, start: number, end: number): void {
    const b = builderFor(out, partitionOf(key, inputPartition));
    b?.addBytes(timestamp, buf, keyStart, keyEnd, start, end, b.count === 0 ? headers : null);
  }

  function newOperator(): Operator {
    return plan.kind === 'table' ? new AggregateOperator(plan, emitter) : new StreamOperator(plan, emitter);
  }

  async function ensureTopics(): Promise<void> {
    inPartitions = log.describe(inputTopic).partitionsInfo.length;
    const wanted = plan.partitions ?? inPartitions;
    if (log.hasTopic(outputTopic)) outPartitions = log.describe(outputTopic).config.partitions;
    else outPartitions = (await log.createTopic(outputTopic, durable ? { partitions: wanted } : { partitions: wanted, fsync: 'never' })).config.partitions;
    if (!log.hasTopic(lateTopic)) await log.createTopic(lateTopic, durable ? { partitions: 1 } : { partitions: 1, fsync: 'never' });
    out = outputsOf(outputTopic, outPartitions);
    late = outputsOf(lateTopic, 1);
  }

  function outputsOf(topic: string, partitions: number): Outputs {
    return { topic, builders: buildersOf(partitions), drop: null, seen: new Array<number>(partitions).fill(0), spare: [] };
  }

  function buildersOf(partitions: number): RecordBatchBuilder[] {
    return Array.from({ length: partitions }, () => log.batchBuilder());
  }

  function outputEnds(): Array<[string, number, number]> {
    const ends: Array<[string, number, number]> = [];
    for (let p = 0; p < outPartitions; p++) ends.push([outputTopic, p, log.endOffset(outputTopic, p)]);
    ends.push([lateTopic, 0, log.endOffset(lateTopic, 0)]);
    return ends;
  }

  /** Opens the store and restores the checkpoint (or starts fresh), then finishes an interrupted batch. */
  async function open(): Promise<void> {
    if (store) return;
    // the topics and the state file at once (each waits for its own fsyncs)
    const opening = mkdir(options.stateDir, { recursive: true }).then(() => openStateStore(stateFile, { durable }));
    const [topics, opened] = await Promise.allSettled([ensureTopics(), opening]);
    if (topics.status === 'rejected' || opened.status === 'rejected') {
      if (opened.status === 'fulfilled') await opened.value.close().catch(() => undefined);
      throw topics.status === 'rejected' ? topics.reason : (opened as PromiseRejectedResult).reason;
    }
    store = opened.value;
    operator = newOperator();
    let cp = await store.load();
    if (cp && cp.signature !== signature) {
      logger.warn({ rule: name, file: plan.origin.file, was: cp.signature, now: signature }, 'rule changed incompatibly (GROUP BY, window or aggregates): starting fresh state');
      await store.clear();
      cp = null;
    }
    if (!cp) {
      positions = new Map();
      for (let p = 0; p < inPartitions; p++) {
        positions.set(p, plan.offsetReset === 'earliest' ? log.earliestOffset(inputTopic, p) : log.endOffset(inputTopic, p));
      }
      batchNo = 0;
      await store.commit({ signature, streamTime: -Infinity, seq: 0, batch: 0, positions, outputs: outputEnds(), upserts: [], deletes: [] });
      logger.info({ rule: name, file: plan.origin.file, offsetReset: plan.offsetReset, positions: Object.fromEntries(positions) }, 'rule starts with fresh state');
      return;
    }
    positions = cp.positions;
    for (let p = 0; p < inPartitions; p++) if (!positions.has(p)) positions.set(p, log.earliestOffset(inputTopic, p));
    batchNo = cp.batch;
    operator.restore(cp.streamTime, cp.seq, cp.windows);
    await recover(cp);
  }

  /** Finds output of the batch after the checkpoint (written, not checkpointed) and completes that batch without duplicates. */
  async function recover(cp: StoredCheckpoint): Promise<void> {
    const wantBatch = String(cp.batch + 1);
    const found = new Map<string, number>();
    let inText: string | null = null;
    for (const [topic, parts] of [[outputTopic, outPartitions], [lateTopic, 1]] as const) {
      for (let p = 0; p < parts; p++) {
        const from = cp.outputs.get(topic)?.get(p) ?? log.endOffset(topic, p);
        const end = log.endOffset(topic, p);
        if (end <= from) continue;
        // The batch's first record in each partition carries the headers; everything after it is that batch's.
        const first = (await log.read(topic, p, from, { maxRecords: 1 })).records[0];
        if (first && first.headers[HEADER_RULE] === name && first.headers[HEADER_BATCH] === wantBatch) {
          found.set(`${topic}\0${p}`, end - from);
          inText = first.headers[HEADER_IN] ?? inText;
        } else {
          logger.warn({ rule: name, topic, partition: p, from, end }, 'output topic has records this rule did not write (another writer?): not deduplicating them');
        }
      }
    }
    if (!found.size || inText === null) return;
    logger.warn({ rule: name, batch: cp.batch + 1, written: Object.fromEntries(found) }, 'completing a batch interrupted after its output was written');
    for (const o of [out, late]) o.drop = o.builders.map((_, p) => found.get(`${o.topic}\0${p}`) ?? 0);
    try {
      if (inText === 'idle') await idleBatch();
      else {
        const target = new Map<number, number>();
        for (const part of inText.split(',')) {
          const [p, o] = part.split(':');
          target.set(Number(p), Number(o));
        }
        await runBatch(target);
      }
      await persisted();
    } finally {
      out.drop = null;
      late.drop = null;
    }
  }

  function laneOf(partition: number): Lane {
    return {
      partition, blocks: [], counts: [], total: 0, b: 0, block: null, i: 0, n: 0, value: {}, decoded: false, time: 0, bad: null, skip: 0,
      passed: passRuns ? new Int32Array(PASS_RUN + 1) : null,
      keyed: false,
      runKeys: keyRuns ? new Array<string>(PASS_RUN).fill('') : null,
      runValues: keyRuns ? new Float64Array(PASS_RUN * runArgs.length) : null,
      fields: extractor ? extractor.newValues() : null,
      scanner: null,
      scanned: null,
    };
  }

  /** Puts the lane's head on its first record (null block: nothing to read). */
  function rewind(lane: Lane): void {
    lane.b = 0;
    lane.i = 0;
    lane.block = lane.blocks.length ? lane.blocks[0]! : null;
    lane.n = lane.blocks.length ? lane.counts[0]! : 0;
  }

  /** Moves the head `by` records on (default 1; not past the end of its block). */
  function advance(lane: Lane, by = 1): void {
    if ((lane.i += by) < lane.n) return;
    lane.i = 0;
    if (++lane.b < lane.blocks.length) {
      lane.block = lane.blocks[lane.b]!;
      lane.n = lane.counts[lane.b]!;
    } else {
      lane.block = null;
      lane.n = 0;
    }
  }

  /** Keys as strings: readings repeat their keys, so each distinct key text is decoded once (see StringCache). */
  const keyCache = new StringCache();
  const lanes = new Map<number, Lane>();

  // event-time cache of decodeHead: the last timestamp text seen and what it parsed to
  let lastTimeText: string | null = null;
  let lastTime: number | null = null;
  /** An event time whose key run the operator declined (its window closed, see processHead): no run is tried at it again (stream time only grows, so it stays late). */
  let declinedTime = NaN;

  /** Decodes the head record of `lane` into the lane's head fields. */
  function decodeHead(lane: Lane): void {
    const block = lane.block!;
    const i = lane.i;
    const start = block.valueStarts[i]!;
    const end = block.valueEnds[i]!;
    let value: unknown;
    // a lane's scanner (its memory) is made when the lane first has records
    const scanner = blockFields === null ? null : (lane.scanner ??= new BlockFieldScanner(blockFields));
    if (scanner !== null && lane.scanned !== block) {
      scanner.scan(block.buf, block.valueStarts, block.valueEnds, lane.n);
      lane.scanned = block;
    }
    // a run of records with one event time skipped at once is what skipping each would do: another lane's head comes before the run's first record or after its last
    const skip = preText !== null && scanner !== null && lastTimeText !== null && lastTime !== null ? scanner.decideRun(i, lane.n, preField, preText, timeField, lastTimeText, lane.passed) : 0;
    const keyed =
      skip === 0 && keyRuns && scanner !== null && lastTimeText !== null && lastTime !== null && lastTime !== declinedTime
        ? scanner.keyRun(i, lane.n, timeField, lastTimeText, runGroup, runArgFields, lane.runKeys!, lane.runValues!)
        : 0;
    lane.skip = skip + keyed;
    lane.keyed = keyed !== 0;
    if (skip + keyed !== 0) {
      lane.time = lastTime!;
      lane.bad = null;
      return;
    }
    // the block scanner's answer, else the JavaScript scanner's (which declines to JSON.parse)
    const fields = lane.fields;
    const decoded = fields !== null && ((scanner !== null && scanner.fill(i, fields)) || extractor!.extractAt(block.buf, start, end, fields));
    lane.decoded = decoded;
    if (!decoded) {
      try {
        value = JSON.parse(block.buf.toString('utf8', start, end));
      } catch {
        value = undefined;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        lane.value = {};
        lane.time = -Infinity;
        lane.bad = 'INVALID_JSON';
        return;
      }
      lane.value = value as Row;
    }
    // Readings arrive in runs with the same timestamp text: parse each distinct text once.
    const source = plan.source;
    const field = source.timestampField;
    let ts: number | null;
    const tv = field === null ? undefined : decoded ? fields![timeSlot] : (value as Row)[field];
    if (typeof tv === 'string' && tv === lastTimeText) ts = lastTime;
    else {
      // the time field among the decoded fields is read as getField reads it, as eventTime does
      ts = decoded && field !== null ? source.eventTimeOf(tv) : source.eventTime(lane.value, block.timestamps[i]!);
      if (typeof tv === 'string') {
        lastTimeText = tv;
        lastTime = ts;
      }
    }
    if (ts === null) {
      lane.time = -Infinity;
      lane.bad = 'NO_EVENT_TIME';
    } else {
      lane.time = ts;
      lane.bad = null;
    }
  }

  /**
   * Reads a batch from the positions `from`. `target` (recovery): read
   * exactly up to these offsets. Returns the records and the positions after
   * them, or null when there was nothing to read (see `install`).
   */
  async function readBatch(from: ReadonlyMap<number, number>, target: Map<number, number> | null): Promise<BatchRead | null> {
    let any = false;
    const next = new Map(from);
    const parts: BatchRead['parts'] = [];
    for (let p = 0; p < inPartitions; p++) {
      const lane = { blocks: [] as RecordBlock[], counts: [] as number[], total: 0 };
      parts.push(lane);
      let pos = from.get(p)!;
      const limit = target ? (target.get(p) ?? pos) : Infinity;
      const end = log.endOffset(inputTopic, p);
      if (pos < log.earliestOffset(inputTopic, p)) {
        const earliest = log.earliestOffset(inputTopic, p);
        logger.warn({ rule: name, topic: inputTopic, partition: p, position: pos, earliest }, 'input records were deleted by retention before the rule read them; skipping ahead');
        pos = earliest;
        next.set(p, pos);
      }
      while (pos < end && pos < limit && (target !== null || lane.total === 0)) {
        const res = await log.readBatches(inputTopic, p, pos, { maxRecords: target ? Math.min(10_000, limit - pos) : batchRecords, maxBytes: 16 << 20, handBack: true });
        if (!res.count) break;
        for (const block of res.blocks) {
          const n = Math.min(block.count, limit - block.baseOffset);
          if (n <= 0) continue;
          lane.blocks.push(block);
          lane.counts.push(n);
          lane.total += n;
        }
        pos = Math.min(res.nextOffset, limit);
        if (!target) break;
      }
      if (pos !== from.get(p)) next.set(p, pos);
      if (lane.total) any = true;
    }
    if (!any && target === null && sameAs(next, from)) return null;
    return { from, next, parts };
  }

  /** Puts a batch read in the lanes, each head on its first record. */
  function install(read: BatchRead): void {
    read.parts.forEach((part, p) => {
      let lane = lanes.get(p);
      if (lane === undefined) lanes.set(p, (lane = laneOf(p)));
      lane.blocks = part.blocks;
      lane.counts = part.counts;
      lane.total = part.total;
      rewind(lane);
    });
  }

  function sameAs(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean {
    for (const [k, v] of a) if (b.get(k) !== v) return false;
    return true;
  }

  const row = new BlockRow(keyCache);
  const raw: RawValue = { buf: Buffer.alloc(0), start: 0, end: 0, keyStart: -1, keyEnd: -1 };

  /** Writes the records of the head's run that pass (see Lane.passed), as the operator's `process` would. */
  function passOn(lane: Lane, passed: Int32Array): void {
    const block = lane.block!;
    const buf = block.buf;
    for (let k = 1, n = passed[0]!; k <= n; k++) {
      const j = passed[k]!;
      const keyStart = block.keyStarts[j]!;
      const keyEnd = block.keyEnds[j]!;
      const key = outPartitions === 1 || keyStart < 0 ? null : keyCache.text(buf, keyStart, keyEnd);
      passBytes(key, lane.partition, lane.time, buf, keyStart, keyEnd, block.valueStarts[j]!, block.valueEnds[j]!);
    }
  }

  /** Processes the decoded head of `lane`, then advances it. */
  function processHead(lane: Lane, op: Operator): void {
    const skip = lane.skip;
    if (lane.keyed) {
      lane.keyed = false;
      lane.skip = 0;
      if (op.processRun!(lane.time, lane.runKeys!, lane.runValues!, skip)) {
        advance(lane, skip);
        return;
      }
      // their window closed: each goes to the late topic, as process decides it (one at a time: no run is tried at this time again)
      declinedTime = lane.time;
      decodeHead(lane);
    } else if (skip !== 0) {
      const passed = lane.passed;
      if (passed !== null && passed[0] !== 0) passOn(lane, passed);
      advance(lane, skip);
      op.skipped(lane.time, skip);
      return;
    }
    const block = lane.block!;
    const i = lane.i;
    row.value = lane.decoded ? NO_VALUE : lane.value;
    row.fields = lane.decoded ? lane.fields : null;
    row.at(block, i);
    row.timestamp = lane.time;
    row.partition = lane.partition;
    row.offset = block.baseOffset + i;
    raw.buf = block.buf;
    raw.start = block.valueStarts[i]!;
    raw.end = block.valueEnds[i]!;
    raw.keyStart = block.keyStarts[i]!;
    raw.keyEnd = block.keyEnds[i]!;
    advance(lane);
    const bad = lane.bad;
    if (bad !== null) {
      row.timestamp = block.timestamps[i]!;
      emitter.late(bad, bad === 'INVALID_JSON' ? 'the payload is not a JSON object' : 'the event time field is missing or not a timestamp', row, rawBytes(raw), op.streamTime);
      return;
    }
    op.process(row, raw);
  }

  /**
   * Processes the batch's records, merged across partitions by event time
   * (ties: lower partition). Returns how many. Yields to the event loop
   * every YIELD_RECORDS records, so the previous batch's write (its
   * fdatasync, then its checkpoint: each step starts in an I/O callback)
   * goes on meanwhile instead of after the whole batch.
   */
  async function processLanes(op: Operator): Promise<number> {
    const active: Lane[] = [];
    let total = 0;
    for (let p = 0; p < inPartitions; p++) {
      const lane = lanes.get(p);
      if (lane && lane.block !== null) {
        active.push(lane);
        total += lane.total;
      }
    }
    let k = 0;
    if (active.length === 1) {
      const lane = active[0]!;
      while (lane.block !== null) {
        decodeHead(lane);
        // a head settled by the prefilter is a run of records
        k += lane.skip === 0 ? 1 : lane.skip;
        processHead(lane, op);
        if (k >= YIELD_RECORDS) {
          k = 0;
          await yieldToIo();
        }
      }
    } else {
      for (const lane of active) decodeHead(lane);
      let live = active.length;
      while (live > 0) {
        let best: Lane | null = null;
        for (const lane of active) {
          if (lane.block === null) continue;
          if (best === null || lane.time < best.time) best = lane;
        }
        k += best!.skip === 0 ? 1 : best!.skip;
        processHead(best!, op);
        if (best!.block !== null) decodeHead(best!);
        else live--;
        if (k >= YIELD_RECORDS) {
          k = 0;
          await yieldToIo();
        }
      }
    }
    // the blocks die with the batch: nothing kept a view of them (operators copy what they keep), so the log may read into their memory again
    for (const lane of active) {
      log.releaseBlocks(lane.blocks);
      lane.blocks = [];
      lane.counts = [];
      lane.scanned = null;
    }
    return total;
  }

  function positionsText(next: Map<number, number>): string {
    return [...next].map(([p, o]) => `${p}:${o}`).join(',');
  }

  /**
   * Ends the batch in memory (its output, state delta and new positions are
   * taken now) and queues its write: append the output, then commit the
   * checkpoint. The write runs while the next batches are read and
   * processed; it starts once the previous batch's write is done (the
   * appends of a batch come after the checkpoint of the one before, so a
   * crash leaves at most one batch written past the checkpoint, which
   * `recover` completes), and `persisted()` waits for all of them.
   */
  function finishBatch(next: Map<number, number>): void {
    const op = operator!;
    // the batch's builders go to its write; the next batch fills another set
    const topics = [out, late];
    const filled = topics.map((o) => {
      const builders = o.builders;
      o.builders = o.spare.pop() ?? buildersOf(builders.length);
      o.seen.fill(0);
      return builders;
    });
    const written = filled[0]!.reduce((n, b) => n + b.count, 0);
    const writtenLate = filled[1]!.reduce((n, b) => n + b.count, 0);
    const delta = op.takeDelta();
    const changed: Array<[number, number]> = [];
    for (const [p, o] of next) if (positions.get(p) !== o) changed.push([p, o]);
    const checkpoint = { signature, streamTime: op.streamTime, seq: op.seq, batch: batchNo + 1, positions: changed, upserts: delta.upserts, deletes: delta.deletes };
    batchNo++;
    positions = next;
    const s = store!;
    const before = writing;
    const write = (async () => {
      try {
        if (before !== null) await before;
        const appends: Array<Promise<unknown>> = [];
        topics.forEach((o, k) => filled[k]!.forEach((b, p) => b.count !== 0 && appends.push(log.appendBuilt(o.topic, p, b))));
        await Promise.all(appends);
        recordsOut += written;
        recordsLate += writtenLate;
        await s.commit({ ...checkpoint, outputs: outputEnds() });
      } finally {
        // a write that failed, or came after one that did, leaves its records unwritten: the runner reopens from the checkpoint and makes them again
        topics.forEach((o, k) => {
          for (const b of filled[k]!) b.clear();
          o.spare.push(filled[k]!);
        });
      }
    })();
    // observed through persisted(); never an unhandled rejection
    write.catch(() => undefined);
    writingBefore = before;
    writing = write;
  }

  /** Waits until the last finished batch is written and checkpointed (so every one before it); throws what a write threw. */
  async function persisted(): Promise<void> {
    const w = writing;
    if (w === null) return;
    try {
      await w;
    } finally {
      if (writing === w) {
        writing = null;
        writingBefore = null;
      }
    }
  }

  /** One batch; false when there was nothing to read. */
  async function runBatch(target: Map<number, number> | null): Promise<boolean> {
    let read: BatchRead | null = null;
    const early = target === null ? ahead : null;
    ahead = null;
    // a read ahead that found nothing, or that started from other positions (a batch failed and the state reopened): read now
    if (early !== null) read = await early;
    if (read === null || !sameAs(read.from, positions)) read = await readBatch(positions, target);
    if (read === null) return false;
    install(read);
    const next = read.next;
    // the next batch is read while this one is processed: the log store checks and decodes big reads on its
    // decode worker, and the file reads and the worker's answers come in during processLanes' yields
    if (target === null) {
      ahead = readBatch(next, null);
      ahead.catch(() => undefined);
    }
    headers = { [HEADER_RULE]: name, [HEADER_BATCH]: String(batchNo + 1), [HEADER_IN]: positionsText(next) };
    const n = await processLanes(operator!);
    // at most two writes queued: the one before the previous batch's must be done (its fdatasync overlapped two batches' processing)
    if (writingBefore !== null) await writingBefore;
    finishBatch(next);
    recordsIn += n;
    if (n) lastInputAt = options.clock.now();
    return true;
  }

  async function idleBatch(): Promise<void> {
    headers = { [HEADER_RULE]: name, [HEADER_BATCH]: String(batchNo + 1), [HEADER_IN]: 'idle' };
    if (!operator!.closeAll() && out.drop === null) return;
    logger.info({ rule: name, streamTime: operator!.streamTime }, 'closed open windows after idle time without input');
    await persisted();
    finishBatch(positions);
    await persisted();
  }

  async function closeStore(): Promise<void> {
    await persisted().catch(() => undefined);
    const s = store;
    store = null;
    operator = null;
    ahead = null;
    for (const o of [out, late]) {
      for (const b of o.builders) b.clear();
      o.seen.fill(0);
    }
    if (s) await s.close().catch(() => undefined);
  }

  // ---- the live loop -------------------------------------------------------
  let running = false;
  let loopDone: Promise<void> | null = null;
  let wake: (() => void) | null = null;
  let idleTimer: unknown = null;
  let idleDue = false;

  function armIdle(): void {
    if (idleTimer !== null) timers.clearTimeout(idleTimer);
    idleTimer = null;
    if (idleCloseMs <= 0 || !operator?.hasOpenWindows()) return;
    idleTimer = timers.setTimeout(() => {
      idleTimer = null;
      idleDue = true;
      wake?.();
    }, idleCloseMs);
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const h = timers.setTimeout(() => {
        wake = null;
        resolve();
      }, ms);
      wake = () => {
        timers.clearTimeout(h);
        wake = null;
        resolve();
      };
    });
  }

  /** Resolves when some input partition has records past its position, or on wake (stop, idle). */
  async function waitForData(): Promise<void> {
    const ac = new AbortController();
    const iterators = [...positions].map(([p, o]) => log.follow(inputTopic, p, o, { maxRecords: 1, signal: ac.signal }));
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    try {
      await Promise.race([woken, ...iterators.map((it) => it.next())]);
    } finally {
      wake = null;
      ac.abort();
      await Promise.all(iterators.map((it) => it.return?.().catch(() => undefined)));
    }
  }

  async function loop(): Promise<void> {
    while (running) {
      try {
        if (!log.hasTopic(inputTopic)) {
          state = 'idle';
          await sleep(retryMs);
          continue;
        }
        await open();
        state = 'running';
        if (idleDue) {
          idleDue = false;
          await idleBatch();
          continue;
        }
        if (await runBatch(null)) {
          armIdle();
          continue;
        }
        await persisted();
        if (!running) break;
        await waitForData();
      } catch (err) {
        if (!running) break;
        state = 'failed';
        lastError = err instanceof Error ? err.message : String(err);
        logger.error({ rule: name, err, retriable: (err as { retriable?: boolean }).retriable ?? false }, 'rule batch failed; reopening from the checkpoint');
        await closeStore();
        await sleep(retryMs);
      }
    }
  }

  return {
    name,
    plan,
    async start() {
      if (running) return;
      running = true;
      loopDone = loop();
    },
    async stop() {
      if (running) {
        running = false;
        wake?.();
        let timer: unknown = null;
        const timedOut = new Promise<boolean>((resolve) => {
          timer = timers.setTimeout(() => resolve(true), stopTimeoutMs);
        });
        const late = await Promise.race([loopDone!.then(() => false), timedOut]);
        timers.clearTimeout(timer);
        if (late) logger.warn({ rule: name, stopTimeoutMs }, 'rule batch still running at stop timeout: closing its state anyway (the next start recovers)');
      }
      if (idleTimer !== null) timers.clearTimeout(idleTimer);
      idleTimer = null;
      await closeStore();
      // the scan worker drops its instances of the lanes' memories (a start after makes new ones)
      for (const lane of lanes.values()) {
        lane.scanner?.close();
        lane.scanner = null;
        lane.scanned = null;
      }
      state = 'stopped';
    },
    async drain() {
      await open();
      while (await runBatch(null));
      await persisted();
    },
    async closeAllWindows() {
      await open();
      await idleBatch();
    },
    status() {
      let lag = 0;
      for (const [p, o] of positions) if (log.hasTopic(inputTopic)) lag += Math.max(0, log.endOffset(inputTopic, p) - o);
      return {
        name,
        kind: plan.kind,
        file: plan.origin.file,
        inputTopic,
        outputTopic,
        state,
        positions: Object.fromEntries(positions),
        lag,
        streamTime: operator && Number.isFinite(operator.streamTime) ? operator.streamTime : null,
        recordsIn,
        recordsOut,
        recordsLate,
        lastInputAt,
        lastError,
      };
    },
  };
}
