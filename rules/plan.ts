/**
 * The logical plan: what the rule runtime executes. The language half of the
 * rules module (lexer → parser → analyzer → planner) produces these objects;
 * the runtime (operators, windows, state, runner) consumes them and never
 * looks at SQL text or syntax trees.
 *
 * Contract for the runtime:
 * - Every closure is pure and synchronous, compiled once per rule from the
 *   syntax tree (never `eval`/`new Function`). It never throws on bad data:
 *   SQL errors in data (division by zero, a string where a number is
 *   expected, a missing field) evaluate to NULL (`null`), as in ksqlDB.
 * - Closures do not retain the objects passed to them, so the runtime may
 *   reuse one mutable `SourceRow` for every record.
 * - SQL three-valued logic: predicates return `true`, `false` or `null`
 *   (unknown); a row passes a WHERE/HAVING only when the result is `true`.
 *   The plan's `where`/`having` already map this to a plain boolean.
 *
 * Naming decisions:
 * - A rule's `name` is its canonical name: unquoted identifiers are lower
 *   cased (`CREATE STREAM Widgets_Red` → `widgets_red`), back-quoted ones
 *   are kept exactly. (ksqlDB upper-cases; lower case matches the topic
 *   names the gateway already uses.)
 * - Output topic: the `KAFKA_TOPIC` property, else the rule's canonical name.
 *   Late records of a windowed table go to `<outputTopic>_late`.
 * - Output column names: an alias as written; a column reference keeps the
 *   spelling of the column's declaration (or, for undeclared sources, the
 *   spelling in the query); `a->b` is named `b`; any other expression is
 *   named `KSQL_COL_0`, `KSQL_COL_1`, ... in select-list order, skipping
 *   names an alias already uses (as ksqlDB).
 *   `SELECT *` passes the reading's JSON value through (a shallow copy;
 *   `SELECT *, expr AS x` adds `x`, replacing a field of that name).
 *
 * Pipeline: `planRuleText` parses (parser.ts), resolves FROM against the
 * catalog, analyzes (analyzer.ts → a LogicalQuery), applies the named
 * rewrite rules (`REWRITE_RULES`, below), then compiles closures
 * (compile-expression.ts).
 */

import {
  formatExpr,
  formatType,
  type ColumnRef,
  type CreateAsSelect,
  type CreateSource,
  type Expr,
  type Identifier,
  type ParsedStatement,
  type Position,
  type Property,
  type TypeNode,
  type WindowNode,
} from './ast.ts';
import {
  analyzeQuery,
  childrenOf,
  isAggregateCall,
  mapExpr,
  resolveColumn,
  staticTypeOf,
  type LogicalQuery,
  type LogicalTableQuery,
  type SourceSchema,
} from './analyzer.ts';
import { compileExpr, compilePredicate, getField, type Compiled, type Scope } from './compile-expression.ts';
import { isRulesError, rulesErrorAt } from './errors.ts';
import type { ValueField } from './field-extractor.ts';
import { parseRulesRecovering } from './parser.ts';
import { sqlTypeOf, toEpochMs, valueToString, type SqlType } from './types.ts';

/** JSON value of a reading, as decoded from the record's payload. */
export type Row = Record<string, unknown>;

/**
 * What stream-level closures (WHERE, projections, GROUP BY keys, aggregate
 * arguments) read. The runtime fills it per record.
 */
export interface SourceRow {
  /**
   * The decoded JSON value of the record: a plain object (the runtime routes
   * payloads that are not JSON objects to the error/late topic). Columns are
   * looked up case-insensitively; closures also survive a non-object here.
   */
  value: Row;
  /**
   * When set: the values of the plan's `valueFields`, field k's at k (the
   * runner decoded only those); columns read from here, not from `value`.
   */
  fields?: readonly unknown[] | null;
  /** The record key (pseudo column ROWKEY). */
  key: string | null;
  /** Event time in ms since the epoch (pseudo column ROWTIME): see `SourcePlan.eventTime`. */
  timestamp: number;
  /** Pseudo column ROWPARTITION. */
  partition: number;
  /** Pseudo column ROWOFFSET. */
  offset: number;
}

/** `SET 'name'='value'` statements seen before a statement in its file, later ones win. Keys lower-cased. */
export type Settings = Readonly<Record<string, string>>;

/** Where a statement came from, for logs and diagnostics. */
export interface PlanOrigin {
  /** File path as given to the loader. */
  readonly file: string;
  /** 1-based line and column of the statement's first token. */
  readonly line: number;
  readonly col: number;
  /** The statement text without its terminating `;`. */
  readonly sql: string;
}

/**
 * A source stream over a log topic: `CREATE STREAM widgets (...) WITH
 * (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts')`.
 * FROM may also name a stream that is not declared anywhere: the planner
 * then makes an implicit source over the topic of that (canonical) name,
 * with no declared columns and the record timestamp as event time.
 */
