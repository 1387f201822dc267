/**
 * Compiles syntax-tree expressions to closures, once per rule. Nothing here
 * evaluates text: no `eval`, no `new Function`; every closure is built from
 * the tree's nodes.
 *
 * Closures are generic over their context `C` (what they read): stream-level
 * closures read a `SourceRow`, table-level closures a `GroupRow`. A `Scope`
 * says how column references (and, for tables, GROUP BY expressions and
 * aggregate calls) read the context.
 *
 * Semantics (SQL, as ksqlDB): NULL propagates through operators and most
 * functions; AND/OR/NOT use three-valued logic (`null` is unknown); a type
 * mismatch at run time (a string where a number is expected), division by
 * zero and any non-finite result give NULL. Closures never throw.
 *
 * Division: `/` truncates toward zero (Java integer division, as ksqlDB)
 * only when both sides are statically INT/BIGINT (declared integer columns,
 * integer literals); values whose type is unknown (schemaless sources)
 * divide as doubles.
 */

import type { ColumnRef, Expr } from './ast.ts';
import { rulesErrorAt } from './errors.ts';
import { SCALAR_FUNCTIONS } from './functions.ts';
import type { SqlType } from './types.ts';
import { castFunction, compareValues, sqlEquals } from './types.ts';

export type Compiled<C> = (ctx: C) => unknown;

export interface Scope<C> {
  /** A closure reading a column (including pseudo columns) from the context. Throws a positioned RulesError for unknown columns. */
  column(ref: ColumnRef): Compiled<C>;
  /**
   * Takes over an expression before it is compiled normally: a GROUP BY key
   * or an aggregate call in table scope. Returns undefined to compile as usual.
   */
  intercept?(e: Expr): Compiled<C> | undefined;
  /** Static type of an expression when known (integer division needs it); default ANY. */
  typeOf?(e: Expr): SqlType;
}

/**
 * Reads `name` from a JSON object: exact match first, then (unless
 * `caseSensitive`) the first key equal ignoring case. Missing → null.
 */
export function getField(obj: unknown, name: string, caseSensitive: boolean): unknown {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return null;
  const o = obj as Record<string, unknown>;
  const v = o[name];
  if (v !== undefined) return v;
  if (caseSensitive) return null;
  const upper = name.toUpperCase();
  for (const k in o) {
    if (k.toUpperCase() === upper) return o[k] ?? null;
  }
  return null;
}

/** A predicate: true only when the expression is TRUE (FALSE and NULL reject). */
export function compilePredicate<C>(e: Expr, scope: Scope<C>): (ctx: C) => boolean {
  const f = compileExpr(e, scope);
  return (ctx) => f(ctx) === true;
}

const INTEGRAL: ReadonlySet<SqlType> = new Set<SqlType>(['INT', 'BIGINT']);

