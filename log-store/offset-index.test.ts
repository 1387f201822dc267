import { describe, expect, it } from 'vitest';
import { OffsetIndex } from './offset-index.ts';

describe('offset index', () => {
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
});