export interface SourcePlan {
  readonly kind: 'source';
  /** Canonical name. */
  readonly name: string;
  readonly topic: string;
  /** Declared columns; empty for an implicit (schemaless) source. */
  readonly columns: ReadonlyArray<{
    readonly name: string;
    /** Printed type, e.g. `VARCHAR`, `STRUCT<TEMP DOUBLE>`. */
    readonly type: string;
    readonly key: boolean;
    /** The declared type's syntax tree (absent for columns not declared by CREATE STREAM). */
    readonly typeNode?: TypeNode;
  }>;
  /** The value field named by `TIMESTAMP=`, or null to use the record's own timestamp. */
  readonly timestampField: string | null;
  /** Only 'JSON' is supported. */
  readonly valueFormat: 'JSON';
  /** True when declared by CREATE STREAM, false when implicit. */
  readonly declared: boolean;
  /**
   * Event time of a record: the `timestampField` of the value when set
   * (ISO-8601 string, or epoch ms as number or digit string), else
   * `recordTimestamp`. Returns null when the field is missing or unparsable;
   * the runtime then sends the record to the rule's late/error topic rather
   * than dropping it silently.
   */
  eventTime(value: Row, recordTimestamp: number): number | null;
  /** `eventTime` from the value of the `timestampField` alone (not null): what `eventTime` makes of a value holding it. */
  eventTimeOf(fieldValue: unknown): number | null;
  readonly origin: PlanOrigin | null;
}

/** Which end of its input a new rule starts at: from `SET 'auto.offset.reset'`, default 'latest'. */
export type OffsetReset = 'earliest' | 'latest';

interface DerivedPlanBase {
  /** Canonical rule name (unique across the rules folder). */
  readonly name: string;
  /** The input stream, resolved (declared or implicit). */
  readonly source: SourcePlan;
  /** Output topic (see naming decisions above). */
  readonly outputTopic: string;
  /** `PARTITIONS=n`, or null for "same as the input topic". */
  readonly partitions: number | null;
  readonly settings: Settings;
  readonly offsetReset: OffsetReset;
  /** WHERE, or a function that always returns true. */
  where(row: SourceRow): boolean;
  /** Output column names in select-list order (for `SELECT *`: empty, the value passes through). */
  readonly outputColumns: readonly string[];
  /**
   * The top-level value fields the rule's closures and event time read (each
   * with its case rule), so the runtime may decode only these
   * (field-extractor.ts) into `SourceRow.fields`, in this order; null (or absent) when a
   * closure needs the whole value (`SELECT *, expr`), or the fields cannot
   * share one row object (one name both case-sensitive and not, or a name
   * of Object.prototype).
   */
  readonly valueFields?: readonly ValueField[] | null;
  /**
   * When WHERE is exactly `<value column> = '<text>'`: that column's field
   * and the text. WHERE is then true exactly when the field holds that
   * string (a string is compared as it is; absent, null, numbers, booleans,
   * objects: false), so the runtime may reject a record from its scanned
   * bytes without decoding it (rule-runner.ts). Null otherwise.
   */
  readonly prefilter?: Prefilter | null;
  readonly origin: PlanOrigin;
}

/** See `DerivedPlanBase.prefilter`. */
export interface Prefilter {
  readonly field: ValueField;
  readonly equals: string;
}

/** `CREATE STREAM y [WITH (...)] AS SELECT ... FROM x [WHERE ...] [PARTITION BY ...] [EMIT CHANGES]`. */
export interface StreamPlan extends DerivedPlanBase {
  readonly kind: 'stream';
  /** The output value for a row that passed `where`. A fresh object each call. */
  project(row: SourceRow): Row;
  /**
   * Output record key: the PARTITION BY expression rendered as text (null when
   * it evaluates to NULL), or the input record's key when there is no PARTITION BY.
   */
  outputKey(row: SourceRow): string | null;
  /** PARTITION BY: the output key is not the input record's key. */
  readonly rekeys: boolean;
}

/** Window of a windowed aggregation. Lengths in ms. Windows are aligned to the epoch (as Kafka Streams). */
export type WindowPlan =
  | { readonly kind: 'tumbling'; readonly sizeMs: number; readonly advanceMs: number; readonly graceMs: number }
  | { readonly kind: 'hopping'; readonly sizeMs: number; readonly advanceMs: number; readonly graceMs: number }
  | { readonly kind: 'session'; readonly gapMs: number; readonly graceMs: number };

/** Grace period when the rule names none: 0 ms (Kafka Streams' `ofSizeWithNoGrace`; ksqlDB's old 24 h default would hold EMIT FINAL results for a day). */
export const DEFAULT_GRACE_MS = 0;

export type AggregateName =
  | 'COUNT'
  | 'SUM'
  | 'AVG'
  | 'MIN'
  | 'MAX'
  | 'STDDEV_SAMP'
  | 'LATEST_BY_OFFSET'
  | 'EARLIEST_BY_OFFSET';

/**
 * One aggregate call of the query, deduplicated: `AVG(temp)` used in both
 * the select list and HAVING is one call. `arg` is null for `COUNT(*)`.
 * Semantics the runtime implements (as ksqlDB): NULL arguments are ignored
 * by every aggregate (COUNT(col) counts non-null values; COUNT(*) counts
 * rows); SUM/AVG/MIN/MAX of no non-null values is NULL; STDDEV_SAMP of
 * fewer than two non-null values is NULL;
 * LATEST/EARLIEST_BY_OFFSET keep the last/first non-null value by input order.
 */
export interface AggregateCall {
  readonly fn: AggregateName;
  arg: ((row: SourceRow) => unknown) | null;
  /** Printed form, e.g. `AVG(temp_celcius)`, stable across whitespace and case changes. */
  readonly text: string;
}

