/**
 * Starts components in order, stops them in reverse, and restarts a failed
 * one with exponential back-off (and jitter) without taking the others
 * down. A component is anything with start/stop; it reports a failure after
 * start through the `fail` callback it is given. `critical` components (the
 * log store) fail the whole start instead: nothing runs without the log.
 *
 * Lifecycle phases are bounded: each start and stop has its own timeout, so
 * one hung component cannot hold up shutdown past the agent's stop budget.
 */
import { AgentError } from './errors.ts';
import type { ComponentStatus } from './status.ts';

export interface ComponentContext {
  /** Call when the component failed after start; the supervisor restarts it with back-off. */
  fail(err: Error): void;
}

export interface Component {
  readonly name: string;
  /** A failure to start a critical component fails the supervisor's start. Default false. */
  readonly critical?: boolean;
  start(ctx: ComponentContext): Promise<void>;
  stop(): Promise<void>;
}

export interface SupervisorOptions {
  logger: { debug(o: object, m?: string): void; info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void };
  /** Per component start budget in ms. Default 30000. */
  startTimeoutMs?: number;
  /** Per component stop budget in ms. Default 10000. */
  stopTimeoutMs?: number;
  /** First restart delay in ms; doubles per consecutive failure up to `maxBackoffMs`. Default 1000. */
  initialBackoffMs?: number;
  /** Default 60000. */
  maxBackoffMs?: number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (h: unknown) => void;
  /** In [0, 1). Default Math.random. */
  random?: () => number;
}

interface Slot {
  component: Component;
  state: ComponentStatus['state'];
  restarts: number;
  failures: number;
  lastError: string | null;
  timer?: unknown;
  /** Bumped on each (re)start so a stale fail() from an old run is ignored. */
  generation: number;
  /** The error last logged at warn level, so a repeat of it is logged at debug only. */
  loggedError: string | null;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string, st: (fn: () => void, ms: number) => unknown, ct: (h: unknown) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const h = st(() => reject(new AgentError('COMPONENT_TIMEOUT', `${what} did not finish within ${ms} ms`)), ms);
    p.then(
      (v) => {
        ct(h);
        resolve(v);
      },
      (e: unknown) => {
        ct(h);
        reject(e);
      },
    );
  });
}

export class Supervisor {
  private readonly slots: Slot[];
  private readonly o: Required<Omit<SupervisorOptions, 'logger'>> & Pick<SupervisorOptions, 'logger'>;
  private running = false;
  private stopping: Promise<void> | undefined;

  constructor(components: readonly Component[], options: SupervisorOptions) {
    this.slots = components.map((component) => ({ component, state: 'stopped', restarts: 0, failures: 0, lastError: null, generation: 0, loggedError: null }));
    this.o = {
      logger: options.logger,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      initialBackoffMs: options.initialBackoffMs ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 60_000,
      setTimeout: options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimeout: options.clearTimeout ?? ((h) => clearTimeout(h as NodeJS.Timeout)),
      random: options.random ?? Math.random,
    };
  }

  /** Starts every component in order. Idempotent. Rejects only when a critical component fails to start. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    for (const slot of this.slots) {
      if (!this.running) return;
      const ok = await this.startSlot(slot);
      if (!ok && slot.component.critical) {
        const err = new AgentError('COMPONENT_FAILED', `${slot.component.name} failed to start: ${slot.lastError}`, { component: slot.component.name });
        await this.stop();
        throw err;
      }
    }
  }

  private async startSlot(slot: Slot): Promise<boolean> {
    const gen = ++slot.generation;
    slot.state = 'starting';
    const ctx: ComponentContext = { fail: (err) => this.onFailure(slot, gen, err) };
    try {
      await withTimeout(slot.component.start(ctx), this.o.startTimeoutMs, `${slot.component.name} start`, this.o.setTimeout, this.o.clearTimeout);
      if (gen !== slot.generation || !this.running) return true;
      slot.state = 'running';
      const recovered = slot.failures > 0;
      slot.failures = 0;
      slot.loggedError = null;
      this.o.logger.info(
        { component: slot.component.name, restarts: slot.restarts },
        recovered ? `${slot.component.name} running again after ${slot.restarts} restart(s)` : `${slot.component.name} running`,
      );
      return true;
    } catch (err) {
      this.onFailure(slot, gen, err as Error);
      return false;
    }
  }

  private onFailure(slot: Slot, gen: number, err: Error): void {
    if (gen !== slot.generation || !this.running || slot.state === 'backoff') return;
    slot.lastError = err.message;
    slot.failures++;
    if (slot.component.critical && slot.state === 'starting') {
      slot.state = 'failed';
      this.o.logger.error({ component: slot.component.name, err }, `${slot.component.name} failed to start`);
      return;
    }
    const base = Math.min(this.o.maxBackoffMs, this.o.initialBackoffMs * 2 ** (slot.failures - 1));
    const delayMs = Math.round(base / 2 + this.o.random() * (base / 2));
    slot.state = 'backoff';
    // One line per state change: the first failure (or a different error) is a warning; the same error again is debug.
    const level = slot.loggedError === err.message ? 'debug' : 'warn';
    slot.loggedError = err.message;
    this.o.logger[level]({ component: slot.component.name, err, delayMs, failures: slot.failures }, `${slot.component.name} failed; restarting in ${delayMs} ms (retries with back-off until it works)`);
    // Stop what is left of it (bounded), then restart after the back-off.
    void withTimeout(slot.component.stop(), this.o.stopTimeoutMs, `${slot.component.name} stop`, this.o.setTimeout, this.o.clearTimeout)
      .catch(() => undefined)
      .then(() => {
        if (!this.running || gen !== slot.generation) return;
        slot.timer = this.o.setTimeout(() => {
          slot.timer = undefined;
          if (!this.running || gen !== slot.generation) return;
          slot.restarts++;
          void this.startSlot(slot);
        }, delayMs);
      });
  }

  /** Stops every component in reverse order, each within its budget. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.running = false;
      for (const slot of [...this.slots].reverse()) {
        if (slot.timer !== undefined) this.o.clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.generation++;
        if (slot.state === 'stopped') continue;
        slot.state = 'stopping';
        try {
          await withTimeout(slot.component.stop(), this.o.stopTimeoutMs, `${slot.component.name} stop`, this.o.setTimeout, this.o.clearTimeout);
        } catch (err) {
          slot.lastError = (err as Error).message;
          this.o.logger.error({ component: slot.component.name, err }, `${slot.component.name} did not stop cleanly`);
        }
        slot.state = 'stopped';
        this.o.logger.info({ component: slot.component.name }, `${slot.component.name} stopped`);
      }
    })();
    return this.stopping;
  }

  status(): ComponentStatus[] {
    return this.slots.map((s) => ({ name: s.component.name, state: s.state, restarts: s.restarts, lastError: s.lastError }));
  }
}
