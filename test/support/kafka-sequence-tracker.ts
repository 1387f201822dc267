/**
 * Producer sequence checks the way an Apache Kafka partition leader makes
 * them (ProducerStateManager): per (producer id, topic, partition) the
 * broker keeps the producer epoch, the last sequence written and the last
 * five batches. A batch is
 * - `append`: its first sequence follows the last one (or is 0 for a
 *   producer the partition has not seen, or for a newer epoch);
 * - `duplicate`: it equals one of the last five batches: acknowledged with
 *   that batch's offset, not stored again;
 * - `out-of-order` (error 45): any other sequence, a gap or an old repeat;
 * - `fenced` (error 47): an epoch older than the one the partition knows.
 * Non-idempotent batches (producer id -1) pass without checks.
 *
 * State changes only through `written` (after the broker acknowledged an
 * append), never on a request alone.
 */
import type { BatchHeader } from './kafka-shim-codec.ts';

/** Kafka error codes the tracker answers with. */
export const SEQUENCE_ERROR = Object.freeze({ OUT_OF_ORDER_SEQUENCE_NUMBER: 45, INVALID_PRODUCER_EPOCH: 47 });

const WINDOW = 5;

interface BatchMeta {
  firstSeq: number;
  lastSeq: number;
  baseOffset: bigint;
}

interface ProducerState {
  epoch: number;
  lastSeq: number;
  batches: BatchMeta[];
}

export type SequenceVerdict =
  | { kind: 'pass' }
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: bigint }
  | { kind: 'error'; errorCode: number; reason: string };

export class SequenceTracker {
  private readonly states = new Map<string, ProducerState>();
  /** Counts of verdicts, for tests. */
  readonly counts = { append: 0, duplicate: 0, outOfOrder: 0, fenced: 0 };

  private key(topic: string, partition: number, producerId: bigint): string {
    return `${producerId}\u0000${topic}\u0000${partition}`;
  }

  check(topic: string, partition: number, batch: BatchHeader): SequenceVerdict {
    if (batch.producerId < 0n) return { kind: 'pass' };
    const state = this.states.get(this.key(topic, partition, batch.producerId));
    const first = batch.baseSequence;
    const last = first + batch.recordCount - 1;
    if (state === undefined || batch.producerEpoch > (state?.epoch ?? -1)) {
      if (first === 0) return { kind: 'append' };
      this.counts.outOfOrder++;
      return { kind: 'error', errorCode: SEQUENCE_ERROR.OUT_OF_ORDER_SEQUENCE_NUMBER, reason: `first sequence ${first} of a new producer epoch is not 0` };
    }
    if (batch.producerEpoch < state.epoch) {
      this.counts.fenced++;
      return { kind: 'error', errorCode: SEQUENCE_ERROR.INVALID_PRODUCER_EPOCH, reason: `epoch ${batch.producerEpoch} < ${state.epoch}` };
    }
    const dup = state.batches.find((b) => b.firstSeq === first && b.lastSeq === last);
    if (dup) {
      this.counts.duplicate++;
      return { kind: 'duplicate', baseOffset: dup.baseOffset };
    }
    if (first === state.lastSeq + 1) return { kind: 'append' };
    this.counts.outOfOrder++;
    return { kind: 'error', errorCode: SEQUENCE_ERROR.OUT_OF_ORDER_SEQUENCE_NUMBER, reason: `expected sequence ${state.lastSeq + 1}, got ${first}` };
  }

  /** Records a batch the broker acknowledged as stored at `baseOffset`. */
  written(topic: string, partition: number, batch: BatchHeader, baseOffset: bigint): void {
    if (batch.producerId < 0n) return;
    const key = this.key(topic, partition, batch.producerId);
    let state = this.states.get(key);
    if (state === undefined || batch.producerEpoch > state.epoch) {
      state = { epoch: batch.producerEpoch, lastSeq: -1, batches: [] };
      this.states.set(key, state);
    }
    const lastSeq = batch.baseSequence + batch.recordCount - 1;
    state.lastSeq = lastSeq;
    state.batches.push({ firstSeq: batch.baseSequence, lastSeq, baseOffset });
    if (state.batches.length > WINDOW) state.batches.shift();
    this.counts.append++;
  }
}
