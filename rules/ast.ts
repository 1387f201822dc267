/**
 * The syntax tree of the rule dialect (a subset of ksqlDB's SQL).
 *
 * This module is a leaf: it imports nothing. Every node carries `pos`, the
 * position of its first token in the rule file: `line` and `col` are 1-based
 * (columns count UTF-16 code units, as editors do for ASCII text), `offset` is
 * the 0-based character offset into the file text.
 *
 * Names: an unquoted identifier is case-insensitive; its `name` keeps the
 * spelling of the source text and `quoted` is false. A back-quoted identifier
 * (`` `Temp C` ``) is case-sensitive; `quoted` is true and `name` holds the text
 * between the quotes (a doubled back-quote stands for one). Compare names with
 * `sameName` below, never with `===`.
 */

export interface Position {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly col: number;
  /** 0-based character offset into the file text. */
  readonly offset: number;
}

export interface Identifier {
  readonly kind: 'Identifier';
  readonly pos: Position;
  readonly name: string;
  readonly quoted: boolean;
}

/** True when two identifiers name the same thing (case-insensitive unless either is back-quoted). */
export function sameName(a: { name: string; quoted: boolean }, b: { name: string; quoted: boolean }): boolean {
  if (a.quoted || b.quoted) return a.name === b.name;
  return a.name.toUpperCase() === b.name.toUpperCase();
}

/** The canonical form of a name: upper case for unquoted identifiers (as ksqlDB), exact for quoted ones. */
export function canonicalName(id: { name: string; quoted: boolean }): string {
  return id.quoted ? id.name : id.name.toUpperCase();
}

// ---------------------------------------------------------------------------
// Types (CAST targets and column declarations)
// ---------------------------------------------------------------------------

/** Base type names accepted by the dialect (aliases are normalised by the parser: INTEGER→INT, STRING→VARCHAR). */
export type BaseTypeName =
  | 'BOOLEAN'
  | 'INT'
  | 'BIGINT'
  | 'DOUBLE'
  | 'DECIMAL'
  | 'VARCHAR'
  | 'BYTES'
  | 'TIMESTAMP'
  | 'DATE'
  | 'TIME';

export type TypeNode =
  | { readonly kind: 'BaseType'; readonly pos: Position; readonly name: BaseTypeName; readonly params: readonly number[] }
  | { readonly kind: 'ArrayType'; readonly pos: Position; readonly element: TypeNode }
  | { readonly kind: 'MapType'; readonly pos: Position; readonly keyType: TypeNode; readonly valueType: TypeNode }
  | {
      readonly kind: 'StructType';
      readonly pos: Position;
      readonly fields: ReadonlyArray<{ readonly name: Identifier; readonly type: TypeNode }>;
    };

// ---------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------

export interface StringLiteral {
  readonly kind: 'StringLiteral';
  readonly pos: Position;
  /** The value with `''` escapes resolved. */
  readonly value: string;
}

export interface NumberLiteral {
  readonly kind: 'NumberLiteral';
  readonly pos: Position;
  readonly value: number;
  /** The digits as written, e.g. `1.50`. */
  readonly text: string;
  /** True when written without a decimal point or exponent. */
  readonly integer: boolean;
}

export interface BooleanLiteral {
  readonly kind: 'BooleanLiteral';
  readonly pos: Position;
  readonly value: boolean;
}

export interface NullLiteral {
  readonly kind: 'NullLiteral';
  readonly pos: Position;
}

/**
 * A column reference, optionally qualified by the source name or alias
 * (`w.colour`). Pseudo columns (ROWTIME, ROWKEY, ROWPARTITION, ROWOFFSET,
 * WINDOWSTART, WINDOWEND) are column references too; the analyzer resolves them.
 */
export interface ColumnRef {
  readonly kind: 'ColumnRef';
  readonly pos: Position;
  readonly qualifier: Identifier | null;
  readonly column: Identifier;
}

/** Nested field access: `payload->temp`. */
export interface FieldAccess {
  readonly kind: 'FieldAccess';
  readonly pos: Position;
  readonly base: Expr;
  readonly field: Identifier;
}

/** Array element (1-based as ksqlDB; negative counts from the end) or map value: `readings[1]`, `tags['site']`. */
export interface Subscript {
  readonly kind: 'Subscript';
  readonly pos: Position;
  readonly base: Expr;
  readonly index: Expr;
}

export type UnaryOp = 'NOT' | '-' | '+';

export interface Unary {
  readonly kind: 'Unary';
  readonly pos: Position;
  readonly op: UnaryOp;
  readonly operand: Expr;
}

