/**
 * Read buffers ("chunks") of a store's big reads, reused.
 *
 * A segment reads a chunk (up to maxBytes of batches at once) into a
 * buffer from here and keeps it as its last chunk, for the next read. Why
 * reuse: reading into fresh memory costs its page faults. Measured here,
 * 16 MiB read from the page cache took 16-27 ms into a fresh buffer and
 * 3 ms into a reused one.
 *
 * Only reads for blocks that come back (`readBatches` with `handBack`) use
 * the pool. A chunk comes back to it only when nothing can see its bytes any
 * more:
 * - its segment has moved on to another chunk (or closed);
 * - every block `readBatches` made over it was handed back
 *   (`LogStoreApi.releaseBlocks`).
 *
 * A chunk that `read`, or `readBatches` without `handBack`, took records
 * from is never reused: those keep views of it. Neither is one whose blocks
 * are not all handed back. The garbage collector frees those, as it frees
 * every chunk read without `handBack`.
 *
 * Idle chunks are dropped once a read reached the end of its partition (the
 * reader caught up, and its next reads are small) and no big read
 * (REUSE_BYTES or more) took one for `trimDelayMs` after. Not at once: a
 * rule restarted, or a second reader going through the same backlog, would
 * fault its first chunk in afresh. Measured here: the first 50,000-record
 * read of a pass took 30-46 ms into a fresh 16 MiB chunk (4,100 page
 * faults), the reads after it 7-10 ms. TRIM_DELAY_MS is as long as the
 * block scanner keeps a closed scanner's memory (rules/block-field-scanner.ts):
 * with 2 s, a filter rule started 3 s after the last one caught up (the
 * bench's rounds: a baseline pass between) took 32-45 ms for its first
 * read, against 19-21 ms with the chunks still there.
 *
 * Reads differ in length (a segment's last chunk, a read that goes on where
 * the last chunk ended, a read that ends with the records it asked for),
 * so a read takes the smallest idle chunk at least as long, as a view of
 * its first bytes; over `maxPooledBytes`, the shortest idle chunks go
 * first. Keeping the longest, and keeping them past the end
 * of a pass, the bench's filter rule faulted in 2,700-3,600 pages a run
 * (four runs in one process) instead of 7,000-12,000.
 */
import type { Timers } from './types.ts';

/** How long idle chunks stay after a reader caught up, by default. */
const TRIM_DELAY_MS = 10_000;

/** A read this long or longer that takes an idle chunk keeps the pool from trimming (a pass through the log, not a reader following its end). */
const REUSE_BYTES = 1 << 20;

const nodeTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface ChunkPoolOptions {
  /** Idle chunks kept at most. Default 40 MiB: two chunks of a 16 MiB read (each is maxBytes plus an index interval). */
  maxPooledBytes?: number;
  /** How long idle chunks stay after a reader caught up (default TRIM_DELAY_MS, 10 s; 0: dropped at once). */
  trimDelayMs?: number;
  /** What the trim is scheduled with (the store's). */
  timers?: Timers;
}

export class ChunkPool {
  readonly #free: Buffer[] = [];
  #freeBytes = 0;
  readonly #chunks = new WeakMap<ArrayBuffer, ChunkState>();
  /** Blocks handed out and not back yet: only those count when handed back (a second hand-back, or a block never leased, is ignored). */
  readonly #out = new WeakSet<object>();
  /** The memory of every chunk this pool made: each is one chunk's alone (not Node's shared pool), whatever view of it is out. */
  readonly #owned = new WeakSet<ArrayBuffer>();

  readonly #maxPooledBytes: number;
  readonly #trimDelayMs: number;
  readonly #timers: Timers;
  /** The pending trim (see `caughtUp`), and whether a big read took an idle chunk since a reader last caught up. */
  #trim: unknown = null;
  #reused = false;

  constructor(options: ChunkPoolOptions = {}) {
    this.#maxPooledBytes = options.maxPooledBytes ?? 40 * 1024 * 1024;
    this.#trimDelayMs = options.trimDelayMs ?? TRIM_DELAY_MS;
    this.#timers = options.timers ?? nodeTimers;
  }

  /**
   * A buffer of exactly `length` bytes (contents undefined): the first bytes
   * of the smallest idle chunk that long or longer (of those, the one idle
   * longest), else a new one.
   */
  take(length: number): Buffer {
    const free = this.#free;
    let best = -1;
    for (let i = 0; i < free.length; i++) {
      const size = free[i]!.length;
      if (size >= length && (best < 0 || size < free[best]!.length)) best = i;
    }
    if (best >= 0) {
      const buf = free[best]!;
      free.splice(best, 1);
      this.#freeBytes -= buf.length;
      if (length >= REUSE_BYTES) this.#reused = true;
      return buf.length === length ? buf : buf.subarray(0, length);
    }
    const buf = Buffer.allocUnsafeSlow(length);
    this.#owned.add(buf.buffer as ArrayBuffer);
    return buf;
  }

