/**
 * Filter/project operator of `CREATE STREAM ... AS SELECT ... WHERE ...`.
 * Stateless: each record that passes WHERE becomes one output record keyed
 * by `plan.outputKey` (the input key unless PARTITION BY), stamped with its
 * event time. `SELECT *` passes the payload bytes through unchanged (no
 * re-encoding), and the key bytes too without PARTITION BY.
 */
import type { SourceRow, StreamPlan } from '../plan.ts';
import { type Emitter, type Operator, type RawValue, rawBytes } from './emitter.ts';

/** Whether the operator of `plan` writes each record that passes WHERE as it came (its key and payload bytes): `SELECT *` without PARTITION BY. */
export function passesRecords(plan: StreamPlan): boolean {
  return plan.outputColumns.length === 0 && !plan.rekeys;
}

export class StreamOperator implements Operator {
  streamTime = -Infinity;
  seq = 0;
  readonly #plan: StreamPlan;
  readonly #emitter: Emitter;
  readonly #passThrough: boolean;
  /** The whole input record passes: its payload and its key. */
  readonly #passRecord: boolean;

  constructor(plan: StreamPlan, emitter: Emitter) {
    this.#plan = plan;
    this.#emitter = emitter;
    this.#passThrough = plan.outputColumns.length === 0;
    this.#passRecord = passesRecords(plan);
  }

  process(row: SourceRow, raw: RawValue): void {
    if (row.timestamp > this.streamTime) this.streamTime = row.timestamp;
    this.seq++;
    const plan = this.#plan;
    if (!plan.where(row)) return;
    if (this.#passRecord) return this.#emitter.pass(row, raw);
    const value = this.#passThrough ? rawBytes(raw) : JSON.stringify(plan.project(row));
    this.#emitter.emit(plan.outputKey(row), value, row.timestamp, row.partition);
  }

  skipped(timestamp: number, count: number): void {
    if (timestamp > this.streamTime) this.streamTime = timestamp;
    this.seq += count;
  }

  closeAll(): boolean {
    return false;
  }

  hasOpenWindows(): boolean {
    return false;
  }

  takeDelta(): { upserts: Array<[string, string]>; deletes: string[] } {
    return { upserts: [], deletes: [] };
  }

  restore(streamTime: number, seq: number): void {
    this.streamTime = streamTime;
    this.seq = seq;
  }
}
