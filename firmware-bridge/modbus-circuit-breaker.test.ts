import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './modbus-circuit-breaker.ts';

describe('CircuitBreaker', () => {
  it('opens after the threshold, probes at retryAt, backs off exponentially, closes on success', () => {
    // random() = 1 → no jitter reduction: delays are exactly initialMs * 2^n.
    const b = new CircuitBreaker({ failureThreshold: 3, backoff: { initialMs: 1000, maxMs: 5000, jitter: 0.5 } }, () => 1);
    let now = 10_000;
    expect(b.acquire(now)).toBe(0);
    expect(b.failure(now)).toBeNull();
    expect(b.failure(now)).toBeNull();
    expect(b.state).toBe('closed');
    expect(b.failure(now)).toBe(1000);
    expect(b.state).toBe('open');
    expect(b.retryAt).toBe(11_000);
    expect(b.acquire(now + 400)).toBe(600);
    expect(b.state).toBe('open');
    now = 11_000;
    expect(b.acquire(now)).toBe(0);
    expect(b.state).toBe('half-open');
    // A failed probe re-opens at once, with the doubled delay; then capped at maxMs.
    expect(b.failure(now)).toBe(2000);
    expect(b.acquire(now + 1999)).toBe(1);
    now += 2000;
    expect(b.acquire(now)).toBe(0);
    expect(b.failure(now)).toBe(4000);
    now += 4000;
    b.acquire(now);
    expect(b.failure(now)).toBe(5000);
    expect(b.opens).toBe(4);
    now += 5000;
    b.acquire(now);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.consecutiveFailures).toBe(0);
    expect(b.retryAt).toBeNull();
    // The back-off starts over after a success.
    b.failure(now);
    b.failure(now);
    expect(b.failure(now)).toBe(1000);
  });

  it('a success between failures resets the count', () => {
    const b = new CircuitBreaker({ failureThreshold: 2 }, () => 1);
    b.failure(0);
    b.success();
    expect(b.failure(0)).toBeNull();
    expect(b.state).toBe('closed');
  });

  it('jitter comes from the injected randomness', () => {
    const b = new CircuitBreaker({ failureThreshold: 1, backoff: { initialMs: 1000, jitter: 0.5 } }, () => 0);
    expect(b.failure(0)).toBe(500);
  });

  it('refuses a threshold below 1', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(/failureThreshold/);
  });
});