export type ArithmeticOp = '+' | '-' | '*' | '/' | '%';
export type ComparisonOp = '=' | '<>' | '<' | '<=' | '>' | '>=';
export type LogicalOp = 'AND' | 'OR';
/** `!=` is parsed as `<>`; `||` is string concatenation. */
export type BinaryOp = ArithmeticOp | ComparisonOp | LogicalOp | '||';

export interface Binary {
  readonly kind: 'Binary';
  readonly pos: Position;
  readonly op: BinaryOp;
  readonly left: Expr;
  readonly right: Expr;
}

export interface InList {
  readonly kind: 'InList';
  readonly pos: Position;
  readonly expr: Expr;
  readonly list: readonly Expr[];
  readonly negated: boolean;
}

export interface Between {
  readonly kind: 'Between';
  readonly pos: Position;
  readonly expr: Expr;
  readonly low: Expr;
  readonly high: Expr;
  readonly negated: boolean;
}

/** `x [NOT] LIKE pattern [ESCAPE 'c']`: `%` any run, `_` one character. */
export interface Like {
  readonly kind: 'Like';
  readonly pos: Position;
  readonly expr: Expr;
  readonly pattern: Expr;
  readonly escape: Expr | null;
  readonly negated: boolean;
}

export interface IsNull {
  readonly kind: 'IsNull';
  readonly pos: Position;
  readonly expr: Expr;
  /** True for `IS NOT NULL`. */
  readonly negated: boolean;
}

/** `CASE [operand] WHEN ... THEN ... [ELSE ...] END`; `operand` is null for the searched form. */
export interface Case {
  readonly kind: 'Case';
  readonly pos: Position;
  readonly operand: Expr | null;
  readonly whens: ReadonlyArray<{ readonly when: Expr; readonly then: Expr }>;
  readonly else: Expr | null;
}

export interface Cast {
  readonly kind: 'Cast';
  readonly pos: Position;
  readonly expr: Expr;
  readonly type: TypeNode;
}

/**
 * A function call, scalar or aggregate: `ROUND(x, 2)`, `COUNT(*)`.
 * `star` is true only for `f(*)` (then `args` is empty).
 */
export interface Call {
  readonly kind: 'Call';
  readonly pos: Position;
  readonly name: Identifier;
  readonly args: readonly Expr[];
  readonly star: boolean;
  readonly distinct: boolean;
}

export type Expr =
  | StringLiteral
  | NumberLiteral
  | BooleanLiteral
  | NullLiteral
  | ColumnRef
  | FieldAccess
  | Subscript
  | Unary
  | Binary
  | InList
  | Between
  | Like
  | IsNull
  | Case
  | Cast
  | Call;

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

export type SelectItem =
  | { readonly kind: 'Star'; readonly pos: Position; readonly qualifier: Identifier | null }
  | { readonly kind: 'SelectExpr'; readonly pos: Position; readonly expr: Expr; readonly alias: Identifier | null };

export type TimeUnit = 'MILLISECOND' | 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY';

/** `5 MINUTES`: the unit is normalised to singular; `ms` is the length in milliseconds. */
export interface Duration {
  readonly kind: 'Duration';
  readonly pos: Position;
  readonly value: number;
  readonly unit: TimeUnit;
  readonly ms: number;
}

export type WindowNode =
  | {
      readonly kind: 'TumblingWindow';
      readonly pos: Position;
      readonly size: Duration;
      readonly retention: Duration | null;
      readonly grace: Duration | null;
    }
  | {
      readonly kind: 'HoppingWindow';
      readonly pos: Position;
      readonly size: Duration;
      readonly advance: Duration;
      readonly retention: Duration | null;
      readonly grace: Duration | null;
    }
  | {
      readonly kind: 'SessionWindow';
      readonly pos: Position;
      readonly gap: Duration;
      readonly retention: Duration | null;
      readonly grace: Duration | null;
    };

export type EmitMode = 'CHANGES' | 'FINAL';

/**
 * `SELECT items FROM source [alias] [WINDOW w] [WHERE e] [GROUP BY e, ...]
 * [PARTITION BY e] [HAVING e] [EMIT CHANGES|FINAL]`. Clause order follows
 * ksqlDB (WINDOW comes before WHERE). `emit` is null when no EMIT clause is written.
 */
export interface Select {
  readonly kind: 'Select';
  readonly pos: Position;
  readonly items: readonly SelectItem[];
  readonly from: { readonly pos: Position; readonly name: Identifier; readonly alias: Identifier | null };
  readonly window: WindowNode | null;
  readonly where: Expr | null;
  readonly groupBy: readonly Expr[];
  readonly partitionBy: readonly Expr[];
  readonly having: Expr | null;
  readonly emit: EmitMode | null;
  /** Position of the EMIT keyword (for diagnostics), null without EMIT. */
  readonly emitPos: Position | null;
}