/** What table-level closures (select list, HAVING) read: one group's current values. */
export interface GroupRow {
  /** GROUP BY values, in GROUP BY order. */
  keys: readonly unknown[];
  /** Current (final) value of each aggregate, in `TablePlan.aggregates` order (AVG already divided). */
  aggregates: readonly unknown[];
  /**
   * Window bounds in ms; null when not windowed. Tumbling/hopping: WINDOWSTART
   * inclusive, WINDOWEND exclusive (start + size). Session: both inclusive,
   * the first and last record's event time (as ksqlDB).
   */
  windowStart: number | null;
  windowEnd: number | null;
}

/** `CREATE TABLE t AS SELECT ... FROM x [WINDOW ...] [WHERE ...] GROUP BY ... [HAVING ...] [EMIT CHANGES|FINAL]`. */
export interface TablePlan extends DerivedPlanBase {
  readonly kind: 'table';
  readonly window: WindowPlan | null;
  /**
   * GROUP BY expressions over the input row, in order. A row whose GROUP BY
   * value is NULL cannot be keyed: ksqlDB drops it; the runtime should
   * count such rows (or route them to the late/error topic), not lose them silently.
   */
  readonly groupBy: ReadonlyArray<(row: SourceRow) => unknown>;
  /** Printed GROUP BY expressions (for logs and output key column names). */
  readonly groupByNames: readonly string[];
  /** Text identity of a group: equal for equal key values (`groupKeyText(keys)`); use as the state map key. */
  groupKeyText(keys: readonly unknown[]): string;
  readonly aggregates: readonly AggregateCall[];
  /** The output value of a group. A fresh object each call. */
  project(group: GroupRow): Row;
  /** HAVING (which may name select aliases), or a function that always returns true. */
  having(group: GroupRow): boolean;
  /** Output record key: the group key text (single key: its text; several: a JSON array), plus `@<windowStart>` when windowed. */
  outputKey(group: GroupRow): string;
  /** Default 'CHANGES'. 'FINAL' requires a window (the analyzer rejects it otherwise). */
  readonly emit: 'changes' | 'final';
  /**
   * Stable identity of the aggregation state layout: source topic, GROUP BY,
   * window kind and lengths, and aggregate calls (not the grace period,
   * EMIT mode, WHERE, HAVING or the projection). When a
   * reloaded rule's signature differs from the checkpointed one, its state
   * is incompatible: start fresh and log it.
   */
  readonly stateSignature: string;
  /**
   * When the aggregation reads nothing but plain value fields: no WHERE, a
   * TUMBLING window, EMIT FINAL, GROUP BY one value column, and each
   * aggregate's argument a value column or none (`COUNT(*)`). Then a
   * record's effect on the state is decided by its event time, its group
   * string and its argument values alone, so the runtime may hand the
   * operator runs of records read from their scanned bytes
   * (AggregateOperator.processRun). Null otherwise.
   */
  readonly keyRun?: KeyRun | null;
}

/** See `TablePlan.keyRun`: the GROUP BY field, and each aggregate's argument field (null: `COUNT(*)`). */
export interface KeyRun {
  readonly group: ValueField;
  readonly args: ReadonlyArray<ValueField | null>;
}

export type DerivedPlan = StreamPlan | TablePlan;
export type Plan = SourcePlan | DerivedPlan;

/**
 * A problem found in a rule file, printed as `file:line:col: message`; the
 * message names the offending token (`expected ')' but found 'GROUP'`).
 */
export interface Diagnostic {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
  /** Error code from rules/errors.ts, e.g. `RULES_SYNTAX`. */
  readonly code: string;
  readonly message: string;
}

/** `file:line:col: message`. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.message}`;
}

/**
 * The result of loading one rule file (rules/rule-file.ts: `planRuleText`,
 * `loadRuleFile`, `loadRuleFolder`, `checkRules`). When `diagnostics` is not
 * empty, `sources` and `rules` are empty: a broken file contributes nothing,
 * so the runtime keeps running the file's previous definitions.
 */
export interface RuleFilePlan {
  readonly file: string;
  readonly sources: readonly SourcePlan[];
  readonly rules: readonly DerivedPlan[];
  readonly diagnostics: readonly Diagnostic[];
}

// ===========================================================================
// The planner: statements → plans, through named rewrite rules (eKuiper style)
// ===========================================================================

/**
 * Plans already known when planning a file: sources and rules of the other
 * files in the folder, by canonical name. FROM resolves against these and
 * against the statements earlier in the same file.
 */
export type Catalog = ReadonlyMap<string, Plan>;

/** A named rewrite of the logical query, applied in `REWRITE_RULES` order before compiling closures. */
export interface RewriteRule {
  readonly name: string;
  apply(q: LogicalQuery): LogicalQuery;
}

/** Maps every expression of a logical query (outputs, WHERE, HAVING, keys, aggregate arguments). */
function mapQuery(q: LogicalQuery, f: (e: Expr) => Expr): LogicalQuery {
  const outputs = q.outputs.map((o) => ({ name: o.name, expr: f(o.expr) }));
  const where = q.where && f(q.where);
  if (q.kind === 'stream') return { ...q, outputs, where, partitionBy: q.partitionBy && f(q.partitionBy) };
  return {
    ...q,
    outputs,
    where,
    groupBy: q.groupBy.map(f),
    having: q.having && f(q.having),
    aggregates: q.aggregates.map((a) => ({ ...a, arg: a.arg && f(a.arg) })),
  };
}

