import { describe, expect, it } from 'vitest';
import type { Expr } from './ast.ts';
import { compileExpr, compilePredicate, getField, likeMatcher, likeToRegExp, type Scope } from './compile-expression.ts';
import { isRulesError } from './errors.ts';
import { parseExpression } from './parser.ts';

/** The example reading from DESIGN.md, plus nested and null fields for the edge cases. */
const reading: Record<string, unknown> = {
  reading_ts: '2020-02-14T12:19:27Z',
  sensor_id: 'aa-101',
  production_line: 'w01',
  widget_type: 'acme94',
  colour: 'RED',
  temp_celcius: 23,
  widget_weight_g: 100,
  payload: { temp: 21.5, Inner: { level: 3 }, tags: ['x', 'y', 'z'] },
  note: null,
  Mixed_Case: 'mc',
};

/** Reads columns case-insensitively from the reading, like the plan's stream scope does. */
const scope: Scope<Record<string, unknown>> = {
  column: (ref) => (row) => getField(row, ref.column.name, ref.column.quoted),
};

const evaluate = (sql: string, row: Record<string, unknown> = reading): unknown => compileExpr(parseExpression(sql), scope)(row);

describe('expression evaluation golden table over the DESIGN.md reading', () => {
  const cases: Array<[string, unknown]> = [
    // Columns and nesting; names are case-insensitive unless back-quoted.
    ['colour', 'RED'],
    ['COLOUR', 'RED'],
    ['mixed_case', 'mc'],
    ['`Mixed_Case`', 'mc'],
    ['`mixed_case`', null],
    ['no_such_field', null],
    ['payload->temp', 21.5],
    ['payload->inner->level', 3],
    ['payload->`inner`->level', null],
    ['payload->tags[1]', 'x'],
    ['payload->tags[-1]', 'z'],
    ['payload->tags[4]', null],
    ['colour->x', null],
    // Comparison and logic.
    ["colour = 'RED'", true],
    ["'RED' = colour", true],
    ["colour = 'red'", false],
    ["colour <> 'RED'", false],
    ["colour != 'BLUE'", true],
    ['widget_weight_g > 120', false],
    ['widget_weight_g >= 100', true],
    ['temp_celcius < 23.5', true],
    ['temp_celcius <= 22', false],
    ["temp_celcius = '23'", null],
    ['note = 1', null],
    ['note IS NULL', true],
    ['note IS NOT NULL', false],
    ['missing IS NULL', true],
    ['colour IS NOT NULL', true],
    ['widget_weight_g > 120 AND note = 1', false],
    ['widget_weight_g < 120 AND note = 1', null],
    ['widget_weight_g < 120 OR note = 1', true],
    ['widget_weight_g > 120 OR note = 1', null],
    ['NOT (note = 1)', null],
    ["NOT (colour = 'RED')", false],
    ["temp_celcius BETWEEN 20 AND 25", true],
    ["temp_celcius NOT BETWEEN 20 AND 25", false],
    ["temp_celcius BETWEEN 24 AND note", false],
    ["temp_celcius BETWEEN 20 AND note", null],
    ["colour IN ('BLUE', 'RED')", true],
    ["colour NOT IN ('BLUE', 'RED')", false],
    ["colour IN ('BLUE', note)", null],
    ["colour NOT IN ('BLUE', 'GREEN')", true],
    ['note IN (1, 2)', null],
    ['temp_celcius IN (22, 23)', true],
    ['temp_celcius IN (22, 24)', false],
    ["temp_celcius IN ('23', 24)", null],
    ["temp_celcius NOT IN ('x', 'y')", null],
    ['temp_celcius NOT IN (22, 24)', true],
    ["colour IN ('RED')", true],
    ['payload IN (1)', null],
    // LIKE: % any run, _ one character, ESCAPE, case-sensitive.
    ["sensor_id LIKE 'aa-%'", true],
    ["sensor_id LIKE 'aa-1_1'", true],
    ["sensor_id LIKE 'aa-1_'", false],
    ["sensor_id LIKE 'AA-%'", false],
    ["sensor_id NOT LIKE '%9'", true],
    ["widget_type LIKE '%94'", true],
    ["'50%' LIKE '50!%' ESCAPE '!'", true],
    ["'50x' LIKE '50!%' ESCAPE '!'", false],
    ["'a.c' LIKE 'a.c'", true],
    ["'abc' LIKE 'a.c'", false],
    ['note LIKE \'%\'', null],
    // Arithmetic.
    ['temp_celcius * 9 / 5 + 32', 73.4],
    ['widget_weight_g % 7', 2],
    ['-temp_celcius', -23],
    ['temp_celcius / 0', null],
    ["temp_celcius + 'x'", null],
    ['note + 1', null],
    ['7 / 2', 3.5],
    ["sensor_id || '@' || production_line", 'aa-101@w01'],
    ["sensor_id || note", null],
    // CASE.
    ["CASE WHEN temp_celcius > 30 THEN 'hot' WHEN temp_celcius > 20 THEN 'warm' ELSE 'cold' END", 'warm'],
    ["CASE colour WHEN 'BLUE' THEN 1 WHEN 'RED' THEN 2 END", 2],
    ["CASE colour WHEN 'BLUE' THEN 1 END", null],
    ["CASE WHEN note = 1 THEN 'x' ELSE 'unknown is not true' END", 'unknown is not true'],
    // CAST.
    ['CAST(temp_celcius AS VARCHAR)', '23'],
    ["CAST('42' AS INT)", 42],
    ["CAST('4.7' AS INT)", 4],
    ["CAST('-4.7' AS BIGINT)", -4],
    ["CAST('abc' AS INT)", null],
    ["CAST('1.005' AS DECIMAL(4, 2))", 1.01],
    ['CAST(temp_celcius AS DOUBLE) / 2', 11.5],
    ["CAST('TRUE' AS BOOLEAN)", true],
    ["CAST('yes' AS BOOLEAN)", null],
    ['CAST(reading_ts AS TIMESTAMP)', Date.UTC(2020, 1, 14, 12, 19, 27)],
    ['CAST(note AS VARCHAR)', null],
    // Scalar functions (ksqlDB names and semantics).
    ['UCASE(widget_type)', 'ACME94'],
    ["LCASE('RED')", 'red'],
    ["CONCAT(sensor_id, '/', production_line)", 'aa-101/w01'],
    ["CONCAT(sensor_id, note, '!')", 'aa-101!'],
    ["CONCAT_WS('-', production_line, note, colour)", 'w01-RED'],
    ['SUBSTRING(sensor_id, 1, 2)', 'aa'],
    ['SUBSTRING(sensor_id, 4)', '101'],
    ['SUBSTRING(sensor_id, -3)', '101'],
    ['SUBSTRING(sensor_id, 2, 0)', ''],
    ['SUBSTRING(note, 1)', null],
    ["TRIM('  x  ')", 'x'],
    ["LTRIM('  x ')", 'x '],
    ["RTRIM(' x  ')", ' x'],
    ['LEN(sensor_id)', 6],
    ["REPLACE(sensor_id, 'aa', 'bb')", 'bb-101'],
    ["INSTR(sensor_id, '1')", 4],
    ['ROUND(payload->temp)', 22],
    ['ROUND(-2.5)', -3],
    ['ROUND(2.345, 2)', 2.35],
    ['ABS(-temp_celcius)', 23],
    ['FLOOR(payload->temp)', 21],
    ['CEIL(payload->temp)', 22],
    ['SQRT(16)', 4],
    ['SQRT(-1)', null],
    ['POWER(2, 10)', 1024],
    ['SIGN(-5)', -1],
    ['GREATEST(3, temp_celcius, 7)', 23],
    ['LEAST(3, temp_celcius, note)', 3],
    ["COALESCE(note, missing, 'dflt')", 'dflt'],
    ["IFNULL(note, 'none')", 'none'],
    ["IFNULL(colour, 'none')", 'RED'],
    ["NULLIF(colour, 'RED')", null],
    ["NULLIF(colour, 'BLUE')", 'RED'],
    ['UCASE(temp_celcius)', null],
    ["TIMESTAMPTOSTRING(CAST(reading_ts AS TIMESTAMP), 'yyyy-MM-dd HH:mm:ss.SSS')", '2020-02-14 12:19:27.000'],
    ["TIMESTAMPTOSTRING(1581682767123, 'yyyy-MM-dd''T''HH:mm:ssXXX', '+02:00')", '2020-02-14T14:19:27+02:00'],
    ["FORMAT_TIMESTAMP(1581682767123, 'd/M/yy H:m:s X')", '14/2/20 12:19:27 Z'],
    ["TIMESTAMPTOSTRING(1581682767123, 'EEE')", null],
    ["TIMESTAMPTOSTRING(1581682767123, 'yyyy', 'Mars/Olympus')", null],
    ["TIMESTAMPTOSTRING(note, 'yyyy')", null],
  ];
  it.each(cases)('%s', (sql, want) => {
    expect(evaluate(sql)).toEqual(want);
  });
});

