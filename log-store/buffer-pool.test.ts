import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.ts';

// Identity checks compare with ===: vitest formats large Buffers in toBe, which is slow.
describe('BufferPool', () => {
  it('hands out power-of-two buffers and reuses given-back ones up to its cap', () => {
    const pool = new BufferPool(256 * 1024);
    const a = pool.take(100_000);
    expect(a.length).toBe(128 * 1024);
    pool.give(a);
    expect(pool.take(70_000) === a).toBe(true);
    const b = pool.take(1);
    expect(b.length).toBe(64 * 1024);
    // Past the cap (256 KiB idle), given-back buffers are dropped.
    const x = pool.take(200_000);
    const y = pool.take(200_000);
    pool.give(x);
    pool.give(y);
    expect(pool.take(200_000) === x).toBe(true);
    expect(pool.take(200_000) === y).toBe(false);
    // Views and odd sizes are never pooled.
    pool.give(b.subarray(0, 1000));
    pool.give(Buffer.alloc(70_000));
    expect(pool.take(1) === b).toBe(false);
    expect(pool.take(20 * 1024 * 1024).length).toBe(20 * 1024 * 1024);
  });
});
