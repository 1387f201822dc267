import { describe, expect, it } from 'vitest';
import { OffsetIndex } from './offset-index.ts';
import { TimeIndex } from './time-index.ts';

describe('sparse indexes', () => {
  it('offset index: floor lookup, file bytes, and the valid prefix of a damaged file', () => {
    const idx = new OffsetIndex();
    for (const [rel, pos] of [[10, 4100], [25, 8300], [40, 12_500]] as const) idx.append(rel, pos);
    expect([0, 9, 10, 24, 25, 39, 40, 1000].map((r) => idx.floor(r))).toEqual([-1, -1, 0, 0, 1, 1, 2, 2]);
    const bytes = Buffer.from(idx.bytes());
    expect(bytes.toString('hex')).toBe('0000000a00001004000000190000206c00000028000030d4');
    expect(new OffsetIndex(bytes).validPrefix(20_000)).toBe(3);
    // Entries past the end of the log, out of order, or a torn last entry are not trusted.
    expect(new OffsetIndex(bytes).validPrefix(10_000)).toBe(2);
    const disordered = Buffer.from(bytes);
    disordered.writeUInt32BE(5, 8);
    expect(new OffsetIndex(disordered).validPrefix(20_000)).toBe(1);
    expect(new OffsetIndex(bytes.subarray(0, 20)).count).toBe(2);
  });

  it('time index: last entry strictly before a time, negative timestamps, round trip through bytes', () => {
    const t = new TimeIndex();
    t.append(-5000, 3);
    t.append(1_600_000_000_000, 10);
    t.append(1_600_000_000_000, 20);
    t.append(1_700_000_000_000, 30);
    const again = new TimeIndex(Buffer.from(t.bytes()));
    expect(again.count).toBe(4);
    expect([0, 1, 2, 3].map((i) => [again.timestamp(i), again.relOffset(i)])).toEqual([
      [-5000, 3],
      [1_600_000_000_000, 10],
      [1_600_000_000_000, 20],
      [1_700_000_000_000, 30],
    ]);
    expect(again.lastBefore(-5000)).toBe(-1);
    expect(again.lastBefore(0)).toBe(0);
    expect(again.lastBefore(1_600_000_000_000)).toBe(0);
    expect(again.lastBefore(1_600_000_000_001)).toBe(2);
    expect(again.lastBefore(Number.MAX_SAFE_INTEGER)).toBe(3);
  });
});
