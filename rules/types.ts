/**
 * SQL types and values of the rule dialect.
 *
 * Values are JSON values: `null` is SQL NULL (a missing field reads as NULL
 * too), numbers are IEEE doubles (INT, BIGINT, DOUBLE and DECIMAL alike;
 * integers beyond 2^53 lose precision), strings, booleans, arrays (ARRAY)
 * and plain objects (MAP, STRUCT). TIMESTAMP values are epoch milliseconds.
 *
 * Static types drive the analyzer's checks. `ANY` is the type of anything
 * whose type is not known (a column of a source without declared columns):
 * it is compatible with every type, and checks happen on values at run time
 * (a mismatch evaluates to NULL, never throws).
 */

import type { BaseTypeName, TypeNode } from './ast.ts';

export type SqlType = BaseTypeName | 'ARRAY' | 'MAP' | 'STRUCT' | 'NULL' | 'ANY';

const NUMERIC: ReadonlySet<SqlType> = new Set<SqlType>(['INT', 'BIGINT', 'DOUBLE', 'DECIMAL']);

export function isNumericType(t: SqlType): boolean {
  return NUMERIC.has(t);
}

/** The static type of a declared type node. */
export function sqlTypeOf(t: TypeNode): SqlType {
  switch (t.kind) {
    case 'BaseType':
      return t.name;
    case 'ArrayType':
      return 'ARRAY';
    case 'MapType':
      return 'MAP';
    case 'StructType':
      return 'STRUCT';
  }
}

/** Type families for comparisons: values of different families never compare (a static error, or NULL at run time). */
export function typeFamily(t: SqlType): 'number' | 'string' | 'boolean' | 'time' | 'other' | 'any' {
  if (t === 'ANY' || t === 'NULL') return 'any';
  if (isNumericType(t)) return 'number';
  if (t === 'VARCHAR') return 'string';
  if (t === 'BOOLEAN') return 'boolean';
  if (t === 'TIMESTAMP' || t === 'DATE' || t === 'TIME') return 'time';
  return 'other';
}

/** Result type of arithmetic on two numeric types (ksqlDB widening: INT < BIGINT < DECIMAL < DOUBLE). */
export function widerNumeric(a: SqlType, b: SqlType): SqlType {
  if (a === 'ANY' || b === 'ANY') return 'ANY';
  const order: SqlType[] = ['INT', 'BIGINT', 'DECIMAL', 'DOUBLE'];
  return order[Math.max(order.indexOf(a), order.indexOf(b))] ?? 'DOUBLE';
}

/**
 * Three-way comparison of two non-null values of the same family: numbers
 * numerically, strings by UTF-16 code units (as Java's String.compareTo),
 * booleans false < true. Returns null when they do not compare (NULL, or
 * different families, or arrays/objects).
 */
export function compareValues(a: unknown, b: unknown): number | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  const ta = typeof a;
  if (ta !== typeof b) return null;
  if (ta === 'number') {
    const x = a as number;
    const y = b as number;
    if (Number.isNaN(x) || Number.isNaN(y)) return null;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (ta === 'string') return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
  if (ta === 'boolean') return a === b ? 0 : a ? 1 : -1;
  return null;
}

/** SQL `=`: true/false for comparable values, null when either is NULL or they do not compare. Arrays and objects compare structurally. */
export function sqlEquals(a: unknown, b: unknown): boolean | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  if (typeof a === 'object' && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  const c = compareValues(a, b);
  return c === null ? null : c === 0;
}

/** A number from a value, or null: numbers as is, numeric strings parsed (ksqlDB implicit casts do not go this far; CAST does). */
function parseNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string') {
    const s = v.trim();
    if (s === '' || !/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s)) return null;
    return Number(s);
  }
  if (typeof v === 'boolean') return null;
  return null;
}

