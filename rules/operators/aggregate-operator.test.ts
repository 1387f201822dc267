import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handTable, type HandAggregate } from '../../test/support/rules-hand-plans.ts';
import type { Row, SourceRow, TablePlan, WindowPlan } from '../plan.ts';
import { AggregateOperator } from './aggregate-operator.ts';
import type { Emitter } from './emitter.ts';

interface Out {
  key: string | null;
  value: Row;
  ts: number;
}

function harness(plan: TablePlan) {
  const rows: Out[] = [];
  const late: Array<{ offset: number; reason: string }> = [];
  const emitter: Emitter = {
    emit: (key, value, ts) => rows.push({ key, value: JSON.parse(typeof value === 'string' ? value : Buffer.from(value).toString('utf8')) as Row, ts }),
    late: (reason, _m, row) => late.push({ offset: row.offset, reason }),
    pass: () => {
      throw new Error('an aggregate never passes input records through');
    },
  };
  const op = new AggregateOperator(plan, emitter);
  let offset = 0;
  const feed = (value: Row, ts: number) => {
    const row: SourceRow = { value, key: String(value.sensor_id ?? ''), timestamp: ts, partition: 0, offset: offset++ };
    const buf = Buffer.from(JSON.stringify(value));
    op.process(row, { buf, start: 0, end: buf.length, keyStart: -1, keyEnd: -1 });
  };
  return { op, rows, late, feed };
}

const MIN = 60_000;

