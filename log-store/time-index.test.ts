import { describe, expect, it } from 'vitest';
import { TimeIndex } from './time-index.ts';

describe('time index', () => {
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
