import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AsciiTextCache } from './ascii-text-cache.ts';

describe('AsciiTextCache', () => {
  it('returns exactly the UTF-8 text of the bytes, remembered or not (property)', () => {
    // A tiny cache, so entries are replaced and the cache starts over often; short strings from few bytes collide in content.
    const cache = new AsciiTextCache(8);
    const bytes = fc.uint8Array({ maxLength: 12 }).chain((b) => fc.constantFrom(b, Buffer.from(b).map((x) => x & 0x7f), Buffer.from('factory/w01/aa-1')));
    fc.assert(
      fc.property(fc.array(bytes, { minLength: 1, maxLength: 20 }), fc.nat(4), (list, pad) => {
        for (const b of list) {
          // The bytes sit inside a larger buffer, as a topic sits in a packet.
          const buf = Buffer.concat([Buffer.alloc(pad, 0x2f), Buffer.from(b), Buffer.alloc(3, 0x41)]);
          expect(cache.text(buf, pad, pad + b.length)).toBe(Buffer.from(b).toString('utf8'));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('tells apart ASCII strings whose hashes collide', () => {
    const cache = new AsciiTextCache();
    // 'aa-06vl8' and 'aa-0npd6' have the same FNV-1a hash (933005698) and length.
    for (let round = 0; round < 3; round++) {
      for (const w of ['aa-06vl8', 'aa-0npd6']) expect(cache.text(Buffer.from(w), 0, w.length)).toBe(w);
    }
  });
});