describe('aggregate operator', () => {
  it('tumbling EMIT FINAL: one row per window when stream time passes its end', () => {
    const h = harness(
      handTable({
        groupBy: ['sensor_id'],
        aggregates: [{ fn: 'COUNT', field: null, as: 'n' }, { fn: 'AVG', field: 't', as: 'avg_t' }],
        window: { kind: 'tumbling', sizeMs: MIN, advanceMs: MIN, graceMs: 0 },
        emit: 'final',
      }),
    );
    h.feed({ sensor_id: 'a', t: 20 }, 1_000);
    h.feed({ sensor_id: 'b', t: 30 }, 2_000);
    h.feed({ sensor_id: 'a', t: 22 }, 59_999);
    expect(h.rows).toEqual([]);
    h.feed({ sensor_id: 'b', t: 31 }, 60_000); // closes [0, 60000)
    expect(h.rows).toEqual([
      { key: 'a@0', value: { sensor_id: 'a', n: 2, avg_t: 21 }, ts: 0 },
      { key: 'b@0', value: { sensor_id: 'b', n: 1, avg_t: 30 }, ts: 0 },
    ]);
    h.feed({ sensor_id: 'a', t: 99 }, 59_000); // late: window closed, grace 0
    expect(h.late).toEqual([{ offset: 4, reason: 'WINDOW_CLOSED' }]);
    expect(h.op.closeAll()).toBe(true);
    expect(h.rows.slice(2)).toEqual([{ key: 'b@60000', value: { sensor_id: 'b', n: 1, avg_t: 31 }, ts: 60_000 }]);
    expect(h.op.closeAll()).toBe(false);
    // after an idle close, a record for the closed window is late too
    h.feed({ sensor_id: 'b', t: 1 }, 61_000);
    expect(h.late.at(-1)).toEqual({ offset: 5, reason: 'WINDOW_CLOSED' });
  });

  it('grace period accepts a late record until stream time passes end + grace', () => {
    const h = harness(
      handTable({
        groupBy: ['sensor_id'],
        aggregates: [{ fn: 'SUM', field: 't', as: 's' }],
        window: { kind: 'tumbling', sizeMs: MIN, advanceMs: MIN, graceMs: 30_000 },
        emit: 'final',
      }),
    );
    h.feed({ sensor_id: 'a', t: 1 }, 10_000);
    h.feed({ sensor_id: 'a', t: 2 }, 80_000);
    h.feed({ sensor_id: 'a', t: 4 }, 50_000); // within grace
    expect(h.late).toEqual([]);
    h.feed({ sensor_id: 'a', t: 8 }, 90_000); // closes [0,60000)
    h.feed({ sensor_id: 'a', t: 16 }, 55_000); // beyond grace
    expect(h.rows).toEqual([{ key: 'a@0', value: { sensor_id: 'a', s: 5 }, ts: 0 }]);
    expect(h.late).toEqual([{ offset: 4, reason: 'WINDOW_CLOSED' }]);
  });

  it('hopping EMIT CHANGES: one row per window the record falls in, in start order', () => {
    const h = harness(
      handTable({
        groupBy: ['sensor_id'],
        aggregates: [{ fn: 'MAX', field: 't', as: 'hi' }],
        window: { kind: 'hopping', sizeMs: 3 * MIN, advanceMs: MIN, graceMs: 0 },
        emit: 'changes',
      }),
    );
    h.feed({ sensor_id: 'a', t: 5 }, 130_000);
    expect(h.rows.map((r) => [r.key, r.value.hi])).toEqual([
      ['a@0', 5],
      ['a@60000', 5],
      ['a@120000', 5],
    ]);
  });

  it('session windows merge when a record bridges two sessions; EMIT FINAL after gap + grace', () => {
    const h = harness(
      handTable({
        groupBy: ['sensor_id'],
        aggregates: [{ fn: 'COUNT', field: null, as: 'n' }, { fn: 'LATEST_BY_OFFSET', field: 't', as: 'last' }],
        window: { kind: 'session', gapMs: 10_000, graceMs: 20_000 },
        emit: 'final',
        withWindowBounds: true,
      }),
    );
    h.feed({ sensor_id: 'a', t: 1 }, 0);
    h.feed({ sensor_id: 'a', t: 2 }, 25_000); // a second session
    h.feed({ sensor_id: 'a', t: 3 }, 12_000); // 12000 - 0 > gap and 25000 - 12000 > gap: a third session
    h.feed({ sensor_id: 'a', t: 4 }, 8_000); // within the gap of [0,0] and [12000,12000]: merges them
    expect(h.rows).toEqual([]);
    h.feed({ sensor_id: 'b', t: 9 }, 55_000); // closes sessions whose last + gap + grace < 55000: only [0..12000]
    expect(h.rows).toEqual([{ key: 'a@0', value: { sensor_id: 'a', WINDOWSTART: 0, WINDOWEND: 12_000, n: 3, last: 4 }, ts: 0 }]);
    h.feed({ sensor_id: 'a', t: 5 }, 35_000); // 35000 + grace >= 55000, within the gap of 25000: joins it
    h.feed({ sensor_id: 'a', t: 6 }, 34_000); // 34000 + 20000 < 55000: late
    expect(h.late).toEqual([{ offset: 6, reason: 'WINDOW_CLOSED' }]);
    h.op.closeAll();
    expect(h.rows.slice(1)).toEqual([
      { key: 'a@25000', value: { sensor_id: 'a', WINDOWSTART: 25_000, WINDOWEND: 35_000, n: 2, last: 5 }, ts: 25_000 },
      { key: 'b@55000', value: { sensor_id: 'b', WINDOWSTART: 55_000, WINDOWEND: 55_000, n: 1, last: 9 }, ts: 55_000 },
    ]);
  });

  it('unwindowed EMIT CHANGES with HAVING on an alias', () => {
    const h = harness(
      handTable({
        groupBy: ['line'],
        aggregates: [{ fn: 'AVG', field: 't', as: 'temp' }],
        having: (o) => (o.temp as number) > 20,
      }),
    );
    h.feed({ line: 'w01', t: 10 }, 1);
    h.feed({ line: 'w01', t: 40 }, 2);
    h.feed({ line: 'w02', t: 21 }, 3);
    expect(h.rows).toEqual([
      { key: 'w01', value: { line: 'w01', temp: 25 }, ts: 2 },
      { key: 'w02', value: { line: 'w02', temp: 21 }, ts: 3 },
    ]);
    expect(h.op.hasOpenWindows()).toBe(false);
  });

  it('a checkpointed state (takeDelta rows) restores to an operator that continues identically', () => {
    const plan = handTable({
      groupBy: ['sensor_id'],
      aggregates: [{ fn: 'STDDEV_SAMP', field: 't', as: 'sd' }, { fn: 'EARLIEST_BY_OFFSET', field: 't', as: 'first' }],
      window: { kind: 'session', gapMs: 5_000, graceMs: 1_000 },
      emit: 'final',
    });
    const a = harness(plan);
    const b = harness(plan);
    const rows = new Map<string, string>();
    const input: Array<[Row, number]> = [
      [{ sensor_id: 'x', t: 1 }, 1_000],
      [{ sensor_id: 'y', t: 2 }, 2_000],
      [{ sensor_id: 'x', t: 3 }, 4_000],
      [{ sensor_id: 'x', t: 7 }, 30_000],
      [{ sensor_id: 'y', t: 5 }, 31_000],
    ];
    input.slice(0, 3).forEach(([v, ts]) => a.feed(v, ts));
    const d = a.op.takeDelta();
    for (const [id, v] of d.upserts) rows.set(id, v);
    for (const id of d.deletes) rows.delete(id);
    b.op.restore(a.op.streamTime, a.op.seq, rows);
    input.slice(3).forEach(([v, ts]) => {
      a.feed(v, ts);
      b.feed(v, ts);
    });
    a.op.closeAll();
    b.op.closeAll();
    expect(b.rows).toEqual(a.rows);
    expect(a.rows.length).toBe(4);
  });
});

