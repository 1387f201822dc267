/**
 * The one contract every device adapter passes (serial, Modbus RTU/TCP,
 * MQTT). An adapter's test file supplies a `ContractWorld` factory — a real
 * device on the other end (pty pair, Modbus server, MQTT broker) and a way
 * to build the adapter under test — and calls `adapterContract(name, setup)`.
 *
 * What it checks, against the real device:
 * - start() and stop() are idempotent; stop leaves no timer behind (every
 *   timer goes through the injected `TrackingTimers`) and state 'stopped';
 *   a stopped adapter delivers nothing more; it can start again.
 * - status() fields and their types; counters move.
 * - readings reach the sink with key and the standard headers.
 * - a frame that cannot be decoded goes to dead letters, with counters.
 * - when the sink refuses, the adapter pauses (state 'paused'), retries,
 *   and holds at most `maxPendingReadings` plus one device read in memory;
 *   once the sink accepts again every reading arrives, in order.
 * - the device goes away and comes back: the adapter reconnects and readings
 *   flow again.
 *
 * No fake clock here (real devices run on real time); waits poll for a
 * condition, and the vitest timeout catches a hang.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AdapterDeps, CommonAdapterConfig } from '../../firmware-bridge/adapter-base.ts';
import type { DeadLetter, DeviceAdapter, DeviceStatus, Reading, ReadingSink, Timers } from '../../firmware-bridge/types.ts';

/** Global timers, counting the handles that are still live (set, not fired, not cleared). */
export class TrackingTimers implements Timers {
  private readonly live = new Set<NodeJS.Timeout>();
  setTimeout(fn: () => void, ms: number): unknown {
    const handle = setTimeout(() => {
      this.live.delete(handle);
      fn();
    }, ms);
    this.live.add(handle);
    return handle;
  }
  clearTimeout(handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout);
    this.live.delete(handle as NodeJS.Timeout);
  }
  get liveCount(): number {
    return this.live.size;
  }
}

/** An in-memory sink: stores, or refuses while `refusing`; records every attempted batch. */
export class ContractSink implements ReadingSink {
  readonly readings: Reading[] = [];
  readonly letters: DeadLetter[] = [];
  /** Sizes of every write call, refused ones included. */
  readonly attemptSizes: number[] = [];
  refusing = false;
  async write(readings: readonly Reading[]): Promise<void> {
    this.attemptSizes.push(readings.length);
    if (this.refusing) throw new Error('sink refused: log below its disk floor');
    this.readings.push(...readings);
  }
  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    if (this.refusing) throw new Error('sink refused: log below its disk floor');
    this.letters.push(...letters);
  }
}

export interface ContractWorld {
  /** Builds the adapter under test with these deps and common options merged over the world's own config. */
  create(deps: AdapterDeps, common: Partial<CommonAdapterConfig>): DeviceAdapter;
  /** The device emits one valid reading with this sensor id and sequence number (field `seq`). */
  sendReading(sensorId: string, seq: number): Promise<void>;
  /** The device emits one frame that cannot be decoded. */
  sendGarbage(): Promise<void>;
  /** The device (or the link to it) goes away. */
  takeDown(): Promise<void>;
  /** ...and comes back. */
  bringUp(): Promise<void>;
  /** Most readings one device read can deliver at once (the slack over maxPendingReadings). */
  readonly maxReadingsPerRead: number;
  /** Source kind the adapter reports. */
  readonly kind: DeviceStatus['kind'];
  teardown(): Promise<void>;
}

/** Polls `cond` every 10 ms until it holds; `what` names it for a reader of a hung test (the vitest timeout ends the wait). */
export async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  void what;
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

const FAST_RECONNECT = { initialMs: 50, maxMs: 200, jitter: 0.5 };

