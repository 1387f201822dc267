/**
 * Group commit of replication positions. Workers `mark` a position once the
 * cluster acknowledged everything below it; the committer writes the latest
 * marks of all partitions in one atomic `ConsumerPositions.commit` (temp file
 * + fsync + rename in the log store), with at most one commit in flight.
 *
 * Invariant: a committed position never exceeds an acknowledged one. A
 * crash loses at most the marks not yet committed: those records are sent
 * again after restart, and the dedup headers identify them.
 */
import type { ConsumerPositions, Logger } from '../../log-store/index.ts';

export class PositionCommitter {
  private readonly latest = new Map<string, { topic: string; partition: number; offset: number }>();
  private running: Promise<void> | undefined;
  /** The last commit failure, if the most recent commit failed. */
  lastError: Error | undefined;

  constructor(
    private readonly positions: ConsumerPositions,
    private readonly logger: Logger,
  ) {}

  mark(topic: string, partition: number, offset: number): void {
    this.latest.set(`${topic}\u0000${partition}`, { topic, partition, offset });
    this.running ??= this.loop();
  }

  /** Resolves once every mark made before the call is committed (or its commit failed: see `lastError`). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    if (this.latest.size > 0) {
      this.running = this.loop();
      await this.running;
    }
  }

  private async loop(): Promise<void> {
    try {
      while (this.latest.size > 0) {
        const batch = [...this.latest.values()];
        this.latest.clear();
        try {
          await this.positions.commit(batch);
          this.lastError = undefined;
        } catch (err) {
          this.lastError = err as Error;
          // Keep the marks (unless newer ones arrived) and retry on the next mark or flush.
          for (const b of batch) {
            const key = `${b.topic}\u0000${b.partition}`;
            if (!this.latest.has(key)) this.latest.set(key, b);
          }
          this.logger.error({ err, positions: batch.length }, 'replicator: committing positions failed; records may be sent again after a restart');
          return;
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
