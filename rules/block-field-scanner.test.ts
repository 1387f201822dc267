import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OUT_PATH, WAT_PATH, wasmModuleSource } from '../bin/build-wasm.js';
import { BlockFieldScanner, type BlockScannerOptions } from './block-field-scanner.ts';
import { JSON_SCAN_WASM } from './json-scan-wasm.ts';
import { FieldExtractor, type ValueField } from './field-extractor.ts';
import { NAMES, checkAgainstCorruption, fieldsArb, objectText, parseOrInvalid, valueArb, viaParse } from '../test/support/rules-json-arbitraries.ts';

/**
 * Lays `values` out as a log block does (each value at its own place in one
 * buffer, `junk` bytes around and between them) and scans them with one scanner.
 */
function scanBlock(scanner: BlockFieldScanner, values: readonly Buffer[], junk: Buffer = Buffer.from('}"0\\')): Array<unknown[] | 'declined'> {
  const parts: Buffer[] = [junk];
  const starts = new Int32Array(values.length + 3);
  const ends = new Int32Array(values.length + 3);
  let at = junk.length;
  values.forEach((v, i) => {
    starts[i] = at;
    ends[i] = at + v.length;
    parts.push(v, junk);
    at += v.length + junk.length;
  });
  scanner.scan(Buffer.concat(parts), starts, ends, values.length);
  return values.map((_, i) => {
    const got: unknown[] = [];
    return scanner.fill(i, got) ? got : 'declined';
  });
}

/**
 * One scanner per list of fields and options, kept for the whole file: its answers must not
 * depend on what it scanned before (that is part of the contract), and thousands of fresh
 * ones would each hold a WebAssembly memory until the garbage collector finds them.
 */
const scanners = new Map<string, BlockFieldScanner>();
function scannerFor(fields: readonly ValueField[], options: BlockScannerOptions = {}): BlockFieldScanner {
  const key = JSON.stringify([fields, options]);
  let scanner = scanners.get(key);
  if (!scanner) scanners.set(key, (scanner = new BlockFieldScanner(fields, options)));
  return scanner;
}

/** The block scanner's answer for one value, or 'declined'. */
function viaBlock(bytes: Buffer, fields: readonly ValueField[]): unknown[] | 'declined' {
  return scanBlock(scannerFor(fields), [bytes])[0]!;
}

/** Keys that are plain ASCII without escapes, the ones the block scanner reads itself. */
const plainName = fc.oneof(fc.constantFrom(...NAMES.filter((n) => /^[\x20-\x7f]*$/.test(n) && !n.includes('"') && !n.includes('\\'))), fc.stringMatching(/^[a-zA-Z_0-9 -]{0,6}$/));

