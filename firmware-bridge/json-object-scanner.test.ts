import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JsonObjectScanner,
  MEMBER_ABSENT,
  MEMBER_CONTAINER,
  MEMBER_ESCAPED_STRING,
  MEMBER_FALSE,
  MEMBER_NULL,
  MEMBER_NUMBER,
  MEMBER_STRING,
  MEMBER_TRUE,
  SCAN_ESCAPED_NAME,
  SCAN_INVALID,
} from './json-object-scanner.ts';

const names = ['sensor_id', 'reading_ts', 'line'];
const scanner = new JsonObjectScanner(names.map((n) => Buffer.from(n)));
const scan = (text: string | Buffer): number => {
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  return scanner.scan(buf, 0, buf.length);
};

/** What JSON.parse says: an object (the scanner must accept it), or anything else / a SyntaxError (it must refuse). */
function parsesToObject(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** The top-level members JSON.parse sees, for the wanted names, as [kind, value text]. */
function expectedFound(text: string): Array<[number, string | null]> {
  const obj = JSON.parse(text) as Record<string, unknown>;
  return names.map((n) => {
    if (!Object.hasOwn(obj, n)) return [MEMBER_ABSENT, null];
    const v = obj[n];
    if (v === null) return [MEMBER_NULL, 'null'];
    if (v === true) return [MEMBER_TRUE, 'true'];
    if (v === false) return [MEMBER_FALSE, 'false'];
    if (typeof v === 'number') return [MEMBER_NUMBER, String(v)];
    if (typeof v === 'string') return [-1, v];
    return [MEMBER_CONTAINER, null];
  });
}

function actualFound(text: string): Array<[number, string | null]> {
  const buf = Buffer.from(text);
  const f = scanner.found;
  return names.map((_, i) => {
    const kind = f[i * 3]!;
    const s = f[i * 3 + 1]!;
    const e = f[i * 3 + 2]!;
    if (kind === MEMBER_ABSENT || kind === MEMBER_CONTAINER) return [kind, null];
    const raw = buf.toString('utf8', s, e);
    if (kind === MEMBER_STRING) return [-1, raw];
    if (kind === MEMBER_ESCAPED_STRING) return [-1, JSON.parse(`"${raw}"`) as string];
    if (kind === MEMBER_NUMBER) return [kind, String(Number(raw))];
    return [kind, raw];
  });
}

describe('JsonObjectScanner', () => {
  const golden: Array<[string, number | 'close']> = [
    ['{}', 'close'],
    [' { } \n', 'close'],
    ['{"a":1}', 'close'],
    ['{"a":[1,2,{"b":[]}],"c":{"d":null}}', 'close'],
    ['{"a":-0.5e+10,"b":0,"c":1E5,"d":true,"e":false}', 'close'],
    ['{"s":"\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud800"}', 'close'],
    ['{"t":"ü€"}', 'close'],
    ['', SCAN_INVALID],
    ['[]', SCAN_INVALID],
    ['"x"', SCAN_INVALID],
    ['null', SCAN_INVALID],
    ['{', SCAN_INVALID],
    ['{"a":1,}', SCAN_INVALID],
    ['{"a":[1,]}', SCAN_INVALID],
    ['{"a":[,1]}', SCAN_INVALID],
    ['{,}', SCAN_INVALID],
    ['{"a" 1}', SCAN_INVALID],
    ['{"a":01}', SCAN_INVALID],
    ['{"a":1.}', SCAN_INVALID],
    ['{"a":.5}', SCAN_INVALID],
    ['{"a":1e}', SCAN_INVALID],
    ['{"a":-}', SCAN_INVALID],
    ['{"a":+1}', SCAN_INVALID],
    ['{"a":tru}', SCAN_INVALID],
    ['{"a":nul}', SCAN_INVALID],
    ['{"a":"\\x"}', SCAN_INVALID],
    ['{"a":"\\u12g4"}', SCAN_INVALID],
    ['{"a":"\t"}', SCAN_INVALID],
    ['{"a":1} x', SCAN_INVALID],
    ['{"a":1}{}', SCAN_INVALID],
    ['{"a":{"b":1}', SCAN_INVALID],
    ['{"a":[1}', SCAN_INVALID],
    ['{"a":{]}', SCAN_INVALID],
    ['\ufeff{}', SCAN_INVALID],
    ['{"a":1}\u00a0', SCAN_INVALID],
    ['{"\\u0073ensor_id":"x"}', SCAN_ESCAPED_NAME],
  ];
  it.each(golden)('%j → %s', (text, verdict) => {
    const got = scan(text);
    if (verdict === 'close') {
      expect(got).toBe(Buffer.from(text).lastIndexOf('}'));
      expect(parsesToObject(text)).toBe(true);
    } else {
      expect(got).toBe(verdict);
      if (verdict === SCAN_INVALID) expect(parsesToObject(text)).toBe(false);
    }
  });

  it('agrees with JSON.parse on any JSON value, and reports the wanted members as JSON.parse reads them', () => {
    const key = fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 6 }));
    const value = fc.letrec((tie) => ({
      any: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 0 }), fc.array(tie('any'), { maxLength: 3 }), tie('obj')),
      obj: fc.dictionary(key, tie('any'), { maxKeys: 5 }),
    }));
    fc.assert(
      fc.property(value.any, fc.boolean(), (v, pretty) => {
        const text = JSON.stringify(v, null, pretty ? 1 : undefined);
        const got = scan(text);
        if (parsesToObject(text)) {
          if (got === SCAN_ESCAPED_NAME) return;
          expect(got).toBe(Buffer.from(text).lastIndexOf('}'));
          expect(actualFound(text)).toEqual(expectedFound(text));
        } else {
          expect(got).toBe(SCAN_INVALID);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses every corruption of a valid object that JSON.parse refuses, and accepts those it accepts', () => {
    const base = JSON.stringify({ sensor_id: 'aa-1', reading_ts: '2020-02-14T12:19:27.000Z', v: [1, 2.5, -3e2, true, null, { x: 'é\n' }] });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: base.length }),
        fc.integer({ min: 0, max: 3 }),
        fc.string({ unit: fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\\', ' ', '0', '1', '-', '.', 'e', 't', 'n', 'u', 'a', '\n', '\u0001'), maxLength: 3 }),
        (at, cut, insert) => {
          const text = base.slice(0, at) + insert + base.slice(at + cut);
          const got = scan(text);
          if (parsesToObject(text)) {
            expect(got === SCAN_ESCAPED_NAME || got === Buffer.from(text).lastIndexOf('}')).toBe(true);
          } else {
            // An escaped name ends the scan early: the caller's general path reports what is wrong.
            expect([SCAN_INVALID, SCAN_ESCAPED_NAME]).toContain(got);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('accepts exactly the bytes isUtf8 accepts and JSON.parse reads as an object, whatever bytes a string holds (property)', () => {
    // Bytes inside a string: ASCII, valid multi-byte sequences, and the edges of the invalid ones
    // (continuation bytes alone, overlong leads C0/C1/E0 80/F0 80, surrogates ED A0, past U+10FFFF F4 90, F5-FF).
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 4 }),
      fc.constantFrom(...['é', '€', '😀', '\\u00e9', '\\"'].map((t) => Buffer.from(t))),
      fc.constantFrom(...[[0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xe0, 0xa0, 0x80], [0xed, 0x9f, 0xbf], [0xed, 0xa0, 0x80], [0xef, 0xbf, 0xbf], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xff], [0x80], [0xe2, 0x82]].map((b) => Buffer.from(b))),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 4 }), fc.constantFrom('name', 'value', 'outside'), (pieces, where) => {
        const inner = Buffer.concat(pieces);
        const text =
          where === 'name' ? Buffer.concat([Buffer.from('{"'), inner, Buffer.from('":1}')])
          : where === 'value' ? Buffer.concat([Buffer.from('{"a":"'), inner, Buffer.from('"}')])
          : Buffer.concat([Buffer.from('{"a":1'), inner, Buffer.from('}')]);
        const accepted = isUtf8(text) && parsesToObject(text.toString('utf8'));
        const got = scan(text);
        // An escaped member name ends the scan early (the general path decides).
        if (where === 'name' && inner.includes(0x5c) && got === SCAN_ESCAPED_NAME) return;
        if (accepted) expect(got).toBe(text.length - 1);
        else expect(got).toBe(SCAN_INVALID);
      }),
      { numRuns: 3000 },
    );
  });

  it('reports the last of duplicate names, as JSON.parse keeps it', () => {
    const text = '{"line":"a","line":"b"}';
    scan(text);
    expect(actualFound(text)[2]).toEqual([-1, 'b']);
  });

  it('nests deeper than its initial stack', () => {
    const text = `{"a":${'['.repeat(100)}${']'.repeat(100)}}`;
    expect(scan(text)).toBe(text.length - 1);
  });
});