describe('compilePredicate', () => {
  it('passes a row only when the condition is TRUE (FALSE and NULL reject)', () => {
    const p = (sql: string): boolean => compilePredicate(parseExpression(sql), scope)(reading);
    expect(p("colour = 'RED'")).toBe(true);
    expect(p("colour = 'BLUE'")).toBe(false);
    expect(p('note = 1')).toBe(false);
    expect(p('NOT (note = 1)')).toBe(false);
    expect(p('temp_celcius')).toBe(false);
  });
});

describe('integer division', () => {
  it('truncates when the scope says both sides are integral, as ksqlDB does for INT/BIGINT', () => {
    const typed: Scope<Record<string, unknown>> = {
      ...scope,
      typeOf: (e: Expr) => (e.kind === 'NumberLiteral' && e.integer ? 'INT' : e.kind === 'ColumnRef' ? 'INT' : 'ANY'),
    };
    expect(compileExpr(parseExpression('7 / 2'), typed)(reading)).toBe(3);
    expect(compileExpr(parseExpression('temp_celcius / 2'), typed)(reading)).toBe(11);
    expect(compileExpr(parseExpression('7.0 / 2'), typed)(reading)).toBe(3.5);
  });
});

describe('errors at compile time', () => {
  it('names an unknown function with its position', () => {
    try {
      compileExpr(parseExpression('1 + frobnicate(colour)'), scope);
      expect.unreachable();
    } catch (e) {
      expect(isRulesError(e, 'RULES_ANALYSIS')).toBe(true);
      expect((e as Error).message).toBe("unknown function 'frobnicate'");
      expect((e as { context: object }).context).toMatchObject({ line: 1, col: 5, token: 'frobnicate' });
    }
  });

  it('rejects a multi-character ESCAPE', () => {
    expect(() => compileExpr(parseExpression("colour LIKE 'x' ESCAPE '!!'"), scope)).toThrow("ESCAPE must be a single character, got '!!'");
  });
});

