/**
 * A ReadingSink held in memory for MQTT tests, with the failure modes the
 * adapter must cope with: refuse the next N writes (a disk floor), or hold
 * every write until released (a slow disk, or a crash before the fsync).
 */
import type { DeadLetter, Reading, ReadingSink } from '../../firmware-bridge/types.ts';

export class MemorySink implements ReadingSink {
  /** Stored readings, in store order. */
  readonly readings: Reading[] = [];
  readonly letters: DeadLetter[] = [];
  /** Every write call as attempted (refused and held ones included). */
  readonly attempts: Reading[][] = [];
  /** Refuse this many of the next write calls. */
  refuseNext = 0;
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  /** Hold every write (and dead letter) until `release()`. */
  hold(): void {
    if (this.gate) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { promise, open };
  }

  release(): void {
    const gate = this.gate;
    this.gate = null;
    gate?.open();
  }

  async write(readings: readonly Reading[]): Promise<void> {
    this.attempts.push([...readings]);
    if (this.refuseNext > 0) {
      this.refuseNext--;
      throw new Error('sink refused: disk below floor');
    }
    while (this.gate) await this.gate.promise;
    this.readings.push(...readings);
  }

  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    while (this.gate) await this.gate.promise;
    this.letters.push(...letters);
  }
}

/** Polls `cond` every few ms until it holds (the vitest timeout catches a hang). */
export async function waitFor(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((resolve) => setTimeout(resolve, 10));
}
