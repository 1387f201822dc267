/**
 * Selective field extraction: reads only the top-level fields a rule uses
 * out of a record's raw UTF-8 JSON bytes, instead of `JSON.parse` of the
 * whole value (which allocates every field of every record).
 *
 * Contract: when `extract` returns true, `values[k]` holds exactly what
 * `getField(JSON.parse(text), name, caseSensitive)` returns for field k
 * (`null` when absent), where `text` is the bytes decoded as UTF-8 (as the
 * runner decodes them); the whole input has been validated as JSON (strings
 * with their escapes, numbers, literals, nested values) with no byte skipped
 * unchecked. When it returns false (not an object, invalid JSON, two keys
 * matching one field, nesting deeper than `MAX_DEPTH`), the caller must parse
 * the whole value with `JSON.parse`, which then decides (e.g. INVALID_JSON).
 *
 * Case rules (as `getField`): a case-sensitive field matches its exact key;
 * a case-insensitive one its exact key, else the first key (in document
 * order) equal to it ignoring case (`toUpperCase`). Keys and values that are
 * not plain ASCII, or hold escapes, are decoded by `JSON.parse` of their own
 * slice, so their values match by construction.
 *
 * The values array given to `extract` is reused record after record:
 * callers must not keep it (plan closures never do). An array, not an
 * object keyed by the field names: a store or load at a computed name is
 * megamorphic (measured 135 against 40-60 ns a record for three fields).
 *
 * Fast path: records of one source mostly share their keys, in order. The
 * keys of the last record the general scanner accepted (plain ASCII, each
 * filling at most one field) become a template (`KeyLayout`); the next
 * record is first read against it: keys compared byte for byte (a word at a
 * time), their fields known without matching, values scanned and validated
 * as always. Any difference (another key, order, escape, invalid byte)
 * sends the record to the general scanner, whose result it then is (and
 * whose keys become the next template). Same contract either way.
 */

/** A top-level field of the record value that a plan reads. */
export interface ValueField {
  readonly name: string;
  readonly caseSensitive: boolean;
}

/** Nesting below a field deeper than this is left to JSON.parse. */
const MAX_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Bytes allowed after a backslash in a JSON string. */
const ESCAPES = new Uint8Array(128);
for (const c of '"\\/bfnrtu') ESCAPES[c.charCodeAt(0)] = 1;
/** Byte classes inside a JSON string: 0 plain ASCII, 1 quote, 2 backslash, 3 control (invalid), 4 non-ASCII. */
const STRING_CLASS = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) STRING_CLASS[b] = 3;
STRING_CLASS[0x22] = 1;
STRING_CLASS[0x5c] = 2;
for (let b = 0x80; b < 0x100; b++) STRING_CLASS[b] = 4;
const HEX = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

interface Slot {
  name: string;
  caseSensitive: boolean;
  /** UTF-8 bytes of the name. */
  exact: Uint8Array;
  /** ASCII bytes of `name.toUpperCase()` when case-insensitive and that is ASCII; else null. */
  upperAscii: Uint8Array | null;
  /** `name.toUpperCase()`. */
  upper: string;
  /** String intern cache (see `StringCache`), created on the first string value. */
  cache: StringCache | null;
  // per record:
  exactSeen: boolean;
  foldSeen: boolean;
  exactValue: unknown;
  foldValue: unknown;
}

const isWs = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** Returned by the scanning helpers instead of a position when the input is not handled. */
const FAIL = -1;

export class FieldExtractor {
  readonly fields: readonly ValueField[];
  readonly #slots: Slot[];
  /** String cache of the slot whose value is being scanned (null: none). */
  #cache: StringCache | null = null;
  /** Value of the last scanned literal/number/string (set by #value). */
  #val: unknown = null;
  /** Container kinds while skipping nested values (1 object, 2 array). */
  readonly #stack = new Uint8Array(MAX_DEPTH);
  /** Matching slots of the current key: `#hits[0..#hitCount)`. */
  readonly #hits: Int32Array;
  #hitCount = 0;
  /** Keys of the last record the general scanner read (the fast path's template), and the one being recorded. */
  #layout: KeyLayout | null = null;
  #recording = new KeyLayout();
  /** A DataView of the last buffer read (the fast path compares keys a word at a time). */
  #viewOf: Buffer | null = null;
  #view: DataView | null = null;