const literalType = (e: Expr): SqlType => (e.kind === 'NumberLiteral' ? (e.integer ? 'BIGINT' : 'DOUBLE') : 'ANY');
const CONSTANT_SCOPE: Scope<null> = {
  column: (ref) => {
    throw rulesErrorAt('RULES_PLAN', 'a constant expression has no columns', ref.pos);
  },
  typeOf: literalType,
};

function isLiteral(e: Expr): boolean {
  return e.kind === 'StringLiteral' || e.kind === 'NumberLiteral' || e.kind === 'BooleanLiteral' || e.kind === 'NullLiteral';
}

function literalOf(v: unknown, pos: Position): Expr | null {
  if (v === null || v === undefined) return { kind: 'NullLiteral', pos };
  if (typeof v === 'string') return { kind: 'StringLiteral', pos, value: v };
  if (typeof v === 'boolean') return { kind: 'BooleanLiteral', pos, value: v };
  if (typeof v === 'number' && Number.isFinite(v)) return { kind: 'NumberLiteral', pos, value: v, text: String(v), integer: Number.isInteger(v) };
  return null;
}

/**
 * Constant folding: a node whose children are all literals (and that is not
 * an aggregate call) is evaluated once at plan time: `1 + 2` → `3`,
 * `UCASE('red')` → `'RED'`, `60 * 1000` → `60000`.
 */
const foldConstants: RewriteRule = {
  name: 'fold-constants',
  apply: (q) =>
    mapQuery(q, (e) =>
      mapExpr(e, (x) => {
        if (isLiteral(x) || x.kind === 'ColumnRef' || isAggregateCall(x)) return x;
        const kids = childrenOf(x);
        if (kids.length === 0 || !kids.every(isLiteral)) return x;
        return literalOf(compileExpr(x, CONSTANT_SCOPE)(null), x.pos) ?? x;
      }),
    ),
};

const FLIPPED: Readonly<Record<string, '=' | '<>' | '<' | '<=' | '>' | '>='>> = Object.freeze({
  '=': '=',
  '<>': '<>',
  '<': '>',
  '<=': '>=',
  '>': '<',
  '>=': '<=',
});

/** `'RED' = colour` → `colour = 'RED'` (and `5 < x` → `x > 5`), so comparisons hit the literal fast path. */
const literalOnRight: RewriteRule = {
  name: 'literal-on-right',
  apply: (q) =>
    mapQuery(q, (e) =>
      mapExpr(e, (x) => {
        if (x.kind !== 'Binary' || FLIPPED[x.op] === undefined || !isLiteral(x.left) || isLiteral(x.right)) return x;
        return { ...x, op: FLIPPED[x.op]!, left: x.right, right: x.left };
      }),
    ),
};

/** `WHERE TRUE` (after folding) is no filter; `HAVING TRUE` likewise. */
const dropTrueFilters: RewriteRule = {
  name: 'drop-true-filters',
  apply: (q) => {
    const isTrue = (e: Expr | null): boolean => e !== null && e.kind === 'BooleanLiteral' && e.value;
    let out: LogicalQuery = isTrue(q.where) ? { ...q, where: null } : q;
    if (out.kind === 'table' && isTrue(out.having)) out = { ...out, having: null };
    return out;
  },
};

/** The planner's rewrite rules, in the order they run. */
export const REWRITE_RULES: readonly RewriteRule[] = [foldConstants, literalOnRight, dropTrueFilters];

/** Applies the rewrite rules in order. */
export function optimize(q: LogicalQuery, rules: readonly RewriteRule[] = REWRITE_RULES): LogicalQuery {
  return rules.reduce((acc, r) => r.apply(acc), q);
}

/** Canonical name of a rule or stream: unquoted identifiers lower-cased, back-quoted kept. */
export function canonicalRuleName(id: { name: string; quoted: boolean }): string {
  return id.quoted ? id.name : id.name.toLowerCase();
}

/** WITH properties accepted per statement kind: name → expected literal kind. Unlisted properties are errors. */
const SOURCE_PROPERTIES: Readonly<Record<string, 'string' | 'number' | 'any'>> = Object.freeze({
  KAFKA_TOPIC: 'string',
  VALUE_FORMAT: 'string',
  FORMAT: 'string',
  TIMESTAMP: 'string',
  /** Accepted for ksqlDB compatibility; event time strings are read as ISO-8601 (or epoch ms) regardless. */
  TIMESTAMP_FORMAT: 'string',
  KEY_FORMAT: 'string',
  PARTITIONS: 'number',
  REPLICAS: 'number',
  WRAP_SINGLE_VALUE: 'any',
});
const DERIVED_PROPERTIES: Readonly<Record<string, 'string' | 'number' | 'any'>> = Object.freeze({
  KAFKA_TOPIC: 'string',
  VALUE_FORMAT: 'string',
  FORMAT: 'string',
  KEY_FORMAT: 'string',
  PARTITIONS: 'number',
  REPLICAS: 'number',
  WRAP_SINGLE_VALUE: 'any',
});

