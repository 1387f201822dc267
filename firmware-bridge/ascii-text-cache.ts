/**
 * Text of short byte strings that repeat (MQTT topic names, sensor ids),
 * without a new string per occurrence: ASCII byte strings are remembered by
 * an FNV-1a hash of their bytes and checked byte for byte against the
 * remembered string before it is returned, so a hash collision only costs a
 * fresh string. Anything with a byte ≥ 0x80 is decoded as UTF-8 every time
 * (not remembered). At most `maxEntries` strings are kept; then the cache
 * starts over (per instance, no shared state).
 */
export class AsciiTextCache {
  private readonly texts = new Map<number, string>();

  /** `maxEntries`: strings kept before the cache starts over. Default 4096. */
  constructor(private readonly maxEntries = 4096) {}

  /** The text of `buf[start, end)` (UTF-8), the same string as `buf.toString('utf8', start, end)`. */
  text(buf: Buffer, start: number, end: number): string {
    let hash = 0x811c9dc5;
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b >= 0x80) return buf.toString('utf8', start, end);
      hash = Math.imul(hash ^ b, 0x01000193);
    }
    const cached = this.texts.get(hash);
    if (cached !== undefined && cached.length === end - start) {
      let i = 0;
      while (i < cached.length && cached.charCodeAt(i) === buf[start + i]) i++;
      if (i === cached.length) return cached;
    }
    // ASCII: latin1 decodes it as UTF-8 would, without the UTF-8 decoder's checks.
    const text = buf.toString('latin1', start, end);
    if (this.texts.size >= this.maxEntries) this.texts.clear();
    this.texts.set(hash, text);
    return text;
  }
}
