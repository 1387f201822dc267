/**
 * The sparse time index of a segment (`<baseOffset>.timeindex`): fixed
 * 12-byte entries, big-endian:
 *
 * | size | field          |
 * |-----:|----------------|
 * | 8    | maxTimestamp   | int64 ms: the largest timestamp of every record before `relativeOffset` in the segment |
 * | 4    | relativeOffset | uint32, offset − segment base offset |
 *
 * So every record below `relativeOffset` has a timestamp <= `maxTimestamp`:
 * a lookup for time T starts scanning at the last entry whose maxTimestamp
 * is < T. Entries are written beside the offset index entries (same
 * relative offsets), and when a segment is closed a final entry
 * (segment max timestamp, record count) is added: a closed segment whose
 * last entry is not that final one has its time index rebuilt. Derived
 * data, like the offset index.
 */
export const TIME_INDEX_ENTRY_BYTES = 12;

export class TimeIndex {
  private buf: Buffer;
  count: number;

  constructor(buf?: Buffer) {
    const usable = buf ? buf.length - (buf.length % TIME_INDEX_ENTRY_BYTES) : 0;
    this.buf = buf && usable > 0 ? buf.subarray(0, usable) : Buffer.alloc(0);
    this.count = usable / TIME_INDEX_ENTRY_BYTES;
  }

  timestamp(i: number): number {
    const p = i * TIME_INDEX_ENTRY_BYTES;
    return this.buf.readInt32BE(p) * 0x100000000 + this.buf.readUInt32BE(p + 4);
  }
  relOffset(i: number): number {
    return this.buf.readUInt32BE(i * TIME_INDEX_ENTRY_BYTES + 8);
  }

  append(maxTimestamp: number, relOffset: number): void {
    const need = (this.count + 1) * TIME_INDEX_ENTRY_BYTES;
    if (need > this.buf.length) {
      const next = Buffer.alloc(Math.max(need, this.buf.length * 2, 1536));
      this.buf.copy(next, 0, 0, this.count * TIME_INDEX_ENTRY_BYTES);
      this.buf = next;
    }
    const p = this.count * TIME_INDEX_ENTRY_BYTES;
    const hi = Math.floor(maxTimestamp / 0x100000000);
    this.buf.writeInt32BE(hi, p);
    this.buf.writeUInt32BE(maxTimestamp - hi * 0x100000000, p + 4);
    this.buf.writeUInt32BE(relOffset, p + 8);
    this.count++;
  }

  truncate(n: number): void {
    this.count = Math.min(this.count, n);
  }

  bytes(from = 0): Buffer {
    return this.buf.subarray(from * TIME_INDEX_ENTRY_BYTES, this.count * TIME_INDEX_ENTRY_BYTES);
  }

  /** Index of the last entry whose maxTimestamp < ts, or -1 (entries' maxTimestamp never decreases). */
  lastBefore(ts: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestamp(mid) < ts) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
