/**
 * A clock and timers that move only when the test says so, for asserting
 * poll schedules and back-off delays without waiting and without duration
 * assertions. Network I/O keeps running on real time meanwhile.
 */
import type { Clock, Timers } from '../../firmware-bridge/types.ts';

interface Pending {
  due: number;
  seq: number;
  fn: () => void;
}

export class ManualTime implements Clock, Timers {
  private nowMs: number;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { due: this.nowMs + Math.max(0, ms), seq: id, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Due times of the timers not yet fired, ascending. */
  dueTimes(): number[] {
    return [...this.pending.values()].map((p) => p.due).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, firing each timer due on the way in due order (at its due time). */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      let next: Pending | null = null;
      let nextId = -1;
      for (const [id, p] of this.pending) {
        if (p.due <= target && (!next || p.due < next.due || (p.due === next.due && p.seq < next.seq))) {
          next = p;
          nextId = id;
        }
      }
      if (!next) break;
      this.pending.delete(nextId);
      this.nowMs = next.due;
      next.fn();
    }
    this.nowMs = target;
  }
}
