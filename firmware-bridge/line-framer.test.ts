import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineFramer, type FramedLine } from './line-framer.ts';

const lines = (out: FramedLine[]) => out.map((f) => (f.type === 'line' ? f.bytes.toString() : `OVERFLOW(${f.bytes})`));

describe('LineFramer', () => {
  it('joins partial lines across reads and strips CR LF', () => {
    const f = new LineFramer();
    expect(lines(f.push(Buffer.from('{"a":')))).toEqual([]);
    expect(f.buffered).toBe(5);
    expect(lines(f.push(Buffer.from('1}\r\n{"b":2}\n{"c"')))).toEqual(['{"a":1}', '{"b":2}']);
    expect(lines(f.push(Buffer.from(':3}\n')))).toEqual(['{"c":3}']);
    expect(f.buffered).toBe(0);
  });

  it('skips empty lines', () => {
    expect(lines(new LineFramer().push(Buffer.from('\n\r\na\n\n')))).toEqual(['a']);
  });

  it('reports an overlong line once and resumes at the next newline, holding at most maxLineBytes', () => {
    const f = new LineFramer({ maxLineBytes: 8 });
    const out: FramedLine[] = [];
    out.push(...f.push(Buffer.from('0123456')));
    for (let i = 0; i < 1000; i++) {
      out.push(...f.push(Buffer.from('xxxxxxxxxx')));
      expect(f.buffered).toBeLessThanOrEqual(9);
    }
    out.push(...f.push(Buffer.from('yy\nok\n')));
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ type: 'overflow', bytes: 17 });
    expect((out[0] as { head: Buffer }).head.toString()).toBe('0123456xxxxxxxxxx');
    expect(lines(out.slice(1))).toEqual(['ok']);
  });

  it('a line of exactly maxLineBytes passes (with or without CR), one more byte overflows', () => {
    const f = new LineFramer({ maxLineBytes: 4 });
    expect(lines(f.push(Buffer.from('abcd\nabcd\r\nabcde\n')))).toEqual(['abcd', 'abcd', 'OVERFLOW(5)']);
  });

  it('reset returns and forgets the partial line', () => {
    const f = new LineFramer();
    f.push(Buffer.from('{"half":'));
    expect(f.reset().toString()).toBe('{"half":');
    expect(lines(f.push(Buffer.from('{"whole":1}\n')))).toEqual(['{"whole":1}']);
  });

  it('yields the same lines however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z0-9{}":,]{1,20}$/), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (ls, cuts) => {
        const stream = Buffer.from(ls.map((l) => `${l}\n`).join(''));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const f = new LineFramer();
        const out: FramedLine[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          out.push(...f.push(stream.subarray(prev, p)));
          prev = p;
        }
        expect(lines(out)).toEqual(ls);
      }),
    );
  });
});
