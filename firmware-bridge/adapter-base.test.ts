import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdapterBase, type AdapterDeps, type CommonAdapterConfig } from './adapter-base.ts';
import { systemTimers } from './backoff.ts';
import { BridgeError, isBridgeError } from './errors.ts';
import type { AdapterState, DeadLetter, Reading, ReadingSink } from './types.ts';

/** An in-memory device: `present` decides whether it opens; it emits 'value' and 'gone'. */
class FakeDevice extends EventEmitter {
  present = true;
  /** When set, opening waits for it (a slow device). */
  openGate: Promise<void> | null = null;
}

/** The smallest adapter on the base: one value per 'value' event; 'garbage' → decode error. */
class FakeAdapter extends AdapterBase {
  opened = 0;
  resumed = 0;
  private readonly onValue = (v: unknown): void => {
    if (v === 'garbage') {
      void this.deliver([], [this.reject(new BridgeError('BRIDGE_DECODE', 'garbage'), 'garbage', this.clock.now())]).catch(() => {});
      return;
    }
    const out = AdapterBase.split([this.accept(v, JSON.stringify(v), this.clock.now())]);
    this.lastDelivery = this.deliver(out.readings, out.letters);
    this.lastDelivery.catch(() => {});
  };
  private readonly onGone = (): void => this.deviceLost(new Error('unplugged'));
  lastDelivery: Promise<void> = Promise.resolve();

  constructor(
    readonly dev: FakeDevice,
    config: Partial<CommonAdapterConfig>,
    deps: AdapterDeps,
  ) {
    super('serial', { device: 'fake-1', topic: 'widgets', ...config }, deps);
  }
  protected async openDevice(): Promise<void> {
    this.opened++;
    if (this.dev.openGate) await this.dev.openGate;
    if (!this.dev.present) throw Object.assign(new Error('no such device'), { code: 'ENOENT' });
    this.dev.on('value', this.onValue);
    this.dev.on('gone', this.onGone);
  }
  protected async closeDevice(): Promise<void> {
    this.dev.off('value', this.onValue);
    this.dev.off('gone', this.onGone);
  }
  protected override onBacklogCleared(): void {
    this.resumed++;
  }
  get isBacklogged(): boolean {
    return this.backlogged;
  }
}

/** A sink that stores everything, or refuses while `refusing`. */
class MemorySink implements ReadingSink {
  readings: Reading[] = [];
  letters: DeadLetter[] = [];
  refusing = false;
  calls = 0;
  async write(readings: readonly Reading[]): Promise<void> {
    this.calls++;
    if (this.refusing) throw new Error('LOG_DISK_FULL: below the disk floor');
    this.readings.push(...readings);
  }
  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    if (this.refusing) throw new Error('LOG_DISK_FULL: below the disk floor');
    this.letters.push(...letters);
  }
}

