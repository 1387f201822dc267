/**
 * Scalar functions of the rule dialect (ksqlDB's names and semantics), and
 * the catalogue of aggregate function names the analyzer accepts (their
 * state lives in the runtime).
 *
 * Conventions (as ksqlDB): a NULL argument gives a NULL result unless the
 * function says otherwise (COALESCE, IFNULL, NULLIF, CONCAT, CONCAT_WS);
 * an argument of the wrong kind at run time (a string where a number is
 * expected) also gives NULL. Functions never throw.
 */

import type { SqlType } from './types.ts';
import { isNumericType, roundHalfUp, valueToString, widerNumeric } from './types.ts';

/** Argument kind expected at a position; checked statically when the argument's type is known. */
export type ArgKind = 'number' | 'string' | 'any';

export interface ScalarFunction {
  readonly name: string;
  readonly minArgs: number;
  /** `Infinity` for variadic functions. */
  readonly maxArgs: number;
  /** Kind per position; the last entry repeats for variadic functions. */
  readonly argKinds: readonly ArgKind[];
  /** Static result type from the arguments' static types. */
  returns(args: readonly SqlType[]): SqlType;
  /** The implementation; receives exactly the call's arguments. */
  readonly impl: (args: readonly unknown[]) => unknown;
  /**
   * Plan-time check of the arguments written as literals (`undefined` for the
   * others): returns an error message, or null when they are fine.
   */
  readonly checkLiterals?: (literals: readonly unknown[]) => string | null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && !Number.isNaN(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** One number in, one number out; NULL or non-number in → NULL. */
function math1(name: string, f: (x: number) => number, returns: (t: SqlType) => SqlType): ScalarFunction {
  return {
    name,
    minArgs: 1,
    maxArgs: 1,
    argKinds: ['number'],
    returns: (a) => returns(a[0] ?? 'ANY'),
    impl: (a) => {
      const x = num(a[0]);
      if (x === null) return null;
      const r = f(x);
      return Number.isNaN(r) ? null : r;
    },
  };
}

/** One string in (and optional extra args), a value out; NULL or non-string first arg → NULL. */
function string1(name: string, f: (s: string) => unknown, returns: SqlType): ScalarFunction {
  return {
    name,
    minArgs: 1,
    maxArgs: 1,
    argKinds: ['string'],
    returns: () => returns,
    impl: (a) => {
      const s = str(a[0]);
      return s === null ? null : f(s);
    },
  };
}

const sameType = (t: SqlType): SqlType => t;
const toDouble = (): SqlType => 'DOUBLE';
const integral = (t: SqlType): SqlType => (t === 'INT' ? 'INT' : t === 'ANY' ? 'ANY' : 'BIGINT');

/** First non-NULL argument's static type. */
function firstKnown(args: readonly SqlType[]): SqlType {
  return args.find((t) => t !== 'NULL') ?? 'NULL';
}

/** Pattern letters TIMESTAMPTOSTRING supports (a subset of Java's DateTimeFormatter). */
const TIME_FIELDS: Readonly<Record<string, (d: Date, offsetMin: number) => string>> = Object.freeze({
  yyyy: (d) => String(d.getUTCFullYear()).padStart(4, '0'),
  yy: (d) => String(d.getUTCFullYear() % 100).padStart(2, '0'),
  MM: (d) => String(d.getUTCMonth() + 1).padStart(2, '0'),
  M: (d) => String(d.getUTCMonth() + 1),
  dd: (d) => String(d.getUTCDate()).padStart(2, '0'),
  d: (d) => String(d.getUTCDate()),
  HH: (d) => String(d.getUTCHours()).padStart(2, '0'),
  H: (d) => String(d.getUTCHours()),
  mm: (d) => String(d.getUTCMinutes()).padStart(2, '0'),
  m: (d) => String(d.getUTCMinutes()),
  ss: (d) => String(d.getUTCSeconds()).padStart(2, '0'),
  s: (d) => String(d.getUTCSeconds()),
  SSS: (d) => String(d.getUTCMilliseconds()).padStart(3, '0'),
  X: (_d, off) => (off === 0 ? 'Z' : formatOffset(off, false)),
  XXX: (_d, off) => (off === 0 ? 'Z' : formatOffset(off, true)),
});

function formatOffset(offsetMin: number, colon: boolean): string {
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  const hh = String(Math.floor(a / 60)).padStart(2, '0');
  const mm = String(a % 60).padStart(2, '0');
  return colon ? `${sign}${hh}:${mm}` : `${sign}${hh}${mm}`;
}

type PatternPart = { literal: string } | { field: (d: Date, offsetMin: number) => string };

/** Splits a DateTimeFormatter pattern into literals and fields; a string names the first unsupported letter run. */
function parseTimePattern(pattern: string): PatternPart[] | string {
  const parts: PatternPart[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "'") {
      const end = pattern.indexOf("'", i + 1);
      if (end < 0) return "unterminated quote";
      parts.push({ literal: end === i + 1 ? "'" : pattern.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (j < pattern.length && pattern[j] === c) j++;
      const run = pattern.slice(i, j);
      const field = TIME_FIELDS[run];
      if (field === undefined) return run;
      parts.push({ field });
      i = j;
      continue;
    }
    parts.push({ literal: c });
    i++;
  }
  return parts;
}

/** Minutes east of UTC for 'UTC', 'GMT', 'Z' or a fixed offset like '+02:00'; null otherwise. */
function parseZone(zone: string): number | null {
  const z = zone.trim().toUpperCase();
  if (z === 'UTC' || z === 'GMT' || z === 'Z') return 0;
  const m = /^(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})$/.exec(z);
  if (m === null) return null;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (minutes > 18 * 60) return null;
  return m[1] === '-' ? -minutes : minutes;
}

/** TIMESTAMPTOSTRING(ms, pattern [, zone]) with the pattern subset above; zone default UTC. */
const timestampToString: ScalarFunction = {
  name: 'TIMESTAMPTOSTRING',
  minArgs: 2,
  maxArgs: 3,
  argKinds: ['number', 'string', 'string'],
  returns: () => 'VARCHAR',
  impl: (a) => {
    const ms = num(a[0]);
    const pattern = str(a[1]);
    if (ms === null || pattern === null || !Number.isFinite(ms)) return null;
    const zone = a.length > 2 ? str(a[2]) : 'UTC';
    const offsetMin = zone === null ? null : parseZone(zone);
    const parts = parseTimePattern(pattern);
    if (offsetMin === null || typeof parts === 'string') return null;
    const d = new Date(ms + offsetMin * 60_000);
    if (Number.isNaN(d.getTime())) return null;
    return parts.map((p) => ('literal' in p ? p.literal : p.field(d, offsetMin))).join('');
  },
  checkLiterals: (lits) => {
    if (typeof lits[1] === 'string') {
      const parts = parseTimePattern(lits[1]);
      if (typeof parts === 'string') return `unsupported pattern '${parts}' in TIMESTAMPTOSTRING (supported: yyyy yy MM M dd d HH H mm m ss s SSS X XXX and 'quoted text')`;
    }
    if (typeof lits[2] === 'string' && parseZone(lits[2]) === null) return `unsupported time zone '${lits[2]}' (use 'UTC' or a fixed offset like '+02:00')`;
    return null;
  },
};

const FUNCTION_LIST: readonly ScalarFunction[] = [
  timestampToString,
  { ...timestampToString, name: 'FORMAT_TIMESTAMP' },
  string1('UCASE', (s) => s.toUpperCase(), 'VARCHAR'),
  string1('LCASE', (s) => s.toLowerCase(), 'VARCHAR'),
  string1('TRIM', (s) => s.trim(), 'VARCHAR'),
  string1('LTRIM', (s) => s.trimStart(), 'VARCHAR'),
  string1('RTRIM', (s) => s.trimEnd(), 'VARCHAR'),
  string1('LEN', (s) => s.length, 'INT'),
  {
    name: 'CONCAT',
    minArgs: 1,
    maxArgs: Infinity,
    argKinds: ['any'],
    returns: () => 'VARCHAR',
    // ksqlDB: NULL arguments count as empty strings.
    impl: (a) => a.map((v) => valueToString(v) ?? '').join(''),
  },
  {
    name: 'CONCAT_WS',
    minArgs: 2,
    maxArgs: Infinity,
    argKinds: ['string', 'any'],
    returns: () => 'VARCHAR',
    // ksqlDB: NULL separator → NULL; NULL values are skipped.
    impl: (a) => {
      const sep = str(a[0]);
      if (sep === null) return null;
      const parts: string[] = [];
      for (let i = 1; i < a.length; i++) {
        const s = valueToString(a[i]);
        if (s !== null) parts.push(s);
      }
      return parts.join(sep);
    },
  },
  {
    name: 'SUBSTRING',
    minArgs: 2,
    maxArgs: 3,
    argKinds: ['string', 'number', 'number'],
    returns: () => 'VARCHAR',
    // 1-based position; a negative position counts from the end (ksqlDB).
    impl: (a) => {
      const s = str(a[0]);
      const p = num(a[1]);
      if (s === null || p === null) return null;
      const len = a.length > 2 ? num(a[2]) : s.length;
      if (len === null) return null;
      let start = p > 0 ? Math.trunc(p) - 1 : p < 0 ? s.length + Math.trunc(p) : 0;
      if (start < 0) start = 0;
      if (len <= 0) return '';
      return s.substring(start, start + Math.trunc(len));
    },
  },
  {
    name: 'REPLACE',
    minArgs: 3,
    maxArgs: 3,
    argKinds: ['string', 'string', 'string'],
    returns: () => 'VARCHAR',
    impl: (a) => {
      const s = str(a[0]);
      const from = str(a[1]);
      const to = str(a[2]);
      if (s === null || from === null || to === null) return null;
      return from === '' ? s : s.split(from).join(to);
    },
  },
  {
    name: 'INSTR',
    minArgs: 2,
    maxArgs: 2,
    argKinds: ['string', 'string'],
    returns: () => 'INT',
    // 1-based position of the first occurrence, 0 when absent.
    impl: (a) => {
      const s = str(a[0]);
      const sub = str(a[1]);
      if (s === null || sub === null) return null;
      return s.indexOf(sub) + 1;
    },
  },
  math1('ABS', Math.abs, sameType),
  math1('FLOOR', Math.floor, sameType),
  math1('CEIL', Math.ceil, sameType),
  math1('SQRT', Math.sqrt, toDouble),
  math1('EXP', Math.exp, toDouble),
  math1('LN', Math.log, toDouble),
  math1('SIGN', Math.sign, () => 'INT'),
  {
    name: 'ROUND',
    minArgs: 1,
    maxArgs: 2,
    argKinds: ['number', 'number'],
    // ksqlDB: ROUND(DOUBLE) → BIGINT; ROUND(x, scale) keeps x's type.
    returns: (a) => (a.length === 1 ? integral(a[0] === 'DOUBLE' || a[0] === 'DECIMAL' ? 'BIGINT' : (a[0] ?? 'ANY')) : (a[0] ?? 'ANY')),
    impl: (a) => {
      const x = num(a[0]);
      if (x === null) return null;
      const scale = a.length > 1 ? num(a[1]) : 0;
      if (scale === null) return null;
      return roundHalfUp(x, Math.trunc(scale));
    },
  },
  {
    name: 'POWER',
    minArgs: 2,
    maxArgs: 2,
    argKinds: ['number', 'number'],
    returns: toDouble,
    impl: (a) => {
      const x = num(a[0]);
      const y = num(a[1]);
      if (x === null || y === null) return null;
      const r = Math.pow(x, y);
      return Number.isFinite(r) ? r : null;
    },
  },
  {
    name: 'GREATEST',
    minArgs: 1,
    maxArgs: Infinity,
    argKinds: ['any'],
    returns: firstKnown,
    // NULL arguments are ignored; mixed kinds → NULL.
    impl: (a) => pick(a, 1),
  },
  {
    name: 'LEAST',
    minArgs: 1,
    maxArgs: Infinity,
    argKinds: ['any'],
    returns: firstKnown,
    impl: (a) => pick(a, -1),
  },
  {
    name: 'COALESCE',
    minArgs: 1,
    maxArgs: Infinity,
    argKinds: ['any'],
    returns: firstKnown,
    impl: (a) => {
      for (const v of a) if (v !== null && v !== undefined) return v;
      return null;
    },
  },
  {
    name: 'IFNULL',
    minArgs: 2,
    maxArgs: 2,
    argKinds: ['any', 'any'],
    returns: firstKnown,
    impl: (a) => (a[0] === null || a[0] === undefined ? (a[1] ?? null) : a[0]),
  },
  {
    name: 'NULLIF',
    minArgs: 2,
    maxArgs: 2,
    argKinds: ['any', 'any'],
    returns: firstKnown,
    impl: (a) => {
      const x = a[0] ?? null;
      const y = a[1] ?? null;
      if (x === null) return null;
      return y !== null && typeof x === typeof y && JSON.stringify(x) === JSON.stringify(y) ? null : x;
    },
  },
];

function pick(a: readonly unknown[], dir: 1 | -1): unknown {
  let best: unknown = null;
  for (const v of a) {
    if (v === null || v === undefined) continue;
    if (best === null) {
      best = v;
      continue;
    }
    if (typeof v !== typeof best || (typeof v !== 'number' && typeof v !== 'string')) return null;
    if ((dir === 1 && (v as number) > (best as number)) || (dir === -1 && (v as number) < (best as number))) best = v;
  }
  return best;
}

/** Scalar functions by upper-case name. */
export const SCALAR_FUNCTIONS: ReadonlyMap<string, ScalarFunction> = new Map(FUNCTION_LIST.map((f) => [f.name, f]));

/** Aggregate functions the dialect accepts: name → argument count and static result type. */
export interface AggregateSignature {
  readonly name: string;
  /** COUNT accepts `*`. */
  readonly star: boolean;
  /** Kind of the single argument. */
  readonly argKind: ArgKind;
  returns(arg: SqlType): SqlType;
}

const AGGREGATE_LIST: readonly AggregateSignature[] = [
  { name: 'COUNT', star: true, argKind: 'any', returns: () => 'BIGINT' },
  { name: 'SUM', star: false, argKind: 'number', returns: (t) => (t === 'INT' ? 'INT' : isNumericType(t) ? widerNumeric(t, 'BIGINT') : 'ANY') },
  { name: 'AVG', star: false, argKind: 'number', returns: () => 'DOUBLE' },
  { name: 'MIN', star: false, argKind: 'any', returns: sameType },
  { name: 'MAX', star: false, argKind: 'any', returns: sameType },
  { name: 'STDDEV_SAMP', star: false, argKind: 'number', returns: () => 'DOUBLE' },
  { name: 'LATEST_BY_OFFSET', star: false, argKind: 'any', returns: sameType },
  { name: 'EARLIEST_BY_OFFSET', star: false, argKind: 'any', returns: sameType },
];

/** Aggregate functions by upper-case name. */
export const AGGREGATE_FUNCTIONS: ReadonlyMap<string, AggregateSignature> = new Map(AGGREGATE_LIST.map((f) => [f.name, f]));