  /**
   * `fields`: distinct names; a name must not appear twice (once
   * case-sensitive, once not) nor be a property of Object.prototype
   * (the planner falls back to full parsing for such plans).
   */
  constructor(fields: readonly ValueField[]) {
    this.fields = fields;
    this.#hits = new Int32Array(fields.length);
    this.#slots = fields.map((f) => {
      const upper = f.name.toUpperCase();
      const asciiUpper = !f.caseSensitive && /^[\x00-\x7f]*$/.test(upper);
      return {
        name: f.name,
        caseSensitive: f.caseSensitive,
        exact: Buffer.from(f.name, 'utf8'),
        upperAscii: asciiUpper ? Buffer.from(upper, 'latin1') : null,
        upper,
        cache: null,
        exactSeen: false,
        foldSeen: false,
        exactValue: null,
        foldValue: null,
      };
    });
  }

  /** A values array (one null per field), to pass to `extract` record after record. */
  newValues(): unknown[] {
    return this.fields.map(() => null);
  }

  /** Fills `values` (field k's value at k) from `bytes` (see the module comment); false: parse the whole value instead. */
  extract(bytes: Uint8Array, values: unknown[]): boolean {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.extractAt(buf, 0, buf.length, values);
  }

  /** `extract` of the value `buf[start, end)`, in place (no view of it is made). */
  extractAt(buf: Buffer, start: number, end: number, values: unknown[]): boolean {
    const slots = this.#slots;
    for (const s of slots) {
      s.exactSeen = false;
      s.foldSeen = false;
    }
    let ok = false;
    if (this.#layout !== null) {
      ok = this.#scanLayout(this.#layout, buf, start, end);
      if (!ok)
        for (const s of slots) {
          s.exactSeen = false;
          s.foldSeen = false;
        }
    }
    if (!ok) {
      const rec = this.#recording;
      rec.reset();
      if (!this.#scan(buf, start, end)) return false;
      // the next record likely has the same keys: they become the fast path's template
      if (rec.learnable) {
        this.#recording = this.#layout ?? new KeyLayout();
        this.#layout = rec;
      }
    }
    for (let k = 0; k < slots.length; k++) {
      const s = slots[k]!;
      values[k] = s.exactSeen ? s.exactValue : s.foldSeen ? s.foldValue : null;
    }
    return true;
  }

  #scan(buf: Buffer, start: number, n: number): boolean {
    let p = start;
    while (p < n && isWs(buf[p]!)) p++;
    if (p >= n || buf[p] !== LBRACE) return false;
    p++;
    while (p < n && isWs(buf[p]!)) p++;
    if (p < n && buf[p] === RBRACE) p++;
    else {
      for (;;) {
        if (p >= n || buf[p] !== QUOTE) return false;
        const keyStart = p + 1;
        // scan the key: plain ASCII bytes in a tight loop, anything else below
        let q = keyStart;
        let plain = true;
        let c = 0;
        while (q < n && (c = buf[q]!) !== QUOTE && c >= 0x20 && c !== BACKSLASH && c < 0x80) q++;
        if (c !== QUOTE || q >= n)
          for (;;) {
            if (q >= n) return false;
            const k = STRING_CLASS[buf[q]!]!;
            if (k === 0) {
              q++;
              continue;
            }
            if (k === 1) break;
            if (k === 3) return false;
            plain = false;
            if (k === 2) {
              q = escapeEnd(buf, q, n);
              if (q === FAIL) return false;
              continue;
            }
            q++;
          }
        const keyEnd = q;
        if (!this.#match(buf, keyStart, keyEnd, plain)) return false;
        this.#record(buf, keyStart, keyEnd, plain);
        p = keyEnd + 1;
        while (p < n && isWs(buf[p]!)) p++;
        if (p >= n || buf[p] !== COLON) return false;
        p++;
        while (p < n && isWs(buf[p]!)) p++;
        if (this.#hitCount === 0) {
          p = this.#skipValue(buf, p, n);
          if (p === FAIL) return false;
        } else {
          const slot = this.#slots[this.#hits[0]!]!;
          this.#cache = slot.cache ??= new StringCache();
          p = this.#value(buf, p, n);
          if (p === FAIL) return false;
          if (!this.#assign(buf, keyStart, keyEnd, plain)) return false;
        }
        while (p < n && isWs(buf[p]!)) p++;
        if (p >= n) return false;
        const b = buf[p]!;
        p++;
        if (b === RBRACE) break;
        if (b !== COMMA) return false;
        while (p < n && isWs(buf[p]!)) p++;
      }
    }
    while (p < n && isWs(buf[p]!)) p++;
    return p === n;
  }

  /** Adds the key just matched to the layout being recorded (or marks it unusable: escapes, non-ASCII, several slots). */
  #record(buf: Buffer, start: number, end: number, plain: boolean): void {
    const rec = this.#recording;
    if (!rec.learnable) return;
    if (!plain || this.#hitCount > 1) {
      rec.learnable = false;
      return;
    }
    let slot = -1;
    let exact = false;
    if (this.#hitCount === 1) {
      slot = this.#hits[0]!;
      const s = this.#slots[slot]!;
      exact = s.exact.length === end - start && equalBytes(buf, start, s.exact);
    }
    rec.add(buf, start, end, slot, exact);
  }

  /**
   * The fast path: the record at `buf[start, n)` has exactly the keys of
   * `layout`, in order (compared byte for byte; whitespace anywhere JSON
   * allows it), so each key's slot is known without matching; values are
   * scanned and validated as in `#scan`. False: not that layout, or not
   * valid (the general scanner decides then).
   */
  #scanLayout(layout: KeyLayout, buf: Buffer, start: number, n: number): boolean {
    const slots = this.#slots;
    const bytes = layout.bytes;
    const words = layout.words;
    if (this.#viewOf !== buf) {
      this.#viewOf = buf;
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    }
    const view = this.#view!;
    let p = start;
    while (p < n && isWs(buf[p]!)) p++;
    if (p >= n || buf[p] !== LBRACE) return false;
    p++;
    while (p < n && isWs(buf[p]!)) p++;
    const count = layout.count;
    for (let k = 0; k < count; k++) {
      if (k > 0) {
        if (p >= n || buf[p] !== COMMA) return false;
        p++;
        while (p < n && isWs(buf[p]!)) p++;
      }
      const from = layout.starts[k]!;
      const len = layout.lengths[k]!;
      if (p + len + 2 > n || buf[p] !== QUOTE || buf[p + len + 1] !== QUOTE) return false;
      const q = p + 1;
      // four bytes at a time: the template's keys start at word boundaries (KeyLayout.add)
      let i = 0;
      for (; i + 4 <= len; i += 4) if (view.getUint32(q + i, true) !== words[(from + i) >>> 2]) return false;
      for (; i < len; i++) if (buf[q + i] !== bytes[from + i]) return false;
      p = q + len + 1;
      while (p < n && isWs(buf[p]!)) p++;
      if (p >= n || buf[p] !== COLON) return false;
      p++;
      while (p < n && isWs(buf[p]!)) p++;
      const slot = layout.slots[k]!;
      if (slot < 0) {
        p = this.#skipValue(buf, p, n);
        if (p === FAIL) return false;
      } else {
        const s = slots[slot]!;
        this.#cache = s.cache ??= new StringCache();
        p = this.#value(buf, p, n);
        if (p === FAIL) return false;
        if (layout.exact[k] === 1) {
          s.exactSeen = true;
          s.exactValue = this.#val;
        } else {
          s.foldSeen = true;
          s.foldValue = this.#val;
        }
      }
      while (p < n && isWs(buf[p]!)) p++;
    }
    if (p >= n || buf[p] !== RBRACE) return false;
    p++;
    while (p < n && isWs(buf[p]!)) p++;
    return p === n;
  }

  /** Validates and skips a value nobody reads: plain strings and numbers without the general skipper. */
  #skipValue(buf: Buffer, p: number, n: number): number {
    const v = p < n ? buf[p]! : 0;
    if (v === QUOTE) {
      let e = p + 1;
      let c = 0;
      while (e < n && (c = buf[e]!) !== QUOTE && c !== BACKSLASH && c >= 0x20) e++;
      return e < n && c === QUOTE ? e + 1 : skipString(buf, p, n);
    }
    if (v === MINUS || (v >= ZERO && v <= NINE)) return skipNumber(buf, p, n);
    return this.#skip(buf, p, n);
  }

  /** Sets `#hits` to the slots the key matches (exactly or ignoring case). */
  #match(buf: Buffer, start: number, end: number, plain: boolean): boolean {
    const hits = this.#hits;
    let count = 0;
    const slots = this.#slots;
    const len = end - start;
    if (plain) {
      for (let i = 0; i < slots.length; i++) {
        const s = slots[i]!;
        if (s.exact.length === len && equalBytes(buf, start, s.exact)) hits[count++] = i;
        else if (s.upperAscii !== null && s.upperAscii.length === len && equalUpper(buf, start, s.upperAscii)) hits[count++] = i;
      }
      this.#hitCount = count;
      return true;
    }
    let key: string;
    try {
      key = JSON.parse(buf.toString('utf8', start - 1, end + 1)) as string;
    } catch {
      return false;
    }
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (key === s.name || (!s.caseSensitive && key.toUpperCase() === s.upper)) hits[count++] = i;
    }
    this.#hitCount = count;
    return true;
  }

  /** Stores `#val` in the matched slots; false on a second key matching a slot the same way (JSON.parse decides then). */
  #assign(buf: Buffer, start: number, end: number, plain: boolean): boolean {
    const hits = this.#hits;
    const slots = this.#slots;
    const len = end - start;
    for (let h = 0; h < this.#hitCount; h++) {
      const s = slots[hits[h]!]!;
      const exact = plain ? s.exact.length === len && equalBytes(buf, start, s.exact) : JSON.parse(buf.toString('utf8', start - 1, end + 1)) === s.name;
      if (exact) {
        if (s.exactSeen) return false;
        s.exactSeen = true;
        s.exactValue = this.#val;
      } else {
        if (s.foldSeen) return false;
        s.foldSeen = true;
        s.foldValue = this.#val;
      }
    }
    return true;
  }

  /** Scans the value at `p` into `#val`; returns the position after it. */
  #value(buf: Buffer, p: number, n: number): number {
    if (p >= n) return FAIL;
    const b = buf[p]!;
    if (b === QUOTE) {
      let q = p + 1;
      let ascii = true;
      let escaped = false;
      let hash = 0;
      for (;;) {
        if (q >= n) return FAIL;
        const c = buf[q]!;
        if (c === QUOTE) break;
        if (c < 0x20) return FAIL;
        hash = (hash * 31 + c) | 0;
        if (c >= 0x80) ascii = false;
        else if (c === BACKSLASH) {
          escaped = true;
          q = escapeEnd(buf, q, n);
          if (q === FAIL) return FAIL;
          continue;
        }
        q++;
      }
      if (escaped) this.#val = JSON.parse(buf.toString('utf8', p, q + 1));
      else if (ascii && this.#cache !== null) this.#val = this.#cache.get(buf, p + 1, q, hash);
      else this.#val = buf.toString(ascii ? 'latin1' : 'utf8', p + 1, q);
      return q + 1;
    }
    if (b === MINUS || (b >= ZERO && b <= NINE)) return this.#number(buf, p, n);
    if (b === LBRACE || b === LBRACKET) {
      const end = this.#skip(buf, p, n);
      if (end === FAIL) return FAIL;
      this.#val = JSON.parse(buf.toString('utf8', p, end));
      return end;
    }
    const end = literal(buf, p, n);
    if (end === FAIL) return FAIL;
    this.#val = b === 0x74 ? true : b === 0x66 ? false : null;
    return end;
  }

  /** Scans a number at `p` (JSON grammar) into `#val`. */
  #number(buf: Buffer, p: number, n: number): number {
    const start = p;
    let neg = false;
    if (buf[p] === MINUS) {
      neg = true;
      p++;
    }
    if (p >= n) return FAIL;
    let acc = 0;
    const intStart = p;
    if (buf[p] === ZERO) p++;
    else {
      const d = buf[p]!;
      if (d < ZERO || d > NINE) return FAIL;
      while (p < n) {
        const c = buf[p]!;
        if (c < ZERO || c > NINE) break;
        acc = acc * 10 + (c - ZERO);
        p++;
      }
    }
    let simple = p - intStart <= 15;
    if (p < n && buf[p] === DOT) {
      simple = false;
      p++;
      const fs = p;
      while (p < n && buf[p]! >= ZERO && buf[p]! <= NINE) p++;
      if (p === fs) return FAIL;
    }
    if (p < n && (buf[p] === 0x65 || buf[p] === 0x45)) {
      simple = false;
      p++;
      if (p < n && (buf[p] === PLUS || buf[p] === MINUS)) p++;
      const es = p;
      while (p < n && buf[p]! >= ZERO && buf[p]! <= NINE) p++;
      if (p === es) return FAIL;
    }
    this.#val = simple ? (neg ? -acc : acc) : Number(buf.toString('latin1', start, p));
    return p;
  }

  /** Validates and skips the value at `p`; returns the position after it. */
  #skip(buf: Buffer, p: number, n: number): number {
    const stack = this.#stack;
    let depth = 0;
    for (;;) {
      // a value at p
      while (p < n && isWs(buf[p]!)) p++;
      if (p >= n) return FAIL;
      let b = buf[p]!;
      if (b === LBRACE || b === LBRACKET) {
        if (depth >= MAX_DEPTH) return FAIL;
        const obj = b === LBRACE;
        stack[depth++] = obj ? 1 : 2;
        p++;
        while (p < n && isWs(buf[p]!)) p++;
        if (p >= n) return FAIL;
        if (buf[p] === (obj ? RBRACE : RBRACKET)) {
          p++;
          depth--;
        } else {
          if (obj) {
            p = skipKey(buf, p, n);
            if (p === FAIL) return FAIL;
          }
          continue;
        }
      } else if (b === QUOTE) {
        p = skipString(buf, p, n);
        if (p === FAIL) return FAIL;
      } else if (b === MINUS || (b >= ZERO && b <= NINE)) {
        p = this.#number(buf, p, n);
        if (p === FAIL) return FAIL;
      } else {
        p = literal(buf, p, n);
        if (p === FAIL) return FAIL;
      }
      // after a value: close containers or move to the next element
      for (;;) {
        if (depth === 0) return p;
        while (p < n && isWs(buf[p]!)) p++;
        if (p >= n) return FAIL;
        b = buf[p]!;
        const obj = stack[depth - 1] === 1;
        if (b === (obj ? RBRACE : RBRACKET)) {
          p++;
          depth--;
          continue;
        }
        if (b !== COMMA) return FAIL;
        p++;
        if (obj) {
          while (p < n && isWs(buf[p]!)) p++;
          p = skipKey(buf, p, n);
          if (p === FAIL) return FAIL;
        }
        break;
      }
    }
  }
}

