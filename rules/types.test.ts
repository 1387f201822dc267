import { describe, expect, it } from 'vitest';
import type { TypeNode } from './ast.ts';
import { castFunction, compareValues, roundHalfUp, sqlEquals, toEpochMs, typeFamily, valueToString, widerNumeric } from './types.ts';

const base = (name: 'INT' | 'DOUBLE' | 'VARCHAR' | 'BOOLEAN' | 'DATE' | 'TIME', params: number[] = []): TypeNode => ({
  kind: 'BaseType',
  pos: { line: 1, col: 1, offset: 0 },
  name,
  params,
});

describe('SQL values', () => {
  it('compares within a family and refuses across families or with NULL', () => {
    expect(compareValues(1, 2)).toBe(-1);
    expect(compareValues('b', 'a')).toBe(1);
    expect(compareValues(true, false)).toBe(1);
    expect(compareValues(1, '1')).toBeNull();
    expect(compareValues(null, 1)).toBeNull();
    expect(compareValues(undefined, undefined)).toBeNull();
    expect(compareValues(Number.NaN, 1)).toBeNull();
    expect(compareValues([1], [1])).toBeNull();
  });

  it('= is three-valued and structural for arrays and objects', () => {
    expect(sqlEquals('RED', 'RED')).toBe(true);
    expect(sqlEquals(1, 1.0)).toBe(true);
    expect(sqlEquals(1, '1')).toBeNull();
    expect(sqlEquals(null, null)).toBeNull();
    expect(sqlEquals({ a: [1] }, { a: [1] })).toBe(true);
    expect(sqlEquals([1, 2], [2, 1])).toBe(false);
  });

  it('rounds half away from zero, with decimal scale like BigDecimal', () => {
    expect([2.5, -2.5, 0.5, 1.4999].map((x) => roundHalfUp(x))).toEqual([3, -3, 1, 1]);
    expect(roundHalfUp(1.005, 2)).toBe(1.01);
    expect(roundHalfUp(-1.005, 2)).toBe(-1.01);
    expect(roundHalfUp(1234.5678, 1)).toBe(1234.6);
  });

  it('reads event times: epoch ms, digit strings, ISO-8601 with and without zone', () => {
    expect(toEpochMs(1581682767000)).toBe(1581682767000);
    expect(toEpochMs('1581682767000')).toBe(1581682767000);
    expect(toEpochMs('2020-02-14T12:19:27Z')).toBe(1581682767000);
    expect(toEpochMs('2020-02-14 12:19:27.123')).toBe(1581682767123);
    expect(toEpochMs('2020-02-14T12:19:27.123456789Z')).toBe(1581682767123);
    expect(toEpochMs('2020-02-14T14:19:27+0200')).toBe(1581682767000);
    expect(toEpochMs('2020-02-14')).toBe(Date.UTC(2020, 1, 14));
    expect(toEpochMs('2020-13-01T00:00:00Z')).toBeNull();
    expect(toEpochMs('14/02/2020')).toBeNull();
    expect(toEpochMs(Number.POSITIVE_INFINITY)).toBeNull();
    expect(toEpochMs(null)).toBeNull();
  });

  it('casts per target type, NULL when the value does not convert', () => {
    expect(castFunction(base('INT'))(' 12 ')).toBe(12);
    expect(castFunction(base('INT'))(true)).toBeNull();
    expect(castFunction(base('DOUBLE'))('1e3')).toBe(1000);
    expect(castFunction(base('DOUBLE'))('1e')).toBeNull();
    expect(castFunction(base('VARCHAR'))({ a: 1 })).toBe('{"a":1}');
    expect(castFunction(base('BOOLEAN'))(' False ')).toBe(false);
    expect(castFunction(base('DATE'))('2020-02-14T12:19:27Z')).toBe(Date.UTC(2020, 1, 14));
    expect(castFunction(base('TIME'))('2020-02-14T12:19:27Z')).toBe((12 * 3600 + 19 * 60 + 27) * 1000);
    const arr: TypeNode = { kind: 'ArrayType', pos: { line: 1, col: 1, offset: 0 }, element: base('INT') };
    expect(castFunction(arr)([1])).toEqual([1]);
    expect(castFunction(arr)('x')).toBeNull();
  });

  it('widens numeric types like ksqlDB and groups types into families', () => {
    expect(widerNumeric('INT', 'BIGINT')).toBe('BIGINT');
    expect(widerNumeric('BIGINT', 'DOUBLE')).toBe('DOUBLE');
    expect(widerNumeric('INT', 'ANY')).toBe('ANY');
    expect(typeFamily('DECIMAL')).toBe('number');
    expect(typeFamily('NULL')).toBe('any');
    expect(valueToString(1.5)).toBe('1.5');
    expect(valueToString(null)).toBeNull();
  });
});
