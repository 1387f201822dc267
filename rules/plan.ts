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
 *   `KSQL_COL_<i>` with `i` its 0-based position in the select list.
 *   `SELECT *` passes the reading's JSON value through unchanged.
 */

/** JSON value of a reading, as decoded from the record's payload. */
export type Row = Record<string, unknown>;

/**
 * What stream-level closures (WHERE, projections, GROUP BY keys, aggregate
 * arguments) read. The runtime fills it per record.
 */
export interface SourceRow {
  /** The decoded JSON value of the record. Columns are looked up case-insensitively. */
  value: Row;
  /** The record key (pseudo column ROWKEY). */
  key: string | null;
  /** Event time in ms since the epoch (pseudo column ROWTIME): see `SourcePlan.eventTime`. */
  timestamp: number;
  /** Pseudo column ROWPARTITION. */
  partition: number;
  /** Pseudo column ROWOFFSET. */
  offset: number;
}

/** `SET 'name'='value'` statements seen before a statement in its file, later ones win. Keys as written (lower case by convention). */
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
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: string; readonly key: boolean }>;
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
  readonly origin: PlanOrigin;
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
  /** Window bounds in ms (WINDOWSTART inclusive, WINDOWEND exclusive); null when not windowed. */
  windowStart: number | null;
  windowEnd: number | null;
}

/** `CREATE TABLE t AS SELECT ... FROM x [WINDOW ...] [WHERE ...] GROUP BY ... [HAVING ...] [EMIT CHANGES|FINAL]`. */
export interface TablePlan extends DerivedPlanBase {
  readonly kind: 'table';
  readonly window: WindowPlan | null;
  /** GROUP BY expressions over the input row, in order. */
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
   * Stable identity of the aggregation state layout: source, GROUP BY,
   * window and aggregate calls (not WHERE, HAVING or the projection). When a
   * reloaded rule's signature differs from the checkpointed one, its state
   * is incompatible: start fresh and log it.
   */
  readonly stateSignature: string;
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