/**
 * The keys of one record in document order, as plain ASCII bytes, each with
 * the slot it fills (-1: none) and whether it names the field exactly
 * (else ignoring case). Records of one source mostly share their keys, so
 * the next record is first tried against these (see `#scanLayout`).
 */
class KeyLayout {
  static readonly MAX_KEYS = 64;
  static readonly MAX_BYTES = 2048;
  count = 0;
  /** False once a key cannot be replayed (escaped or non-ASCII, several slots, too many keys). */
  learnable = true;
  readonly bytes = new Uint8Array(KeyLayout.MAX_BYTES);
  /** `bytes` as little-endian 32-bit words (whatever the platform's byte order: DataView reads them so). */
  readonly words = new Uint32Array(KeyLayout.MAX_BYTES / 4);
  readonly starts = new Int32Array(KeyLayout.MAX_KEYS);
  readonly lengths = new Int32Array(KeyLayout.MAX_KEYS);
  readonly slots = new Int32Array(KeyLayout.MAX_KEYS);
  /** 1: the key is the field's exact name. */
  readonly exact = new Uint8Array(KeyLayout.MAX_KEYS);
  #used = 0;

  reset(): void {
    this.count = 0;
    this.#used = 0;
    this.learnable = true;
  }

  add(buf: Buffer, start: number, end: number, slot: number, exact: boolean): void {
    const len = end - start;
    // each key at a word boundary; the padding after it is never compared
    this.#used = (this.#used + 3) & ~3;
    if (this.count >= KeyLayout.MAX_KEYS || this.#used + len > KeyLayout.MAX_BYTES) {
      this.learnable = false;
      return;
    }
    const k = this.count++;
    this.starts[k] = this.#used;
    this.lengths[k] = len;
    this.slots[k] = slot;
    this.exact[k] = exact ? 1 : 0;
    const bytes = this.bytes;
    const from = this.#used;
    for (let i = 0; i < len; i++) bytes[from + i] = buf[start + i]!;
    for (let w = from; w + 4 <= from + len; w += 4) this.words[w >>> 2] = (bytes[w]! | (bytes[w + 1]! << 8) | (bytes[w + 2]! << 16) | (bytes[w + 3]! << 24)) >>> 0;
    this.#used += len;
  }
}

