/**
 * A pool of encode buffers, one per store instance. Batches are encoded
 * into buffers of power-of-two size classes (64 KiB .. 8 MiB) taken from
 * here and given back once their bytes are written (the kernel has copied
 * them), so steady appends reuse memory that is already mapped instead of
 * faulting in fresh pages and churning the GC for every batch.
 *
 * Invariant: a buffer is given back only when nothing reads its bytes any
 * more; holders of a batch keep only its length after that.
 */
const MIN_CLASS = 64 * 1024;
const MAX_CLASS = 8 * 1024 * 1024;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooledBytes = 0;

  /** @param maxPooledBytes idle buffers kept at most. Default 32 MiB. */
  constructor(private readonly maxPooledBytes = 32 * 1024 * 1024) {}

  /** A buffer of at least `minBytes` (contents undefined). */
  take(minBytes: number): Buffer {
    if (minBytes > MAX_CLASS) return Buffer.allocUnsafeSlow(minBytes);
    let size = MIN_CLASS;
    while (size < minBytes) size *= 2;
    const list = this.free.get(size);
    const buf = list?.pop();
    if (buf !== undefined) {
      this.pooledBytes -= size;
      return buf;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** Gives back a buffer from `take` (or any buffer: ones not of a pooled size are dropped). */
  give(buf: Buffer): void {
    const size = buf.length;
    if (size < MIN_CLASS || size > MAX_CLASS || (size & (size - 1)) !== 0 || buf.byteOffset !== 0) return;
    if (this.pooledBytes + size > this.maxPooledBytes) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf);
    this.pooledBytes += size;
  }
}