function readProperties(props: readonly Property[], allowed: Readonly<Record<string, 'string' | 'number' | 'any'>>): Map<string, Property> {
  const out = new Map<string, Property>();
  for (const p of props) {
    const want = allowed[p.name];
    if (want === undefined) throw rulesErrorAt('RULES_PLAN', `unknown property '${p.name}'`, p.pos, { token: p.name });
    if (out.has(p.name)) throw rulesErrorAt('RULES_PLAN', `property '${p.name}' given twice`, p.pos, { token: p.name });
    const kind = p.value.kind === 'StringLiteral' ? 'string' : p.value.kind === 'NumberLiteral' ? 'number' : 'boolean';
    if (want !== 'any' && kind !== want) throw rulesErrorAt('RULES_PLAN', `property '${p.name}' expects a ${want}`, p.value.pos, { token: p.name });
    out.set(p.name, p);
  }
  const format = out.get('VALUE_FORMAT') ?? out.get('FORMAT');
  if (format && String(format.value.value).toUpperCase() !== 'JSON') {
    throw rulesErrorAt('RULES_PLAN', `unsupported VALUE_FORMAT '${String(format.value.value)}': only 'JSON' is supported`, format.value.pos, { token: String(format.value.value) });
  }
  const partitions = out.get('PARTITIONS');
  if (partitions && (!Number.isInteger(partitions.value.value) || (partitions.value.value as number) < 1)) {
    throw rulesErrorAt('RULES_PLAN', 'PARTITIONS must be a whole number of at least 1', partitions.value.pos, { token: String(partitions.value.value) });
  }
  return out;
}

const stringProp = (props: Map<string, Property>, name: string): string | null => {
  const p = props.get(name);
  return p === undefined ? null : String(p.value.value);
};

function origin(file: string, stmt: ParsedStatement): PlanOrigin {
  return { file, line: stmt.statement.pos.line, col: stmt.statement.pos.col, sql: stmt.text };
}

function makeEventTime(field: string | null): Pick<SourcePlan, 'eventTime' | 'eventTimeOf'> {
  const eventTimeOf = (v: unknown): number | null => toEpochMs(v);
  if (field === null) return { eventTime: (_value, recordTimestamp) => recordTimestamp, eventTimeOf };
  return { eventTime: (value) => eventTimeOf(getField(value, field, false)), eventTimeOf };
}

function planSource(s: CreateSource, file: string, parsed: ParsedStatement): SourcePlan {
  const props = readProperties(s.properties, SOURCE_PROPERTIES);
  const name = canonicalRuleName(s.name);
  const seen = new Set<string>();
  for (const c of s.columns) {
    const key = c.name.quoted ? c.name.name : c.name.name.toUpperCase();
    if (seen.has(key)) throw rulesErrorAt('RULES_ANALYSIS', `duplicate column '${c.name.name}'`, c.pos, { token: c.name.name });
    seen.add(key);
  }
  const timestampField = stringProp(props, 'TIMESTAMP');
  if (timestampField !== null && s.columns.length > 0) {
    const p = props.get('TIMESTAMP')!;
    const col = s.columns.find((c) => c.name.name.toUpperCase() === timestampField.toUpperCase());
    if (col === undefined) throw rulesErrorAt('RULES_ANALYSIS', `TIMESTAMP names unknown column '${timestampField}'`, p.value.pos, { token: timestampField });
  }
  return {
    kind: 'source',
    name,
    topic: stringProp(props, 'KAFKA_TOPIC') ?? name,
    columns: s.columns.map((c) => ({ name: c.name.name, type: formatType(c.type), key: c.key, typeNode: c.type })),
    timestampField,
    valueFormat: 'JSON',
    declared: true,
    ...makeEventTime(timestampField),
    origin: origin(file, parsed),
  };
}

/** The schema the analyzer sees for an input plan. */
function schemaOf(p: SourcePlan): SourceSchema {
  // Undeclared, or declared without columns (`CREATE STREAM x WITH (...)`): schemaless.
  if (!p.declared || p.columns.length === 0) return { name: p.name, columns: null };
  return {
    name: p.name,
    columns: p.columns.map((c) => ({ name: c.name, quoted: false, type: c.typeNode ? sqlTypeOf(c.typeNode) : baseTypeOf(c.type), key: c.key, ...(c.typeNode ? { typeNode: c.typeNode } : {}) })),
    // Only KEY columns declared: the value's columns are open (ksqlDB would infer them).
    open: p.columns.every((c) => c.key),
  };
}

