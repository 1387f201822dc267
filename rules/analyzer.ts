/**
 * Semantic analysis of one CREATE ... AS SELECT against its input stream:
 * names (columns, qualifiers, pseudo columns, functions), static types where
 * known, aggregate placement and GROUP BY rules, window sanity, output
 * column names. Every error is a `RulesError` (RULES_ANALYSIS) positioned on
 * the offending token.
 *
 * Rules enforced (as ksqlDB):
 * - No aggregate in WHERE, GROUP BY, PARTITION BY, or inside another aggregate.
 * - CREATE STREAM ... AS SELECT has no aggregates, GROUP BY, WINDOW or HAVING.
 * - CREATE TABLE ... AS SELECT needs GROUP BY; every column it selects
 *   outside an aggregate must be (part of) a GROUP BY expression.
 * - HAVING may name a select alias (`AVG(temp_celcius) AS temp ... HAVING temp > 20`).
 * - WINDOWSTART / WINDOWEND only in the select list or HAVING of a windowed table.
 * - EMIT FINAL only on a windowed table.
 * - WHERE and HAVING must be BOOLEAN when their type is known.
 *
 * The result is a `LogicalQuery`: the query's expressions with qualifiers
 * removed (`w.colour` → `colour`) and HAVING aliases replaced by the select
 * expressions they name, ready for the planner's rewrite rules.
 */

import {
  formatExpr,
  formatType,
  type Call,
  type ColumnRef,
  type CreateAsSelect,
  type Duration,
  type Expr,
  type Identifier,
  type Position,
  type TypeNode,
  type WindowNode,
} from './ast.ts';
import { rulesErrorAt, type RulesError } from './errors.ts';
import { AGGREGATE_FUNCTIONS, SCALAR_FUNCTIONS, type ArgKind } from './functions.ts';
import type { AggregateName } from './plan.ts';
import { isNumericType, sqlTypeOf, typeFamily, widerNumeric, type SqlType } from './types.ts';

/** A column of an input stream. */
export interface SourceColumn {
  /** As declared. */
  readonly name: string;
  /** Declared with a back-quoted name: matched case-sensitively. */
  readonly quoted: boolean;
  readonly type: SqlType;
  /** Declared `KEY`: read from the record key when the value lacks it. */
  readonly key: boolean;
  /** The declared type, for checking `->` fields of STRUCTs and the element types of ARRAY/MAP. */
  readonly typeNode?: TypeNode;
}

/** What the analyzer knows about the input stream. */
export interface SourceSchema {
  /** Canonical name (for qualifier checks). */
  readonly name: string;
  /** Declared columns, or null for a schemaless source (any column name is accepted, type ANY). */
  readonly columns: readonly SourceColumn[] | null;
  /**
   * Declared columns that are not the whole schema (only KEY columns were
   * declared, the value's columns are left to inference as in ksqlDB):
   * undeclared names are accepted with type ANY. Default false.
   */
  readonly open?: boolean;
}

export type PseudoColumn = 'ROWTIME' | 'ROWKEY' | 'ROWPARTITION' | 'ROWOFFSET' | 'WINDOWSTART' | 'WINDOWEND';

const PSEUDO_TYPES: Readonly<Record<PseudoColumn, SqlType>> = Object.freeze({
  ROWTIME: 'BIGINT',
  ROWKEY: 'VARCHAR',
  ROWPARTITION: 'INT',
  ROWOFFSET: 'BIGINT',
  WINDOWSTART: 'BIGINT',
  WINDOWEND: 'BIGINT',
});

/** How a column reference reads its value. */
export type ResolvedColumn =
  | {
      readonly kind: 'value';
      readonly name: string;
      readonly caseSensitive: boolean;
      readonly type: SqlType;
      readonly key: boolean;
      readonly typeNode?: TypeNode;
    }
  | { readonly kind: 'pseudo'; readonly which: PseudoColumn; readonly type: SqlType };

/** One output column: its name and the expression computing it. */
export interface OutputColumn {
  readonly name: string;
  readonly expr: Expr;
}