describe('BlockFieldScanner', () => {
  it('returns exactly what getField(JSON.parse(text)) returns, or declines', () => {
    fc.assert(
      fc.property(objectText, fieldsArb, (text, fields) => {
        const got = viaBlock(Buffer.from(text, 'utf8'), fields);
        if (got !== 'declined') expect(got).toEqual(viaParse(text, fields));
      }),
      { numRuns: 3000 },
    );
  });

  it('reads every object JSON.stringify writes with plain keys itself (no decline without a key clash)', () => {
    fc.assert(
      fc.property(fc.dictionary(plainName, valueArb, { maxKeys: 8 }), fieldsArb, fc.constantFrom(undefined, 2, '\t'), (obj, fields, indent) => {
        const text = JSON.stringify(obj, null, indent);
        // several keys for one field, or one key for several fields: the scanner may decline
        const fills = (k: string, f: ValueField): boolean => k === f.name || (!f.caseSensitive && k.toUpperCase() === f.name.toUpperCase());
        const keys = Object.keys(obj);
        const clash = fields.some((f) => keys.filter((k) => fills(k, f)).length > 1) || keys.some((k) => fields.filter((f) => fills(k, f)).length > 1);
        const got = viaBlock(Buffer.from(text, 'utf8'), fields);
        if (clash && got === 'declined') return;
        expect(got).toEqual(viaParse(text, fields));
      }),
      { numRuns: 3000 },
    );
  });

  it('never accepts what JSON.parse rejects (random corruption of valid texts)', () => {
    checkAgainstCorruption((bytes, fields) => {
      const got = viaBlock(bytes, fields);
      return got === 'declined' ? null : got;
    }, 5000);
  });

  it('a block of records with shared and changing keys (its key template): each record gets its own values', () => {
    const shape = fc.uniqueArray(plainName, { minLength: 1, maxLength: 8 });
    // keys of up to 15 bytes are compared with their template's in one step, with the closing quote: renamed, shortened and
    // padded to 15 or 16 bytes, a key must not pass for its template's
    const change = fc.constantFrom('same', 'same', 'same', 'value', 'rename', 'shorten', 'pad', 'case', 'swap', 'repeat', 'space', 'cut', 'corrupt', 'long');
    fc.assert(
      fc.property(shape, fieldsArb, fc.array(fc.tuple(change, valueArb, fc.nat()), { minLength: 1, maxLength: 20 }), (keys, fields, steps) => {
        const values = steps.map(([how, value, n]) => {
          let ks = [...keys];
          const at = n % ks.length;
          if (how === 'rename') ks[at] = `${ks[at]}x`;
          if (how === 'shorten') ks[at] = ks[at]!.slice(0, -1);
          if (how === 'pad') ks[at] = ks[at]!.padEnd(15 + (n % 2), '_');
          if (how === 'case') ks[at] = ks[at]!.toUpperCase();
          if (how === 'swap' && ks.length > 1) ks = [...ks.slice(1), ks[0]!];
          if (how === 'repeat') ks = [...ks, ks[at]!];
          if (how === 'long') ks[at] = `${ks[at]}${'k'.repeat(70)}`;
          const parts = ks.map((k, i) => `${JSON.stringify(k)}:${JSON.stringify(i === at && how === 'value' ? value : i % 2 ? 'RED' : i)}`);
          let text = `{${parts.join(how === 'space' ? ' ,\n ' : ',')}}`;
          if (how === 'cut') text = text.slice(0, n % text.length);
          const bytes = Buffer.from(text, 'utf8');
          if (how === 'corrupt') bytes[n % bytes.length] = (n * 7) & 0xff;
          return bytes;
        });
        const got = scanBlock(scannerFor(fields), values);
        values.forEach((bytes, i) => {
          if (got[i] === 'declined') return;
          const parsed = parseOrInvalid(bytes, fields);
          expect(parsed).not.toBe('invalid');
          expect(got[i]).toEqual(parsed);
        });
      }),
      { numRuns: 1500 },
    );
  });

  it('one scanner over many blocks of different sizes (its memory grows) agrees with the JavaScript scanner', () => {
    const fields: ValueField[] = [{ name: 'colour', caseSensitive: false }, { name: 'reading_ts', caseSensitive: false }, { name: 'temp_celcius', caseSensitive: true }];
    const scanner = new BlockFieldScanner(fields);
    for (const count of [1, 3000, 7, 20_000, 2]) {
      const values = Array.from({ length: count }, (_, i) =>
        Buffer.from(JSON.stringify({ reading_ts: new Date(1_600_000_000_000 + i * 1000).toISOString(), sensor_id: `aa-${i % 97}`, colour: ['RED', 'BLUE', 'GRÜN'][i % 3], temp_celcius: (i % 400) / 8 - 10, note: 'x'.repeat(i % 50) })),
      );
      const got = scanBlock(scanner, values, Buffer.alloc(0));
      // one JavaScript scanner for the block, as the runner keeps one (a fresh one per value made this test slow)
      const extractor = new FieldExtractor(fields);
      values.forEach((v, i) => {
        const want = extractor.newValues();
        expect(extractor.extract(v, want)).toBe(true);
        expect(got[i]).toEqual(want);
      });
    }
  });

  it('reads a block whose values lie in any order in its buffer (RecordBlock does not promise ascending), cut to count, empty or at offset 0', () => {
    const scanner = new BlockFieldScanner([{ name: 'a', caseSensitive: true }]);
    const fill = (i: number): unknown => {
      const got: unknown[] = [];
      return scanner.fill(i, got) ? got[0] : 'declined';
    };
    // an earlier block leaves its bytes in the scanner's memory
    expect(scanBlock(scanner, [Buffer.from('{"a":111}'), Buffer.from('{"a":112}')])).toEqual([[111], [112]]);
    // record 0 lies after record 1 (the first start is past the last end)
    scanner.scan(Buffer.from('{"a":222}{"a":333}'), Int32Array.of(9, 0), Int32Array.of(18, 9), 2);
    expect([0, 1].map(fill)).toEqual([333, 222]);
    // record 0 at offset 0, record 1 empty, record 2 past `count` (a block cut short)
    scanner.scan(Buffer.from('{"a":5}{"a":6}'), Int32Array.of(0, 7, 7), Int32Array.of(7, 7, 14), 2);
    expect([0, 1, 2].map(fill)).toEqual([5, 'declined', 'declined']);
    // only empty values: no bytes to copy
    scanner.scan(Buffer.from('{"a":7}'), Int32Array.of(7, 3), Int32Array.of(7, 3), 2);
    expect([0, 1].map(fill)).toEqual(['declined', 'declined']);
  });

  it('strings found in the caches are each record\'s own, block after block (entries shared by strings that hash alike)', () => {
    // 'Aa' and 'BB' (and their concatenations) hash alike: they share a cache entry
    const text = fc.oneof(fc.constantFrom('Aa', 'BB', 'AaBB', 'BBAa', 'AaAa', 'BBBB', 'RED', '', 'x'.repeat(48), 'x'.repeat(49)), fc.stringMatching(/^[A-Za-z]{0,3}$/));
    const fields: ValueField[] = [{ name: 'colour', caseSensitive: false }, { name: 'id', caseSensitive: true }];
    // COLOUR, when present, comes first: the exact key after it wins, whatever the caches held for COLOUR's value
    const record = fc.record({ COLOUR: text, colour: text, id: fc.oneof(text, fc.integer()) }, { requiredKeys: ['colour', 'id'] });
    fc.assert(
      fc.property(fc.array(fc.array(fc.tuple(record, fc.boolean()), { minLength: 1, maxLength: 12 }), { minLength: 2, maxLength: 8 }), (blocks) => {
        const scanner = scannerFor(fields);
        for (const records of blocks) {
          const values = records.map(([r]) => Buffer.from(JSON.stringify(r)));
          const buf = Buffer.concat(values);
          const starts = new Int32Array(values.length);
          const ends = new Int32Array(values.length);
          values.reduce((at, v, i) => ((starts[i] = at), (ends[i] = at + v.length)), 0);
          scanner.scan(buf, starts, ends, values.length);
          // some records are not read (the caches must not depend on every record being filled)
          records.forEach(([r, read], i) => {
            if (!read) return;
            const got: unknown[] = [];
            expect(scanner.fill(i, got)).toBe(true);
            expect(got).toEqual([r.colour, r.id]);
          });
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('a value after a case-folded key whose value was in the string cache is its own (the cached flag is not carried over)', () => {
    const scanner = new BlockFieldScanner([{ name: 'colour', caseSensitive: false }]);
    // the first block puts RED in the cache (entered before the next scan)
    expect(scanBlock(scanner, [Buffer.from('{"colour":"RED"}')])).toEqual([['RED']]);
    expect(scanBlock(scanner, [Buffer.from('{"COLOUR":"RED","colour":"BLUE"}'), Buffer.from('{"Colour":"RED","colour":"Aa"}'), Buffer.from('{"colour":"RED","COLOUR":"x"}')])).toEqual([['BLUE'], ['Aa'], ['RED']]);
  });

  const golden: Array<[string, string | Buffer, ValueField[], unknown[] | 'declined']> = [
    ['the bench reading', '{"reading_ts":"2020-02-14T12:00:00Z","sensor_id":"aa-101","colour":"RED","temp_celcius":15.5}', [{ name: 'colour', caseSensitive: false }, { name: 'temp_celcius', caseSensitive: false }], ['RED', 15.5]],
    ['missing field is null', '{"a":1}', [{ name: 'b', caseSensitive: false }], [null]],
    ['empty object', ' { } ', [{ name: 'b', caseSensitive: false }], [null]],
    ['case-insensitive variant', '{"COLOUR":"x","b":"y"}', [{ name: 'colour', caseSensitive: false }], ['x']],
    ['two variants of one field: declined', '{"COLOUR":"x","Colour":"y"}', [{ name: 'colour', caseSensitive: false }], 'declined'],
    ['exact key wins over an earlier variant', '{"COLOUR":"x","colour":"y"}', [{ name: 'colour', caseSensitive: false }], ['y']],
    ['exact key wins over a later variant', '{"colour":"y","COLOUR":"x"}', [{ name: 'colour', caseSensitive: false }], ['y']],
    ['case-sensitive ignores variants', '{"COLOUR":"x"}', [{ name: 'colour', caseSensitive: true }], [null]],
    ['escaped key: declined (the JavaScript scanner reads it)', '{"c\\u006flour":"R"}', [{ name: 'colour', caseSensitive: false }], 'declined'],
    ['non-ASCII key: declined', '{"ıd":7}', [{ name: 'ID', caseSensitive: false }], 'declined'],
    ['escaped and non-ASCII values', '{"a":"R\\"E\\\\D\\u00e9","b":"grün","c":"\\ud83d\\ude00"}', ['a', 'b', 'c'].map((name) => ({ name, caseSensitive: true })), ['R"E\\Dé', 'grün', '😀']],
    ['invalid UTF-8 in a value decodes with replacement, as the runner does', Buffer.from('{"a":"\xff"}', 'latin1'), [{ name: 'a', caseSensitive: true }], ['\ufffd']],
    ['numbers', '{"a":-0,"b":1E3,"c":-12.5e-1,"d":12345678901234567890,"e":0.1,"f":123456789012345,"g":1234567890123456,"h":0.30000000000000004,"i":-7}', [...'abcdefghi'].map((name) => ({ name, caseSensitive: true })), [-0, 1000, -1.25, 12345678901234567890, 0.1, 123456789012345, 1234567890123456, 0.30000000000000004, -7]],
    ['nested values come whole; others are skipped', '{"n":{"x":[1,{"y":"}"}]},"m":[],"o":{"p":null}}', [{ name: 'n', caseSensitive: false }, { name: 'm', caseSensitive: false }], [{ x: [1, { y: '}' }] }, []]],
    ['literals', '{"t":true,"f":false,"z":null}', ['t', 'f', 'z'].map((name) => ({ name, caseSensitive: false })), [true, false, null]],
    ['a 16-byte-long string and key at the value end', '{"abcdefghijklmnop":"0123456789abcdef"}', [{ name: 'abcdefghijklmnop', caseSensitive: true }], ['0123456789abcdef']],
    ['duplicate key: declined', '{"a":1,"a":2}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['not an object', '[1,2]', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['trailing garbage', '{"a":1} x', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['trailing comma', '{"a":1,}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['leading zero', '{"b":01}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['raw control character in a skipped string', '{"b":"x\ny","a":1}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['bad escape in a skipped string', '{"b":"\\x","a":1}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['short \\u escape', '{"b":"\\u12","a":1}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['unclosed nested value', '{"b":[1,{"c":2]}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['nesting 64 deep is read, 65 declined', `{"b":${'['.repeat(64)}${']'.repeat(64)},"a":1}`, [{ name: 'a', caseSensitive: false }], [1]],
    ['nesting 65 deep', `{"b":${'['.repeat(65)}${']'.repeat(65)},"a":1}`, [{ name: 'a', caseSensitive: false }], 'declined'],
    ['skipped numbers of every form', '{"b":-0.5e+3,"c":0,"d":-12E-2,"e":7,"a":1}', [{ name: 'a', caseSensitive: false }], [1]],
    ['lone minus', '{"b":-,"a":1}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['no fraction digits', '{"b":1.,"a":1}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['no exponent digits', '{"b":1e+,"a":1}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['bad literal', '{"b":tru,"a":1}', [{ name: 'a', caseSensitive: false }], 'declined'],
    ['unclosed string at the end', '{"a":"abc', [{ name: 'a', caseSensitive: false }], 'declined'],
    // the key template holds keys 0 to 31: key 32 on is matched, and a record of many keys must not read past the
    // memory (80 bytes of template a key: 20,000 keys reach past the caches and the data)
    ['more keys than the key template holds', `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":${i}`).join(',')},"A":1,"a":2,"k":"K"}`, [{ name: 'a', caseSensitive: false }, { name: 'K', caseSensitive: false }], [2, 'K']],
  ];
  it.each(golden)('%s', (_label, text, fields, want) => {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    expect(viaBlock(bytes, fields)).toEqual(want);
    if (want !== 'declined') expect(viaParse(bytes.toString('utf8'), fields)).toEqual(want);
  });

  it('decideRun settles a run of records from their scanned bytes under <f> = \'<text>\': those failing it, and with `passed` those passing it, while the event-time text stays the one given', () => {
    const fields: ValueField[] = [{ name: 'colour', caseSensitive: false }, { name: 'ts', caseSensitive: false }];
    const texts = [
      '{"colour":"BLUE","ts":"T1"}',
      '{"colour":"RED","ts":"T1"}',
      '{"colour":7,"ts":"T1"}',
      '{"ts":"T1"}',
      '{"COLOUR":"RED","ts":"T1"}',
      '{"colour":"RED","ts":"T1"}',
      '{"colour":"R\\u0045D","ts":"T1"}',
      '{"colour":"BLUE","ts":"T1"}',
      '{"colour":"RED","ts":"T2"}',
      '{"colour":"RED","ts":"T1"',
      '{"colour":"REDS","ts":"T1"}',
    ];
    const scanner = new BlockFieldScanner(fields, { worker: false });
    scanBlock(scanner, texts.map((t) => Buffer.from(t)));
    const run = (i: number, passed: Int32Array | null, text = 'RED', time = 'T1') => [scanner.decideRun(i, texts.length, 0, text, 1, time, passed), passed === null ? null : [...passed.subarray(0, passed[0]! + 1)]];
    // without `passed` a passing record ends the run
    expect(run(0, null)).toEqual([1, null]);
    expect(run(2, null)).toEqual([2, null]);
    // with it: records 0-5, of which 1, 4 (a case-folded key) and 5 pass; the escaped RED (6) is left to decoding
    expect(run(0, new Int32Array(8))).toEqual([6, [3, 1, 4, 5]]);
    expect(run(6, new Int32Array(8))).toEqual([0, [0]]);
    // another event-time text ends the run (8), as does invalid JSON (9); a longer string fails WHERE
    expect(run(7, new Int32Array(8))).toEqual([1, [0]]);
    expect(run(9, new Int32Array(8))).toEqual([0, [0]]);
    expect(run(10, new Int32Array(8))).toEqual([1, [0]]);
    expect(run(8, new Int32Array(8), 'RED', 'T2')).toEqual([1, [1, 8]]);
    // a full `passed` ends the run before the next passing record
    expect(run(0, new Int32Array(3))).toEqual([5, [2, 1, 4]]);
    expect(run(0, new Int32Array(8), 'BLUE')).toEqual([6, [1, 0]]);
    // WHERE on the event-time field itself (f is t): every record of the run passes when the text is the time, none otherwise
    const same = (i: number, passed: Int32Array, text: string, time = 'T1') => [scanner.decideRun(i, texts.length, 1, text, 1, time, passed), [...passed.subarray(0, passed[0]! + 1)]];
    expect(same(0, new Int32Array(16), 'T1')).toEqual([8, [8, 0, 1, 2, 3, 4, 5, 6, 7]]);
    expect(same(0, new Int32Array(16), 'T2')).toEqual([8, [0]]);
    expect(same(8, new Int32Array(16), 'T2', 'T2')).toEqual([1, [1, 8]]);
    expect(same(2, new Int32Array(4), 'T1')).toEqual([3, [3, 2, 3, 4]]);
  });

  it('keyRun reads a run of records\' group string and numeric arguments from their scanned bytes, as fill reads them, while the event-time text stays the one given', () => {
    const fields: ValueField[] = [{ name: 'ts', caseSensitive: false }, { name: 'sensor_id', caseSensitive: false }, { name: 'temp', caseSensitive: false }, { name: 'w', caseSensitive: false }];
    const texts = [
      '{"ts":"T1","sensor_id":"a","temp":1.5,"w":2}',
      '{"ts":"T1","sensor_id":"b","temp":null}',
      '{"ts":"T1","SENSOR_ID":"a","temp":-30.25,"w":null}',
      '{"ts":"T1","sensor_id":"a","temp":4,"w":5}',
      '{"ts":"T1","sensor_id":"d\\e","temp":4}',
      '{"ts":"T1","sensor_id":"c","temp":"7"}',
      '{"ts":"T1","sensor_id":7,"temp":1}',
      '{"ts":"T2","sensor_id":"c","temp":1}',
      '{"ts":"T1","sensor_id":"c","temp":true}',
      '{"ts":"T1","sensor_id":"c","temp":1',
      '{"ts":"T1","sensor_id":"c","temp":2,"w":{"x":1}}',
      '{"ts":"T1","sensor_id":"c","temp":3}',
    ];
    // the same strings block after block: the second scan finds them in its caches (the module's, and the run value)
    for (const pass of [1, 2]) {
      const scanner = new BlockFieldScanner(fields, { worker: false });
      for (let k = 0; k < pass; k++) scanBlock(scanner, texts.map((t) => Buffer.from(t)));
      const keys = new Array<string>(8).fill('');
      const values = new Float64Array(16);
      const args = Int32Array.from([2, -1]);
      const run = (i: number, time = 'T1', room = keys) => {
        const n = scanner.keyRun(i, texts.length, 0, time, 1, args, room, values);
        return [n, room.slice(0, n), [...values.subarray(0, n * 2)].map((v) => (Number.isNaN(v) ? null : v))];
      };
      // records 0-3 (null and absent are NaN; COUNT(*)'s argument, -1, is always NaN); an escaped string (4) ends the run
      expect(run(0)).toEqual([4, ['a', 'b', 'a', 'a'], [1.5, null, null, null, -30.25, null, 4, null]]);
      // a number as text (5), a number as the group (6), another time (7), true (8), invalid JSON (9): not in a run
      for (const i of [4, 5, 6, 7, 8, 9]) expect(run(i)[0]).toBe(0);
      expect(run(7, 'T2')).toEqual([1, ['c'], [1, null]]);
      // an object in a field no argument reads does not end the run
      expect(run(10)).toEqual([2, ['c', 'c'], [2, null, 3, null]]);
      // at most as many records as `keys` holds
      expect(run(0, 'T1', new Array<string>(2).fill(''))[0]).toBe(2);
      // what fill gives those records
      const filled = new Array<unknown>(4);
      for (const i of [0, 1, 2, 3, 10, 11]) {
        expect(scanner.fill(i, filled)).toBe(true);
        const n = run(i, 'T1', new Array<string>(1).fill(''));
        expect(n).toEqual([1, [filled[1]], [filled[2] ?? null, null]]);
      }
      // an argument of the group field (a string) ends the run at once
      expect(scanner.keyRun(0, texts.length, 0, 'T1', 1, Int32Array.from([1]), keys, values)).toBe(0);
    }
  });

  it('a closed scanner\'s memory goes to the next scanner of as many fields, which reads its own fields (not what the first one\'s caches and key templates held); the closed one refuses to scan', () => {
    BlockFieldScanner.dropIdleMemories();
    const a = new BlockFieldScanner([{ name: 'colour', caseSensitive: false }, { name: 'id', caseSensitive: true }]);
    const reading = Buffer.from('{"colour":"RED","id":"aa-1"}');
    // the first scan makes RED and aa-1, entered in the caches before the second, which finds them there
    expect(scanBlock(a, [reading])).toEqual([['RED', 'aa-1']]);
    expect(scanBlock(a, [reading])).toEqual([['RED', 'aa-1']]);
    a.close();
    a.close();
    expect(BlockFieldScanner.idleMemories()).toBe(1);
    // one field: another memory
    const c = new BlockFieldScanner([{ name: 'colour', caseSensitive: false }]);
    expect(BlockFieldScanner.idleMemories()).toBe(1);
    // as many fields, other names; the first one's strings swapped between its fields
    const b = new BlockFieldScanner([{ name: 'id', caseSensitive: true }, { name: 'colour', caseSensitive: false }]);
    expect(BlockFieldScanner.idleMemories()).toBe(0);
    const swapped = [Buffer.from('{"colour":"aa-1","id":"RED"}'), Buffer.from('{"id":"x","colour":"RED"}'), reading];
    expect(scanBlock(b, swapped)).toEqual([['RED', 'aa-1'], ['x', 'RED'], ['aa-1', 'RED']]);
    expect(scanBlock(b, swapped)).toEqual([['RED', 'aa-1'], ['x', 'RED'], ['aa-1', 'RED']]);
    expect(scanBlock(c, [reading])).toEqual([['RED']]);
    expect(() => scanBlock(a, [reading])).toThrow(/closed/);
  });

  it('keeps at most two closed scanners\' memories', () => {
    BlockFieldScanner.dropIdleMemories();
    const three = Array.from({ length: 3 }, () => new BlockFieldScanner([{ name: 'a', caseSensitive: true }]));
    for (const scanner of three) scanner.close();
    expect(BlockFieldScanner.idleMemories()).toBe(2);
    BlockFieldScanner.dropIdleMemories();
    expect(BlockFieldScanner.idleMemories()).toBe(0);
  });

  it('takes up to 16 fields of up to 112 bytes', () => {
    expect(BlockFieldScanner.supports([])).toBe(false);
    expect(BlockFieldScanner.supports(Array.from({ length: 16 }, (_, i) => ({ name: `f${i}`, caseSensitive: false })))).toBe(true);
    expect(BlockFieldScanner.supports(Array.from({ length: 17 }, (_, i) => ({ name: `f${i}`, caseSensitive: false })))).toBe(false);
    expect(BlockFieldScanner.supports([{ name: 'n'.repeat(112), caseSensitive: true }])).toBe(true);
    expect(BlockFieldScanner.supports([{ name: 'é'.repeat(57), caseSensitive: true }])).toBe(false);
    expect(() => new BlockFieldScanner([])).toThrow(RangeError);
    const long = 'n'.repeat(112);
    expect(viaBlock(Buffer.from(`{"${long}":1,"${long.toUpperCase()}":2}`), [{ name: long, caseSensitive: true }])).toEqual([1]);
  });

  it('the module hashes a plain string as StringCache does (h = h * 31 + byte, as int32), four bytes a step or one', () => {
    // the module alone, on the layout json-scan.wat documents: one field "f", one record {"f":"<text>"}
    const wasm = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object, i: object) => { exports: Record<string, (...a: number[]) => number> }; Memory: new (d: object) => { buffer: ArrayBuffer } } }).WebAssembly;
    const memory = new wasm.Memory({ initial: 8, maximum: 16384, shared: true });
    const exports = new wasm.Instance(new wasm.Module(Buffer.from(JSON_SCAN_WASM, 'base64')), { env: { memory } }).exports;
    exports.init!();
    exports.bind!(8192);
    const view = new DataView(memory.buffer);
    const bytes = new Uint8Array(memory.buffer);
    bytes[512] = 0x66; // "f"
    view.setInt32(256, 512, true);
    view.setInt32(260, 1, true);
    view.setInt32(264, 0, true);
    view.setInt32(268, -1, true);
    const DATA = 16384 + 262144;
    fc.assert(
      fc.property(fc.stringMatching(/^[ !#-\[\]-~]{0,70}$/), (text) => {
        const record = Buffer.from(JSON.stringify({ f: text }));
        bytes.fill(0, DATA, DATA + 200);
        bytes.set(record, DATA);
        const starts = DATA + 256;
        view.setInt32(starts, DATA, true);
        view.setInt32(starts + 4, DATA + record.length, true);
        const out = starts + 16;
        expect(exports.scan!(1, starts, starts + 4, out, 1, 0)).toBe(1);
        let h = 0;
        for (let k = 0; k < text.length; k++) h = (h * 31 + text.charCodeAt(k)) | 0;
        expect(view.getInt32(out + 8 + 12, true)).toBe(h);
      }),
      { numRuns: 500 },
    );
  });

  it('the committed module is what bin/build-wasm.js makes of rules/json-scan.wat', async () => {
    expect(await readFile(OUT_PATH, 'utf8')).toBe(await wasmModuleSource(await readFile(WAT_PATH, 'utf8')));
  });
});

describe('BlockFieldScanner with the scan worker (blocks in slices over two threads)', () => {
  const record = fc.record(
    { reading_ts: fc.constantFrom('2020-02-14T12:00:00Z', '2020-02-14T12:00:01Z', 'x'.repeat(60)), sensor_id: fc.oneof(fc.constantFrom('aa-101', 'Aa', 'BB', 'grün'), fc.integer()), colour: fc.constantFrom('RED', 'BLUE', 'RED\n') },
    { requiredKeys: ['reading_ts'] },
  );
  const fields: ValueField[] = [{ name: 'reading_ts', caseSensitive: false }, { name: 'sensor_id', caseSensitive: true }, { name: 'colour', caseSensitive: false }];

  function layout(values: Buffer[]): [Buffer, Int32Array, Int32Array] {
    const starts = new Int32Array(values.length);
    const ends = new Int32Array(values.length);
    values.reduce((at, v, i) => ((starts[i] = at), (ends[i] = at + v.length)), 0);
    return [Buffer.concat(values), starts, ends];
  }

  it('every record gets what one thread alone gives, whichever thread scanned its slice and in whatever order records are read', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.oneof(record.map((r) => JSON.stringify(r)), objectText), { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 7 }),
        fc.array(fc.nat(), { minLength: 40, maxLength: 40 }),
        (blocks, slice, order) => {
          const two = scannerFor(fields, { worker: true, sliceRecords: slice });
          const one = scannerFor(fields, { worker: false });
          for (const texts of blocks) {
            const [buf, starts, ends] = layout(texts.map((t) => Buffer.from(t)));
            two.scan(buf, starts, ends, texts.length);
            one.scan(buf, starts, ends, texts.length);
            // a random order, some records read twice, some not at all
            const reads = order.map((n) => n % texts.length);
            for (const i of [...reads, ...texts.keys()]) {
              const a: unknown[] = [];
              const b: unknown[] = [];
              const got = two.fill(i, a);
              expect(got).toBe(one.fill(i, b));
              expect(a).toEqual(b);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decideRun and keyRun over a block in slices give what one thread alone gives, from any record on (runs cross slices)', () => {
    fc.assert(
      fc.property(
        fc.array(record.map((r) => JSON.stringify(r)), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 7 }),
        fc.array(fc.nat(), { minLength: 10, maxLength: 10 }),
        (texts, slice, from) => {
          const two = scannerFor(fields, { worker: true, sliceRecords: slice });
          const one = scannerFor(fields, { worker: false });
          const [buf, starts, ends] = layout(texts.map((t) => Buffer.from(t)));
          two.scan(buf, starts, ends, texts.length);
          one.scan(buf, starts, ends, texts.length);
          for (const i of from.map((n) => n % texts.length)) {
            for (const time of ['2020-02-14T12:00:00Z', '2020-02-14T12:00:01Z']) {
              const p2 = new Int32Array(65);
              const p1 = new Int32Array(65);
              expect(two.decideRun(i, texts.length, 2, 'RED', 0, time, p2)).toBe(one.decideRun(i, texts.length, 2, 'RED', 0, time, p1));
              expect(p2).toEqual(p1);
              const k2 = new Array<string>(64).fill('');
              const k1 = new Array<string>(64).fill('');
              const v2 = new Float64Array(64);
              const v1 = new Float64Array(64);
              expect(two.keyRun(i, texts.length, 0, time, 2, Int32Array.from([-1]), k2, v2)).toBe(one.keyRun(i, texts.length, 0, time, 2, Int32Array.from([-1]), k1, v1));
              expect(k2).toEqual(k1);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the worker scans slices while this thread waits for none of them: a big block left alone is all scanned there', async () => {
    const scanner = new BlockFieldScanner(fields, { worker: true, sliceRecords: 64 });
    const texts = Array.from({ length: 64 * 20 }, (_, i) => JSON.stringify({ reading_ts: `2020-02-14T12:00:${String(i % 60).padStart(2, '0')}Z`, sensor_id: `aa-${i % 97}`, colour: i % 4 ? 'BLUE' : 'RED' }));
    for (let round = 0; round < 2; round++) {
      const [buf, starts, ends] = layout(texts.map((t) => Buffer.from(t)));
      scanner.scan(buf, starts, ends, texts.length);
      while (scanner.workerPending() > 0) await new Promise((resolve) => setImmediate(resolve));
      texts.forEach((t, i) => {
        const got: unknown[] = [];
        expect(scanner.fill(i, got)).toBe(true);
        const parsed = JSON.parse(t) as Record<string, unknown>;
        expect(got).toEqual(fields.map((f) => parsed[f.name]));
      });
    }
    expect(scanner.slices()).toEqual({ byWorker: 40, here: 0 });
    scanner.close();
  });

  it('records read in order, block after block: each slice is scanned once, by whichever thread comes first (this one takes the last free slices while the worker is in the one it needs)', () => {
    // slices of one big record each (milliseconds to scan), so that this thread, reading in order, finds the worker inside the next one
    const scanner = new BlockFieldScanner(fields, { worker: true, sliceRecords: 1 });
    const one = scannerFor(fields, { worker: false });
    let slices = 0;
    for (let round = 0; round < 16; round++) {
      const texts = Array.from({ length: 24 }, (_, i) => JSON.stringify({ pad: 'x'.repeat(i === 0 ? 1 : 1 << 19), reading_ts: `2020-02-14T12:00:${10 + round}Z`, sensor_id: round * 1000 + i, colour: i % 4 ? 'BLUE' : 'RED' }));
      const [buf, starts, ends] = layout(texts.map((t) => Buffer.from(t)));
      one.scan(buf, starts, ends, texts.length);
      scanner.scan(buf, starts, ends, texts.length);
      slices += texts.length;
      texts.forEach((_, i) => {
        const a: unknown[] = [];
        const b: unknown[] = [];
        expect(scanner.fill(i, a)).toBe(one.fill(i, b));
        expect(a).toEqual(b);
      });
    }
    scanner.close();
    const { byWorker, here } = scanner.slices();
    expect(byWorker + here).toBe(slices);
  });

  it('a closed scanner\'s memory that the worker scanned in goes to the next scanner of as many fields: block after block, each record gets what one thread alone gives', () => {
    BlockFieldScanner.dropIdleMemories();
    const texts = (round: number): string[] =>
      Array.from({ length: 300 }, (_, i) => JSON.stringify({ reading_ts: `2020-02-14T12:00:${10 + round}Z`, sensor_id: i % 5 ? `aa-${i % 7}` : 'RED', colour: i % 4 ? 'BLUE' : `aa-${i % 3}` }));
    const first = new BlockFieldScanner(fields, { worker: true, sliceRecords: 16 });
    const renamed: ValueField[] = [{ name: 'colour', caseSensitive: false }, { name: 'reading_ts', caseSensitive: true }, { name: 'sensor_id', caseSensitive: false }];
    for (const [scanner, fieldsOf] of [[first, fields], [null, renamed]] as const) {
      const s = scanner ?? new BlockFieldScanner(fieldsOf, { worker: true, sliceRecords: 16 });
      if (scanner === null) expect(BlockFieldScanner.idleMemories()).toBe(0);
      const one = scannerFor(fieldsOf, { worker: false });
      for (let round = 0; round < 4; round++) {
        const [buf, starts, ends] = layout(texts(round).map((t) => Buffer.from(t)));
        one.scan(buf, starts, ends, 300);
        s.scan(buf, starts, ends, 300);
        for (let i = 0; i < 300; i++) {
          const a: unknown[] = [];
          const b: unknown[] = [];
          expect(s.fill(i, a)).toBe(one.fill(i, b));
          expect(a).toEqual(b);
        }
      }
      s.close();
      expect(BlockFieldScanner.idleMemories()).toBe(1);
    }
  });

  it('a block read at once takes back the slices the worker has not started (each slice is scanned once)', () => {
    const scanner = new BlockFieldScanner(fields, { worker: true, sliceRecords: 1 });
    const texts = Array.from({ length: 500 }, (_, i) => JSON.stringify({ reading_ts: 'T', sensor_id: i }));
    const [buf, starts, ends] = layout(texts.map((t) => Buffer.from(t)));
    scanner.scan(buf, starts, ends, texts.length);
    texts.forEach((_, i) => {
      const got: unknown[] = [];
      expect(scanner.fill(i, got)).toBe(true);
      expect(got[fields.findIndex((f) => f.name === 'sensor_id')]).toBe(i);
    });
    const { byWorker, here } = scanner.slices();
    expect(byWorker + here).toBe(500);
    scanner.close();
  });
});