// ---------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------

/** `KEY = 'value'` inside `WITH (...)`. Names are compared case-insensitively and stored upper case. */
export interface Property {
  readonly kind: 'Property';
  readonly pos: Position;
  readonly name: string;
  readonly value: StringLiteral | NumberLiteral | BooleanLiteral;
}

export interface ColumnDef {
  readonly kind: 'ColumnDef';
  readonly pos: Position;
  readonly name: Identifier;
  readonly type: TypeNode;
  /** `col TYPE KEY` (or PRIMARY KEY): the column comes from the record key. */
  readonly key: boolean;
}

/** `SET 'auto.offset.reset'='earliest';` applies to the statements after it in the same file. */
export interface SetStatement {
  readonly kind: 'SetStatement';
  readonly pos: Position;
  readonly property: string;
  readonly value: string;
}

/** `CREATE STREAM x (col TYPE, ...) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON', TIMESTAMP='f')`: a source stream. */
export interface CreateSource {
  readonly kind: 'CreateSource';
  readonly pos: Position;
  readonly name: Identifier;
  readonly orReplace: boolean;
  readonly ifNotExists: boolean;
  readonly columns: readonly ColumnDef[];
  readonly properties: readonly Property[];
}

/** `CREATE STREAM x [WITH (...)] AS SELECT ...` or `CREATE TABLE x [WITH (...)] AS SELECT ...`. */
export interface CreateAsSelect {
  readonly kind: 'CreateAsSelect';
  readonly pos: Position;
  readonly objectType: 'STREAM' | 'TABLE';
  readonly name: Identifier;
  readonly orReplace: boolean;
  readonly ifNotExists: boolean;
  readonly properties: readonly Property[];
  readonly query: Select;
}

export type Statement = SetStatement | CreateSource | CreateAsSelect;

/**
 * One parsed statement with its source text (from its first token to its
 * terminating `;`, exclusive) for logs and `rules check` output.
 */
export interface ParsedStatement {
  readonly statement: Statement;
  readonly text: string;
}

// ---------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------