export interface LogicalAggregate {
  readonly fn: AggregateName;
  /** Null for COUNT(*). */
  readonly arg: Expr | null;
  /** Canonical printed call, the identity used for deduplication. */
  readonly text: string;
}

export interface LogicalStreamQuery {
  readonly kind: 'stream';
  readonly where: Expr | null;
  /** `SELECT *` (possibly with extra columns after it). */
  readonly star: boolean;
  readonly outputs: readonly OutputColumn[];
  readonly partitionBy: Expr | null;
}

export interface LogicalTableQuery {
  readonly kind: 'table';
  readonly where: Expr | null;
  readonly window: WindowNode | null;
  readonly groupBy: readonly Expr[];
  readonly aggregates: readonly LogicalAggregate[];
  readonly outputs: readonly OutputColumn[];
  readonly having: Expr | null;
  readonly emit: 'changes' | 'final';
}

export type LogicalQuery = LogicalStreamQuery | LogicalTableQuery;

const err = (message: string, at: Position, token: string): RulesError => rulesErrorAt('RULES_ANALYSIS', message, at, { token });

/** Resolves a (qualifier-free) column reference against the source. Throws for unknown columns of a declared source. */
export function resolveColumn(ref: ColumnRef, source: SourceSchema): ResolvedColumn {
  const id = ref.column;
  if (source.columns !== null) {
    const col = source.columns.find((c) => (c.quoted || id.quoted ? c.name === id.name : c.name.toUpperCase() === id.name.toUpperCase()));
    if (col !== undefined) {
      return { kind: 'value', name: col.name, caseSensitive: col.quoted || id.quoted, type: col.type, key: col.key, ...(col.typeNode ? { typeNode: col.typeNode } : {}) };
    }
  }
  if (!id.quoted) {
    const upper = id.name.toUpperCase();
    if (upper in PSEUDO_TYPES) return { kind: 'pseudo', which: upper as PseudoColumn, type: PSEUDO_TYPES[upper as PseudoColumn] };
  }
  if (source.columns !== null && source.open !== true) {
    throw err(`unknown column '${id.name}' in stream '${source.name}'`, ref.pos, id.name);
  }
  return { kind: 'value', name: id.name, caseSensitive: id.quoted, type: 'ANY', key: false };
}

/** Applies `f` bottom-up to every node of an expression, rebuilding only what changed. */
export function mapExpr(e: Expr, f: (e: Expr) => Expr): Expr {
  const m = (x: Expr): Expr => mapExpr(x, f);
  let out: Expr;
  switch (e.kind) {
    case 'FieldAccess':
      out = { ...e, base: m(e.base) };
      break;
    case 'Subscript':
      out = { ...e, base: m(e.base), index: m(e.index) };
      break;
    case 'Unary':
      out = { ...e, operand: m(e.operand) };
      break;
    case 'Binary':
      out = { ...e, left: m(e.left), right: m(e.right) };
      break;
    case 'InList':
      out = { ...e, expr: m(e.expr), list: e.list.map(m) };
      break;
    case 'Between':
      out = { ...e, expr: m(e.expr), low: m(e.low), high: m(e.high) };
      break;
    case 'Like':
      out = { ...e, expr: m(e.expr), pattern: m(e.pattern), escape: e.escape && m(e.escape) };
      break;
    case 'IsNull':
      out = { ...e, expr: m(e.expr) };
      break;
    case 'Case':
      out = { ...e, operand: e.operand && m(e.operand), whens: e.whens.map((w) => ({ when: m(w.when), then: m(w.then) })), else: e.else && m(e.else) };
      break;
    case 'Cast':
      out = { ...e, expr: m(e.expr) };
      break;
    case 'Call':
      out = { ...e, args: e.args.map(m) };
      break;
    default:
      out = e;
  }
  return f(out);
}

