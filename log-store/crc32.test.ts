import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32, pickCrc32, simdCrc32 } from './crc32.ts';
import { decodeWorker, decodeWorkerSimdCrc32 } from './decode-worker.ts';

describe('crc32', () => {
  it('loads the SIMD addon here (a platform with a prebuilt binary)', () => {
    expect(simdCrc32).toBe(true);
  });

  it("is zlib's CRC-32 for inputs on both sides of the addon's threshold, from any running value, and goes on across calls", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 9000 }), fc.nat({ max: 8000 }), fc.integer({ min: 0, max: 0xffffffff }), (bytes, cut, value) => {
        const data = Buffer.from(bytes);
        expect(crc32(data, value)).toBe(zlibCrc32(data, value));
        expect(crc32(data)).toBe(zlibCrc32(data));
        // a plain Uint8Array view (the decode worker's), and a CRC begun on one side of the threshold and ended on the other
        const at = Math.min(cut, data.length);
        const view = new Uint8Array(data.buffer, data.byteOffset, data.length);
        expect(crc32(view.subarray(at), crc32(view.subarray(0, at)))).toBe(zlibCrc32(data));
      }),
      { numRuns: 300 },
    );
    const big = Buffer.alloc(1 << 20, 0xa5);
    expect(crc32(big, 7)).toBe(zlibCrc32(big, 7));
  });

  it('takes the big function only for inputs of 4 KiB and more', () => {
    const calls: string[] = [];
    const f = pickCrc32(
      (d) => (calls.push(`small ${d.length}`), 1),
      (d) => (calls.push(`big ${d.length}`), 2),
    );
    expect([f(new Uint8Array(4095)), f(new Uint8Array(4096)), f(new Uint8Array(0))]).toEqual([1, 2, 1]);
    expect(calls).toEqual(['small 4095', 'big 4096', 'small 0']);
    expect(pickCrc32((d, v) => (v ?? 0) + d.length, null)(new Uint8Array(9000), 5)).toBe(9005);
  });

  it('the decode worker loads the addon too', async () => {
    const chunk = Buffer.allocUnsafeSlow(64);
    chunk.fill(0);
    await decodeWorker()!.decode(chunk);
    expect(decodeWorkerSimdCrc32()).toBe(true);
  });
});
