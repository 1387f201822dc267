import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assignTimeWindows, closeTime, sessionClosed, sessionSpan, timeWindowClosed } from './windows.ts';

function starts(sizeMs: number, advanceMs: number, ts: number): number[] {
  const out: number[] = [];
  const n = assignTimeWindows({ sizeMs, advanceMs }, ts, out);
  return out.slice(0, n);
}

describe('window assignment', () => {
  it.each([
    // tumbling 60 s
    [60_000, 60_000, 0, [0]],
    [60_000, 60_000, 59_999, [0]],
    [60_000, 60_000, 60_000, [60_000]],
    [60_000, 60_000, -1, [-60_000]],
    // hopping 5 min advance 1 min: five windows
    [300_000, 60_000, 1_581_682_767_000, [1_581_682_500_000, 1_581_682_560_000, 1_581_682_620_000, 1_581_682_680_000, 1_581_682_740_000]],
    [300_000, 60_000, 240_000, [0, 60_000, 120_000, 180_000, 240_000]],
    [300_000, 60_000, 300_000, [60_000, 120_000, 180_000, 240_000, 300_000]],
    // advance that does not divide the size
    [10, 4, 9, [0, 4, 8]],
  ])('size %d advance %d: %d falls in %j', (size, advance, ts, expected) => {
    expect(starts(size, advance, ts)).toEqual(expected);
  });

  it('every assigned window contains the time, and no other aligned window does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: -10_000, max: 10_000 }), (size, advance, ts) => {
        const got = starts(size, advance, ts);
        const brute: number[] = [];
        for (let s = Math.floor((ts - size) / advance) * advance; s <= ts; s += advance) if (s <= ts && ts < s + size) brute.push(s);
        expect(got).toEqual(brute);
      }),
      { seed: 7, numRuns: 500 },
    );
  });
});

describe('closing', () => {
  it('a time window closes when stream time reaches end + grace', () => {
    expect(timeWindowClosed(60_000, 0, 59_999)).toBe(false);
    expect(timeWindowClosed(60_000, 0, 60_000)).toBe(true);
    expect(timeWindowClosed(60_000, 30_000, 89_999)).toBe(false);
    expect(timeWindowClosed(60_000, 30_000, 90_000)).toBe(true);
    expect(closeTime({ kind: 'tumbling', sizeMs: 60_000, advanceMs: 60_000, graceMs: 30_000 }, 60_000)).toBe(90_000);
  });
  it('a session closes once no record within the gap can still arrive on time', () => {
    expect(sessionClosed(10_000, 5_000, 0, 15_000)).toBe(false);
    expect(sessionClosed(10_000, 5_000, 0, 15_001)).toBe(true);
    expect(closeTime({ kind: 'session', gapMs: 5_000, graceMs: 0 }, 10_000)).toBe(15_001);
  });
  it('sessionSpan finds the sessions a record joins or where a new one goes', () => {
    const s = [
      { start: 0, end: 10 },
      { start: 30, end: 40 },
      { start: 100, end: 100 },
    ];
    expect(sessionSpan(s, 12, 5)).toEqual([0, 1]);
    expect(sessionSpan(s, 20, 10)).toEqual([0, 2]); // bridges two sessions
    expect(sessionSpan(s, 60, 5)).toEqual([2, 2]); // new session before index 2
    expect(sessionSpan(s, 200, 5)).toEqual([3, 3]);
    expect(sessionSpan([], 1, 5)).toEqual([0, 0]);
  });
});