/** Direct children of an expression node. */
export function childrenOf(e: Expr): Expr[] {
  switch (e.kind) {
    case 'FieldAccess':
      return [e.base];
    case 'Subscript':
      return [e.base, e.index];
    case 'Unary':
      return [e.operand];
    case 'Binary':
      return [e.left, e.right];
    case 'InList':
      return [e.expr, ...e.list];
    case 'Between':
      return [e.expr, e.low, e.high];
    case 'Like':
      return e.escape ? [e.expr, e.pattern, e.escape] : [e.expr, e.pattern];
    case 'IsNull':
    case 'Cast':
      return [e.expr];
    case 'Case':
      return [...(e.operand ? [e.operand] : []), ...e.whens.flatMap((w) => [w.when, w.then]), ...(e.else ? [e.else] : [])];
    case 'Call':
      return [...e.args];
    default:
      return [];
  }
}

export function isAggregateCall(e: Expr): e is Call {
  return e.kind === 'Call' && AGGREGATE_FUNCTIONS.has(e.name.name.toUpperCase());
}

/** Where an expression sits, for placement rules and messages. */
type Clause = 'WHERE' | 'GROUP BY' | 'PARTITION BY' | 'SELECT' | 'HAVING' | 'an aggregate argument';

/**
 * Static type of an expression, validating function calls, operators and
 * placement along the way. `inGroup` is set for table select/HAVING, where
 * aggregates are allowed at the top level.
 */
class TypeChecker {
  constructor(
    private readonly source: SourceSchema,
    private readonly windowed: boolean,
    private readonly objectType: 'STREAM' | 'TABLE',
  ) {}

  typeOf(e: Expr, clause: Clause): SqlType {
    switch (e.kind) {
      case 'StringLiteral':
        return 'VARCHAR';
      case 'NumberLiteral':
        return e.integer ? (Math.abs(e.value) <= 2147483647 ? 'INT' : 'BIGINT') : 'DOUBLE';
      case 'BooleanLiteral':
        return 'BOOLEAN';
      case 'NullLiteral':
        return 'NULL';
      case 'ColumnRef': {
        const r = resolveColumn(e, this.source);
        if (r.kind === 'pseudo' && (r.which === 'WINDOWSTART' || r.which === 'WINDOWEND')) {
          if (!this.windowed || (clause !== 'SELECT' && clause !== 'HAVING')) {
            throw err(`${r.which} is only available in the select list or HAVING of a windowed table`, e.pos, e.column.name);
          }
        }
        return r.type;
      }
      case 'FieldAccess':
      case 'Subscript': {
        this.typeOf(e.base, clause);
        if (e.kind === 'Subscript') this.typeOf(e.index, clause);
        const node = this.declaredType(e);
        return node === null ? 'ANY' : sqlTypeOf(node);
      }
      case 'Unary': {
        const t = this.typeOf(e.operand, clause);
        if (e.op === 'NOT') {
          this.expectKind(t, 'boolean', e.operand, `NOT`);
          return 'BOOLEAN';
        }
        this.expectKind(t, 'number', e.operand, `unary '${e.op}'`);
        return t;
      }
      case 'Binary': {
        const l = this.typeOf(e.left, clause);
        const r = this.typeOf(e.right, clause);
        switch (e.op) {
          case 'AND':
          case 'OR':
            this.expectKind(l, 'boolean', e.left, e.op);
            this.expectKind(r, 'boolean', e.right, e.op);
            return 'BOOLEAN';
          case '||':
            this.expectKind(l, 'string', e.left, `'||'`);
            this.expectKind(r, 'string', e.right, `'||'`);
            return 'VARCHAR';
          case '+':
          case '-':
          case '*':
          case '/':
          case '%':
            this.expectKind(l, 'number', e.left, `'${e.op}'`);
            this.expectKind(r, 'number', e.right, `'${e.op}'`);
            return l === 'NULL' ? r : r === 'NULL' ? l : widerNumeric(l, r);
          default:
            this.expectComparable(l, r, e.left, e.right);
            return 'BOOLEAN';
        }
      }
      case 'InList': {
        const t = this.typeOf(e.expr, clause);
        for (const x of e.list) this.expectComparable(t, this.typeOf(x, clause), e.expr, x);
        return 'BOOLEAN';
      }
      case 'Between': {
        const t = this.typeOf(e.expr, clause);
        this.expectComparable(t, this.typeOf(e.low, clause), e.expr, e.low);
        this.expectComparable(t, this.typeOf(e.high, clause), e.expr, e.high);
        return 'BOOLEAN';
      }
      case 'Like':
        this.expectKind(this.typeOf(e.expr, clause), 'string', e.expr, 'LIKE');
        this.expectKind(this.typeOf(e.pattern, clause), 'string', e.pattern, 'LIKE');
        if (e.escape) this.typeOf(e.escape, clause);
        return 'BOOLEAN';
      case 'IsNull':
        this.typeOf(e.expr, clause);
        return 'BOOLEAN';
      case 'Case': {
        const operand = e.operand ? this.typeOf(e.operand, clause) : null;
        let result: SqlType = 'NULL';
        for (const w of e.whens) {
          const wt = this.typeOf(w.when, clause);
          if (operand === null) this.expectKind(wt, 'boolean', w.when, 'WHEN');
          else this.expectComparable(operand, wt, e.operand!, w.when);
          const tt = this.typeOf(w.then, clause);
          if (result === 'NULL') result = tt;
        }
        if (e.else) {
          const et = this.typeOf(e.else, clause);
          if (result === 'NULL') result = et;
        }
        return result;
      }
      case 'Cast':
        this.typeOf(e.expr, clause);
        return e.type.kind === 'BaseType' ? e.type.name : e.type.kind === 'ArrayType' ? 'ARRAY' : e.type.kind === 'MapType' ? 'MAP' : 'STRUCT';
      case 'Call':
        return this.callType(e, clause);
    }
  }