export function adapterContract(name: string, setup: () => Promise<ContractWorld>): void {
  describe(`${name}: device adapter contract`, () => {
    let world: ContractWorld;
    let sink: ContractSink;
    let timers: TrackingTimers;
    let adapter: DeviceAdapter | null;

    beforeEach(async () => {
      world = await setup();
      sink = new ContractSink();
      timers = new TrackingTimers();
      adapter = null;
    });
    afterEach(async () => {
      await adapter?.stop();
      await world.teardown();
    });

    function make(common: Partial<CommonAdapterConfig> = {}): DeviceAdapter {
      adapter = world.create({ sink, gatewayId: 'gw-contract', timers }, { reconnect: FAST_RECONNECT, sinkRetry: { initialMs: 20, maxMs: 100 }, ...common });
      return adapter;
    }
    const st = (): DeviceStatus => adapter!.status()[0]!;

    it('start and stop are idempotent; stop leaves no timer and delivers nothing more; it restarts', async () => {
      const a = make();
      const states: string[] = [];
      a.on('state', (s) => states.push(s.state));
      await Promise.all([a.start(), a.start()]);
      await a.start();
      await until(() => st().connected, 'connected');
      await world.sendReading('aa-1', 1);
      await until(() => sink.readings.length === 1, 'first reading');
      await Promise.all([a.stop(), a.stop()]);
      await a.stop();
      expect(st().state).toBe('stopped');
      expect(st().connected).toBe(false);
      expect(timers.liveCount).toBe(0);
      expect(states.at(-1)).toBe('stopped');
      const eventsAtStop = states.length;
      // Stopped: a reading the device sends now is not delivered (a device or broker may hold it for the next start).
      await world.sendReading('aa-1', 50);
      await new Promise((r) => setTimeout(r, 150));
      expect(sink.readings).toHaveLength(1);
      expect(states.length).toBe(eventsAtStop);
      await a.start();
      await until(() => st().connected, 'connected again');
      await world.sendReading('aa-1', 2);
      await until(() => sink.readings.some((r) => r.value.seq === 2), 'reading after restart');
      await a.stop();
      expect(timers.liveCount).toBe(0);
      expect(states.length).toBeGreaterThan(eventsAtStop);
      const seqs = sink.readings.map((r) => r.value.seq);
      expect(seqs.filter((s) => s !== 50)).toEqual([1, 2]);
      expect(new Set(seqs).size).toBe(seqs.length);
    });

    it('reports status with every field', async () => {
      const a = make();
      await a.start();
      await until(() => st().connected, 'connected');
      await world.sendReading('aa-2', 1);
      await until(() => st().readings === 1, 'reading counted');
      const s = st();
      expect(s).toEqual({
        device: expect.any(String),
        kind: world.kind,
        state: 'connected',
        connected: true,
        lastReadingAt: expect.any(Number),
        readings: 1,
        decodeErrors: 0,
        deadLetters: 0,
        errors: 0,
        lastError: null,
        clockSkewMs: null,
      });
    });

    it('readings reach the sink with the key and the standard headers', async () => {
      const a = make();
      await a.start();
      await until(() => st().connected, 'connected');
      for (let i = 1; i <= 3; i++) await world.sendReading(`aa-${i}`, i);
      await until(() => sink.readings.length === 3, 'three readings');
      expect(sink.readings.map((r) => r.key)).toEqual(['aa-1', 'aa-2', 'aa-3']);
      const r = sink.readings[0]!;
      expect(r.headers).toMatchObject({ source: world.kind, device: st().device, gateway_id: 'gw-contract', received_at: expect.stringMatching(/^\d+$/) });
      expect(r.timestamp).toBeGreaterThan(0);
    });

    it('an undecodable frame goes to dead letters with counters, and readings continue', async () => {
      const a = make({ deadLetterTopic: 'contract-dlq' });
      await a.start();
      await until(() => st().connected, 'connected');
      await world.sendGarbage();
      await world.sendReading('aa-9', 1);
      await until(() => sink.letters.length === 1 && sink.readings.length === 1, 'dead letter and reading');
      expect(sink.letters[0]).toMatchObject({ topic: 'contract-dlq', device: st().device, reason: expect.any(String), raw: expect.any(String) });
      expect(sink.letters[0]!.reason.length).toBeGreaterThan(0);
      expect(st()).toMatchObject({ decodeErrors: 1, deadLetters: 1, readings: 1 });
    });

    it('when the sink refuses it pauses with bounded memory, then delivers everything in order', async () => {
      const maxPendingReadings = 10;
      const total = 300;
      const a = make({ maxPendingReadings });
      await a.start();
      await until(() => st().connected, 'connected');
      sink.refusing = true;
      const sending = (async () => {
        for (let i = 0; i < total; i++) await world.sendReading(`bp-${i % 7}`, i);
      })();
      await until(() => st().state === 'paused', 'paused');
      await until(() => sink.attemptSizes.length >= 6, 'several refused attempts');
      expect(st().errors).toBeGreaterThanOrEqual(5);
      expect(st().lastError).toContain('refused');
      sink.refusing = false;
      await sending;
      await until(() => sink.readings.length === total, `all ${total} readings`);
      expect(sink.readings.map((r) => r.value.seq)).toEqual(Array.from({ length: total }, (_, i) => i));
      const largest = Math.max(...sink.attemptSizes);
      if (process.env.CONTRACT_DEBUG) console.log('attempt sizes', sink.attemptSizes.join(','));
      expect(largest).toBeLessThanOrEqual(maxPendingReadings + world.maxReadingsPerRead);
      expect(largest).toBeLessThan(total);
      await until(() => st().state === 'connected', 'connected after the sink recovered');
    });

    it('reconnects after the device goes away and comes back', async () => {
      const a = make();
      await a.start();
      await until(() => st().connected, 'connected');
      await world.sendReading('rc-1', 1);
      await until(() => sink.readings.length === 1, 'reading before');
      await world.takeDown();
      await until(() => !st().connected && st().errors >= 1, 'disconnect noticed');
      expect(st().lastError).toEqual(expect.any(String));
      await world.bringUp();
      await until(() => st().connected, 'reconnected');
      await world.sendReading('rc-2', 2);
      await until(() => sink.readings.some((r) => r.value.seq === 2), 'reading after');
      expect(sink.readings.map((r) => r.key)).toContain('rc-2');
    });
  });
}