// ---- property: windowed aggregates equal a brute-force recomputation ----------

interface Reading {
  sensor: string;
  v: number | null;
  ts: number;
}

const AGGS: HandAggregate[] = [
  { fn: 'COUNT', field: null, as: 'n' },
  { fn: 'COUNT', field: 'v', as: 'nv' },
  { fn: 'SUM', field: 'v', as: 'sum' },
  { fn: 'MIN', field: 'v', as: 'lo' },
  { fn: 'MAX', field: 'v', as: 'hi' },
  { fn: 'LATEST_BY_OFFSET', field: 'v', as: 'last' },
  { fn: 'EARLIEST_BY_OFFSET', field: 'v', as: 'first' },
  { fn: 'AVG', field: 'v', as: 'avg' },
];

function bruteAggregates(vals: Array<number | null>): Row {
  const nn = vals.filter((v): v is number => v !== null);
  return {
    n: vals.length,
    nv: nn.length,
    sum: nn.length ? nn.reduce((a, b) => a + b, 0) : null,
    lo: nn.length ? Math.min(...nn) : null,
    hi: nn.length ? Math.max(...nn) : null,
    last: nn.length ? nn[nn.length - 1]! : null,
    first: nn.length ? nn[0]! : null,
    avg: nn.length ? nn.reduce((a, b) => a + b, 0) / nn.length : null,
  };
}

/** Final rows of every window, computed directly from the definitions in windows.ts. */
function bruteForce(window: WindowPlan, readings: Reading[]): { rows: Map<string, Row>; late: number[] } {
  let st = -Infinity;
  const accepted: Array<Reading & { i: number; starts: number[] }> = [];
  const late: number[] = [];
  readings.forEach((r, i) => {
    st = Math.max(st, r.ts);
    if (window.kind === 'session') {
      if (r.ts + window.graceMs < st) late.push(i);
      else accepted.push({ ...r, i, starts: [] });
      return;
    }
    const starts: number[] = [];
    for (let s = Math.floor((r.ts - window.sizeMs) / window.advanceMs) * window.advanceMs; s <= r.ts; s += window.advanceMs) {
      if (s <= r.ts && r.ts < s + window.sizeMs && s + window.sizeMs + window.graceMs > st) starts.push(s);
    }
    if (starts.length) accepted.push({ ...r, i, starts });
    else late.push(i);
  });
  const groups = new Map<string, Array<number | null>>();
  const put = (k: string, v: number | null) => {
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(v);
  };
  if (window.kind === 'session') {
    for (const sensor of new Set(accepted.map((r) => r.sensor))) {
      const mine = accepted.filter((r) => r.sensor === sensor);
      const times = [...new Set(mine.map((r) => r.ts))].sort((a, b) => a - b);
      // split sorted distinct times at gaps larger than gapMs: each run is a session
      const sessionOf = new Map<number, number>();
      let start = times[0]!;
      for (let k = 0; k < times.length; k++) {
        if (k > 0 && times[k]! - times[k - 1]! > window.gapMs) start = times[k]!;
        sessionOf.set(times[k]!, start);
      }
      for (const r of mine) put(`${sensor}@${sessionOf.get(r.ts)}`, r.v);
    }
  } else {
    for (const r of accepted) for (const s of r.starts) put(`${r.sensor}@${s}`, r.v);
  }
  const rows = new Map<string, Row>();
  for (const [k, vals] of groups) rows.set(k, { sensor_id: k.split('@')[0], ...bruteAggregates(vals) });
  return { rows, late };
}

