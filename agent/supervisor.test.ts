import { afterEach, describe, expect, it, vi } from 'vitest';
import { Supervisor, type Component, type ComponentContext } from './supervisor.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function fake(name: string, events: string[], opts: { failStarts?: number; critical?: boolean; hangStop?: boolean } = {}) {
  let starts = 0;
  let ctx: ComponentContext | undefined;
  const c: Component & { crash(err: Error): void } = {
    name,
    critical: opts.critical ?? false,
    async start(context) {
      starts++;
      ctx = context;
      events.push(`start ${name}`);
      if (starts <= (opts.failStarts ?? 0)) throw new Error(`${name} start failure ${starts}`);
    },
    async stop() {
      events.push(`stop ${name}`);
      if (opts.hangStop) await new Promise(() => {});
    },
    crash(err) {
      ctx!.fail(err);
    },
  };
  return c;
}

describe('Supervisor', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts in order and stops in reverse order, idempotently', async () => {
    const events: string[] = [];
    const sup = new Supervisor([fake('log', events), fake('rules', events), fake('sources', events)], { logger: quiet });
    await sup.start();
    await sup.start();
    expect(sup.status().map((s) => s.state)).toEqual(['running', 'running', 'running']);
    await sup.stop();
    await sup.stop();
    expect(events).toEqual(['start log', 'start rules', 'start sources', 'stop sources', 'stop rules', 'stop log']);
    expect(sup.status().map((s) => s.state)).toEqual(['stopped', 'stopped', 'stopped']);
  });

  it('restarts a failed component with growing back-off while the others keep running', async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    const flaky = fake('replicator', events, { failStarts: 3 });
    const sup = new Supervisor([fake('log', events), flaky, fake('sources', events)], { logger: quiet, initialBackoffMs: 1000, random: () => 0.5 });
    await sup.start();
    expect(sup.status()[1]).toMatchObject({ state: 'backoff', lastError: 'replicator start failure 1' });
    expect(sup.status()[2]!.state).toBe('running');
    // Delays are base/2 + random × base/2 with base 1 s, 2 s, 4 s: 750, 1500, 3000 ms here.
    await vi.advanceTimersByTimeAsync(749);
    expect(events.filter((e) => e === 'start replicator')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(events.filter((e) => e === 'start replicator')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1500);
    expect(events.filter((e) => e === 'start replicator')).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(2999);
    expect(events.filter((e) => e === 'start replicator')).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(events.filter((e) => e === 'start replicator')).toHaveLength(4);
    expect(sup.status()[1]).toMatchObject({ state: 'running', restarts: 3 });
    // A crash at run time: stopped, then restarted after the (reset) initial back-off.
    flaky.crash(new Error('broker gone'));
    expect(sup.status()[1]).toMatchObject({ state: 'backoff', lastError: 'broker gone' });
    await vi.advanceTimersByTimeAsync(750);
    expect(sup.status()[1]).toMatchObject({ state: 'running', restarts: 4 });
    expect(events.filter((e) => e.startsWith('stop log') || e.startsWith('start log'))).toEqual(['start log']);
    await sup.stop();
  });

  it('logs one line per state change: a repeated failure is not a new warning', async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    const lines: string[] = [];
    const logger = { debug: () => lines.push('debug'), info: (_o: object, m?: string) => lines.push(`info ${m}`), warn: (_o: object, m?: string) => lines.push(`warn ${m?.split(';')[0]}`), error: () => lines.push('error') };
    const sup = new Supervisor([fake('mqtt', events, { failStarts: 4 })], { logger, random: () => 0 });
    await sup.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sup.status()[0]!.state).toBe('running');
    // Each failure has its own message here (start failure 1, 2, ...), so each is a warning; the same message repeated is debug.
    expect(lines.filter((l) => l.startsWith('warn'))).toHaveLength(4);
    expect(lines.at(-1)).toBe('info mqtt running again after 4 restart(s)');
    await sup.stop();

    const lines2: string[] = [];
    const same: Component = { name: 'kafka', async start() { throw new Error('ECONNREFUSED'); }, async stop() {} };
    const sup2 = new Supervisor([same], { logger: { debug: () => lines2.push('debug'), info: () => lines2.push('info'), warn: () => lines2.push('warn'), error: () => lines2.push('error') }, random: () => 0 });
    await sup2.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(lines2.filter((l) => l === 'warn')).toHaveLength(1);
    expect(lines2.filter((l) => l === 'debug').length).toBeGreaterThanOrEqual(3);
    await sup2.stop();
  });

  it('fails the start when a critical component cannot start, stopping what started', async () => {
    const events: string[] = [];
    const sup = new Supervisor([fake('log', events, { critical: true, failStarts: 1 }), fake('rules', events)], { logger: quiet });
    await expect(sup.start()).rejects.toMatchObject({ code: 'COMPONENT_FAILED', message: 'log failed to start: log start failure 1' });
    // The partly started log is stopped again; nothing after it was started.
    expect(events).toEqual(['start log', 'stop log']);
  });

  it('bounds a hung stop by its timeout and goes on stopping the rest', async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    const sup = new Supervisor([fake('log', events), fake('stuck', events, { hangStop: true })], { logger: quiet, stopTimeoutMs: 500 });
    await sup.start();
    const stopped = sup.stop();
    await vi.advanceTimersByTimeAsync(500);
    await stopped;
    expect(events).toEqual(['start log', 'start stuck', 'stop stuck', 'stop log']);
    expect(sup.status()[1]!.lastError).toBe('stuck stop did not finish within 500 ms');
  });

  it('does not restart anything after stop, even with a back-off pending', async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    const sup = new Supervisor([fake('x', events, { failStarts: 5 })], { logger: quiet });
    await sup.start();
    await sup.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(events.filter((e) => e === 'start x')).toHaveLength(1);
  });
});
