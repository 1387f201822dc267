/**
 * One validating pass over the UTF-8 bytes of a JSON text that must hold an
 * object, without building it: the MQTT fast path (mqtt-fast-decoder.ts)
 * uses it to accept a payload, find a few top-level members (key, event
 * time, topic-level names) and the closing brace, and then store the
 * payload bytes as they came, instead of `toString` + `JSON.parse` + a
 * re-encode to UTF-8 per message.
 *
 * Grammar: RFC 8259 exactly as `JSON.parse` reads it (json-object-scanner.test.ts
 * cross-checks the verdict against `JSON.parse` as a property): insignificant
 * whitespace is space, tab, LF, CR only (no BOM); strings hold no raw control
 * character below 0x20, and escapes are `\" \\ \/ \b \f \n \r \t \uXXXX`
 * (lone surrogates allowed, as JSON.parse does); numbers are
 * `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; literals true, false,
 * null; nesting has no depth limit. UTF-8 (RFC 3629, as `isUtf8` and a
 * fatal TextDecoder read it: no overlong forms, no surrogates, nothing past
 * U+10FFFF) is checked where it can occur, inside strings: bytes ≥ 0x80
 * anywhere else are not JSON anyway. So a text is accepted exactly when
 * `isUtf8` accepts it and `JSON.parse` of its text gives an object.
 *
 * Verdicts of `scan`: the position of the top-level closing brace (≥ 0)
 * when the text is one JSON object; INVALID when it is not valid JSON or not
 * an object (the general path then reports why); ESCAPED_NAME when a
 * top-level member name holds an escape (it might spell one of the wanted
 * names, so the caller takes the general path; the rest of the text is
 * then not checked).
 *
 * Found members (`found`, an Int32Array of 3 entries per wanted name, in
 * `names` order): kind (MEMBER_*; MEMBER_ABSENT when the name is not a
 * top-level member), value start, value end (exclusive; for strings the
 * quotes are excluded). With duplicate names the last one is reported, as
 * JSON.parse keeps the last.
 */

/** `scan` verdict: not JSON, or not an object. */
export const SCAN_INVALID = -1;
/** `scan` verdict: a top-level member name holds an escape sequence. */
export const SCAN_ESCAPED_NAME = -2;

/** Kinds of a found member's value. */
export const MEMBER_ABSENT = 0;
/** A string without escape sequences: its bytes are its UTF-8 text. */
export const MEMBER_STRING = 1;
/** A string with at least one escape sequence. */
export const MEMBER_ESCAPED_STRING = 2;
export const MEMBER_NUMBER = 3;
export const MEMBER_TRUE = 4;
export const MEMBER_FALSE = 5;
export const MEMBER_NULL = 6;
/** An object or an array (its end is not recorded). */
export const MEMBER_CONTAINER = 7;

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

const IN_OBJECT = 1;
const IN_ARRAY = 2;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function isDigit(b: number): boolean {
  return b >= ZERO && b <= NINE;
}

