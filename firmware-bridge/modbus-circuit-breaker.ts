/**
 * A per-slave circuit breaker, so one dead or failing slave cannot eat the
 * line time of the others.
 *
 * States:
 * - `closed`: polls go out; each failed poll counts, a success resets the count.
 * - `open`: after `failureThreshold` consecutive failed polls, no poll goes
 *   out until `retryAt` (now + the next back-off delay).
 * - `half-open`: at `retryAt` one probe poll goes out: success closes the
 *   breaker (and resets the back-off); failure opens it again with the next,
 *   longer delay (exponential, with jitter, capped at `maxMs`).
 *
 * Pure state: the caller passes the time (injected clock), so tests step it.
 */
import { Backoff, type BackoffOptions } from './backoff.ts';
import { BridgeError } from './errors.ts';
import type { Random } from './types.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failed polls that open the breaker. Default 3. */
  failureThreshold?: number;
  /** Delay before each probe. Default { initialMs: 1000, maxMs: 60000, multiplier: 2, jitter: 0.5 }. */
  backoff?: Omit<BackoffOptions, 'random'>;
}

export const BREAKER_DEFAULTS = Object.freeze({
  failureThreshold: 3,
  backoff: Object.freeze({ initialMs: 1000, maxMs: 60_000 }),
});

export class CircuitBreaker {
  readonly failureThreshold: number;
  private readonly backoff: Backoff;
  private current: BreakerState = 'closed';
  private failures = 0;
  private retryAtMs: number | null = null;
  private openCount = 0;

  constructor(options: BreakerOptions = {}, random: Random = Math.random) {
    this.failureThreshold = options.failureThreshold ?? BREAKER_DEFAULTS.failureThreshold;
    if (!Number.isInteger(this.failureThreshold) || this.failureThreshold < 1) {
      throw new BridgeError('BRIDGE_CONFIG', `breaker.failureThreshold must be an integer >= 1 (got ${options.failureThreshold})`);
    }
    this.backoff = new Backoff({ ...BREAKER_DEFAULTS.backoff, ...options.backoff, random });
  }

  get state(): BreakerState {
    return this.current;
  }

  /** Failed polls since the last success. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** When the breaker is open: the time (ms) the next probe may go out; else null. */
  get retryAt(): number | null {
    return this.retryAtMs;
  }

  /** How many times the breaker has opened (including re-opens after a failed probe). */
  get opens(): number {
    return this.openCount;
  }

  /**
   * Ms to wait before the next poll may go out at time `now` (0: go now).
   * An open breaker whose delay has passed turns half-open here: the poll
   * that follows is the probe.
   */
  acquire(now: number): number {
    if (this.current !== 'open') return 0;
    if (now >= this.retryAtMs!) {
      this.current = 'half-open';
      return 0;
    }
    return this.retryAtMs! - now;
  }

  success(): void {
    this.current = 'closed';
    this.failures = 0;
    this.retryAtMs = null;
    this.backoff.reset();
  }

  /** Records a failed poll at `now`; returns the back-off delay in ms when this failure opened the breaker, else null. */
  failure(now: number): number | null {
    this.failures++;
    if (this.current === 'half-open' || (this.current === 'closed' && this.failures >= this.failureThreshold)) {
      const delayMs = this.backoff.next();
      this.current = 'open';
      this.retryAtMs = now + delayMs;
      this.openCount++;
      return delayMs;
    }
    return null;
  }
}
