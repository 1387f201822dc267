/**
 * Arbitraries and the reference decoding for the rules' JSON field scanners
 * (rules/field-extractor.test.ts, rules/block-field-scanner.test.ts): both
 * must return what getField(JSON.parse(text)) returns.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { getField } from '../../rules/compile-expression.ts';
import type { ValueField } from '../../rules/field-extractor.ts';

/** What the runner computed before: getField over the fully parsed value. */
export function viaParse(text: string, fields: readonly ValueField[]): unknown[] {
  const v = JSON.parse(text) as unknown;
  return fields.map((f) => getField(v, f.name, f.caseSensitive));
}

export const NAMES = ['colour', 'Colour', 'COLOUR', 'temp', 'tEmp', 'sensor_id', 'a', 'é', 'É', 'ß', 'ı', 'i', 'I', 'x"y', 'k\\', '1', ''];

export const nameArb = fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 3 }));
export const fieldsArb = fc.uniqueArray(fc.record({ name: fc.constantFrom(...NAMES), caseSensitive: fc.boolean() }), { selector: (f) => f.name, minLength: 1, maxLength: 4 });
export const trickyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', '"', '\\', '\\"', '\u0000', '\n\t', '\u2028', '\ud83d\ude00', '\ud800', 'RED', 'a"b\\c'),
);
export const numberArb = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(-0, 1e21, 1e-7, 123456789012345678, 0.1, -1.5e300));
export const leaf = fc.oneof(trickyString, numberArb, fc.boolean(), fc.constant(null));
export const valueArb = fc.oneof({ weight: 4, arbitrary: leaf }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) }, { weight: 1, arbitrary: fc.array(leaf, { maxLength: 3 }) });

/** A JSON object text built by hand: keys may repeat, be \u-escaped, numbers may carry exponents, whitespace anywhere. */
export const objectText = fc
  .record({
    entries: fc.array(fc.tuple(nameArb, valueArb, fc.boolean()), { maxLength: 8 }),
    ws: fc.array(fc.constantFrom('', ' ', '\n', '\t', '\r\n  '), { minLength: 8, maxLength: 8 }),
    expNumbers: fc.boolean(),
  })
  .map(({ entries, ws, expNumbers }) => {
    const w = (i: number): string => ws[i % ws.length]!;
    const parts = entries.map(([k, v, escapeKey], i) => {
      const key = escapeKey ? `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(k);
      let value = JSON.stringify(v);
      if (expNumbers && typeof v === 'number' && Number.isFinite(v) && v !== 0) value = v.toExponential().replace('e+', i % 2 ? 'E' : 'e+');
      return `${w(i)}${key}${w(i + 1)}:${w(i + 2)}${value}${w(i + 3)}`;
    });
    return `${w(5)}{${parts.join(',')}}${w(6)}`;
  });


/** A valid object text (objectText) with one byte replaced or inserted, or cut short somewhere: mostly invalid JSON. */
export const corruptedBytes = fc
  .tuple(objectText, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('replace', 'cut', 'insert'))
  .map(([text, at, byte, how]) => {
    const good = Buffer.from(text, 'utf8');
    const i = at % (good.length + 1);
    if (how === 'cut') return good.subarray(0, i);
    return Buffer.concat([good.subarray(0, i), Buffer.from([byte]), good.subarray(how === 'insert' ? i : i + 1)]);
  });

/** viaParse of the bytes decoded as UTF-8 (as the runner decodes them), or 'invalid' when JSON.parse rejects them. */
export function parseOrInvalid(bytes: Buffer, fields: readonly ValueField[]): unknown[] | 'invalid' {
  try {
    return viaParse(bytes.toString('utf8'), fields);
  } catch {
    return 'invalid';
  }
}

/**
 * Property: `read` (a scanner; null when it declines) never accepts what
 * JSON.parse rejects, and what it accepts it reads as JSON.parse does.
 */
export function checkAgainstCorruption(read: (bytes: Buffer, fields: readonly ValueField[]) => unknown[] | null, numRuns: number): void {
  fc.assert(
    fc.property(corruptedBytes, fieldsArb, (bad, fields) => {
      const got = read(bad, fields);
      if (got === null) return;
      const parsed = parseOrInvalid(bad, fields);
      expect(parsed).not.toBe('invalid');
      expect(got).toEqual(parsed);
    }),
    { numRuns },
  );
}
