/**
 * Exponential back-off with jitter for reconnects, sink retries and Modbus
 * circuit breakers. Randomness and timers are injected, so tests drive it
 * with fixed random values and fake time.
 *
 * The n-th delay (n from 0) is `min(maxMs, initialMs * multiplier^n)`, then
 * jittered down by up to `jitter` of itself:
 * `delay * (1 - jitter + jitter * random())`. With the defaults a device that
 * stays away is retried after ~0.25–0.5 s, 0.5–1 s, ... up to 15–30 s.
 */
import { BridgeError } from './errors.ts';
import type { Random, Timers } from './types.ts';

export interface BackoffOptions {
  /** First delay in ms, before jitter. Default 500. */
  initialMs?: number;
  /** Ceiling of the delay in ms, before jitter. Default 30000. */
  maxMs?: number;
  /** Growth factor per attempt. Default 2. */
  multiplier?: number;
  /** Fraction of the delay that is randomised, 0..1 (0: no jitter, 1: "full jitter"). Default 0.5. */
  jitter?: number;
  /** Default Math.random. */
  random?: Random;
}

export const BACKOFF_DEFAULTS = Object.freeze({ initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.5 });

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  readonly jitter: number;
  private readonly random: Random;
  private attemptCount = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? BACKOFF_DEFAULTS.initialMs;
    this.maxMs = options.maxMs ?? BACKOFF_DEFAULTS.maxMs;
    this.multiplier = options.multiplier ?? BACKOFF_DEFAULTS.multiplier;
    this.jitter = options.jitter ?? BACKOFF_DEFAULTS.jitter;
    this.random = options.random ?? Math.random;
    if (!(this.initialMs > 0) || !(this.maxMs >= this.initialMs) || !(this.multiplier >= 1) || !(this.jitter >= 0 && this.jitter <= 1)) {
      throw new BridgeError(
        'BRIDGE_CONFIG',
        `back-off options need initialMs > 0, maxMs >= initialMs, multiplier >= 1, 0 <= jitter <= 1 (got ${JSON.stringify(options, (k, v) => (k === 'random' ? undefined : v))})`,
      );
    }
  }

  /** Attempts made since the last `reset()`. */
  get attempts(): number {
    return this.attemptCount;
  }

  /** The delay before the next attempt, in ms; counts the attempt. */
  next(): number {
    const exp = this.initialMs * this.multiplier ** this.attemptCount;
    const base = Math.min(this.maxMs, exp);
    this.attemptCount++;
    return Math.round(base * (1 - this.jitter + this.jitter * this.random()));
  }

  /** After a success: the next delay starts again from `initialMs`. */
  reset(): void {
    this.attemptCount = 0;
  }
}

/**
 * Resolves after `ms` on the injected timers, or rejects with BRIDGE_STOPPED
 * as soon as `signal` aborts (the timer is cleared, nothing is left behind).
 */
export function sleep(ms: number, timers: Timers, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new BridgeError('BRIDGE_STOPPED', 'stopped'));
      return;
    }
    const onAbort = (): void => {
      timers.clearTimeout(handle);
      reject(new BridgeError('BRIDGE_STOPPED', 'stopped'));
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The global timers as a `Timers` port (the default wherever timers are injectable). */
export const systemTimers: Timers = Object.freeze({
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
});