function isHex(b: number): boolean {
  return (b >= ZERO && b <= NINE) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** Escape letters JSON allows after a backslash (besides `u`). */
function isSimpleEscape(b: number): boolean {
  return b === QUOTE || b === BACKSLASH || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74;
}

export class JsonObjectScanner {
  /** Per wanted name: kind, value start, value end (see the file comment). Each `scan` sets every kind; positions only of found members. */
  readonly found: Int32Array;
  /** Top-level members seen by the last successful `scan` (duplicates counted). */
  members = 0;
  private readonly names: readonly Uint8Array[];
  /** Open containers (IN_OBJECT / IN_ARRAY), grown as deep as the text nests. */
  private stack = new Uint8Array(16);
  /** Set by `skipString`: the string held an escape sequence. */
  private escaped = false;

  /** `names`: the top-level member names to report, as UTF-8 bytes. */
  constructor(names: readonly Uint8Array[]) {
    this.names = names;
    this.found = new Int32Array(names.length * 3);
  }

  /** Scans `buf[start, end)`; see the file comment for the verdict and `found`. */
  scan(buf: Uint8Array, start: number, end: number): number {
    // Only the kinds need clearing (positions are read only for found members); a loop beats fill()'s call here.
    const found = this.found;
    for (let i = 0; i < found.length; i += 3) found[i] = MEMBER_ABSENT;
    this.members = 0;
    let pos = start;
    while (pos < end && isSpace(buf[pos]!)) pos++;
    if (pos >= end || buf[pos] !== LBRACE) return SCAN_INVALID;
    pos++;
    let stack = this.stack;
    stack[0] = IN_OBJECT;
    let depth = 1;
    /** Just after `{` or `[`: the container may close at once. */
    let opened = true;
    for (;;) {
      while (pos < end && isSpace(buf[pos]!)) pos++;
      if (pos >= end) return SCAN_INVALID;
      let c = buf[pos]!;
      let wanted = -1;
      /** An empty container closed here instead of a value. */
      let closed = false;
      if (stack[depth - 1] === IN_OBJECT) {
        if (c === RBRACE && opened) {
          closed = true;
        } else {
          if (c !== QUOTE) return SCAN_INVALID;
          const nameStart = pos + 1;
          pos = this.skipString(buf, nameStart, end);
          if (pos < 0) return SCAN_INVALID;
          if (depth === 1) {
            if (this.escaped) return SCAN_ESCAPED_NAME;
            this.members++;
            wanted = this.match(buf, nameStart, pos - 1);
          }
          while (pos < end && isSpace(buf[pos]!)) pos++;
          if (pos >= end || buf[pos] !== COLON) return SCAN_INVALID;
          pos++;
          while (pos < end && isSpace(buf[pos]!)) pos++;
          if (pos >= end) return SCAN_INVALID;
          c = buf[pos]!;
        }
      } else if (c === RBRACKET && opened) {
        closed = true;
      }
      if (closed) {
        depth--;
        pos++;
        if (depth === 0) return this.end(buf, pos, end);
      } else {
        const valueStart = pos;
        if (c === LBRACE || c === LBRACKET) {
          if (depth === stack.length) {
            const grown = new Uint8Array(stack.length * 2);
            grown.set(stack);
            this.stack = stack = grown;
          }
          stack[depth++] = c === LBRACE ? IN_OBJECT : IN_ARRAY;
          if (wanted >= 0) this.record(wanted, MEMBER_CONTAINER, valueStart, valueStart);
          pos++;
          opened = true;
          continue;
        }
        if (c === QUOTE) {
          pos = this.skipString(buf, pos + 1, end);
          if (pos < 0) return SCAN_INVALID;
          if (wanted >= 0) this.record(wanted, this.escaped ? MEMBER_ESCAPED_STRING : MEMBER_STRING, valueStart + 1, pos - 1);
        } else {
          let kind: number;
          if (c === MINUS || isDigit(c)) {
            pos = skipNumber(buf, pos, end);
            kind = MEMBER_NUMBER;
          } else if (c === 0x74) {
            pos = skipLiteral(buf, pos, end, 0x72, 0x75, 0x65, -1);
            kind = MEMBER_TRUE;
          } else if (c === 0x66) {
            pos = skipLiteral(buf, pos, end, 0x61, 0x6c, 0x73, 0x65);
            kind = MEMBER_FALSE;
          } else if (c === 0x6e) {
            pos = skipLiteral(buf, pos, end, 0x75, 0x6c, 0x6c, -1);
            kind = MEMBER_NULL;
          } else {
            return SCAN_INVALID;
          }
          if (pos < 0) return SCAN_INVALID;
          if (wanted >= 0) this.record(wanted, kind, valueStart, pos);
        }
      }
      opened = false;
      // After a value: `,` or the close of the innermost container (which may close its parents in turn).
      for (;;) {
        while (pos < end && isSpace(buf[pos]!)) pos++;
        if (pos >= end) return SCAN_INVALID;
        c = buf[pos]!;
        if (c === COMMA) {
          pos++;
          break;
        }
        if (c !== (stack[depth - 1] === IN_OBJECT ? RBRACE : RBRACKET)) return SCAN_INVALID;
        depth--;
        pos++;
        if (depth === 0) return this.end(buf, pos, end);
      }
    }
  }

  /** After the top-level object closed at `pos - 1`: only whitespace may follow. */
  private end(buf: Uint8Array, pos: number, end: number): number {
    const close = pos - 1;
    while (pos < end && isSpace(buf[pos]!)) pos++;
    return pos === end ? close : SCAN_INVALID;
  }

  private record(wanted: number, kind: number, start: number, end: number): void {
    const at = wanted * 3;
    this.found[at] = kind;
    this.found[at + 1] = start;
    this.found[at + 2] = end;
  }

  /** Index of the wanted name spelled by `buf[start, end)`, or -1. */
  private match(buf: Uint8Array, start: number, end: number): number {
    const names = this.names;
    const length = end - start;
    for (let n = 0; n < names.length; n++) {
      const name = names[n]!;
      if (name.length !== length) continue;
      let i = 0;
      while (i < length && name[i] === buf[start + i]) i++;
      if (i === length) return n;
    }
    return -1;
  }

  /** Skips the string whose first content byte is at `pos`; returns the position after its closing quote, or -1. Sets `escaped`. */
  private skipString(buf: Uint8Array, pos: number, end: number): number {
    let escaped = false;
    while (pos < end) {
      const b = buf[pos]!;
      if (b === QUOTE) {
        this.escaped = escaped;
        return pos + 1;
      }
      if (b < 0x20) return -1;
      if (b >= 0x80) {
        pos = skipUtf8(buf, pos, end, b);
        if (pos < 0) return -1;
        continue;
      }
      if (b === BACKSLASH) {
        escaped = true;
        if (pos + 1 >= end) return -1;
        const e = buf[pos + 1]!;
        if (e === 0x75) {
          if (pos + 6 > end || !isHex(buf[pos + 2]!) || !isHex(buf[pos + 3]!) || !isHex(buf[pos + 4]!) || !isHex(buf[pos + 5]!)) return -1;
          pos += 6;
        } else if (isSimpleEscape(e)) {
          pos += 2;
        } else {
          return -1;
        }
      } else {
        pos++;
      }
    }
    return -1;
  }
}

/** Skips the multi-byte UTF-8 sequence whose lead byte `lead` is at `pos`; returns where it ends, or -1 when it is not well-formed (RFC 3629 §4). */
function skipUtf8(buf: Uint8Array, pos: number, end: number, lead: number): number {
  let length: number;
  let min = 0x80;
  let max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) min = 0xa0;
    else if (lead === 0xed) max = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) min = 0x90;
    else if (lead === 0xf4) max = 0x8f;
  } else return -1;
  if (pos + length > end) return -1;
  const second = buf[pos + 1]!;
  if (second < min || second > max) return -1;
  for (let i = 2; i < length; i++) {
    const b = buf[pos + i]!;
    if (b < 0x80 || b > 0xbf) return -1;
  }
  return pos + length;
}