/** Compiles `e` in `scope`. Throws a positioned RulesError (RULES_ANALYSIS) for unknown functions or columns. */
export function compileExpr<C>(e: Expr, scope: Scope<C>): Compiled<C> {
  const taken = scope.intercept?.(e);
  if (taken !== undefined) return taken;
  const sub = (x: Expr): Compiled<C> => compileExpr(x, scope);
  switch (e.kind) {
    case 'StringLiteral':
    case 'NumberLiteral':
    case 'BooleanLiteral': {
      const v = e.value;
      return () => v;
    }
    case 'NullLiteral':
      return () => null;
    case 'ColumnRef':
      return scope.column(e);
    case 'FieldAccess': {
      const base = sub(e.base);
      const name = e.field.name;
      const cs = e.field.quoted;
      return (ctx) => getField(base(ctx), name, cs);
    }
    case 'Subscript': {
      const base = sub(e.base);
      const index = sub(e.index);
      return (ctx) => {
        const b = base(ctx);
        const i = index(ctx);
        if (Array.isArray(b)) {
          if (typeof i !== 'number' || !Number.isInteger(i) || i === 0) return null;
          // 1-based; negative counts from the end (ksqlDB).
          return b[i > 0 ? i - 1 : b.length + i] ?? null;
        }
        if (b !== null && typeof b === 'object' && typeof i === 'string') return (b as Record<string, unknown>)[i] ?? null;
        return null;
      };
    }
    case 'Unary': {
      const operand = sub(e.operand);
      if (e.op === 'NOT') {
        return (ctx) => {
          const v = operand(ctx);
          return typeof v === 'boolean' ? !v : null;
        };
      }
      if (e.op === '-') {
        return (ctx) => {
          const v = operand(ctx);
          return typeof v === 'number' ? -v : null;
        };
      }
      return (ctx) => {
        const v = operand(ctx);
        return typeof v === 'number' ? v : null;
      };
    }
    case 'Binary':
      return compileBinary(e, scope);
    case 'InList': {
      const x = sub(e.expr);
      const negated = e.negated;
      // All strings or all numbers: one Set lookup instead of a comparison per item (same result).
      const kinds = new Set(e.list.map((i) => (i.kind === 'StringLiteral' ? 'string' : i.kind === 'NumberLiteral' ? 'number' : 'other')));
      if (kinds.size === 1 && !kinds.has('other')) {
        const kind = [...kinds][0]!;
        const set = new Set<unknown>(e.list.map((i) => (i as { value: unknown }).value));
        return (ctx) => {
          const v = x(ctx);
          if (typeof v !== kind || Number.isNaN(v)) return null;
          return set.has(v) !== negated;
        };
      }
      const list = e.list.map(sub);
      return (ctx) => {
        const v = x(ctx);
        if (v === null || v === undefined) return null;
        let unknown = false;
        for (const f of list) {
          const eq = sqlEquals(v, f(ctx));
          if (eq === true) return !negated;
          if (eq === null) unknown = true;
        }
        return unknown ? null : negated;
      };
    }
    case 'Between': {
      const x = sub(e.expr);
      const low = sub(e.low);
      const high = sub(e.high);
      const negated = e.negated;
      return (ctx) => {
        const v = x(ctx);
        const a = compareValues(v, low(ctx));
        const b = compareValues(v, high(ctx));
        const r = and3(a === null ? null : a >= 0, b === null ? null : b <= 0);
        return r === null ? null : negated ? !r : r;
      };
    }
    case 'Like':
      return compileLike(e, scope);
    case 'IsNull': {
      const x = sub(e.expr);
      const negated = e.negated;
      return (ctx) => {
        const v = x(ctx);
        return (v === null || v === undefined) !== negated;
      };
    }
    case 'Case': {
      const operand = e.operand === null ? null : sub(e.operand);
      const whens = e.whens.map((w) => ({ when: sub(w.when), then: sub(w.then) }));
      const otherwise = e.else === null ? () => null : sub(e.else);
      if (operand === null) {
        return (ctx) => {
          for (const w of whens) if (w.when(ctx) === true) return w.then(ctx);
          return otherwise(ctx);
        };
      }
      return (ctx) => {
        const v = operand(ctx);
        for (const w of whens) if (sqlEquals(v, w.when(ctx)) === true) return w.then(ctx);
        return otherwise(ctx);
      };
    }
    case 'Cast': {
      const x = sub(e.expr);
      const cast = castFunction(e.type);
      return (ctx) => cast(x(ctx));
    }
    case 'Call': {
      const fn = SCALAR_FUNCTIONS.get(e.name.name.toUpperCase());
      if (fn === undefined) throw rulesErrorAt('RULES_ANALYSIS', `unknown function '${e.name.name}'`, e.pos, { token: e.name.name });
      const args = e.args.map(sub);
      const impl = fn.impl;
      if (args.length === 1) {
        const a0 = args[0]!;
        return (ctx) => impl([a0(ctx)]);
      }
      return (ctx) => impl(args.map((a) => a(ctx)));
    }
  }
}

/** Three-valued AND of two truth values (null = unknown). */
function and3(a: boolean | null, b: boolean | null): boolean | null {
  if (a === false || b === false) return false;
  if (a === null || b === null) return null;
  return true;
}

const truth = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);

function compileBinary<C>(e: Expr & { kind: 'Binary' }, scope: Scope<C>): Compiled<C> {
  const left = compileExpr(e.left, scope);
  const right = compileExpr(e.right, scope);
  switch (e.op) {
    case 'AND':
      return (ctx) => {
        const a = truth(left(ctx));
        if (a === false) return false;
        const b = truth(right(ctx));
        if (b === false) return false;
        return a === null || b === null ? null : true;
      };
    case 'OR':
      return (ctx) => {
        const a = truth(left(ctx));
        if (a === true) return true;
        const b = truth(right(ctx));
        if (b === true) return true;
        return a === null || b === null ? null : false;
      };
    case '=':
    case '<>': {
      const neq = e.op === '<>';
      // Fast path for `col = 'literal'` / `col = 123`: the common filter.
      const lit = e.right.kind === 'StringLiteral' || e.right.kind === 'NumberLiteral' ? e.right.value : undefined;
      if (lit !== undefined) {
        const kind = typeof lit;
        return (ctx) => {
          const v = left(ctx);
          if (v === null || v === undefined || typeof v !== kind) return null;
          return (v === lit) !== neq;
        };
      }
      return (ctx) => {
        const r = sqlEquals(left(ctx), right(ctx));
        return r === null ? null : r !== neq;
      };
    }
    case '<':
      return (ctx) => {
        const c = compareValues(left(ctx), right(ctx));
        return c === null ? null : c < 0;
      };
    case '<=':
      return (ctx) => {
        const c = compareValues(left(ctx), right(ctx));
        return c === null ? null : c <= 0;
      };
    case '>':
      return (ctx) => {
        const c = compareValues(left(ctx), right(ctx));
        return c === null ? null : c > 0;
      };
    case '>=':
      return (ctx) => {
        const c = compareValues(left(ctx), right(ctx));
        return c === null ? null : c >= 0;
      };
    case '||':
      return (ctx) => {
        const a = left(ctx);
        const b = right(ctx);
        return typeof a === 'string' && typeof b === 'string' ? a + b : null;
      };
    case '+':
      return arith(left, right, (a, b) => a + b);
    case '-':
      return arith(left, right, (a, b) => a - b);
    case '*':
      return arith(left, right, (a, b) => a * b);
    case '%':
      return arith(left, right, (a, b) => a % b);
    case '/': {
      // Integer division (truncating) when both sides are statically integral, as ksqlDB/Java.
      const integral = scope.typeOf !== undefined && INTEGRAL.has(scope.typeOf(e.left)) && INTEGRAL.has(scope.typeOf(e.right));
      return integral ? arith(left, right, (a, b) => Math.trunc(a / b)) : arith(left, right, (a, b) => a / b);
    }
  }
}