/** Prints an identifier canonically: unquoted names upper case, quoted ones in back-quotes. */
export function formatIdentifier(id: { name: string; quoted: boolean }): string {
  return id.quoted ? '`' + id.name.replace(/`/g, '``') + '`' : id.name.toUpperCase();
}

export function formatType(t: TypeNode): string {
  switch (t.kind) {
    case 'BaseType':
      return t.params.length > 0 ? `${t.name}(${t.params.join(', ')})` : t.name;
    case 'ArrayType':
      return `ARRAY<${formatType(t.element)}>`;
    case 'MapType':
      return `MAP<${formatType(t.keyType)}, ${formatType(t.valueType)}>`;
    case 'StructType':
      return `STRUCT<${t.fields.map((f) => `${formatIdentifier(f.name)} ${formatType(f.type)}`).join(', ')}>`;
  }
}

export function formatDuration(d: Duration): string {
  return `${d.value} ${d.unit}${d.value === 1 ? '' : 'S'}`;
}

/**
 * Prints an expression in a compact canonical form: every operator is
 * parenthesised (so the printed text shows the tree's shape), identifiers
 * are canonical, keywords upper case. Two expressions that differ only in
 * case, whitespace, comments or redundant parentheses print the same; the
 * analyzer relies on that to match select items with GROUP BY expressions.
 */
export function formatExpr(e: Expr): string {
  switch (e.kind) {
    case 'StringLiteral':
      return `'${e.value.replace(/'/g, "''")}'`;
    case 'NumberLiteral':
      return e.text;
    case 'BooleanLiteral':
      return e.value ? 'TRUE' : 'FALSE';
    case 'NullLiteral':
      return 'NULL';
    case 'ColumnRef':
      return (e.qualifier ? formatIdentifier(e.qualifier) + '.' : '') + formatIdentifier(e.column);
    case 'FieldAccess':
      return `${formatExpr(e.base)}->${formatIdentifier(e.field)}`;
    case 'Subscript':
      return `${formatExpr(e.base)}[${formatExpr(e.index)}]`;
    case 'Unary':
      return e.op === 'NOT' ? `(NOT ${formatExpr(e.operand)})` : `(${e.op}${formatExpr(e.operand)})`;
    case 'Binary':
      return `(${formatExpr(e.left)} ${e.op} ${formatExpr(e.right)})`;
    case 'InList':
      return `(${formatExpr(e.expr)} ${e.negated ? 'NOT ' : ''}IN (${e.list.map(formatExpr).join(', ')}))`;
    case 'Between':
      return `(${formatExpr(e.expr)} ${e.negated ? 'NOT ' : ''}BETWEEN ${formatExpr(e.low)} AND ${formatExpr(e.high)})`;
    case 'Like':
      return `(${formatExpr(e.expr)} ${e.negated ? 'NOT ' : ''}LIKE ${formatExpr(e.pattern)}${e.escape ? ' ESCAPE ' + formatExpr(e.escape) : ''})`;
    case 'IsNull':
      return `(${formatExpr(e.expr)} IS ${e.negated ? 'NOT ' : ''}NULL)`;
    case 'Case':
      return (
        'CASE ' +
        (e.operand ? formatExpr(e.operand) + ' ' : '') +
        e.whens.map((w) => `WHEN ${formatExpr(w.when)} THEN ${formatExpr(w.then)} `).join('') +
        (e.else ? `ELSE ${formatExpr(e.else)} ` : '') +
        'END'
      );
    case 'Cast':
      return `CAST(${formatExpr(e.expr)} AS ${formatType(e.type)})`;
    case 'Call':
      return `${e.name.name.toUpperCase()}(${e.star ? '*' : (e.distinct ? 'DISTINCT ' : '') + e.args.map(formatExpr).join(', ')})`;
  }
}

function formatWindow(w: WindowNode): string {
  const extra = (w.retention ? `, RETENTION ${formatDuration(w.retention)}` : '') + (w.grace ? `, GRACE PERIOD ${formatDuration(w.grace)}` : '');
  switch (w.kind) {
    case 'TumblingWindow':
      return `TUMBLING (SIZE ${formatDuration(w.size)}${extra})`;
    case 'HoppingWindow':
      return `HOPPING (SIZE ${formatDuration(w.size)}, ADVANCE BY ${formatDuration(w.advance)}${extra})`;
    case 'SessionWindow':
      return `SESSION (${formatDuration(w.gap)}${extra})`;
  }
}

function formatProperties(props: readonly Property[]): string {
  if (props.length === 0) return '';
  const value = (v: Property['value']): string => (v.kind === 'StringLiteral' ? `'${v.value.replace(/'/g, "''")}'` : String(v.value).toUpperCase());
  return ` WITH (${props.map((p) => `${p.name}=${value(p.value)}`).join(', ')})`;
}

/** Prints a SELECT in canonical form (see `formatExpr`). */
export function formatSelect(q: Select): string {
  const items = q.items
    .map((i) => (i.kind === 'Star' ? (i.qualifier ? formatIdentifier(i.qualifier) + '.*' : '*') : formatExpr(i.expr) + (i.alias ? ' AS ' + formatIdentifier(i.alias) : '')))
    .join(', ');
  let s = `SELECT ${items} FROM ${formatIdentifier(q.from.name)}${q.from.alias ? ' ' + formatIdentifier(q.from.alias) : ''}`;
  if (q.window) s += ` WINDOW ${formatWindow(q.window)}`;
  if (q.where) s += ` WHERE ${formatExpr(q.where)}`;
  if (q.groupBy.length > 0) s += ` GROUP BY ${q.groupBy.map(formatExpr).join(', ')}`;
  if (q.partitionBy.length > 0) s += ` PARTITION BY ${q.partitionBy.map(formatExpr).join(', ')}`;
  if (q.having) s += ` HAVING ${formatExpr(q.having)}`;
  if (q.emit) s += ` EMIT ${q.emit}`;
  return s;
}

/** Prints a statement in canonical form: the compact tree used by golden tests and logs. */
export function formatStatement(s: Statement): string {
  switch (s.kind) {
    case 'SetStatement':
      return `SET '${s.property.replace(/'/g, "''")}'='${s.value.replace(/'/g, "''")}'`;
    case 'CreateSource': {
      const cols = s.columns.map((c) => `${formatIdentifier(c.name)} ${formatType(c.type)}${c.key ? ' KEY' : ''}`).join(', ');
      return `CREATE${s.orReplace ? ' OR REPLACE' : ''} STREAM${s.ifNotExists ? ' IF NOT EXISTS' : ''} ${formatIdentifier(s.name)}${cols ? ` (${cols})` : ''}${formatProperties(s.properties)}`;
    }
    case 'CreateAsSelect':
      return `CREATE${s.orReplace ? ' OR REPLACE' : ''} ${s.objectType}${s.ifNotExists ? ' IF NOT EXISTS' : ''} ${formatIdentifier(s.name)}${formatProperties(s.properties)} AS ${formatSelect(s.query)}`;
  }
}