  /**
   * The declared type of a column, `->` field or `[index]` element when the
   * source declares it; null when unknown. Throws for a field a declared
   * STRUCT does not have.
   */
  private declaredType(e: Expr): TypeNode | null {
    if (e.kind === 'ColumnRef') {
      const r = resolveColumn(e, this.source);
      return r.kind === 'value' ? (r.typeNode ?? null) : null;
    }
    if (e.kind === 'FieldAccess') {
      const base = this.declaredType(e.base);
      if (base === null) return null;
      if (base.kind === 'MapType') return base.valueType;
      if (base.kind !== 'StructType') throw err(`'->' needs a STRUCT but '${formatExpr(e.base)}' is ${formatType(base)}`, e.field.pos, e.field.name);
      const f = e.field;
      const field = base.fields.find((x) => (x.name.quoted || f.quoted ? x.name.name === f.name : x.name.name.toUpperCase() === f.name.toUpperCase()));
      if (field === undefined) throw err(`unknown field '${f.name}' in '${formatExpr(e.base)}' (${formatType(base)})`, f.pos, f.name);
      return field.type;
    }
    if (e.kind === 'Subscript') {
      const base = this.declaredType(e.base);
      if (base === null) return null;
      if (base.kind === 'ArrayType') return base.element;
      if (base.kind === 'MapType') return base.valueType;
      throw err(`'[...]' needs an ARRAY or MAP but '${formatExpr(e.base)}' is ${formatType(base)}`, e.pos, formatExpr(e.base));
    }
    return null;
  }

