import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff, sleep, systemTimers } from './backoff.ts';
import { isBridgeError } from './errors.ts';

describe('Backoff', () => {
  it('doubles from initialMs up to maxMs without jitter', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => b.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.attempts).toBe(6);
  });

  it('jitter scales each delay down by up to the jitter fraction, driven by the injected random', () => {
    const randoms = [0, 0.5, 0.999999];
    const b = new Backoff({ initialMs: 1000, maxMs: 100_000, jitter: 0.5, random: () => randoms.shift()! });
    // attempt 0: 1000 * (0.5 + 0.5*0) ; attempt 1: 2000 * (0.5 + 0.25) ; attempt 2: 4000 * ~1
    expect(b.next()).toBe(500);
    expect(b.next()).toBe(1500);
    expect(b.next()).toBe(4000);
  });

  it('full jitter can reach zero and never exceeds the ceiling', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 50, jitter: 1, random: () => 0 });
    expect(b.next()).toBe(0);
    const top = new Backoff({ initialMs: 10, maxMs: 50, jitter: 1, random: () => 0.9999999 });
    const delays = Array.from({ length: 10 }, () => top.next());
    expect(Math.max(...delays)).toBe(50);
  });

  it('reset starts over from initialMs', () => {
    const b = new Backoff({ initialMs: 100, jitter: 0 });
    b.next();
    b.next();
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(100);
  });

  it.each([{ initialMs: 0 }, { initialMs: 100, maxMs: 50 }, { multiplier: 0.5 }, { jitter: 1.5 }])('refuses options %j', (opts) => {
    expect(() => new Backoff(opts)).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
  });
});

describe('sleep', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves only once fake time reaches the delay', async () => {
    vi.useFakeTimers();
    let done = false;
    const p = sleep(1000, systemTimers).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('rejects with BRIDGE_STOPPED on abort and clears its timer', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const p = sleep(60_000, systemTimers, ac.signal);
    expect(vi.getTimerCount()).toBe(1);
    ac.abort();
    await expect(p).rejects.toSatisfy((e: unknown) => isBridgeError(e, 'BRIDGE_STOPPED'));
    expect(vi.getTimerCount()).toBe(0);
  });
});
