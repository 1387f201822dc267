import { describe, expect, it } from 'vitest';
import { resolveRegisterMap, type RegisterEntry } from './modbus-registers.ts';
import { planRequests } from './modbus-request-plan.ts';

function shape(entries: RegisterEntry[], limits = {}): Array<[string, number, number, string[]]> {
  return planRequests(resolveRegisterMap(entries), limits).map((r) => [
    r.function,
    r.address,
    r.count,
    r.fields.map((f) => `${f.entry.field}@${f.index}`),
  ]);
}

describe('planRequests', () => {
  it('reads a 40-field contiguous map in one request per table', () => {
    const entries: RegisterEntry[] = [];
    for (let i = 0; i < 20; i++) entries.push({ field: `h${i}`, function: 'holding', address: 100 + 2 * i, type: 'float32' });
    for (let i = 0; i < 20; i++) entries.push({ field: `c${i}`, function: 'coil', address: i });
    const plan = planRequests(resolveRegisterMap(entries));
    expect(plan.map((r) => [r.functionCode, r.address, r.count, r.fields.length])).toEqual([
      [1, 0, 20, 20],
      [3, 100, 40, 20],
    ]);
  });

  it('orders by address within a table whatever the map order, with each field at its offset', () => {
    expect(
      shape([
        { field: 'b', function: 'input', address: 12, type: 'int32' },
        { field: 'a', function: 'input', address: 10 },
        { field: 'c', function: 'input', address: 11 },
      ]),
    ).toEqual([['input', 10, 4, ['a@0', 'c@1', 'b@2']]]);
  });

  it('joins across holes up to the gap limit and splits beyond it', () => {
    const map: RegisterEntry[] = [
      { field: 'a', function: 'holding', address: 0 },
      { field: 'b', function: 'holding', address: 4 }, // hole of 3
      { field: 'c', function: 'holding', address: 20 }, // hole of 15
    ];
    expect(shape(map, { maxGapRegisters: 3 })).toEqual([
      ['holding', 0, 5, ['a@0', 'b@4']],
      ['holding', 20, 1, ['c@0']],
    ]);
    expect(shape(map, { maxGapRegisters: 2 }).map((r) => r.slice(1, 3))).toEqual([
      [0, 1],
      [4, 1],
      [20, 1],
    ]);
    expect(shape(map, { maxGapRegisters: 15 }).map((r) => r.slice(1, 3))).toEqual([[0, 21]]);
  });

  it('never joins different tables, even at the same addresses', () => {
    expect(
      shape([
        { field: 'h', function: 'holding', address: 0 },
        { field: 'i', function: 'input', address: 1 },
        { field: 'd', function: 'discrete', address: 0 },
      ]).map((r) => r[0]),
    ).toEqual(['discrete', 'holding', 'input']);
  });

  it('splits at the size limit without cutting a multi-register value', () => {
    const entries: RegisterEntry[] = [];
    for (let i = 0; i < 100; i++) entries.push({ field: `f${i}`, function: 'holding', address: i * 2, type: 'uint32' });
    const plan = planRequests(resolveRegisterMap(entries));
    // 200 registers in 125-register requests: 62 values (124 registers) then 38.
    expect(plan.map((r) => [r.address, r.count])).toEqual([
      [0, 124],
      [124, 76],
    ]);
    const small = planRequests(resolveRegisterMap(entries), { maxRegisters: 10 });
    expect(small).toHaveLength(20);
    for (const r of small) {
      expect(r.count).toBeLessThanOrEqual(10);
      for (const f of r.fields) expect(f.index + f.entry.count).toBeLessThanOrEqual(r.count);
    }
  });

  it('bits: 2000 per request by default, configurable', () => {
    const entries: RegisterEntry[] = [];
    for (let i = 0; i < 2500; i++) entries.push({ field: `c${i}`, function: 'discrete', address: i });
    expect(planRequests(resolveRegisterMap(entries)).map((r) => [r.address, r.count])).toEqual([
      [0, 2000],
      [2000, 500],
    ]);
    expect(planRequests(resolveRegisterMap(entries), { maxBits: 1000 })).toHaveLength(3);
  });

  it('overlapping entries share one request', () => {
    expect(
      shape([
        { field: 'whole', function: 'holding', address: 5, type: 'float64' },
        { field: 'part', function: 'holding', address: 6 },
      ]),
    ).toEqual([['holding', 5, 4, ['whole@0', 'part@1']]]);
  });

  it('covers every field exactly once for random maps (property)', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const types = ['uint16', 'int32', 'float32', 'float64'] as const;
    for (let round = 0; round < 50; round++) {
      const entries: RegisterEntry[] = [];
      const n = 1 + rnd(60);
      for (let i = 0; i < n; i++) {
        entries.push({ field: `f${i}`, function: rnd(2) ? 'holding' : 'input', address: rnd(400), type: types[rnd(4)]! });
      }
      const limits = { maxRegisters: 4 + rnd(122), maxGapRegisters: rnd(20) };
      const plan = planRequests(resolveRegisterMap(entries), limits);
      const seen = plan.flatMap((r) => r.fields.map((f) => f.entry.field)).sort();
      expect(seen).toEqual(entries.map((e) => e.field).sort());
      for (const r of plan) {
        expect(r.count).toBeLessThanOrEqual(limits.maxRegisters);
        for (const f of r.fields) {
          expect(f.entry.function).toBe(r.function);
          expect(r.address + f.index).toBe(f.entry.address);
          expect(f.index + f.entry.count).toBeLessThanOrEqual(r.count);
        }
      }
    }
  });

  it('refuses limits beyond the protocol and entries larger than a request', () => {
    expect(() => planRequests([], { maxRegisters: 126 })).toThrow(/maxRegisters must be an integer 1..125/);
    expect(() => planRequests([], { maxBits: 0 })).toThrow(/maxBits/);
    const big = resolveRegisterMap([{ field: 's', function: 'holding', address: 0, type: 'string', length: 40 }]);
    expect(() => planRequests(big, { maxRegisters: 10 })).toThrow(/s: spans 20 registers/);
  });
});