  private callType(e: Call, clause: Clause): SqlType {
    const upper = e.name.name.toUpperCase();
    const agg = AGGREGATE_FUNCTIONS.get(upper);
    if (agg !== undefined) {
      if (this.objectType === 'STREAM') {
        throw err(`aggregate function ${upper} needs CREATE TABLE ... AS SELECT ... GROUP BY`, e.pos, e.name.name);
      }
      if (clause !== 'SELECT' && clause !== 'HAVING') {
        throw err(`aggregate function ${upper} is not allowed in ${clause}`, e.pos, e.name.name);
      }
      if (e.distinct) throw err(`DISTINCT is not supported in ${upper}`, e.pos, e.name.name);
      if (e.star) {
        if (!agg.star) throw err(`${upper}(*) is not supported; name a column`, e.pos, e.name.name);
        return agg.returns('ANY');
      }
      if (e.args.length !== 1) throw err(`${upper} takes 1 argument, got ${e.args.length}`, e.pos, e.name.name);
      const t = this.typeOf(e.args[0]!, 'an aggregate argument');
      this.expectKind(t, agg.argKind, e.args[0]!, upper);
      return agg.returns(t);
    }
    const fn = SCALAR_FUNCTIONS.get(upper);
    if (fn === undefined) throw err(`unknown function '${e.name.name}'`, e.pos, e.name.name);
    if (e.star) throw err(`${upper}(*) is not valid; only COUNT(*) takes '*'`, e.pos, e.name.name);
    if (e.distinct) throw err(`DISTINCT is only valid in aggregate functions`, e.pos, e.name.name);
    if (e.args.length < fn.minArgs || e.args.length > fn.maxArgs) {
      const want = fn.minArgs === fn.maxArgs ? `${fn.minArgs}` : fn.maxArgs === Infinity ? `at least ${fn.minArgs}` : `${fn.minArgs} to ${fn.maxArgs}`;
      throw err(`${upper} takes ${want} argument${want === '1' ? '' : 's'}, got ${e.args.length}`, e.pos, e.name.name);
    }
    const types = e.args.map((a, i) => {
      const t = this.typeOf(a, clause);
      const kind: ArgKind = fn.argKinds[Math.min(i, fn.argKinds.length - 1)]!;
      this.expectKind(t, kind, a, upper);
      return t;
    });
    if (fn.checkLiterals) {
      const literals = e.args.map((a) => (a.kind === 'StringLiteral' || a.kind === 'NumberLiteral' || a.kind === 'BooleanLiteral' ? a.value : undefined));
      const problem = fn.checkLiterals(literals);
      if (problem !== null) throw err(problem, e.pos, e.name.name);
    }
    return fn.returns(types);
  }

  private expectKind(t: SqlType, kind: ArgKind | 'boolean', at: Expr, what: string): void {
    if (kind === 'any') return;
    const fam = typeFamily(t);
    if (fam === 'any') return;
    const ok = kind === 'number' ? isNumericType(t) : kind === 'string' ? t === 'VARCHAR' : t === 'BOOLEAN';
    if (!ok) {
      const want = kind === 'number' ? 'a number' : kind === 'string' ? 'a string' : 'BOOLEAN';
      throw err(`${what} expects ${want} but '${formatExpr(at)}' is ${t}`, at.pos, formatExpr(at));
    }
  }

  /** Both sides must be of one type family; the error points at the right-hand side and names both. */
  private expectComparable(a: SqlType, b: SqlType, left: Expr, right: Expr): void {
    const fa = typeFamily(a);
    const fb = typeFamily(b);
    if (fa === 'any' || fb === 'any' || fa === fb) return;
    throw err(`cannot compare ${formatExpr(left)} (${a}) with ${formatExpr(right)} (${b})`, right.pos, formatExpr(right));
  }
}

/** Removes qualifiers after checking they name the source (or its alias). */
function stripQualifiers(e: Expr, sourceName: Identifier, alias: Identifier | null): Expr {
  return mapExpr(e, (x) => {
    if (x.kind !== 'ColumnRef' || x.qualifier === null) return x;
    const q = x.qualifier;
    const matches = (id: Identifier): boolean => (id.quoted || q.quoted ? id.name === q.name : id.name.toUpperCase() === q.name.toUpperCase());
    if (!matches(sourceName) && !(alias !== null && matches(alias))) {
      throw err(`unknown stream or alias '${q.name}'`, q.pos, q.name);
    }
    return { ...x, qualifier: null };
  });
}

/** Checks a window's lengths. */
function checkWindow(w: WindowNode): void {
  const positive = (d: Duration, what: string): void => {
    if (d.ms <= 0) throw err(`${what} must be greater than zero`, d.pos, String(d.value));
  };
  if (w.kind === 'SessionWindow') positive(w.gap, 'session gap');
  else positive(w.size, 'window SIZE');
  if (w.kind === 'HoppingWindow') {
    positive(w.advance, 'ADVANCE BY');
    if (w.advance.ms > w.size.ms) throw err('ADVANCE BY must not exceed the window SIZE', w.advance.pos, String(w.advance.value));
  }
}

