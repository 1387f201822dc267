/**
 * What operators write to: the rule runner collects a batch's output and
 * late records through this interface and appends them after the batch.
 * Operators never touch the log.
 */
import type { SourceRow } from '../plan.ts';

/** Why a record went to the `_late` topic instead of the rule's output. */
export type LateReason =
  /** Every window the record falls in had closed (event time too far behind stream time, beyond the grace period). */
  | 'WINDOW_CLOSED'
  /** The source's TIMESTAMP field was missing or unparsable. */
  | 'NO_EVENT_TIME'
  /** The payload is not a JSON object. */
  | 'INVALID_JSON';

export interface Emitter {
  /**
   * One output record. `value` is JSON text (for `SELECT *`, the
   * input's payload bytes unchanged); `inputPartition` places null-keyed records deterministically.
   */
  emit(key: string | null, value: string | Uint8Array, timestamp: number, inputPartition: number): void;
  /** One output record that is the input record unchanged: its key and payload bytes (`raw`), at `row.timestamp` (`SELECT *` without PARTITION BY). */
  pass(row: SourceRow, raw: RawValue): void;
  /** One late record: the input as read, with the reason. `streamTime` in ms (-Infinity: none yet). */
  late(reason: LateReason, message: string, row: SourceRow, raw: Uint8Array, streamTime: number): void;
}

/**
 * A record's payload: bytes `[start, end)` of `buf` (the log's read buffer),
 * and its key: bytes `[keyStart, keyEnd)` of `buf` (keyStart < 0: a null key).
 * The runner reuses one such object record after record. The bytes are the
 * log's read buffer, which the runner hands back to the log after the batch
 * (LogStoreApi.releaseBlocks): an operator keeps nothing of them past
 * `process` but copies (strings, or bytes it copied).
 */
export interface RawValue {
  buf: Buffer;
  start: number;
  end: number;
  keyStart: number;
  keyEnd: number;
}

/** The payload bytes of `raw` (a view of the read buffer). */
export function rawBytes(raw: RawValue): Buffer {
  return raw.buf.subarray(raw.start, raw.end);
}

/** An operator of a rule: consumes decoded records in processing order. */
export interface Operator {
  /** Largest event time processed (ms); -Infinity before the first record. */
  readonly streamTime: number;
  /** Sequence number of the next record (orders LATEST/EARLIEST_BY_OFFSET). */
  readonly seq: number;
  /** Processes one record whose event time is `row.timestamp`. `raw` locates its payload bytes (see RawValue). */
  process(row: SourceRow, raw: RawValue): void;
  /**
   * Takes the place of `process` for `count` records, each with event time
   * `timestamp`, that the runner settled from their scanned bytes (see
   * plan.prefilter): records that fail WHERE, and records a stream operator
   * would pass on unchanged (`passesRecords`), which the runner wrote. The
   * same effect on stream time and sequence as processing them.
   */
  skipped(timestamp: number, count: number): void;
  /**
   * Takes the place of `process` for a key run, when the plan has one
   * (TablePlan.keyRun; the aggregate operator): `count` records with event
   * time `timestamp`, record k's group string `keys[k]` and its aggregate
   * arguments `values[k * n .. k * n + n)` for n aggregates (NaN: null).
   * False when it did nothing and each record must go through `process`.
   */
  processRun?(timestamp: number, keys: readonly string[], values: Float64Array, count: number): boolean;
  /** Wall-clock idle: closes every open window now (emitting EMIT FINAL rows). Returns whether any window was open. */
  closeAll(): boolean;
  /** True when some window is open (an idle close would do something). */
  hasOpenWindows(): boolean;
  /** Changed state since the last call, as store rows: upserts (id → JSON) and deleted ids. Resets the tracking. */
  takeDelta(): { upserts: Array<[string, string]>; deletes: string[] };
  /** Restores from checkpointed rows (an empty map: fresh). */
  restore(streamTime: number, seq: number, rows: ReadonlyMap<string, string>): void;
}