describe('AdapterBase', () => {
  let dev: FakeDevice;
  let sink: MemorySink;
  let states: AdapterState[];

  beforeEach(() => {
    vi.useFakeTimers();
    dev = new FakeDevice();
    sink = new MemorySink();
    states = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function make(config: Partial<CommonAdapterConfig> = {}, random = () => 0.5): FakeAdapter {
    const a = new FakeAdapter(dev, config, { sink, gatewayId: 'gw-1', timers: systemTimers, clock: { now: () => Date.now() }, random });
    a.on('state', (s) => states.push(s.state));
    return a;
  }

  it('start and stop are idempotent, stop removes device listeners and leaves no timer', async () => {
    const a = make();
    await Promise.all([a.start(), a.start()]);
    await a.start();
    expect(a.opened).toBe(1);
    expect(a.status()[0]).toMatchObject({ device: 'fake-1', kind: 'serial', state: 'connected', connected: true, readings: 0 });
    expect(dev.listenerCount('value')).toBe(1);
    await Promise.all([a.stop(), a.stop()]);
    await a.stop();
    expect(dev.listenerCount('value')).toBe(0);
    expect(dev.listenerCount('gone')).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(a.status()[0].state).toBe('stopped');
    expect(states).toEqual(['connecting', 'connected', 'stopped']);
  });

  it('delivers readings to the sink and counts them', async () => {
    const a = make();
    await a.start();
    dev.emit('value', { sensor_id: 'aa-101', temp_celcius: 23 });
    await a.lastDelivery;
    expect(sink.readings.map((r) => r.key)).toEqual(['aa-101']);
    expect(a.status()[0]).toMatchObject({ readings: 1, decodeErrors: 0 });
    expect(a.status()[0].lastReadingAt).toBe(Date.now());
    await a.stop();
  });

  it('sends decode errors and bad timestamps to dead letters with counters', async () => {
    const a = make({ deadLetterTopic: 'dlq' });
    await a.start();
    dev.emit('value', 'garbage');
    dev.emit('value', { sensor_id: 'x', reading_ts: 'never' });
    await vi.waitFor(() => expect(sink.letters).toHaveLength(2));
    expect(sink.letters.map((l) => l.reason)).toEqual(['BRIDGE_DECODE: garbage', expect.stringContaining('reading_ts "never"')]);
    expect(sink.letters[0]).toMatchObject({ topic: 'dlq', intendedTopic: 'widgets', device: 'fake-1', raw: 'garbage' });
    expect(a.status()[0]).toMatchObject({ decodeErrors: 2, deadLetters: 2, readings: 0 });
    await a.stop();
  });

  it('backs off with jitter and keeps retrying while the device is absent, then connects', async () => {
    dev.present = false;
    const a = make({ reconnect: { initialMs: 1000, maxMs: 8000, jitter: 0.5 } }, () => 0);
    await a.start();
    expect(a.status()[0]).toMatchObject({ state: 'backoff', connected: false, errors: 1 });
    expect(a.status()[0].lastError).toContain('ENOENT');
    // delays with random()=0: 500, 1000, 2000
    await vi.advanceTimersByTimeAsync(499);
    expect(a.opened).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(a.opened).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(a.opened).toBe(3);
    dev.present = true;
    await vi.advanceTimersByTimeAsync(1999);
    expect(a.opened).toBe(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(a.opened).toBe(4);
    expect(a.status()[0].state).toBe('connected');
    await a.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reconnects after the device goes away, with the back-off reset after a success', async () => {
    const a = make({ reconnect: { initialMs: 200, jitter: 0 } });
    await a.start();
    dev.emit('gone');
    dev.emit('gone');
    await vi.advanceTimersByTimeAsync(0);
    expect(a.status()[0]).toMatchObject({ state: 'backoff', errors: 1, lastError: expect.stringContaining('unplugged') });
    expect(dev.listenerCount('value')).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(a.status()[0].state).toBe('connected');
    dev.emit('gone');
    await vi.advanceTimersByTimeAsync(200);
    expect(a.status()[0].state).toBe('connected');
    expect(a.opened).toBe(3);
    await a.stop();
  });

  it('stop during back-off cancels the pending reconnect', async () => {
    dev.present = false;
    const a = make();
    await a.start();
    expect(vi.getTimerCount()).toBe(1);
    await a.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(a.opened).toBe(1);
  });

  it('when the sink refuses: pauses, retries the same batch in order with back-off, signals backlog, never drops', async () => {
    const a = make({ maxPendingReadings: 4, sinkRetry: { initialMs: 100, jitter: 0 } });
    await a.start();
    sink.refusing = true;
    for (let i = 0; i < 5; i++) dev.emit('value', { sensor_id: `s${i}` });
    await vi.advanceTimersByTimeAsync(0);
    expect(a.status()[0].state).toBe('paused');
    expect(a.status()[0].connected).toBe(true);
    expect(a.isBacklogged).toBe(true);
    const callsBefore = sink.calls;
    await vi.advanceTimersByTimeAsync(99);
    expect(sink.calls).toBe(callsBefore);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.calls).toBe(callsBefore + 1);
    await vi.advanceTimersByTimeAsync(200); // second retry after 200 ms
    expect(sink.calls).toBe(callsBefore + 2);
    expect(a.status()[0].errors).toBeGreaterThanOrEqual(3);
    sink.refusing = false;
    await vi.advanceTimersByTimeAsync(400);
    expect(sink.readings.map((r) => r.key)).toEqual(['s0', 's1', 's2', 's3', 's4']);
    expect(a.status()[0]).toMatchObject({ state: 'connected', readings: 5 });
    expect(a.isBacklogged).toBe(false);
    expect(a.resumed).toBe(1);
    await a.stop();
  });

  it('stop while the sink refuses is bounded by stopTimeoutMs and rejects the undelivered readings', async () => {
    const a = make({ stopTimeoutMs: 1000, sinkRetry: { initialMs: 100, jitter: 0 } });
    await a.start();
    sink.refusing = true;
    dev.emit('value', { sensor_id: 'lost' });
    const delivery = a.lastDelivery;
    await vi.advanceTimersByTimeAsync(0);
    const stopped = a.stop();
    await vi.advanceTimersByTimeAsync(1000);
    await stopped;
    await expect(delivery).rejects.toSatisfy((e: unknown) => isBridgeError(e, 'BRIDGE_STOPPED'));
    expect(a.status()[0].state).toBe('stopped');
    expect(vi.getTimerCount()).toBe(0);
    expect(sink.readings).toHaveLength(0);
  });

  it('stop is bounded even when a sink write never settles', async () => {
    const a = make({ stopTimeoutMs: 1000 });
    await a.start();
    sink.write = () => new Promise<void>(() => {});
    dev.emit('value', { sensor_id: 'stuck' });
    dev.emit('value', { sensor_id: 'queued-behind' });
    await vi.advanceTimersByTimeAsync(0);
    const stopped = a.stop();
    // Two bounded phases: draining, then the in-flight write after the abort.
    await vi.advanceTimersByTimeAsync(2000);
    await stopped;
    expect(a.status()[0].state).toBe('stopped');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop waits for queued readings the sink is still storing', async () => {
    const a = make({ sinkRetry: { initialMs: 100, jitter: 0 } });
    await a.start();
    sink.refusing = true;
    dev.emit('value', { sensor_id: 'late' });
    await vi.advanceTimersByTimeAsync(0);
    const stopped = a.stop();
    sink.refusing = false;
    await vi.advanceTimersByTimeAsync(100);
    await stopped;
    await a.lastDelivery;
    expect(sink.readings.map((r) => r.key)).toEqual(['late']);
  });

  it('stop while the device is still opening waits (bounded) and releases what the open acquired', async () => {
    let release!: () => void;
    dev.openGate = new Promise((r) => {
      release = r;
    });
    const a = make({ stopTimeoutMs: 1000 });
    const started = a.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.status()[0]!.state).toBe('connecting');
    const stopped = a.stop();
    await vi.advanceTimersByTimeAsync(10);
    release();
    await stopped;
    await started;
    expect(a.status()[0]!.state).toBe('stopped');
    expect(dev.listenerCount('value')).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop is bounded even when opening never finishes', async () => {
    dev.openGate = new Promise(() => {});
    const a = make({ stopTimeoutMs: 1000 });
    void a.start();
    await vi.advanceTimersByTimeAsync(0);
    const stopped = a.stop();
    await vi.advanceTimersByTimeAsync(1000);
    await vi.advanceTimersByTimeAsync(1000);
    await stopped;
    expect(a.status()[0]!.state).toBe('stopped');
  });

  it('a throwing state or error listener is contained: delivery and reconnects go on', async () => {
    const a = make({ sinkRetry: { initialMs: 100, jitter: 0 }, reconnect: { initialMs: 100, jitter: 0 } });
    a.on('state', () => {
      throw new Error('listener bug');
    });
    a.on('error', () => {
      throw new Error('listener bug');
    });
    await a.start();
    sink.refusing = true;
    dev.emit('value', { sensor_id: 'x' });
    await vi.advanceTimersByTimeAsync(0);
    expect(a.status()[0]!.state).toBe('paused');
    sink.refusing = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(sink.readings.map((r) => r.key)).toEqual(['x']);
    dev.emit('gone');
    await vi.advanceTimersByTimeAsync(100);
    expect(a.status()[0]!.state).toBe('connected');
    await a.stop();
  });

  it('refuses a config without device or topic', () => {
    expect(() => make({ device: '' })).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
    expect(() => make({ topic: '' })).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
  });
});