/** Skips the number at `p` (JSON grammar, validated); returns the position after it. */
function skipNumber(buf: Buffer, p: number, n: number): number {
  if (buf[p] === MINUS) p++;
  if (p >= n) return FAIL;
  let c = buf[p]!;
  if (c === ZERO) p++;
  else if (c >= ZERO + 1 && c <= NINE) {
    p++;
    while (p < n && (c = buf[p]!) >= ZERO && c <= NINE) p++;
  } else return FAIL;
  if (p < n && buf[p] === DOT) {
    const f = ++p;
    while (p < n && (c = buf[p]!) >= ZERO && c <= NINE) p++;
    if (p === f) return FAIL;
  }
  if (p < n && (buf[p] === 0x65 || buf[p] === 0x45)) {
    p++;
    if (p < n && (buf[p] === PLUS || buf[p] === MINUS)) p++;
    const e = p;
    while (p < n && (c = buf[p]!) >= ZERO && c <= NINE) p++;
    if (p === e) return FAIL;
  }
  return p;
}

/** Skips `"key" :` at `p` (validated); returns the position of the value. */
function skipKey(buf: Buffer, p: number, n: number): number {
  if (p >= n || buf[p] !== QUOTE) return FAIL;
  p = skipString(buf, p, n);
  if (p === FAIL) return FAIL;
  while (p < n && isWs(buf[p]!)) p++;
  if (p >= n || buf[p] !== COLON) return FAIL;
  return p + 1;
}