/** Rounds half away from zero to `scale` decimal places (Java's HALF_UP, as ksqlDB's ROUND). */
export function roundHalfUp(x: number, scale = 0): number {
  if (!Number.isFinite(x)) return x;
  const sign = x < 0 ? -1 : 1;
  const abs = Math.abs(x);
  if (scale === 0) return sign * Math.round(abs);
  // Shift through the decimal string so that 1.005 rounds to 1.01 like BigDecimal would.
  const shifted = Math.round(Number(`${abs}e${scale}`));
  return sign * Number(`${shifted}e${-scale}`);
}

/**
 * Epoch milliseconds from a timestamp value: a number (epoch ms), a string
 * of digits (epoch ms), or an ISO-8601 date-time string (`2020-02-14T12:19:27Z`;
 * without a zone it is read as UTC). Null when it is none of these.
 */
export function toEpochMs(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : null;
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (m === null) return null;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', zone = 'Z'] = m;
  const ms = Number((frac + '000').slice(0, 3));
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec), ms);
  if (Number.isNaN(t)) return null;
  if (zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    t -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  // Reject impossible dates that Date.UTC rolls over (2020-02-31).
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1) return null;
  return t;
}

/** A value rendered as text, as CAST(x AS VARCHAR) and CONCAT do: strings as is, numbers and booleans in JS form, objects as JSON. */
export function valueToString(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/**
 * Returns a converter for `CAST(x AS type)`. Conversions that fail yield
 * NULL (ksqlDB logs and returns NULL): `CAST('abc' AS INT)` is NULL.
 * INT/BIGINT truncate toward zero; DECIMAL(p, s) rounds half up to s places;
 * BOOLEAN accepts 'true'/'false' in any case; TIMESTAMP accepts what
 * `toEpochMs` accepts.
 */
export function castFunction(t: TypeNode): (v: unknown) => unknown {
  if (t.kind !== 'BaseType') {
    const want = t.kind === 'ArrayType' ? 'array' : 'object';
    return (v) => {
      if (v === null || v === undefined) return null;
      if (want === 'array') return Array.isArray(v) ? v : null;
      return typeof v === 'object' && !Array.isArray(v) ? v : null;
    };
  }
  switch (t.name) {
    case 'INT':
    case 'BIGINT':
      return (v) => {
        const n = parseNumber(v);
        return n === null ? null : Math.trunc(n);
      };
    case 'DOUBLE':
      return (v) => parseNumber(v);
    case 'DECIMAL': {
      const scale = t.params[1] ?? 0;
      return (v) => {
        const n = parseNumber(v);
        return n === null ? null : roundHalfUp(n, scale);
      };
    }
    case 'VARCHAR':
      return valueToString;
    case 'BOOLEAN':
      return (v) => {
        if (typeof v === 'boolean') return v;
        if (typeof v === 'string') {
          const s = v.trim().toLowerCase();
          return s === 'true' ? true : s === 'false' ? false : null;
        }
        return null;
      };
    case 'TIMESTAMP':
      return toEpochMs;
    case 'DATE':
      return (v) => {
        const ms = toEpochMs(v);
        return ms === null ? null : Math.floor(ms / 86_400_000) * 86_400_000;
      };
    case 'TIME':
      return (v) => {
        const ms = toEpochMs(v);
        return ms === null ? null : ((ms % 86_400_000) + 86_400_000) % 86_400_000;
      };
    case 'BYTES':
      return (v) => (typeof v === 'string' ? v : null);
  }
}

/** The type a CAST produces. */
export function castResultType(t: TypeNode): SqlType {
  return sqlTypeOf(t);
}

/** The static type of a JSON value (for literals and tests). */
export function typeOfValue(v: unknown): SqlType {
  if (v === null || v === undefined) return 'NULL';
  switch (typeof v) {
    case 'number':
      return Number.isInteger(v) ? 'BIGINT' : 'DOUBLE';
    case 'string':
      return 'VARCHAR';
    case 'boolean':
      return 'BOOLEAN';
    default:
      return Array.isArray(v) ? 'ARRAY' : 'STRUCT';
  }
}