function baseTypeOf(printed: string): SqlType {
  const head = printed.replace(/[<(].*$/, '') as SqlType;
  return head;
}

/** The input of a derived rule, as a source: FROM a declared source, a derived stream, or (undeclared) a topic of that name. */
function resolveInput(from: Identifier, catalog: ReadonlyMap<string, Plan>): SourcePlan {
  const name = canonicalRuleName(from);
  const found = catalog.get(name);
  if (found === undefined) {
    return { kind: 'source', name, topic: name, columns: [], timestampField: null, valueFormat: 'JSON', declared: false, ...makeEventTime(null), origin: null };
  }
  if (found.kind === 'source') return found;
  if (found.kind === 'table') {
    throw rulesErrorAt('RULES_PLAN', `'${from.name}' is a table; a rule reads from a stream`, from.pos, { token: from.name });
  }
  // A derived stream: its output topic, its columns (types unknown), its records' timestamps.
  return {
    kind: 'source',
    name,
    topic: found.outputTopic,
    columns: [],
    timestampField: null,
    valueFormat: 'JSON',
    declared: false,
    ...makeEventTime(null),
    origin: found.origin,
  };
}

/** Reads a column of a SourceRow; records the value fields it reads in `used`. */
function rowColumn(ref: ColumnRef, schema: SourceSchema, used: ValueField[]): Compiled<SourceRow> {
  const r = resolveColumn(ref, schema);
  if (r.kind === 'pseudo') {
    switch (r.which) {
      case 'ROWTIME':
        return (row) => row.timestamp;
      case 'ROWKEY':
        return (row) => row.key;
      case 'ROWPARTITION':
        return (row) => row.partition;
      case 'ROWOFFSET':
        return (row) => row.offset;
      default:
        throw rulesErrorAt('RULES_ANALYSIS', `${r.which} is only available in the select list or HAVING of a windowed table`, ref.pos, { token: ref.column.name });
    }
  }
  const name = r.name;
  const cs = r.caseSensitive;
  const k = fieldIndex(used, name);
  used.push({ name, caseSensitive: cs });
  if (r.key) {
    return (row) => {
      const f = row.fields;
      const v = f != null ? f[k] : getField(row.value, name, cs);
      return v === null ? row.key : v;
    };
  }
  return (row) => {
    const f = row.fields;
    if (f != null) return f[k];
    const o = row.value;
    const v = o !== null && typeof o === 'object' ? o[name] : undefined;
    return v !== undefined ? v : getField(o, name, cs);
  };
}

function rowScope(schema: SourceSchema, used: ValueField[]): Scope<SourceRow> {
  return { column: (ref) => rowColumn(ref, schema, used), typeOf: (e) => staticTypeOf(e, schema) };
}

/** `<value column> = '<text>'` as a Prefilter (see DerivedPlanBase.prefilter), else null. */
function prefilterOf(where: Expr, schema: SourceSchema): Prefilter | null {
  if (where.kind !== 'Binary' || where.op !== '=' || where.left.kind !== 'ColumnRef' || where.right.kind !== 'StringLiteral') return null;
  const r = resolveColumn(where.left, schema);
  // a key column falls back to the record key when the value lacks it: not a value-only test
  if (r.kind === 'pseudo' || r.key) return null;
  return { field: { name: r.name, caseSensitive: r.caseSensitive }, equals: where.right.value };
}

/** Where field `name` is (or, if not used yet, will be) in `valueFieldsOf(used, ...)`: its distinct names in order of first use. */
function fieldIndex(used: readonly ValueField[], name: string): number {
  const seen = new Set<string>();
  for (const f of used) {
    if (f.name === name) return seen.size;
    seen.add(f.name);
  }
  return seen.size;
}

/** The distinct fields of `used` plus the event-time field; null when they cannot share one row object (see `valueFields`). */
function valueFieldsOf(used: readonly ValueField[], source: SourcePlan): ValueField[] | null {
  const all = source.timestampField === null ? used : [...used, { name: source.timestampField, caseSensitive: false }];
  const byName = new Map<string, ValueField>();
  for (const f of all) {
    if (f.name in Object.prototype) return null;
    const seen = byName.get(f.name);
    if (seen !== undefined && seen.caseSensitive !== f.caseSensitive) return null;
    byName.set(f.name, f);
  }
  return [...byName.values()];
}

/** Scope of table-level closures: GROUP BY expressions read keys, aggregate calls read results. */
function groupScope(q: LogicalTableQuery, schema: SourceSchema): Scope<GroupRow> {
  const keyTexts = q.groupBy.map(formatExpr);
  const aggTexts = q.aggregates.map((a) => a.text);
  return {
    intercept: (e) => {
      const k = keyTexts.indexOf(formatExpr(e));
      if (k >= 0) return (g) => g.keys[k] ?? null;
      if (isAggregateCall(e)) {
        const a = aggTexts.indexOf(formatExpr(e));
        if (a >= 0) return (g) => g.aggregates[a] ?? null;
      }
      return undefined;
    },
    column: (ref) => {
      const r = resolveColumn(ref, schema);
      if (r.kind === 'pseudo' && r.which === 'WINDOWSTART') return (g) => g.windowStart;
      if (r.kind === 'pseudo' && r.which === 'WINDOWEND') return (g) => g.windowEnd;
      throw rulesErrorAt('RULES_ANALYSIS', `column '${ref.column.name}' must be in GROUP BY or inside an aggregate function`, ref.pos, { token: ref.column.name });
    },
    typeOf: (e) => staticTypeOf(e, schema),
  };
}

/** Builds `(ctx) => ({name: f(ctx), ...})` from output columns. */
function projector<C>(names: readonly string[], fns: ReadonlyArray<Compiled<C>>): (ctx: C) => Row {
  const n = names.length;
  return (ctx) => {
    const out: Row = {};
    for (let i = 0; i < n; i++) out[names[i]!] = fns[i]!(ctx) ?? null;
    return out;
  };
}

function windowPlan(w: WindowNode): WindowPlan {
  const graceMs = w.grace?.ms ?? DEFAULT_GRACE_MS;
  if (w.kind === 'TumblingWindow') return { kind: 'tumbling', sizeMs: w.size.ms, advanceMs: w.size.ms, graceMs };
  if (w.kind === 'HoppingWindow') return { kind: 'hopping', sizeMs: w.size.ms, advanceMs: w.advance.ms, graceMs };
  return { kind: 'session', gapMs: w.gap.ms, graceMs };
}

/** Text identity of a group (see TablePlan.groupKeyText): a string key as `S<key>`, anything else as `J<json>`. */
export function groupKeyText(keys: readonly unknown[]): string {
  if (keys.length === 1 && typeof keys[0] === 'string') return 'S' + keys[0];
  return 'J' + JSON.stringify(keys);
}

function keyTextOf(keys: readonly unknown[]): string {
  if (keys.length === 1) return valueToString(keys[0]) ?? '';
  return JSON.stringify(keys.map((k) => k ?? null));
}

function planDerived(s: CreateAsSelect, parsed: ParsedStatement, file: string, settings: Settings, catalog: ReadonlyMap<string, Plan>): DerivedPlan {
  const props = readProperties(s.properties, DERIVED_PROPERTIES);
  const name = canonicalRuleName(s.name);
  const source = resolveInput(s.query.from.name, catalog);
  const schema = schemaOf(source);
  const outputTopic = stringProp(props, 'KAFKA_TOPIC') ?? name;
  if (outputTopic === source.topic) {
    throw rulesErrorAt('RULES_PLAN', `rule '${name}' would write to its own input topic '${outputTopic}'`, s.name.pos, { token: s.name.name });
  }
  const partitionsProp = props.get('PARTITIONS');
  const partitions = partitionsProp ? (partitionsProp.value.value as number) : null;
  const reset = settings['auto.offset.reset'];
  const offsetReset: OffsetReset = reset === 'earliest' ? 'earliest' : 'latest';
  const q = optimize(analyzeQuery(s, schema));
  const used: ValueField[] = [];
  const scope = rowScope(schema, used);
  const whereFn = q.where ? compilePredicate(q.where, scope) : () => true;
  const names = q.outputs.map((o) => o.name);
  const prefilter = q.where ? prefilterOf(q.where, schema) : null;
  const base = { name, source, outputTopic, partitions, settings, offsetReset, where: whereFn, prefilter, outputColumns: names, origin: origin(file, parsed) };

  if (q.kind === 'stream') {
    const fns = q.outputs.map((o) => compileExpr(o.expr, scope));
    const plain = projector(names, fns);
    const project: (row: SourceRow) => Row = q.star
      ? (row) => {
          const out: Row = { ...row.value };
          for (let i = 0; i < fns.length; i++) out[names[i]!] = fns[i]!(row) ?? null;
          return out;
        }
      : plain;
    const pk = q.partitionBy ? compileExpr(q.partitionBy, scope) : null;
    const outputKey = pk ? (row: SourceRow) => valueToString(pk(row)) : (row: SourceRow) => row.key;
    // `SELECT *, expr` copies the whole value; `SELECT *` alone passes the payload bytes through.
    const valueFields = q.star && fns.length > 0 ? null : valueFieldsOf(used, source);
    return { kind: 'stream', ...base, valueFields, project, outputKey, rekeys: pk !== null };
  }

  const gscope = groupScope(q, schema);
  const window = q.window ? windowPlan(q.window) : null;
  const fns = q.outputs.map((o) => compileExpr(o.expr, gscope));
  const havingFn = q.having ? compilePredicate(q.having, gscope) : () => true;
  const aggregates: AggregateCall[] = q.aggregates.map((a) => ({ fn: a.fn, arg: a.arg ? compileExpr(a.arg, scope) : null, text: a.text }));
  const groupBy = q.groupBy.map((g) => compileExpr(g, scope));
  const groupByNames = q.groupBy.map((g) => (g.kind === 'ColumnRef' ? outputNameOfRef(g, schema) : formatExpr(g)));
  // The grace period only decides when windows close, not what they hold: changing it keeps the state.
  const windowShape = window === null ? null : window.kind === 'session' ? { kind: window.kind, gapMs: window.gapMs } : { kind: window.kind, sizeMs: window.sizeMs, advanceMs: window.advanceMs };
  const stateSignature = JSON.stringify({
    source: source.topic,
    groupBy: q.groupBy.map(formatExpr),
    window: windowShape,
    aggregates: q.aggregates.map((a) => a.text),
  });
  return {
    kind: 'table',
    ...base,
    window,
    groupBy,
    valueFields: valueFieldsOf(used, source),
    groupByNames,
    groupKeyText,
    aggregates,
    project: projector(names, fns),
    having: havingFn,
    outputKey: window ? (g) => `${keyTextOf(g.keys)}@${g.windowStart}` : (g) => keyTextOf(g.keys),
    emit: q.emit,
    stateSignature,
    keyRun: keyRunOf(q, window, schema),
  };
}

/** See `TablePlan.keyRun`. */
function keyRunOf(q: LogicalTableQuery, window: WindowPlan | null, schema: SourceSchema): KeyRun | null {
  if (q.where !== null || window === null || window.kind !== 'tumbling' || q.emit !== 'final' || q.groupBy.length !== 1) return null;
  // a value column, not a key column (which falls back to the record key) nor a pseudo column
  const field = (e: Expr): ValueField | null => {
    if (e.kind !== 'ColumnRef') return null;
    const r = resolveColumn(e, schema);
    return r.kind === 'value' && !r.key ? { name: r.name, caseSensitive: r.caseSensitive } : null;
  };
  const group = field(q.groupBy[0]!);
  if (group === null) return null;
  const args: Array<ValueField | null> = [];
  for (const a of q.aggregates) {
    const f = a.arg === null ? null : field(a.arg);
    if (a.arg !== null && f === null) return null;
    args.push(f);
  }
  return { group, args };
}

function outputNameOfRef(ref: ColumnRef, schema: SourceSchema): string {
  const r = resolveColumn(ref, schema);
  return r.kind === 'value' ? r.name : r.which;
}

/**
 * A new rule must not write a topic another rule writes, nor close a cycle
 * of rules feeding each other (a → b → a), which would run forever.
 */
function checkTopics(plan: DerivedPlan, known: ReadonlyMap<string, Plan>, at: Identifier): void {
  const rules = [...known.values()].filter((p): p is DerivedPlan => p.kind !== 'source');
  const where = (p: DerivedPlan): string => `${p.origin.file}:${p.origin.line}:${p.origin.col}`;
  const writer = rules.find((r) => r.outputTopic === plan.outputTopic);
  if (writer !== undefined) {
    throw rulesErrorAt('RULES_PLAN', `topic '${plan.outputTopic}' is already written by '${writer.name}' at ${where(writer)}`, at.pos, { token: at.name });
  }
  // Follow what reads this rule's output, breadth first, until we come back to its input.
  const path = new Map<string, string[]>([[plan.outputTopic, [plan.name]]]);
  const queue = [plan.outputTopic];
  while (queue.length > 0) {
    const topic = queue.shift()!;
    for (const r of rules) {
      if (r.source.topic !== topic || path.has(r.outputTopic)) continue;
      const via = [...path.get(topic)!, r.name];
      if (r.outputTopic === plan.source.topic) {
        throw rulesErrorAt('RULES_PLAN', `rules form a cycle: ${[...via, plan.name].join(' → ')}`, at.pos, { token: at.name });
      }
      path.set(r.outputTopic, via);
      queue.push(r.outputTopic);
    }
  }
}

function diagnosticOf(file: string, e: unknown): Diagnostic {
  if (isRulesError(e)) {
    return { file, line: e.context.line ?? 1, col: e.context.col ?? 1, code: e.code, message: e.message };
  }
  return { file, line: 1, col: 1, code: 'RULES_PLAN', message: `internal error: ${(e as Error)?.message ?? String(e)}` };
}

/**
 * Parses and plans the text of one rule file. Statements see the sources and
 * rules of `catalog` (the other files' plans; never this file's previous
 * version) and those declared earlier in the same file. A name defined twice
 * is an error (`IF NOT EXISTS` skips the statement instead; `OR REPLACE` is
 * accepted and means nothing more, as a changed file replaces its rules
 * anyway). Every statement is checked, and parsing resumes after a syntax
 * error at the next `;`, so one run reports every broken statement, in file
 * order; any diagnostic makes the whole file contribute no plans.
 */
export function planRuleText(text: string, file: string, catalog: Catalog = new Map()): RuleFilePlan {
  const { statements: parsed, errors } = parseRulesRecovering(text);
  const local = new Map<string, Plan>(catalog);
  const sources: SourcePlan[] = [];
  const rules: DerivedPlan[] = [];
  const diagnostics: Diagnostic[] = errors.map((e) => diagnosticOf(file, e));
  let settings: Record<string, string> = {};
  for (const p of parsed) {
    const s = p.statement;
    try {
      if (s.kind === 'SetStatement') {
        const key = s.property.toLowerCase();
        let value = s.value;
        if (key === 'auto.offset.reset') {
          value = value.toLowerCase();
          if (value !== 'earliest' && value !== 'latest') {
            throw rulesErrorAt('RULES_PLAN', `'auto.offset.reset' must be 'earliest' or 'latest', not '${s.value}'`, s.pos, { token: s.value });
          }
        }
        settings = { ...settings, [key]: value };
        continue;
      }
      const name = canonicalRuleName(s.name);
      const existing = local.get(name);
      if (existing !== undefined) {
        if (s.ifNotExists) continue;
        const where = existing.origin ? ` at ${existing.origin.file}:${existing.origin.line}:${existing.origin.col}` : '';
        throw rulesErrorAt('RULES_PLAN', `'${name}' is already defined${where}`, s.name.pos, { token: s.name.name });
      }
      if (s.kind === 'CreateSource') {
        const plan = planSource(s, file, p);
        local.set(name, plan);
        sources.push(plan);
      } else {
        const plan = planDerived(s, p, file, Object.freeze({ ...settings }), local);
        checkTopics(plan, local, s.name);
        local.set(name, plan);
        rules.push(plan);
      }
    } catch (e) {
      diagnostics.push(diagnosticOf(file, e));
    }
  }
  if (diagnostics.length > 0) {
    diagnostics.sort((a, b) => a.line - b.line || a.col - b.col);
    return { file, sources: [], rules: [], diagnostics };
  }
  return { file, sources, rules, diagnostics };
}