/**
 * The output name of a select expression without alias (see plan.ts naming
 * decisions), or null when it gets a generated `KSQL_COL_<n>` name.
 */
function outputName(e: Expr, source: SourceSchema): string | null {
  if (e.kind === 'ColumnRef') {
    const r = resolveColumn(e, source);
    return r.kind === 'value' ? r.name : r.which;
  }
  if (e.kind === 'FieldAccess') return e.field.name;
  return null;
}

/** Analyzes one CREATE ... AS SELECT. Throws a positioned RulesError (RULES_ANALYSIS) on the first problem. */
export function analyzeQuery(stmt: CreateAsSelect, source: SourceSchema): LogicalQuery {
  const q = stmt.query;
  const strip = (e: Expr): Expr => stripQualifiers(e, q.from.name, q.from.alias);
  const isTable = stmt.objectType === 'TABLE';
  const checker = new TypeChecker(source, isTable && q.window !== null, stmt.objectType);

  const where = q.where && strip(q.where);
  if (where) expectBoolean(checker.typeOf(where, 'WHERE'), where, 'WHERE');

  // Select items, output names, duplicates.
  let star = false;
  const outputs: OutputColumn[] = [];
  const seen = new Map<string, Position>();
  // Generated names count up from KSQL_COL_0 over the unnamed items, skipping names the query already uses (as ksqlDB).
  const taken = new Set(q.items.flatMap((it) => (it.kind === 'SelectExpr' && it.alias ? [it.alias.quoted ? it.alias.name : it.alias.name.toUpperCase()] : [])));
  let generated = 0;
  const nextGenerated = (): string => {
    while (taken.has(`KSQL_COL_${generated}`)) generated++;
    return `KSQL_COL_${generated++}`;
  };
  q.items.forEach((item) => {
    if (item.kind === 'Star') {
      if (isTable) throw err("SELECT * is not supported in CREATE TABLE ... AS SELECT; list the GROUP BY columns and aggregates", item.pos, '*');
      if (item.qualifier !== null) strip({ kind: 'ColumnRef', pos: item.pos, qualifier: item.qualifier, column: item.qualifier });
      if (star) throw err("'*' appears twice in the select list", item.pos, '*');
      star = true;
      return;
    }
    const expr = strip(item.expr);
    const name = item.alias ? item.alias.name : (outputName(expr, source) ?? nextGenerated());
    const key = item.alias?.quoted ? name : name.toUpperCase();
    if (seen.has(key)) throw err(`duplicate output column '${name}'`, item.alias?.pos ?? item.pos, name);
    seen.set(key, item.pos);
    outputs.push({ name, expr });
  });

  if (!isTable) {
    if (q.window) throw err('WINDOW needs CREATE TABLE ... AS SELECT ... GROUP BY', q.window.pos, 'WINDOW');
    if (q.groupBy.length > 0) throw err('GROUP BY needs CREATE TABLE ... AS SELECT', q.groupBy[0]!.pos, formatExpr(q.groupBy[0]!));
    if (q.having) throw err('HAVING needs CREATE TABLE ... AS SELECT ... GROUP BY', q.having.pos, formatExpr(q.having));
    if (q.emit === 'FINAL') throw err('EMIT FINAL needs a windowed CREATE TABLE ... AS SELECT', q.emitPos!, 'FINAL');
    if (q.partitionBy.length > 1) throw err('PARTITION BY takes one expression', q.partitionBy[1]!.pos, formatExpr(q.partitionBy[1]!));
    const partitionBy = q.partitionBy.length === 1 ? strip(q.partitionBy[0]!) : null;
    if (partitionBy) checker.typeOf(partitionBy, 'PARTITION BY');
    for (const o of outputs) checker.typeOf(o.expr, 'SELECT');
    return { kind: 'stream', where, star, outputs, partitionBy };
  }

  // Tables.
  if (q.groupBy.length === 0) {
    throw err('CREATE TABLE ... AS SELECT needs GROUP BY (source tables are not supported)', q.pos, 'SELECT');
  }
  if (q.partitionBy.length > 0) throw err('PARTITION BY is not supported in CREATE TABLE ... AS SELECT; the key is the GROUP BY', q.partitionBy[0]!.pos, formatExpr(q.partitionBy[0]!));
  if (q.window) checkWindow(q.window);
  if (q.emit === 'FINAL' && q.window === null) throw err('EMIT FINAL needs a WINDOW', q.emitPos!, 'FINAL');

  const groupBy = q.groupBy.map(strip);
  for (const g of groupBy) checker.typeOf(g, 'GROUP BY');
  const groupTexts = groupBy.map(formatExpr);

  const aggregates: LogicalAggregate[] = [];
  const aggIndex = new Map<string, number>();
  // Walks a select/HAVING expression: GROUP BY expressions and aggregate calls are leaves; a bare column elsewhere is an error.
  const checkGrouped = (e: Expr, clause: 'SELECT' | 'HAVING'): void => {
    if (groupTexts.includes(formatExpr(e))) return;
    if (isAggregateCall(e)) {
      for (const a of e.args) {
        const inner = findAggregate(a);
        if (inner) throw err(`aggregate function ${inner.name.name.toUpperCase()} cannot be nested inside ${e.name.name.toUpperCase()}`, inner.pos, inner.name.name);
      }
      const text = formatExpr(e);
      if (!aggIndex.has(text)) {
        aggIndex.set(text, aggregates.length);
        aggregates.push({ fn: e.name.name.toUpperCase() as AggregateName, arg: e.star ? null : e.args[0]!, text });
      }
      return;
    }
    if (e.kind === 'ColumnRef') {
      const r = resolveColumn(e, source);
      if (r.kind === 'pseudo' && (r.which === 'WINDOWSTART' || r.which === 'WINDOWEND')) return;
      throw err(`column '${e.column.name}' must be in GROUP BY or inside an aggregate function`, e.pos, e.column.name);
    }
    for (const c of childrenOf(e)) checkGrouped(c, clause);
  };
  for (const o of outputs) {
    checker.typeOf(o.expr, 'SELECT');
    checkGrouped(o.expr, 'SELECT');
  }

  let having: Expr | null = null;
  if (q.having) {
    // A bare name that is a select alias (and not a GROUP BY expression) stands for the aliased expression.
    having = mapExpr(strip(q.having), (x) => {
      if (x.kind !== 'ColumnRef' || groupTexts.includes(formatExpr(x))) return x;
      const item = q.items.find((it) => it.kind === 'SelectExpr' && it.alias !== null && sameId(it.alias, x.column));
      return item && item.kind === 'SelectExpr' ? strip(item.expr) : x;
    });
    expectBoolean(checker.typeOf(having, 'HAVING'), having, 'HAVING');
    checkGrouped(having, 'HAVING');
  }

  return {
    kind: 'table',
    where,
    window: q.window,
    groupBy,
    aggregates,
    outputs,
    having,
    emit: q.emit === 'FINAL' ? 'final' : 'changes',
  };
}

function sameId(a: Identifier, b: Identifier): boolean {
  return a.quoted || b.quoted ? a.name === b.name : a.name.toUpperCase() === b.name.toUpperCase();
}

function findAggregate(e: Expr): Call | null {
  if (isAggregateCall(e)) return e;
  for (const c of childrenOf(e)) {
    const f = findAggregate(c);
    if (f) return f;
  }
  return null;
}

function expectBoolean(t: SqlType, e: Expr, clause: string): void {
  if (t === 'BOOLEAN' || t === 'ANY' || t === 'NULL') return;
  throw err(`${clause} must be a BOOLEAN expression but '${formatExpr(e)}' is ${t}`, e.pos, formatExpr(e));
}

/** Static type of an already analyzed expression (ANY when unknown); used by the planner for integer division. */
export function staticTypeOf(e: Expr, source: SourceSchema): SqlType {
  try {
    return new TypeChecker(source, true, 'TABLE').typeOf(e, 'SELECT');
  } catch {
    return 'ANY';
  }
}