describe('LIKE patterns', () => {
  it('treats regular-expression characters literally', () => {
    expect(likeToRegExp('a+b(c)?[d]$^', null).test('a+b(c)?[d]$^')).toBe(true);
    expect(likeToRegExp('a+b', null).test('aab')).toBe(false);
  });

  it('% and _ match across newlines and astral characters', () => {
    expect(likeToRegExp('a%z', null).test('a\nb\nz')).toBe(true);
    expect(likeToRegExp('_', null).test('😀')).toBe(true);
  });

  it('compiles a computed pattern per distinct value', () => {
    const f = compileExpr(parseExpression('sensor_id LIKE pattern'), scope);
    expect(f({ sensor_id: 'aa-101', pattern: 'aa%' })).toBe(true);
    expect(f({ sensor_id: 'aa-101', pattern: 'bb%' })).toBe(false);
    expect(f({ sensor_id: 'aa-101', pattern: null })).toBe(null);
  });
});

describe('property: compiled closures never throw', () => {
  it('evaluates random well-formed expressions over random rows to a value (NULL on bad data), never an exception', async () => {
    const fc = (await import('fast-check')).default;
    const { SCALAR_FUNCTIONS } = await import('./functions.ts');
    const leaf = fc.oneof(
      fc.constantFrom('a', 'b', 'c', 'missing', 'obj->x', 'arr[1]', 'arr[-2]', 'obj[\'x\']'),
      fc.integer({ min: -5, max: 5 }).map(String),
      fc.constantFrom('0', '1.5', "'RED'", "'%a_'", "''", 'NULL', 'TRUE', 'FALSE', "'2020-02-14T12:19:27Z'"),
    );
    const names = [...SCALAR_FUNCTIONS.values()];
    const { expr } = fc.letrec((tie) => ({
      expr: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        leaf,
        fc.tuple(tie('expr'), fc.constantFrom('+', '-', '*', '/', '%', '||', '=', '<>', '<', '>=', 'AND', 'OR'), tie('expr')).map(([l, op, r]) => `(${l} ${op} ${r})`),
        tie('expr').map((e) => `(NOT ${e})`),
        tie('expr').map((e) => `(- ${e})`),
        fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([x, l, h]) => `(${x} BETWEEN ${l} AND ${h})`),
        fc.tuple(tie('expr'), tie('expr')).map(([x, p]) => `(${x} LIKE ${p})`),
        fc.tuple(tie('expr'), fc.array(tie('expr'), { minLength: 1, maxLength: 3 })).map(([x, l]) => `(${x} IN (${l.join(', ')}))`),
        tie('expr').map((e) => `(${e} IS NOT NULL)`),
        fc.tuple(tie('expr'), tie('expr'), tie('expr')).map(([w, t, e]) => `CASE WHEN ${w} THEN ${t} ELSE ${e} END`),
        fc.tuple(tie('expr'), fc.constantFrom('INT', 'BIGINT', 'DOUBLE', 'DECIMAL(4, 2)', 'VARCHAR', 'BOOLEAN', 'TIMESTAMP', 'DATE', 'ARRAY<INT>')).map(([e, t]) => `CAST(${e} AS ${t})`),
        fc.tuple(fc.constantFrom(...names), fc.array(tie('expr'), { maxLength: 3 })).map(([f, args]) => {
          const n = Math.min(Math.max(args.length, f.minArgs), f.maxArgs === Infinity ? 3 : f.maxArgs);
          const padded = [...args, '1', "'x'", '2'].slice(0, n);
          return `${f.name}(${padded.join(', ')})`;
        }),
      ),
    }));
    const value = fc.oneof(fc.constant(null), fc.integer(), fc.double(), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant({ x: 1 }), fc.constant([1, 'two', null]));
    const row = fc.record({ a: value, b: value, c: value, obj: fc.oneof(value, fc.dictionary(fc.constantFrom('x', 'X', 'y'), value)), arr: fc.oneof(value, fc.array(value, { maxLength: 3 })) });
    fc.assert(
      fc.property(expr, row, (sql, r) => {
        const f = compileExpr(parseExpression(sql), scope);
        const v = f(r);
        expect(v === undefined).toBe(false);
        if (typeof v === 'number') expect(Number.isNaN(v)).toBe(false);
      }),
      { numRuns: 600, seed: 42 },
    );
  });
});

