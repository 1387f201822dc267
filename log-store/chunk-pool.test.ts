import { describe, expect, it } from 'vitest';
import { ManualTimers } from '../test/support/log-store-fixtures.ts';
import { ChunkPool } from './chunk-pool.ts';

describe('ChunkPool', () => {
  const block = (buf: Buffer): { buf: Buffer } => ({ buf });

  it('gives a chunk back only once its segment moved on and every block over it came back', () => {
    const pool = new ChunkPool();
    const chunk = pool.take(1000);
    expect(chunk.length).toBe(1000);
    pool.track(chunk);
    const [a, b] = [block(chunk), block(chunk)];
    pool.lease(a);
    pool.lease(b);
    pool.release(a);
    // still cached by its segment, and block b is out
    expect(pool.take(1000).buffer).not.toBe(chunk.buffer);
    pool.uncache(chunk);
    expect(pool.idleBytes).toBe(0);
    // a second hand-back of a block does not count for another, nor does a block never leased (a read without handBack)
    pool.release(a);
    pool.release(block(chunk));
    expect(pool.idleBytes).toBe(0);
    pool.release(b);
    expect(pool.idleBytes).toBe(1000);
    // a shorter read takes the idle chunk's first bytes
    const shorter = pool.take(999);
    expect(shorter.length).toBe(999);
    expect(shorter.buffer).toBe(chunk.buffer);
    expect(pool.idleBytes).toBe(0);
  });

  it('a read takes the smallest idle chunk long enough, as a view of its start; that memory stays its own, to track and hand to the decode worker', () => {
    const pool = new ChunkPool();
    const [big, mid, small] = [pool.take(3000), pool.take(2000), pool.take(1000)];
    for (const c of [big, mid, small]) {
      pool.track(c);
      pool.uncache(c);
    }
    expect(pool.idleBytes).toBe(6000);
    const got = pool.take(1500);
    expect(got.buffer).toBe(mid.buffer);
    expect([got.byteOffset, got.length]).toEqual([0, 1500]);
    expect(pool.idleBytes).toBe(4000);
    expect(pool.owns(got)).toBe(true);
    // tracked as the memory it views: back, whole, once its segment moved on
    pool.track(got);
    pool.uncache(got);
    expect(pool.idleBytes).toBe(6000);
    expect(pool.take(2500).buffer).toBe(big.buffer);
    expect(pool.take(2001).buffer).not.toBe(mid.buffer);
    expect(pool.take(2000).buffer).toBe(mid.buffer);
    // not its own: memory it did not make, or not from its start
    expect(pool.owns(Buffer.allocUnsafeSlow(10))).toBe(false);
    expect(pool.owns(got.subarray(1))).toBe(false);
    // its memory transferred and back (the decode worker) is a new ArrayBuffer: its own once told so
    const view = pool.take(900);
    const moved = Buffer.from(structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] }), 0, 900);
    expect(pool.owns(moved)).toBe(false);
    pool.ownAgain(moved);
    expect(pool.owns(moved)).toBe(true);
  });

  it('keeps a chunk its segment still caches, even with no block out', () => {
    const pool = new ChunkPool();
    const chunk = pool.take(512);
    pool.track(chunk);
    const only = block(chunk);
    pool.lease(only);
    pool.release(only);
    expect(pool.idleBytes).toBe(0);
    pool.uncache(chunk);
    expect(pool.take(512).buffer).toBe(chunk.buffer);
  });

  it('never gives back a chunk `read` took records from, nor a buffer it does not track', () => {
    const pool = new ChunkPool();
    const chunk = pool.take(256);
    pool.track(chunk);
    pool.pin(chunk);
    pool.uncache(chunk);
    expect(pool.idleBytes).toBe(0);
    // part of a bigger buffer, or of Node's shared pool: not tracked at all
    const part = Buffer.allocUnsafeSlow(512).subarray(0, 256);
    pool.track(part);
    pool.uncache(part);
    const small = Buffer.allocUnsafe(16);
    pool.track(small);
    pool.uncache(small);
    expect(pool.idleBytes).toBe(0);
  });

  it('keeps idle chunks up to its limit, and hands out the one idle longest first', () => {
    const pool = new ChunkPool({ maxPooledBytes: 2500 });
    const chunks = [pool.take(1000), pool.take(1000), pool.take(1000)];
    for (const c of chunks) {
      pool.track(c);
      pool.uncache(c);
    }
    expect(pool.idleBytes).toBe(2000);
    expect(pool.take(1000).buffer).toBe(chunks[0]!.buffer);
    expect(pool.take(1000).buffer).toBe(chunks[1]!.buffer);
    expect(pool.take(1000).buffer).not.toBe(chunks[2]!.buffer);
  });

  it('over its limit, drops its shortest idle chunks: a short read can take the start of a long one', () => {
    const pool = new ChunkPool({ maxPooledBytes: 5000 });
    const [a, b, c, d] = [pool.take(1000), pool.take(1500), pool.take(3000), pool.take(6000)];
    for (const x of [a, b, c, d]) {
      pool.track(x);
      pool.uncache(x);
    }
    // c came back to 2500 idle bytes: a went; d is longer than the limit
    expect(pool.idleBytes).toBe(4500);
    expect(pool.take(2000).buffer).toBe(c.buffer);
    expect(pool.take(1000).buffer).toBe(b.buffer);
    expect(pool.take(1000).buffer).not.toBe(a.buffer);
  });

  /** A chunk of `length` bytes taken from `pool` and idle again (its segment moved on). */
  function idleChunk(pool: ChunkPool, length: number): Buffer {
    const chunk = pool.take(length);
    pool.track(chunk);
    pool.uncache(chunk);
    return chunk;
  }

  it('drops its idle chunks at once when told a reader caught up, with no trim delay', () => {
    const pool = new ChunkPool({ trimDelayMs: 0 });
    const chunk = idleChunk(pool, 1000);
    expect(pool.idleBytes).toBe(1000);
    pool.caughtUp();
    expect(pool.idleBytes).toBe(0);
    expect(pool.take(1000).buffer).not.toBe(chunk.buffer);
  });

  it('drops its idle chunks a trim delay after a reader caught up', () => {
    const timers = new ManualTimers();
    const pool = new ChunkPool({ timers });
    idleChunk(pool, 1000);
    pool.caughtUp();
    pool.caughtUp();
    expect(timers.pending.size).toBe(1);
    expect(pool.idleBytes).toBe(1000);
    timers.fireAll();
    expect(pool.idleBytes).toBe(0);
  });

  it('keeps them when a big read took one meanwhile (another pass), and drops them after that pass catches up', () => {
    const timers = new ManualTimers();
    const pool = new ChunkPool({ timers });
    const big = idleChunk(pool, 2 << 20);
    pool.caughtUp();
    // the next pass's first read reuses the chunk, and gives it back
    expect(idleChunk(pool, 1 << 20).buffer).toBe(big.buffer);
    timers.fireAll();
    expect(pool.idleBytes).toBe(2 << 20);
    pool.caughtUp();
    timers.fireAll();
    expect(pool.idleBytes).toBe(0);
  });

  it('drops them though small reads (a reader following the end) take them meanwhile', () => {
    const timers = new ManualTimers();
    const pool = new ChunkPool({ timers });
    const big = idleChunk(pool, 2 << 20);
    pool.caughtUp();
    expect(idleChunk(pool, 4096).buffer).toBe(big.buffer);
    expect(pool.idleBytes).toBe(2 << 20);
    timers.fireAll();
    expect(pool.idleBytes).toBe(0);
  });

  it('drops them, and its pending trim, when closed', () => {
    const timers = new ManualTimers();
    const pool = new ChunkPool({ timers });
    idleChunk(pool, 1000);
    pool.caughtUp();
    pool.close();
    expect(pool.idleBytes).toBe(0);
    expect(timers.pending.size).toBe(0);
  });
});
