/**
 * The sparse offset index of a segment (`<baseOffset>.index`): fixed 8-byte
 * entries, big-endian, sorted by offset:
 *
 * | size | field          |
 * |-----:|----------------|
 * | 4    | relativeOffset | uint32, offset − segment base offset, of a batch's first record |
 * | 4    | position       | uint32, byte position of that batch in the `.log` |
 *
 * An entry is added every `indexIntervalBytes` of log. The first batch of a
 * segment (position 0) has no entry. The index is derived data: it is
 * written without fsync during appends (fsynced when the segment rolls) and
 * rebuilt from the log when missing or damaged. Invariant: relative offsets
 * and positions strictly increase.
 */
export const OFFSET_INDEX_ENTRY_BYTES = 8;

export class OffsetIndex {
  private buf: Buffer;
  count: number;

  constructor(buf?: Buffer) {
    const usable = buf ? buf.length - (buf.length % OFFSET_INDEX_ENTRY_BYTES) : 0;
    this.buf = buf && usable > 0 ? buf.subarray(0, usable) : Buffer.alloc(0);
    this.count = usable / OFFSET_INDEX_ENTRY_BYTES;
  }

  relOffset(i: number): number {
    return this.buf.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES);
  }
  position(i: number): number {
    return this.buf.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES + 4);
  }

  append(relOffset: number, position: number): void {
    const need = (this.count + 1) * OFFSET_INDEX_ENTRY_BYTES;
    if (need > this.buf.length) {
      const next = Buffer.alloc(Math.max(need, this.buf.length * 2, 1024));
      this.buf.copy(next, 0, 0, this.count * OFFSET_INDEX_ENTRY_BYTES);
      this.buf = next;
    }
    this.buf.writeUInt32BE(relOffset, this.count * OFFSET_INDEX_ENTRY_BYTES);
    this.buf.writeUInt32BE(position, this.count * OFFSET_INDEX_ENTRY_BYTES + 4);
    this.count++;
  }

  /** Keeps the first `n` entries. */
  truncate(n: number): void {
    this.count = Math.min(this.count, n);
  }

  /** The bytes of entries [from, count), for writing to the file. */
  bytes(from = 0): Buffer {
    return this.buf.subarray(from * OFFSET_INDEX_ENTRY_BYTES, this.count * OFFSET_INDEX_ENTRY_BYTES);
  }

  /** Index of the last entry with relOffset <= rel, or -1. */
  floor(rel: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.relOffset(mid) <= rel) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Number of leading entries that are strictly increasing and point inside a log of `logBytes`. */
  validPrefix(logBytes: number): number {
    let prevRel = 0;
    let prevPos = 0;
    for (let i = 0; i < this.count; i++) {
      const rel = this.relOffset(i);
      const pos = this.position(i);
      if (rel <= prevRel && i > 0) return i;
      if (pos <= prevPos || pos >= logBytes || rel === 0) return i;
      prevRel = rel;
      prevPos = pos;
    }
    return this.count;
  }
}