/** Skips the string at `p` (a quote), validating it; returns the position after its closing quote. */
function skipString(buf: Buffer, p: number, n: number): number {
  let q = p + 1;
  for (;;) {
    if (q >= n) return FAIL;
    const k = STRING_CLASS[buf[q]!]!;
    if (k === 0 || k === 4) q++;
    else if (k === 1) return q + 1;
    else if (k === 3) return FAIL;
    else {
      q = escapeEnd(buf, q, n);
      if (q === FAIL) return FAIL;
    }
  }
}

/**
 * Recently seen short ASCII strings of one field, direct-mapped by a hash of
 * their bytes: readings repeat their ids, colours and timestamp texts, so
 * most values come back as the same string without copying bytes out of the
 * buffer. A hit compares the bytes, so the string is always the exact text.
 */
export class StringCache {
  static readonly ENTRIES = 4096;
  static readonly MAX_BYTES = 48;
  readonly #bytes = new Uint8Array(StringCache.ENTRIES * StringCache.MAX_BYTES);
  readonly #lengths = new Int16Array(StringCache.ENTRIES).fill(-1);
  readonly #strings: string[] = new Array<string>(StringCache.ENTRIES).fill('');

  /** The UTF-8 text of `buf[start, end)` (ASCII texts through the cache). */
  text(buf: Buffer, start: number, end: number): string {
    let hash = 0;
    for (let q = start; q < end; q++) {
      const c = buf[q]!;
      if (c >= 0x80) return buf.toString('utf8', start, end);
      hash = (hash * 31 + c) | 0;
    }
    return this.get(buf, start, end, hash);
  }

