import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FieldExtractor, type ValueField } from './field-extractor.ts';
import { NAMES, checkAgainstCorruption, fieldsArb, nameArb, objectText, valueArb, viaParse } from '../test/support/rules-json-arbitraries.ts';

/** Extracted values, or 'fallback'. */
function viaExtract(bytes: Buffer, fields: readonly ValueField[]): unknown[] | 'fallback' {
  const x = new FieldExtractor(fields);
  const values = x.newValues();
  if (!x.extract(bytes, values)) return 'fallback';
  return values;
}

describe('FieldExtractor', () => {
  it('returns exactly what getField(JSON.parse(text)) returns, or falls back', () => {
    fc.assert(
      fc.property(objectText, fieldsArb, (text, fields) => {
        const got = viaExtract(Buffer.from(text, 'utf8'), fields);
        if (got === 'fallback') return;
        expect(got).toEqual(viaParse(text, fields));
      }),
      { numRuns: 2000 },
    );
  });

  it('handles every object JSON.stringify writes (no fallback without duplicate keys)', () => {
    fc.assert(
      fc.property(fc.dictionary(nameArb, valueArb, { maxKeys: 8 }), fieldsArb, fc.constantFrom(undefined, 2, '\t'), (obj, fields, indent) => {
        const text = JSON.stringify(obj, null, indent);
        const clash = fields.some((f) => !f.caseSensitive && Object.keys(obj).filter((k) => k !== f.name && k.toUpperCase() === f.name.toUpperCase()).length > 1);
        const got = viaExtract(Buffer.from(text, 'utf8'), fields);
        if (clash) {
          if (got !== 'fallback') expect(got).toEqual(viaParse(text, fields));
          return;
        }
        expect(got).toEqual(viaParse(text, fields));
      }),
      { numRuns: 2000 },
    );
  });

  it('one extractor reused record after record (its string cache) still returns each record\'s own values', () => {
    // 'Aa' and 'BB' (and their concatenations) hash alike: they share a cache entry
    const short = fc.oneof(fc.constantFrom('Aa', 'BB', 'AaBB', 'BBAa', 'RED', 'RED ', 'BLUE', 'aa-101', 'aa-110', '', 'x'.repeat(48), 'x'.repeat(49)), fc.string({ maxLength: 6 }));
    const fields: ValueField[] = [{ name: 'colour', caseSensitive: false }, { name: 'id', caseSensitive: false }];
    fc.assert(
      fc.property(fc.array(fc.record({ colour: short, id: fc.oneof(short, fc.integer()) }), { minLength: 2, maxLength: 40 }), (records) => {
        const x = new FieldExtractor(fields);
        const values = x.newValues();
        for (const r of records) {
          const text = JSON.stringify(r);
          expect(x.extract(Buffer.from(text, 'utf8'), values)).toBe(true);
          expect(values).toEqual(viaParse(text, fields));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never accepts what JSON.parse rejects (random corruption of valid texts)', () => {
    checkAgainstCorruption((bytes, fields) => {
      const got = viaExtract(bytes, fields);
      return got === 'fallback' ? null : got;
    }, 3000);
  });

  const golden: Array<[string, string, ValueField[], unknown[] | 'fallback']> = [
    ['the bench reading', '{"reading_ts":"2020-02-14T12:00:00Z","sensor_id":"aa-101","colour":"RED","temp_celcius":15.5}', [{ name: 'colour', caseSensitive: false }, { name: 'temp_celcius', caseSensitive: false }], ['RED', 15.5]],
    ['missing field is null', '{"a":1}', [{ name: 'b', caseSensitive: false }], [null]],
    ['case-insensitive variant', '{"COLOUR":"x","b":"y"}', [{ name: 'colour', caseSensitive: false }], ['x']],
    ['two variants of one field: JSON.parse decides', '{"COLOUR":"x","Colour":"y"}', [{ name: 'colour', caseSensitive: false }], 'fallback'],
    ['exact key wins over an earlier variant', '{"COLOUR":"x","colour":"y"}', [{ name: 'colour', caseSensitive: false }], ['y']],
    ['case-sensitive ignores variants', '{"COLOUR":"x"}', [{ name: 'colour', caseSensitive: true }], [null]],
    ['escaped key and value', '{"c\\u006flour":"R\\"E\\\\D\\u00e9"}', [{ name: 'colour', caseSensitive: false }], ['R"E\\Dé']],
    ['non-ASCII case folding (ı → I)', '{"ıd":7}', [{ name: 'ID', caseSensitive: false }], [7]],
    ['numbers', '{"a":-0,"b":1E3,"c":-12.5e-1,"d":12345678901234567890}', ['a', 'b', 'c', 'd'].map((name) => ({ name, caseSensitive: true })), [-0, 1000, -1.25, 12345678901234567890]],
    ['nested values come whole; others are skipped', '{"n":{"x":[1,{"y":"}"}]},"m":[],"o":{"p":null}}', [{ name: 'n', caseSensitive: false }], [{ x: [1, { y: '}' }] }]],
    ['literals', '{"t":true,"f":false,"z":null}', ['t', 'f', 'z'].map((name) => ({ name, caseSensitive: false })), [true, false, null]],
    ['duplicate key: JSON.parse decides', '{"a":1,"a":2}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['not an object', '[1,2]', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['trailing garbage', '{"a":1} x', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['trailing comma', '{"a":1,}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['leading zero', '{"b":01}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['raw control character in a skipped string', '{"b":"x\ny","a":1}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['bad escape in a skipped string', '{"b":"\\x","a":1}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['unclosed nested value', '{"b":[1,{"c":2]}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['skipped numbers of every form', '{"b":-0.5e+3,"c":0,"d":-12E-2,"e":7,"a":1}', [{ name: 'a', caseSensitive: false }], [1]],
    ['skipped number: lone minus', '{"b":-,"a":1}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['skipped number: no fraction digits', '{"b":1.,"a":1}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['skipped number: no exponent digits', '{"b":1e+,"a":1}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['skipped number: leading zero', '{"b":-01,"a":1}', [{ name: 'a', caseSensitive: false }], 'fallback'],
    ['skipped strings with escapes and non-ASCII', '{"b":"x\\"y\\u00e9","c":"é\\n","a":1}', [{ name: 'a', caseSensitive: false }], [1]],
    ['key with non-ASCII and escapes after a plain prefix', '{"colé":1,"col\\u006fur":"R"}', [{ name: 'colour', caseSensitive: true }], ['R']],
  ];
  it.each(golden)('%s', (_label, text, fields, want) => {
    expect(viaExtract(Buffer.from(text, 'utf8'), fields)).toEqual(want);
    if (want !== 'fallback') expect(viaParse(text, fields)).toEqual(want);
  });

  it('reads from a Uint8Array that is not a Buffer, at an offset', () => {
    const whole = Buffer.from('xx{"a":"b"}', 'utf8');
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 2, whole.length - 2);
    expect(viaExtract(view as Buffer, [{ name: 'a', caseSensitive: false }])).toEqual(['b']);
  });

  it('extractAt reads only buf[start, end): the same as extract of a copy, whatever bytes surround it', () => {
    // The bytes around the range would complete a cut value (a closing quote, brace, digits, an escape's hex): they must not be read.
    const around = fc.constantFrom('', '}', '"', '"}', '0}', '\\u0041"}', 'e5}', 'rue}', ' ,"a":1}', '\xff');
    fc.assert(
      fc.property(objectText, fieldsArb, fc.nat(), around, around, (text, fields, cutAt, before, after) => {
        const whole = Buffer.from(text, 'utf8');
        for (const value of [whole, whole.subarray(0, cutAt % (whole.length + 1))]) {
          const buf = Buffer.concat([Buffer.from(before, 'latin1'), value, Buffer.from(after, 'latin1')]);
          const x = new FieldExtractor(fields);
          const values = x.newValues();
          const ok = x.extractAt(buf, before.length, before.length + value.length, values);
          const want = viaExtract(Buffer.from(value), fields);
          expect(ok ? values : 'fallback').toEqual(want);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('one extractor over records that mostly share their keys (its fast path) returns what a fresh one returns for each', () => {
    // a base shape, then records that keep it or change it: another value, a renamed, re-cased, escaped,
    // reordered or repeated key, whitespace, a cut or a corrupted byte
    const shape = fc.uniqueArray(fc.constantFrom(...NAMES.filter((n) => n !== ''), 'reading_ts', 'sensor_id', 'widget_weight_g'), { minLength: 1, maxLength: 6 });
    const change = fc.constantFrom('same', 'same', 'same', 'value', 'rename', 'case', 'escape', 'swap', 'repeat', 'space', 'cut', 'corrupt');
    fc.assert(
      fc.property(shape, fieldsArb, fc.array(fc.tuple(change, valueArb, fc.nat()), { minLength: 2, maxLength: 12 }), (keys, fields, steps) => {
        const x = new FieldExtractor(fields);
        const values = x.newValues();
        for (const [how, value, n] of steps) {
          let ks = [...keys];
          const at = n % ks.length;
          if (how === 'rename') ks[at] = `${ks[at]}x`;
          if (how === 'case') ks[at] = ks[at]!.toUpperCase();
          if (how === 'swap' && ks.length > 1) ks = [...ks.slice(1), ks[0]!];
          if (how === 'repeat') ks = [...ks, ks[at]!];
          const parts = ks.map((k, i) => {
            const key = how === 'escape' && i === at ? `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"` : JSON.stringify(k);
            return `${key}:${JSON.stringify(i === at && how === 'value' ? value : i % 2 ? 'RED' : i)}`;
          });
          let text = `{${parts.join(how === 'space' ? ' ,\n ' : ',')}}`;
          if (how === 'cut') text = text.slice(0, n % text.length);
          let bytes = Buffer.from(text, 'utf8');
          if (how === 'corrupt') {
            bytes = Buffer.from(bytes);
            bytes[n % bytes.length] = (n * 7) & 0xff;
          }
          const got = x.extractAt(bytes, 0, bytes.length, values) ? [...values] : 'fallback';
          expect(got).toEqual(viaExtract(bytes, fields));
        }
      }),
      { numRuns: 1500 },
    );
  });
});
