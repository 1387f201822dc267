import { describe, expect, it } from 'vitest';
import { BlockFieldScanner } from './block-field-scanner.ts';
import { scanWorker } from './scan-worker.ts';

// A file of its own: it stops this process's scan worker for good.
describe('scan worker failure', () => {
  const fields = [{ name: 'a', caseSensitive: true }];
  const texts = Array.from({ length: 300 }, (_, i) => `{"a":${i},"b":"x${i % 3}"}`);
  const values = texts.map((t) => Buffer.from(t));
  const starts = new Int32Array(values.length);
  const ends = new Int32Array(values.length);
  values.reduce((at, v, i) => ((starts[i] = at), (ends[i] = at + v.length)), 0);
  const buf = Buffer.concat(values);

  function readAll(scanner: BlockFieldScanner): unknown[] {
    scanner.scan(buf, starts, ends, values.length);
    return texts.map((_, i) => {
      const got: unknown[] = [];
      return scanner.fill(i, got) ? got[0] : 'declined';
    });
  }

  it('scanners scan alone, with the same results, once the worker has failed', async () => {
    const before = new BlockFieldScanner(fields, { worker: true, sliceRecords: 10 });
    const want = texts.map((_, i) => i);
    expect(readAll(before)).toEqual(want);
    const worker = scanWorker(true)!;
    expect(worker.usable).toBe(true);
    worker.fail('stopped by the test');
    expect(worker.usable).toBe(false);
    expect(worker.failure).toBe('stopped by the test');
    expect(scanWorker(true)).toBeNull();
    const here = before.slices().here;
    // the scanner that had the worker, and a new one, read every block themselves
    expect(readAll(before)).toEqual(want);
    expect(before.slices().here).toBe(here);
    const after = new BlockFieldScanner(fields, { worker: true, sliceRecords: 10 });
    expect(readAll(after)).toEqual(want);
    expect(after.slices()).toEqual({ byWorker: 0, here: 0 });
    before.close();
    after.close();
  });
});
