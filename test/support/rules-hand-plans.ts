/**
 * Hand-built logical plans for runtime tests that must not depend on the SQL
 * front end (operator unit tests, the property test): the same shapes the
 * planner produces, with plain field lookups as closures.
 */
import type { AggregateName, GroupRow, Row, SourcePlan, SourceRow, StreamPlan, TablePlan, WindowPlan } from '../../rules/plan.ts';

export function handSource(topic = 'widgets', timestampField: string | null = null): SourcePlan {
  const eventTimeOf = (v: unknown): number | null => {
    if (typeof v === 'number') return v;
    if (typeof v === 'string') {
      const t = Date.parse(v);
      return Number.isNaN(t) ? null : t;
    }
    return null;
  };
  return {
    kind: 'source',
    name: topic,
    topic,
    columns: [],
    timestampField,
    valueFormat: 'JSON',
    declared: false,
    eventTime(value, recordTimestamp) {
      return timestampField === null ? recordTimestamp : eventTimeOf(value[timestampField]);
    },
    eventTimeOf,
    origin: null,
  };
}

const origin = { file: 'hand.sql', line: 1, col: 1, sql: '' };

export function handStream(opts: { name?: string; where?: (v: Row) => boolean; project?: (v: Row) => Row; source?: SourcePlan; offsetReset?: 'earliest' | 'latest' }): StreamPlan {
  const name = opts.name ?? 'out';
  return {
    kind: 'stream',
    name,
    source: opts.source ?? handSource(),
    outputTopic: name,
    partitions: null,
    settings: {},
    offsetReset: opts.offsetReset ?? 'earliest',
    where: (row: SourceRow) => (opts.where ? opts.where(row.value) : true),
    outputColumns: opts.project ? ['x'] : [],
    rekeys: false,
    origin,
    project: (row: SourceRow) => (opts.project ? opts.project(row.value) : row.value),
    outputKey: (row: SourceRow) => row.key,
  };
}

export interface HandAggregate {
  fn: AggregateName;
  /** Field name, or null for COUNT(*). */
  field: string | null;
  as: string;
}

export function handTable(opts: {
  name?: string;
  groupBy: string[];
  aggregates: HandAggregate[];
  window?: WindowPlan | null;
  emit?: 'changes' | 'final';
  where?: (v: Row) => boolean;
  /** HAVING over the output row (aliases). */
  having?: (out: Row) => boolean;
  source?: SourcePlan;
  withWindowBounds?: boolean;
}): TablePlan {
  const name = opts.name ?? 'out';
  const window = opts.window ?? null;
  const keyText = (keys: readonly unknown[]) => (keys.length === 1 ? String(keys[0]) : JSON.stringify(keys));
  const project = (g: GroupRow): Row => {
    const out: Row = {};
    opts.groupBy.forEach((k, i) => (out[k] = g.keys[i]));
    if (opts.withWindowBounds) {
      out.WINDOWSTART = g.windowStart;
      out.WINDOWEND = g.windowEnd;
    }
    opts.aggregates.forEach((a, i) => (out[a.as] = g.aggregates[i]));
    return out;
  };
  return {
    kind: 'table',
    name,
    source: opts.source ?? handSource(),
    outputTopic: name,
    partitions: null,
    settings: {},
    offsetReset: 'earliest',
    where: (row: SourceRow) => (opts.where ? opts.where(row.value) : true),
    outputColumns: [...opts.groupBy, ...opts.aggregates.map((a) => a.as)],
    origin,
    window,
    groupBy: opts.groupBy.map((k) => (row: SourceRow) => row.value[k] ?? null),
    groupByNames: opts.groupBy,
    groupKeyText: keyText,
    aggregates: opts.aggregates.map((a) => ({
      fn: a.fn,
      arg: a.field === null ? null : (row: SourceRow) => row.value[a.field!] ?? null,
      text: `${a.fn}(${a.field ?? '*'})`,
    })),
    project,
    having: (g) => (opts.having ? opts.having(project(g)) : true),
    outputKey: (g) => (g.windowStart === null ? keyText(g.keys) : `${keyText(g.keys)}@${g.windowStart}`),
    emit: opts.emit ?? 'changes',
    stateSignature: JSON.stringify([opts.groupBy, window, opts.aggregates.map((a) => [a.fn, a.field])]),
  };
}
