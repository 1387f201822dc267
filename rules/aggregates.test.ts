import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aggregateFunction, type AggregateName } from './aggregates.ts';

function run(name: AggregateName, values: unknown[]): unknown {
  const f = aggregateFunction(name)!;
  const s = f.init();
  values.forEach((v, i) => f.add(s, v, i));
  // state survives a JSON round trip (the checkpoint format)
  return f.result(JSON.parse(JSON.stringify(s)));
}

describe('aggregate functions', () => {
  const table: Array<[AggregateName, unknown[], unknown]> = [
    ['COUNT_STAR', [1, null, 'x', undefined], 4],
    ['COUNT_STAR', [], 0],
    ['COUNT', [1, null, 'x', undefined, 0], 3],
    ['SUM', [1, 2.5, null, '3'], 6.5],
    ['SUM', [], null],
    ['SUM', ['abc', true], null],
    ['AVG', [1, 2, 3, 4, null], 2.5],
    ['AVG', [null], null],
    ['MIN', [5, 3, null, 9], 3],
    ['MIN', ['b', 'a', 'c'], 'a'],
    ['MIN', [], null],
    ['MAX', [5, 3, null, 9], 9],
    ['MAX', ['b', 'a', 'c'], 'c'],
    ['STDDEV_SAMP', [2, 4, 4, 4, 5, 5, 7, 9], Math.sqrt(32 / 7)],
    ['STDDEV_SAMP', [1], null],
    ['LATEST_BY_OFFSET', ['a', 'b', null], 'b'],
    ['LATEST_BY_OFFSET', [], null],
    ['EARLIEST_BY_OFFSET', [null, 'a', 'b'], 'a'],
  ];
  it.each(table)('%s over %j is %j', (name, values, expected) => {
    const got = run(name, values);
    if (typeof expected === 'number') expect(got as number).toBeCloseTo(expected, 12);
    else expect(got).toEqual(expected);
  });

  it('unknown names are undefined; COUNT(*) is COUNT_STAR', () => {
    expect(aggregateFunction('MEDIAN')).toBeUndefined();
    expect(aggregateFunction('toString')).toBeUndefined();
    expect(aggregateFunction('COUNT_STAR')?.name).toBe('COUNT_STAR');
  });

  it('merging states split anywhere equals adding everything to one state', () => {
    const names: AggregateName[] = ['COUNT_STAR', 'COUNT', 'SUM', 'AVG', 'MIN', 'MAX', 'STDDEV_SAMP', 'LATEST_BY_OFFSET', 'EARLIEST_BY_OFFSET'];
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.array(fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: null }), { maxLength: 30 }),
        fc.nat(),
        (name, values, cut) => {
          const f = aggregateFunction(name)!;
          const whole = f.init();
          values.forEach((v, i) => f.add(whole, v, i));
          const k = values.length ? cut % (values.length + 1) : 0;
          const a = f.init();
          const b = f.init();
          values.forEach((v, i) => f.add(i < k ? a : b, v, i));
          // merge in either order: by-offset functions use the sequence numbers, not merge order
          f.merge(b, a);
          const r1 = f.result(b);
          const r2 = f.result(whole);
          if (typeof r2 === 'number') expect(r1 as number).toBeCloseTo(r2, 6);
          else expect(r1).toEqual(r2);
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });
});