  /** Whether `chunk` views the start of memory this pool made: the whole memory is its own, to transfer (see decode-worker.ts). */
  owns(chunk: Buffer): boolean {
    return chunk.byteOffset === 0 && this.#owned.has(chunk.buffer as ArrayBuffer);
  }

  /**
   * `back` is a chunk `owns` said yes to, back from a transfer (the decode
   * worker's): the same memory under a new ArrayBuffer, which it owns too.
   */
  ownAgain(back: Buffer): void {
    if (back.byteOffset === 0 && back.buffer instanceof ArrayBuffer) this.#owned.add(back.buffer);
  }

  /** `chunk` (a whole buffer of its own, or a chunk from `take`) became its segment's last chunk. */
  track(chunk: Buffer): void {
    const memory = chunk.buffer;
    if (!(memory instanceof ArrayBuffer) || chunk.byteOffset !== 0 || (chunk.length !== memory.byteLength && !this.#owned.has(memory))) return;
    this.#chunks.set(memory, { leases: 0, cached: true, pinned: false });
  }

  /** `block` (over a chunk) was handed out, to come back. */
  lease(block: ChunkView): void {
    this.#out.add(block);
    const state = this.#chunks.get(block.buf.buffer as ArrayBuffer);
    if (state !== undefined) state.leases++;
  }

  /** Records that view `chunk` were handed out: it is never reused. */
  pin(chunk: Buffer): void {
    const state = this.#chunks.get(chunk.buffer as ArrayBuffer);
    if (state !== undefined) state.pinned = true;
  }

  /** The segment moved on from `chunk`. */
  uncache(chunk: Buffer): void {
    const state = this.#chunks.get(chunk.buffer as ArrayBuffer);
    if (state === undefined || !state.cached) return;
    state.cached = false;
    this.#settle(chunk.buffer as ArrayBuffer, state);
  }

  /** `block` came back: its chunk's lease ends (a block not handed out by `lease`, or back already, is ignored). */
  release(block: ChunkView): void {
    if (!this.#out.delete(block)) return;
    const memory = block.buf.buffer as ArrayBuffer;
    const state = this.#chunks.get(memory);
    if (state === undefined || state.leases === 0) return;
    state.leases--;
    this.#settle(memory, state);
  }

  /**
   * A read reached the end of its partition: the idle chunks go in
   * `trimDelayMs`, unless a big read takes one before (another pass
   * through the log is under way; it says so again when it catches up).
   */
  caughtUp(): void {
    this.#reused = false;
    if (this.#trimDelayMs <= 0) {
      this.trimIdle();
      return;
    }
    if (this.#trim !== null) return;
    this.#trim = this.#timers.setTimeout(() => {
      this.#trim = null;
      if (!this.#reused) this.trimIdle();
    }, this.#trimDelayMs);
    // never keeps the process alive
    (this.#trim as { unref?: () => void } | null)?.unref?.();
  }

  /** Drops the idle chunks now. */
  trimIdle(): void {
    this.#free.length = 0;
    this.#freeBytes = 0;
  }

  /** Drops the idle chunks and any pending trim (the store closes). */
  close(): void {
    if (this.#trim !== null) this.#timers.clearTimeout(this.#trim);
    this.#trim = null;
    this.trimIdle();
  }

  /** Idle chunks held (bytes). */
  get idleBytes(): number {
    return this.#freeBytes;
  }

  #settle(memory: ArrayBuffer, state: ChunkState): void {
    if (state.cached || state.leases > 0 || state.pinned) return;
    this.#chunks.delete(memory);
    const size = memory.byteLength;
    if (size > this.#maxPooledBytes) return;
    const free = this.#free;
    free.push(Buffer.from(memory));
    this.#freeBytes += size;
    // over the limit: the smallest idle chunks go (a short read can take a long chunk's first bytes, not the other way round)
    while (this.#freeBytes > this.#maxPooledBytes) {
      // of equal ones, the one idle least long
      let smallest = free.length - 1;
      for (let i = smallest - 1; i >= 0; i--) if (free[i]!.length < free[smallest]!.length) smallest = i;
      this.#freeBytes -= free[smallest]!.length;
      free.splice(smallest, 1);
    }
  }
}

/** A block over a chunk (a RecordBlock), as the pool sees it. */
interface ChunkView {
  readonly buf: Buffer;
}

/**
 * What the pool knows of a tracked chunk, by its memory (a WeakMap key).
 * Nothing here refers to the memory: an entry whose value held it kept the
 * chunks alive until a full collection (ephemerons), measured as 40 MB more
 * RSS in the replicator, which never hands blocks back.
 */
interface ChunkState {
  /** Blocks over it handed out and not back yet. */
  leases: number;
  /** It is its segment's last chunk. */
  cached: boolean;
  /** `read`, or `readBatches` without `handBack`, handed out views of it. */
  pinned: boolean;
}
