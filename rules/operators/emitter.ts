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
  /** One late record: the input as read, with the reason. `streamTime` in ms (-Infinity: none yet). */
  late(reason: LateReason, message: string, row: SourceRow, raw: Uint8Array, streamTime: number): void;
}

/** An operator of a rule: consumes decoded records in processing order. */
export interface Operator {
  /** Largest event time processed (ms); -Infinity before the first record. */
  readonly streamTime: number;
  /** Sequence number of the next record (orders LATEST/EARLIEST_BY_OFFSET). */
  readonly seq: number;
  /** Processes one record whose event time is `row.timestamp`. `raw` is its payload bytes (they stay valid until the batch is appended). */
  process(row: SourceRow, raw: Uint8Array): void;
  /** Wall-clock idle: closes every open window now (emitting EMIT FINAL rows). Returns whether any window was open. */
  closeAll(): boolean;
  /** True when some window is open (an idle close would do something). */
  hasOpenWindows(): boolean;
  /** Changed state since the last call, as store rows: upserts (id → JSON) and deleted ids. Resets the tracking. */
  takeDelta(): { upserts: Array<[string, string]>; deletes: string[] };
  /** Restores from checkpointed rows (an empty map: fresh). */
  restore(streamTime: number, seq: number, rows: ReadonlyMap<string, string>): void;
}
