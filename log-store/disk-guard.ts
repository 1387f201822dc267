/**
 * The free-disk floor. Appends are admitted only while the data directory's
 * file system keeps at least `minFreeBytes` free after the append; below
 * it they reject with LOG_DISK_FULL (retriable) before any byte is written,
 * so nothing stored is touched. Once space returns, appends are admitted again.
 *
 * statfs is not called per append: the guard keeps an estimate (last
 * statfs result minus bytes admitted since) and refreshes it when it is
 * older than `checkIntervalMs` or when the estimate says the floor is
 * reached (so a full disk is re-checked on every append, and recovery is
 * seen at once).
 */
import { LogError, fromFsError } from './errors.ts';
import type { LogFileSystem } from './file-system.ts';
import type { Clock } from './types.ts';

export class DiskGuard {
  private estimate = 0;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly fs: LogFileSystem,
    private readonly dir: string,
    private readonly minFreeBytes: number,
    private readonly checkIntervalMs: number,
    private readonly clock: Clock,
  ) {}

  get enabled(): boolean {
    return this.minFreeBytes > 0;
  }

  /** True when `admit` needs a fresh statfs first (call `refresh` and await it). */
  needsRefresh(bytes: number): boolean {
    if (!this.enabled) return false;
    if (this.refreshing !== null) return true;
    return this.clock.now() - this.checkedAt >= this.checkIntervalMs || this.estimate - bytes < this.minFreeBytes;
  }

  /** One statfs shared by every append waiting on it. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const { freeBytes } = await this.fs.statfs(this.dir);
        this.estimate = freeBytes;
        this.checkedAt = this.clock.now();
      } catch (err) {
        throw fromFsError(err, 'statfs', { file: this.dir });
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Admits `bytes` or throws LOG_DISK_FULL. */
  admit(bytes: number, context: { topic: string }): void {
    if (!this.enabled) return;
    if (this.estimate - bytes < this.minFreeBytes) {
      throw new LogError('LOG_DISK_FULL', `free disk space ${this.estimate} bytes is below the floor of ${this.minFreeBytes} (minFreeBytes); append of ${bytes} bytes refused`, {
        ...context,
        file: this.dir,
        freeBytes: this.estimate,
        minFreeBytes: this.minFreeBytes,
      });
    }
    this.estimate -= bytes;
  }
}
