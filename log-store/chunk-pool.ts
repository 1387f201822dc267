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
 * Idle chunks are dropped when a read reaches the end of its partition: the
 * reader caught up, and its next reads are small.
 *
 * Reads differ in length (a segment's last chunk, a read that goes on where
 * the last chunk ended), so a read takes the smallest idle chunk at least as
 * long, as a view of its first bytes.
 */
export class ChunkPool {
  readonly #free: Buffer[] = [];
  #freeBytes = 0;
  readonly #chunks = new WeakMap<ArrayBuffer, ChunkState>();
  /** Blocks handed out and not back yet: only those count when handed back (a second hand-back, or a block never leased, is ignored). */
  readonly #out = new WeakSet<object>();
  /** The memory of every chunk this pool made: each is one chunk's alone (not Node's shared pool), whatever view of it is out. */
  readonly #owned = new WeakSet<ArrayBuffer>();

  /** @param maxPooledBytes idle chunks kept at most. Default 40 MiB: two chunks of a 16 MiB read (each is maxBytes plus an index interval). */
  constructor(private readonly maxPooledBytes = 40 * 1024 * 1024) {}

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

  /** Drops the idle chunks (a reader caught up with the log: its next reads are small, and the memory can go). */
  trimIdle(): void {
    this.#free.length = 0;
    this.#freeBytes = 0;
  }

  /** Idle chunks held (bytes). */
  get idleBytes(): number {
    return this.#freeBytes;
  }

  #settle(memory: ArrayBuffer, state: ChunkState): void {
    if (state.cached || state.leases > 0 || state.pinned) return;
    this.#chunks.delete(memory);
    const size = memory.byteLength;
    if (this.#freeBytes + size > this.maxPooledBytes) return;
    this.#free.push(Buffer.from(memory));
    this.#freeBytes += size;
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