describe('property: IN over literals (Set lookup) agrees with item-by-item comparison', () => {
  it('gives the same three-valued result', async () => {
    const fc = (await import('fast-check')).default;
    const lit = fc.oneof(fc.integer({ min: -3, max: 3 }).map(String), fc.constantFrom("'a'", "'b'", "''", '1.5'));
    const value = fc.oneof(fc.constant(null), fc.integer({ min: -3, max: 3 }), fc.constantFrom('a', 'b', '', 1.5, true, Number.NaN), fc.constant({ a: 1 }));
    fc.assert(
      fc.property(fc.array(lit, { minLength: 1, maxLength: 4 }), fc.boolean(), value, (items, negated, v) => {
        const not = negated ? 'NOT ' : '';
        const fast = compileExpr(parseExpression(`x ${not}IN (${items.join(', ')})`), scope)({ x: v });
        // COALESCE(...) is not a literal, so this list takes the item-by-item path.
        const slow = compileExpr(parseExpression(`x ${not}IN (${items.map((i) => `COALESCE(${i})`).join(', ')})`), scope)({ x: v });
        expect(fast).toBe(slow);
      }),
      { numRuns: 500, seed: 11 },
    );
  });
});

describe('LIKE matching', () => {
  it('agrees with the anchored RegExp translation on random patterns and strings', async () => {
    const fc = (await import('fast-check')).default;
    const alphabet = fc.constantFrom('a', 'b', '%', '_', '😀');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 8 }), fc.array(fc.constantFrom('a', 'b', '😀'), { maxLength: 12 }), (p, s) => {
        const pattern = p.join('');
        const text = s.join('');
        expect(likeMatcher(pattern, null)(text)).toBe(likeToRegExp(pattern, null).test(text));
      }),
      { numRuns: 2000, seed: 7 },
    );
  });

  it('honours ESCAPE and matches whole strings only', () => {
    expect(likeMatcher('10!%', '!')('10%')).toBe(true);
    expect(likeMatcher('10!%', '!')('100')).toBe(false);
    expect(likeMatcher('RED', null)('RED ')).toBe(false);
    expect(likeMatcher('%', null)('')).toBe(true);
    expect(likeMatcher('_', null)('')).toBe(false);
  });

  it('does not backtrack on a hostile pattern over a long device string', () => {
    // A backtracking RegExp takes polynomial time here; the segment matcher scans once per segment.
    const text = 'a'.repeat(65_536);
    expect(likeMatcher('%a%a%a%a%a%a%a%a%a%a%b', null)(text)).toBe(false);
    expect(likeMatcher('%a%a%a%a%a%a%a%a%a%a%', null)(text)).toBe(true);
  });
});
