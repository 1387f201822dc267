/**
 * Aggregate functions of the rule dialect, as the aggregate operator runs
 * them: `init` makes an empty state, `add` folds one value into it (in
 * place), `merge` folds another state into it (session windows merge), and
 * `result` reads the current value without changing the state.
 *
 * State is a small JSON array (numbers, strings, booleans, null), so the
 * state store checkpoints it with `JSON.stringify` and restores it with
 * `JSON.parse` unchanged. Invariants:
 *  - `add(s, null)` / `add(s, undefined)` leave `s` unchanged for every
 *    function except COUNT(*), which counts rows, not values (SQL semantics).
 *  - `result` of an empty state (no non-null values): COUNT → 0, SUM/AVG/
 *    MIN/MAX/LATEST/EARLIEST → null, STDDEV_SAMP → null below two values
 *    (the contract in plan.ts: `AggregateCall`).
 *  - LATEST_BY_OFFSET / EARLIEST_BY_OFFSET order values by the processing
 *    sequence number `seq` the caller passes (strictly increasing per rule);
 *    the state keeps it so `merge` is order-independent.
 */

export type AggState = Array<number | string | boolean | null | unknown>;

export type AggregateName =
  | 'COUNT_STAR'
  | 'COUNT'
  | 'SUM'
  | 'AVG'
  | 'MIN'
  | 'MAX'
  | 'STDDEV_SAMP'
  | 'LATEST_BY_OFFSET'
  | 'EARLIEST_BY_OFFSET';

export interface AggregateFunction {
  readonly name: AggregateName;
  init(): AggState;
  /** Folds `value` (already evaluated argument; ignored by COUNT_STAR) into `state`. `seq`: processing order. */
  add(state: AggState, value: unknown, seq: number): void;
  /** Folds `other` into `state` (both from this function). */
  merge(state: AggState, other: AggState): void;
  result(state: AggState): unknown;
}

function isNull(v: unknown): boolean {
  return v === null || v === undefined;
}

/** Numeric argument: numbers pass, numeric strings convert, anything else is skipped (null). */
function num(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  if (typeof v === 'boolean') return null;
  return null;
}

/** Ordering for MIN/MAX: numbers compare numerically, strings by code unit; mixing prefers numbers. */
function less(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a < b;
  if (typeof a === 'string' && typeof b === 'string') return a < b;
  return typeof a === 'number';
}

const countStar: AggregateFunction = {
  name: 'COUNT_STAR',
  init: () => [0],
  add(s) {
    (s[0] as number)++;
  },
  merge(s, o) {
    (s[0] as number) += o[0] as number;
  },
  result: (s) => s[0],
};

const count: AggregateFunction = {
  name: 'COUNT',
  init: () => [0],
  add(s, v) {
    if (!isNull(v)) (s[0] as number)++;
  },
  merge(s, o) {
    (s[0] as number) += o[0] as number;
  },
  result: (s) => s[0],
};

/** State [sum, n]. */
const sum: AggregateFunction = {
  name: 'SUM',
  init: () => [0, 0],
  add(s, v) {
    const n = num(v);
    if (n === null) return;
    (s[0] as number) += n;
    (s[1] as number)++;
  },
  merge(s, o) {
    (s[0] as number) += o[0] as number;
    (s[1] as number) += o[1] as number;
  },
  result: (s) => ((s[1] as number) === 0 ? null : s[0]),
};

/** State [sum, n]. */
const avg: AggregateFunction = {
  name: 'AVG',
  init: () => [0, 0],
  add: sum.add,
  merge: sum.merge,
  result: (s) => ((s[1] as number) === 0 ? null : (s[0] as number) / (s[1] as number)),
};

/** State [value | null]. */
function extreme(name: 'MIN' | 'MAX'): AggregateFunction {
  const better = name === 'MIN' ? (a: unknown, b: unknown) => less(a, b) : (a: unknown, b: unknown) => less(b, a);
  return {
    name,
    init: () => [null],
    add(s, v) {
      if (isNull(v) || typeof v === 'boolean' || typeof v === 'object') return;
      if (typeof v === 'number' && !Number.isFinite(v)) return;
      if (s[0] === null || better(v, s[0])) s[0] = v;
    },
    merge(s, o) {
      if (o[0] !== null && (s[0] === null || better(o[0], s[0]))) s[0] = o[0];
    },
    result: (s) => s[0],
  };
}

/** Welford's running variance. State [n, mean, m2]; merge by Chan et al.'s parallel formula. */
const stddevSamp: AggregateFunction = {
  name: 'STDDEV_SAMP',
  init: () => [0, 0, 0],
  add(s, v) {
    const x = num(v);
    if (x === null) return;
    const n = (s[0] as number) + 1;
    const mean = s[1] as number;
    const delta = x - mean;
    const mean2 = mean + delta / n;
    s[0] = n;
    s[1] = mean2;
    s[2] = (s[2] as number) + delta * (x - mean2);
  },
  merge(s, o) {
    const na = s[0] as number;
    const nb = o[0] as number;
    if (nb === 0) return;
    if (na === 0) {
      s[0] = o[0];
      s[1] = o[1];
      s[2] = o[2];
      return;
    }
    const n = na + nb;
    const delta = (o[1] as number) - (s[1] as number);
    s[1] = (s[1] as number) + (delta * nb) / n;
    s[2] = (s[2] as number) + (o[2] as number) + (delta * delta * na * nb) / n;
    s[0] = n;
  },
  result(s) {
    const n = s[0] as number;
    if (n < 2) return null;
    const variance = (s[2] as number) / (n - 1);
    return Math.sqrt(variance < 0 ? 0 : variance);
  },
};

/** State [value | null, seq | -1]. Null values are ignored (ksqlDB's default). */
function byOffset(name: 'LATEST_BY_OFFSET' | 'EARLIEST_BY_OFFSET'): AggregateFunction {
  const latest = name === 'LATEST_BY_OFFSET';
  const wins = (seq: number, cur: number) => cur < 0 || (latest ? seq > cur : seq < cur);
  return {
    name,
    init: () => [null, -1],
    add(s, v, seq) {
      if (isNull(v)) return;
      if (wins(seq, s[1] as number)) {
        s[0] = v;
        s[1] = seq;
      }
    },
    merge(s, o) {
      if ((o[1] as number) >= 0 && wins(o[1] as number, s[1] as number)) {
        s[0] = o[0];
        s[1] = o[1];
      }
    },
    result: (s) => s[0],
  };
}

const FUNCTIONS: Readonly<Record<AggregateName, AggregateFunction>> = Object.freeze({
  COUNT_STAR: countStar,
  COUNT: count,
  SUM: sum,
  AVG: avg,
  MIN: extreme('MIN'),
  MAX: extreme('MAX'),
  STDDEV_SAMP: stddevSamp,
  LATEST_BY_OFFSET: byOffset('LATEST_BY_OFFSET'),
  EARLIEST_BY_OFFSET: byOffset('EARLIEST_BY_OFFSET'),
});

/** The aggregate named `name` (upper case; `COUNT(*)` is `COUNT_STAR`: the plan's `COUNT` with a null `arg`), or undefined. */
export function aggregateFunction(name: string): AggregateFunction | undefined {
  return Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name as AggregateName] : undefined;
}

export const AGGREGATE_NAMES: readonly AggregateName[] = Object.freeze(Object.keys(FUNCTIONS) as AggregateName[]);