  /** The ASCII text of `buf[start, end)`, whose bytes hash to `hash`. */
  get(buf: Buffer, start: number, end: number, hash: number): string {
    const len = end - start;
    if (len > StringCache.MAX_BYTES) return buf.toString('latin1', start, end);
    const i = hash & (StringCache.ENTRIES - 1);
    const bytes = this.#bytes;
    const at = i * StringCache.MAX_BYTES;
    if (this.#lengths[i] === len) {
      let k = 0;
      while (k < len && bytes[at + k] === buf[start + k]) k++;
      if (k === len) return this.#strings[i]!;
    }
    const text = buf.toString('latin1', start, end);
    for (let k = 0; k < len; k++) bytes[at + k] = buf[start + k]!;
    this.#lengths[i] = len;
    this.#strings[i] = text;
    return text;
  }
}

/** Checks the escape at `q` (a backslash); returns the position after it. */
function escapeEnd(buf: Buffer, q: number, n: number): number {
  const e = q + 1 < n ? buf[q + 1]! : 0xff;
  if (e >= 0x80 || ESCAPES[e] === 0) return FAIL;
  if (e !== 0x75) return q + 2;
  if (q + 6 > n) return FAIL;
  for (let i = q + 2; i < q + 6; i++) {
    const h = buf[i]!;
    if (h >= 0x80 || HEX[h] === 0) return FAIL;
  }
  return q + 6;
}

/** Skips `true`, `false` or `null` at `p`. */
function literal(buf: Buffer, p: number, n: number): number {
  const b = buf[p];
  const word = b === 0x74 ? TRUE : b === 0x66 ? FALSE : b === 0x6e ? NULL : null;
  if (word === null || p + word.length > n) return FAIL;
  for (let i = 1; i < word.length; i++) if (buf[p + i] !== word[i]) return FAIL;
  return p + word.length;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

function equalBytes(buf: Buffer, start: number, want: Uint8Array): boolean {
  for (let i = 0; i < want.length; i++) if (buf[start + i] !== want[i]) return false;
  return true;
}

/** ASCII bytes at `start`, upper-cased, equal `upper` (already upper-case ASCII). */
function equalUpper(buf: Buffer, start: number, upper: Uint8Array): boolean {
  for (let i = 0; i < upper.length; i++) {
    let c = buf[start + i]!;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== upper[i]) return false;
  }
  return true;
}