function arith<C>(left: Compiled<C>, right: Compiled<C>, op: (a: number, b: number) => number): Compiled<C> {
  return (ctx) => {
    const a = left(ctx);
    if (typeof a !== 'number') return null;
    const b = right(ctx);
    if (typeof b !== 'number') return null;
    const r = op(a, b);
    return Number.isFinite(r) ? r : null;
  };
}

/** Translates a LIKE pattern (`%` any run, `_` one character, `escape` quotes the next one) to an anchored RegExp. */
export function likeToRegExp(pattern: string, escape: string | null): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (escape !== null && c === escape && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(re + '$', 'u');
}

/** One unit of a LIKE segment: a literal character (code point) or `_` (any one character). */
type LikeUnit = string | null;

/**
 * A LIKE matcher in linear-ish time: the pattern splits at `%` into
 * segments; the first is anchored at the start, the last at the end, and
 * each middle one is found leftmost after the previous one. Greedy leftmost
 * matching is exact for patterns made only of `%` and `_`, and unlike a
 * backtracking RegExp it cannot blow up on a hostile pattern such as
 * `%a%a%a%a%b` over a 64 KB device string (O(length × pattern) at worst).
 * Characters are code points, so `_` matches one emoji.
 */
export function likeMatcher(pattern: string, escape: string | null): (s: string) => boolean {
  const segments: LikeUnit[][] = [[]];
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (escape !== null && c === escape && i + 1 < chars.length) segments[segments.length - 1]!.push(chars[++i]!);
    else if (c === '%') segments.push([]);
    else if (c === '_') segments[segments.length - 1]!.push(null);
    else segments[segments.length - 1]!.push(c);
  }
  const at = (s: readonly string[], pos: number, seg: readonly LikeUnit[]): boolean => {
    if (pos + seg.length > s.length) return false;
    for (let k = 0; k < seg.length; k++) if (seg[k] !== null && seg[k] !== s[pos + k]) return false;
    return true;
  };
  if (segments.length === 1) {
    const only = segments[0]!;
    return (str) => {
      const s = Array.from(str);
      return s.length === only.length && at(s, 0, only);
    };
  }
  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  const middle = segments.slice(1, -1).filter((m) => m.length > 0);
  return (str) => {
    const s = Array.from(str);
    if (first.length + last.length > s.length) return false;
    if (!at(s, 0, first) || !at(s, s.length - last.length, last)) return false;
    let pos = first.length;
    const limit = s.length - last.length;
    for (const seg of middle) {
      let found = -1;
      for (let p = pos; p + seg.length <= limit; p++) {
        if (at(s, p, seg)) {
          found = p;
          break;
        }
      }
      if (found < 0) return false;
      pos = found + seg.length;
    }
    return true;
  };
}

function compileLike<C>(e: Expr & { kind: 'Like' }, scope: Scope<C>): Compiled<C> {
  const x = compileExpr(e.expr, scope);
  const negated = e.negated;
  const escapeText = e.escape?.kind === 'StringLiteral' ? e.escape.value : null;
  if (escapeText !== null && [...escapeText].length !== 1) {
    throw rulesErrorAt('RULES_ANALYSIS', `ESCAPE must be a single character, got '${escapeText}'`, e.escape!.pos, { token: escapeText });
  }
  if (e.pattern.kind === 'StringLiteral') {
    const match = likeMatcher(e.pattern.value, escapeText);
    return (ctx) => {
      const v = x(ctx);
      return typeof v === 'string' ? match(v) !== negated : null;
    };
  }
  const pattern = compileExpr(e.pattern, scope);
  // Patterns computed per row: remember the last one (closure-local, per rule).
  let lastPattern: string | null = null;
  let lastMatch: ((s: string) => boolean) | null = null;
  return (ctx) => {
    const v = x(ctx);
    const p = pattern(ctx);
    if (typeof v !== 'string' || typeof p !== 'string') return null;
    if (p !== lastPattern) {
      lastPattern = p;
      lastMatch = likeMatcher(p, escapeText);
    }
    return lastMatch!(v) !== negated;
  };
}