describe('aggregate operator property', () => {
  const windowArb: fc.Arbitrary<WindowPlan> = fc.oneof(
    fc.record({ size: fc.integer({ min: 1, max: 50 }), grace: fc.integer({ min: 0, max: 30 }) }).map(
      ({ size, grace }) => ({ kind: 'tumbling', sizeMs: size, advanceMs: size, graceMs: grace }) as WindowPlan,
    ),
    fc.record({ adv: fc.integer({ min: 1, max: 20 }), mult: fc.integer({ min: 1, max: 4 }), grace: fc.integer({ min: 0, max: 30 }) }).map(
      ({ adv, mult, grace }) => ({ kind: 'hopping', sizeMs: adv * mult, advanceMs: adv, graceMs: grace }) as WindowPlan,
    ),
    fc.record({ gap: fc.integer({ min: 1, max: 30 }), grace: fc.integer({ min: 0, max: 30 }) }).map(
      ({ gap, grace }) => ({ kind: 'session', gapMs: gap, graceMs: grace }) as WindowPlan,
    ),
  );
  const readingsArb = fc.array(
    fc.record({ sensor: fc.constantFrom('a', 'b', 'c'), v: fc.option(fc.integer({ min: -100, max: 100 }), { nil: null }), ts: fc.integer({ min: 0, max: 300 }) }),
    { maxLength: 60 },
  );

  it('EMIT FINAL rows (after an idle close) equal a brute-force recomputation; late records are exactly the brute-force late ones', () => {
    fc.assert(
      fc.property(windowArb, readingsArb, (window, readings) => {
        const h = harness(handTable({ groupBy: ['sensor_id'], aggregates: AGGS, window, emit: 'final' }));
        for (const r of readings) h.feed({ sensor_id: r.sensor, v: r.v }, r.ts);
        h.op.closeAll();
        const expected = bruteForce(window, readings);
        expect(h.late.map((l) => l.offset)).toEqual(expected.late);
        const got = new Map(h.rows.map((r) => [r.key!, r.value]));
        expect(got.size).toBe(h.rows.length); // one final row per window
        expect(new Map([...got].map(([k, v]) => [k, { ...v, avg: v.avg === null ? null : Math.round((v.avg as number) * 1e9) / 1e9 }]))).toEqual(
          new Map([...expected.rows].map(([k, v]) => [k, { ...v, avg: v.avg === null ? null : Math.round((v.avg as number) * 1e9) / 1e9 }])),
        );
      }),
      { seed: 20261126, numRuns: 300 },
    );
  });

  it('under EMIT CHANGES, the last row of each window equals its EMIT FINAL row', () => {
    fc.assert(
      fc.property(windowArb.filter((w) => w.kind !== 'session'), readingsArb, (window, readings) => {
        const fin = harness(handTable({ groupBy: ['sensor_id'], aggregates: AGGS, window, emit: 'final' }));
        const chg = harness(handTable({ groupBy: ['sensor_id'], aggregates: AGGS, window, emit: 'changes' }));
        for (const r of readings) {
          fin.feed({ sensor_id: r.sensor, v: r.v }, r.ts);
          chg.feed({ sensor_id: r.sensor, v: r.v }, r.ts);
        }
        fin.op.closeAll();
        chg.op.closeAll();
        expect(new Map(chg.rows.map((r) => [r.key, r.value]))).toEqual(new Map(fin.rows.map((r) => [r.key, r.value])));
      }),
      { seed: 11, numRuns: 200 },
    );
  });

  it('checkpoint rows of time windows: ids as documented, and closing a restored window deletes its row', () => {
    const plan = handTable({
      groupBy: ['sensor_id'],
      aggregates: [{ fn: 'AVG', field: 't', as: 'avg_t' }],
      window: { kind: 'tumbling', sizeMs: MIN, advanceMs: MIN, graceMs: 0 },
      emit: 'final',
    });
    const apply = (rows: Map<string, string>, d: { upserts: Array<[string, string]>; deletes: string[] }) => {
      for (const [id, v] of d.upserts) rows.set(id, v);
      for (const id of d.deletes) rows.delete(id);
    };
    const a = harness(plan);
    const saved = new Map<string, string>();
    a.feed({ sensor_id: 'x', t: 1 }, 1_000);
    a.feed({ sensor_id: 'y', t: 2 }, 2_000);
    apply(saved, a.op.takeDelta());
    const g = (k: string) => plan.groupKeyText([k]);
    expect([...saved.keys()].sort()).toEqual([`t:0:${g('x')}`, `t:0:${g('y')}`]);
    const b = harness(plan);
    b.op.restore(a.op.streamTime, a.op.seq, saved);
    const rowsA = new Map(saved);
    const rowsB = new Map(saved);
    for (const h of [a, b]) h.feed({ sensor_id: 'x', t: 5 }, MIN + 1_000);
    apply(rowsA, a.op.takeDelta());
    apply(rowsB, b.op.takeDelta());
    expect([...rowsB.keys()].sort()).toEqual([`t:${MIN}:${g('x')}`]);
    expect(rowsB).toEqual(rowsA);
    expect(b.rows).toEqual(a.rows);
  });
});
