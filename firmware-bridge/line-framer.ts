/**
 * Splits a byte stream into lines. Bytes arrive in arbitrary chunks (a
 * serial read can end mid-line); a line ends at '\n', and a '\r' just before
 * it is dropped. Memory is bounded: a line longer than `maxLineBytes` is
 * reported once as an overflow (with its first bytes) and the rest of it, up
 * to the next '\n', is discarded, so a device that never sends a newline
 * cannot grow the buffer.
 *
 * `reset()` forgets a partial line (the device went away mid-line) and
 * returns it so the caller can dead-letter it instead of losing it silently.
 */

export interface LineFramerOptions {
  /** Longest accepted line in bytes, without the line ending. Default 65536. */
  maxLineBytes?: number;
}

export type FramedLine =
  | { type: 'line'; bytes: Buffer }
  /** A line exceeded maxLineBytes: `head` is its first bytes (at most 64), `bytes` how many were seen before it was cut. */
  | { type: 'overflow'; head: Buffer; bytes: number };

export const LINE_FRAMER_DEFAULTS = Object.freeze({ maxLineBytes: 65_536 });

const NL = 0x0a;
const CR = 0x0d;

export class LineFramer {
  readonly maxLineBytes: number;
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Inside an overlong line: discard until the next newline. */
  private skipping = false;

  constructor(options: LineFramerOptions = {}) {
    this.maxLineBytes = options.maxLineBytes ?? LINE_FRAMER_DEFAULTS.maxLineBytes;
  }

  /** Bytes of the partial line held (always <= maxLineBytes + 1). */
  get buffered(): number {
    return this.partBytes;
  }

  /** Feeds a chunk; returns the complete lines (and overflows) it finished, in order. */
  push(chunk: Buffer): FramedLine[] {
    const out: FramedLine[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NL, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.skipping) {
        if (nl !== -1) this.skipping = false;
      } else {
        const piece = chunk.subarray(start, end);
        // +1 allows a trailing '\r' that belongs to the line ending.
        if (this.partBytes + piece.length > this.maxLineBytes + 1) {
          const head = Buffer.concat([...this.parts, piece]).subarray(0, 64);
          out.push({ type: 'overflow', head: Buffer.from(head), bytes: this.partBytes + piece.length });
          this.parts = [];
          this.partBytes = 0;
          this.skipping = nl === -1;
        } else if (nl === -1) {
          // Copy: the caller may reuse its read buffer.
          this.parts.push(Buffer.from(piece));
          this.partBytes += piece.length;
        } else {
          let line = this.parts.length === 0 ? Buffer.from(piece) : Buffer.concat([...this.parts, piece]);
          this.parts = [];
          this.partBytes = 0;
          if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
          if (line.length > this.maxLineBytes) {
            out.push({ type: 'overflow', head: Buffer.from(line.subarray(0, 64)), bytes: line.length });
          } else if (line.length > 0) {
            out.push({ type: 'line', bytes: line });
          }
        }
      }
      start = nl === -1 ? chunk.length : nl + 1;
    }
    return out;
  }

  /** Drops the partial line (device gone mid-line) and returns it (empty when there was none). */
  reset(): Buffer {
    const partial = this.skipping ? Buffer.alloc(0) : Buffer.concat(this.parts);
    this.parts = [];
    this.partBytes = 0;
    this.skipping = false;
    return partial;
  }
}