/** Skips the number at `pos`; returns where it ends, or -1 when it is malformed. */
function skipNumber(buf: Uint8Array, pos: number, end: number): number {
  if (buf[pos] === MINUS) pos++;
  if (pos >= end) return -1;
  if (buf[pos] === ZERO) {
    pos++;
  } else if (isDigit(buf[pos]!)) {
    while (pos < end && isDigit(buf[pos]!)) pos++;
  } else {
    return -1;
  }
  if (pos < end && buf[pos] === DOT) {
    pos++;
    if (pos >= end || !isDigit(buf[pos]!)) return -1;
    while (pos < end && isDigit(buf[pos]!)) pos++;
  }
  if (pos < end && (buf[pos] === 0x65 || buf[pos] === 0x45)) {
    pos++;
    if (pos < end && (buf[pos] === PLUS || buf[pos] === MINUS)) pos++;
    if (pos >= end || !isDigit(buf[pos]!)) return -1;
    while (pos < end && isDigit(buf[pos]!)) pos++;
  }
  return pos;
}

/** Skips a literal whose first byte is at `pos` and whose next bytes are `b1..b4` (-1: shorter); returns where it ends, or -1. */
function skipLiteral(buf: Uint8Array, pos: number, end: number, b1: number, b2: number, b3: number, b4: number): number {
  const length = b4 < 0 ? 4 : 5;
  if (pos + length > end || buf[pos + 1] !== b1 || buf[pos + 2] !== b2 || buf[pos + 3] !== b3 || (b4 >= 0 && buf[pos + 4] !== b4)) return -1;
  return pos + length;
}
