/**
 * What every device adapter shares: the lifecycle (idempotent start/stop
 * bounded by a timeout), reconnect with back-off, status counters, state
 * events, the reading pipeline, and delivery to the sink with backpressure.
 *
 * A subclass implements `openDevice()` (resolve once connected, throw if the
 * device is not there) and `closeDevice()` (release the device and every
 * listener added to it), and calls:
 * - `deviceLost(err)` when the device goes away: the base reconnects with
 *   back-off (state 'backoff' → 'connecting' → 'connected');
 * - `accept()` / `reject()` for each decoded value or undecodable frame;
 * - `deliver(readings, letters)` to hand them to the sink. The promise
 *   resolves once the sink has stored them (MQTT acks QoS 1 then).
 *
 * Backpressure: deliveries queue behind one in-flight sink call. When the
 * sink rejects, the adapter enters state 'paused' and retries the same batch
 * after a back-off (`sinkRetry`), in order, never dropping it. While
 * `backlogged` (queued readings + letters >= `maxPendingReadings`) the
 * subclass must stop taking input (pause the port, stop polling, stop
 * acking); `onBacklogCleared()` is called when the queue has fallen to half
 * the mark, to resume. Memory is thus bounded by `maxPendingReadings` plus
 * what one device read can hold.
 */
import { EventEmitter } from 'node:events';
import { Backoff, sleep, systemTimers, type BackoffOptions } from './backoff.ts';
import { BridgeError, fromDeviceError, isBridgeError } from './errors.ts';
import { ReadingBuilder } from './reading-builder.ts';
import { ReadingPipeline } from './reading-pipeline.ts';
import type { SchemaCheck } from './schema-check.ts';
import type {
  AdapterEvents,
  AdapterState,
  Clock,
  DeadLetter,
  DeviceAdapter,
  DeviceStatus,
  Logger,
  Random,
  Reading,
  ReadingSink,
  SourceKind,
  Timers,
} from './types.ts';

/** Options every adapter config shares (the agent's YAML maps onto these). Each states its default. */
export interface CommonAdapterConfig {
  /** Device name: status, headers, dead letters, capture. Required, unique per agent. */
  device: string;
  /** Target log topic. Required. */
  topic: string;
  /** Where undecodable and schema-failing frames go. Default 'dead-letters'. */
  deadLetterTopic?: string;
  /** Field holding the partitioning key. Default 'sensor_id'. */
  keyField?: string;
  /** Field holding the device's event time (ISO-8601 or epoch ms). Default 'reading_ts'. */
  timestampField?: string;
  /** Flag the device when its clock is off by more than this, in ms. Default 300000; 0 disables. */
  maxClockSkewMs?: number;
  /** Reconnect back-off. Default { initialMs: 500, maxMs: 30000, multiplier: 2, jitter: 0.5 }. */
  reconnect?: Omit<BackoffOptions, 'random'>;
  /** Back-off between retries of a batch the sink refused. Default { initialMs: 100, maxMs: 5000, multiplier: 2, jitter: 0.5 }. */
  sinkRetry?: Omit<BackoffOptions, 'random'>;
  /** High-water mark of readings + dead letters waiting for the sink; at it the adapter stops taking input. Default 1000. */
  maxPendingReadings?: number;
  /** Bound on `stop()`: closing the device and draining queued readings, in ms. Default 5000. */
  stopTimeoutMs?: number;
}

/** What the agent injects into every adapter. */
export interface AdapterDeps {
  sink: ReadingSink;
  /** This gateway's id (the `gateway_id` header). Required. */
  gatewayId: string;
  /** Per-topic JSON Schemas, shared by all adapters. Default: none. */
  schemaCheck?: SchemaCheck;
  /** Raw capture: when set, every raw frame is written to it. Default: off. */
  capture?: import('./capture.ts').CaptureWriter;
  /** Default Date.now. */
  clock?: Clock;
  /** Default global timers. */
  timers?: Timers;
  /** Default Math.random (jitter). */
  random?: Random;
  /** Default: discards everything. */
  logger?: Logger;
}

export const ADAPTER_DEFAULTS = Object.freeze({
  maxPendingReadings: 1000,
  stopTimeoutMs: 5000,
  sinkRetry: Object.freeze({ initialMs: 100, maxMs: 5000 }),
});

const silentLogger: Logger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} });
const systemClock: Clock = Object.freeze({ now: () => Date.now() });

interface Pending {
  readings: Reading[];
  letters: DeadLetter[];
  resolve: () => void;
  reject: (err: Error) => void;
}

export abstract class AdapterBase implements DeviceAdapter {
  readonly device: string;
  readonly kind: SourceKind;
  protected readonly config: Readonly<CommonAdapterConfig>;
  protected readonly sink: ReadingSink;
  protected readonly clock: Clock;
  protected readonly timers: Timers;
  protected readonly logger: Logger;
  protected readonly capture: AdapterDeps['capture'];
  protected readonly pipeline: ReadingPipeline;
  protected readonly maxPendingReadings: number;
  private readonly stopTimeoutMs: number;
  private readonly reconnectBackoff: Backoff;
  private readonly sinkBackoff: Backoff;
  private readonly events = new EventEmitter();

  private currentState: AdapterState = 'stopped';
  /** State to return to once a paused delivery succeeds. */
  private stateBeforePause: AdapterState = 'stopped';
  private running = false;
  private abort: AbortController | null = null;
  private reconnectTimer: unknown = null;
  private generation = 0;
  private starting: Promise<void> | null = null;
  private connecting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  private readonly queue: Pending[] = [];
  private queuedCount = 0;
  private pumping: Promise<void> | null = null;
  private wasBacklogged = false;

  private counters = { readings: 0, decodeErrors: 0, deadLetters: 0, errors: 0 };
  private lastReadingAt: number | null = null;
  private lastError: string | null = null;

  constructor(kind: SourceKind, config: CommonAdapterConfig, deps: AdapterDeps) {
    if (typeof config.device !== 'string' || config.device === '') throw new BridgeError('BRIDGE_CONFIG', `${kind} adapter: device must be a non-empty string`);
    if (typeof config.topic !== 'string' || config.topic === '') throw new BridgeError('BRIDGE_CONFIG', `${kind} adapter ${config.device}: topic must be a non-empty string`, { device: config.device });
    if (!deps?.sink) throw new BridgeError('BRIDGE_CONFIG', `${kind} adapter ${config.device}: a sink is required`, { device: config.device });
    this.kind = kind;
    this.device = config.device;
    this.config = Object.freeze({ ...config });
    this.sink = deps.sink;
    this.clock = deps.clock ?? systemClock;
    this.timers = deps.timers ?? systemTimers;
    this.logger = deps.logger ?? silentLogger;
    this.capture = deps.capture;
    this.maxPendingReadings = config.maxPendingReadings ?? ADAPTER_DEFAULTS.maxPendingReadings;
    this.stopTimeoutMs = config.stopTimeoutMs ?? ADAPTER_DEFAULTS.stopTimeoutMs;
    if (!(this.maxPendingReadings >= 1)) throw new BridgeError('BRIDGE_CONFIG', `${this.device}: maxPendingReadings must be >= 1`, { device: this.device });
    const random = deps.random ?? Math.random;
    this.reconnectBackoff = new Backoff({ ...config.reconnect, random });
    this.sinkBackoff = new Backoff({ ...ADAPTER_DEFAULTS.sinkRetry, ...config.sinkRetry, random });
    this.pipeline = new ReadingPipeline({
      builder: new ReadingBuilder({
        topic: config.topic,
        device: config.device,
        kind,
        gatewayId: deps.gatewayId,
        keyField: config.keyField,
        timestampField: config.timestampField,
        maxClockSkewMs: config.maxClockSkewMs,
      }),
      schemaCheck: deps.schemaCheck,
      deadLetterTopic: config.deadLetterTopic,
    });
  }

  /** Opens the device; resolves once connected. Throws (any error) when it is not there: the base backs off and retries. */
  protected abstract openDevice(signal: AbortSignal): Promise<void>;
  /** Releases the device and removes every listener the adapter added to it. Must not throw for an already-closed device. */
  protected abstract closeDevice(): Promise<void>;
  /** Called when the delivery queue has drained below half of `maxPendingReadings` after being backlogged: resume input. */
  protected onBacklogCleared(): void {}

  // ── lifecycle ────────────────────────────────────────────────────────────

  /** Idempotent. Resolves after the first connection attempt (success or not); reconnecting continues in the background. */
  start(): Promise<void> {
    if (this.stopping) return this.stopping.then(() => this.start());
    if (this.starting) return this.starting;
    if (this.running) return Promise.resolve();
    this.running = true;
    this.abort = new AbortController();
    this.starting = this.connect(this.generation).finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /**
   * Idempotent. Closes the device, waits (at most `stopTimeoutMs`) for queued
   * readings to reach the sink, then abandons what is left (its `deliver`
   * promises reject with BRIDGE_STOPPED, and the count is logged), clears
   * every timer and sets state 'stopped'.
   */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    if (!this.running) return Promise.resolve();
    this.stopping = this.doStop().finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.running = false;
    this.generation++;
    this.clearReconnectTimer();
    // An attempt in flight (first start or a reconnect) finishes first, bounded: it sees the new generation and closes what it opened.
    if (this.connecting) await this.withTimeout(this.connecting);
    const closed = this.withTimeout(this.closeDevice().catch((err) => this.noteError(fromDeviceError(err, 'closing', { device: this.device }))));
    await closed;
    if (this.pumping) await this.withTimeout(this.drained());
    this.abort?.abort();
    // The abort ends a back-off sleep at once; a sink write that never settles is bounded too.
    if (this.pumping) await this.withTimeout(this.pumping);
    if (this.pumping) this.logger.error({ device: this.device }, 'stopped while the sink still holds a write it has not settled');
    this.abandonQueue();
    this.abort = null;
    this.setState('stopped');
  }

  private drained(): Promise<void> {
    return (async () => {
      while (this.pumping) await this.pumping;
    })();
  }

  /** Resolves when `p` settles or after stopTimeoutMs, whichever is first (the timer is cleared either way). */
  private withTimeout(p: Promise<unknown>): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.timers.setTimeout(() => {
        this.logger.warn({ device: this.device, timeoutMs: this.stopTimeoutMs }, 'stop timed out');
        resolve();
      }, this.stopTimeoutMs);
      p.finally(() => {
        this.timers.clearTimeout(handle);
        resolve();
      });
    });
  }

  private connect(generation: number): Promise<void> {
    const attempt = this.attemptConnect(generation).finally(() => {
      if (this.connecting === attempt) this.connecting = null;
    });
    this.connecting = attempt;
    return attempt;
  }

  private async attemptConnect(generation: number): Promise<void> {
    if (!this.running || generation !== this.generation || !this.abort) return;
    this.setState('connecting');
    try {
      await this.openDevice(this.abort.signal);
    } catch (err) {
      if (!this.running || generation !== this.generation) return;
      this.noteError(fromDeviceError(err, 'opening', { device: this.device }));
      await this.closeDevice().catch(() => {});
      this.scheduleReconnect(generation);
      return;
    }
    if (!this.running || generation !== this.generation) {
      // Stopped while opening: release what was just opened.
      await this.closeDevice().catch(() => {});
      return;
    }
    this.reconnectBackoff.reset();
    this.setState('connected');
  }

  /**
   * The subclass reports that the device went away (port closed, socket
   * reset). Records the error and reconnects after a back-off. Safe to call
   * more than once per loss and during stop (then it does nothing).
   */
  protected deviceLost(err: unknown): void {
    if (!this.running || this.currentState === 'backoff' || this.currentState === 'connecting') return;
    const generation = this.generation;
    this.noteError(fromDeviceError(err, 'lost', { device: this.device }));
    void this.closeDevice()
      .catch(() => {})
      .then(() => this.scheduleReconnect(generation));
  }

  private scheduleReconnect(generation: number): void {
    if (!this.running || generation !== this.generation) return;
    const delayMs = this.reconnectBackoff.next();
    this.setState('backoff');
    this.logger.info({ device: this.device, delayMs, attempt: this.reconnectBackoff.attempts }, 'reconnecting after back-off');
    this.clearReconnectTimer();
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect(generation);
    }, delayMs);
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  /** True while the adapter is started (between start() and stop()). */
  protected get isRunning(): boolean {
    return this.running;
  }

  // ── readings ─────────────────────────────────────────────────────────────

  /**
   * A decoded value → reading, or dead letter (bad timestamp, schema). Counts
   * decode errors; records the clock-skew verdict. `valueJson`: the value's
   * JSON text when the decoder has it (see `Reading.valueJson`).
   */
  protected accept(value: unknown, raw: string, receivedAt: number, topic?: string, valueJson?: string): Reading | DeadLetter {
    const result = this.pipeline.fromValue(value, raw, receivedAt, topic, valueJson);
    if (result.ok) {
      this.lastReadingAt = receivedAt;
      return result.reading;
    }
    if (result.error.code !== 'BRIDGE_SCHEMA') this.counters.decodeErrors++;
    this.logger.debug({ device: this.device, code: result.error.code, reason: result.letter.reason }, 'reading refused');
    return result.letter;
  }

  /**
   * A value held as UTF-8 JSON bytes whose key and event time the decoder
   * read (see `ReadingBuilder.buildScanned`) → its reading. Only for topics
   * without a JSON Schema (`pipeline.checksSchema`): there is nothing to refuse.
   */
  protected acceptScanned(valueBytes: Uint8Array, key: string | null, eventTime: number, receivedAt: number, topic?: string): Reading {
    this.lastReadingAt = receivedAt;
    return this.pipeline.builder.buildScanned(valueBytes, key, eventTime, receivedAt, topic);
  }

  /** An undecodable frame → its dead letter; counts a decode error. */
  protected reject(error: BridgeError, raw: string, receivedAt: number, topic?: string): DeadLetter {
    this.counters.decodeErrors++;
    this.logger.debug({ device: this.device, code: error.code, err: error.message }, 'frame not decodable');
    return this.pipeline.fromError(error, raw, receivedAt, topic);
  }

  /** Splits accept()/reject() results into the two lists `deliver` takes. */
  protected static split(items: ReadonlyArray<Reading | DeadLetter>): { readings: Reading[]; letters: DeadLetter[] } {
    const readings: Reading[] = [];
    const letters: DeadLetter[] = [];
    for (const item of items) {
      if ('intendedTopic' in item) letters.push(item);
      else readings.push(item);
    }
    return { readings, letters };
  }

  /** Readings + dead letters waiting for the sink. */
  protected get pendingCount(): number {
    return this.queuedCount;
  }

  /** True when the subclass must stop taking input (see the class comment). */
  protected get backlogged(): boolean {
    return this.queuedCount >= this.maxPendingReadings;
  }

  /**
   * Queues readings and dead letters for the sink; resolves once both are
   * stored, rejects with BRIDGE_STOPPED if the adapter stops first. Order is
   * kept across calls. Check `backlogged` afterwards.
   */
  protected deliver(readings: Reading[], letters: DeadLetter[] = []): Promise<void> {
    if (readings.length === 0 && letters.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ readings, letters, resolve, reject });
      this.queuedCount += readings.length + letters.length;
      if (this.backlogged) this.wasBacklogged = true;
      if (!this.pumping) {
        this.pumping = this.pump().finally(() => {
          this.pumping = null;
        });
      }
    });
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.queue.length);
      // One delivery (the usual case while the sink keeps up): its own arrays, not copies.
      const readings = batch.length === 1 ? batch[0]!.readings : batch.flatMap((p) => p.readings);
      let letters = batch.length === 1 ? batch[0]!.letters : batch.flatMap((p) => p.letters);
      for (;;) {
        try {
          if (letters.length > 0) {
            await this.sink.deadLetter(letters);
            this.counters.deadLetters += letters.length;
            this.queuedCount -= letters.length;
            letters = [];
          }
          if (readings.length > 0) await this.sink.write(readings);
          break;
        } catch (err) {
          const error = isBridgeError(err) ? err : new BridgeError('BRIDGE_SINK_REFUSED', `sink refused ${readings.length} readings: ${(err as Error)?.message ?? String(err)}`, { device: this.device }, err);
          this.noteError(error);
          if (this.currentState !== 'paused') {
            this.stateBeforePause = this.currentState;
            this.setState('paused');
          }
          const signal = this.abort?.signal;
          try {
            if (!signal) throw new BridgeError('BRIDGE_STOPPED', 'stopped');
            await sleep(this.sinkBackoff.next(), this.timers, signal);
          } catch {
            // Stopped while the sink refuses: hand the batch back so stop() can report it as abandoned.
            this.queue.unshift({ readings, letters, resolve: () => batch.forEach((p) => p.resolve()), reject: (e) => batch.forEach((p) => p.reject(e)) });
            return;
          }
        }
      }
      this.sinkBackoff.reset();
      this.counters.readings += readings.length;
      this.queuedCount -= readings.length;
      if (this.currentState === 'paused') this.setState(this.running ? this.stateBeforePause : 'stopped');
      for (const p of batch) p.resolve();
      if (this.wasBacklogged && this.queuedCount <= this.maxPendingReadings / 2) {
        this.wasBacklogged = false;
        if (this.running) this.onBacklogCleared();
      }
    }
  }

  private abandonQueue(): void {
    if (this.queue.length === 0) return;
    const abandoned = this.queue.splice(0, this.queue.length);
    const count = abandoned.reduce((n, p) => n + p.readings.length + p.letters.length, 0);
    this.queuedCount = 0;
    this.wasBacklogged = false;
    this.logger.error({ device: this.device, readings: count }, 'stopped with readings the sink never stored');
    const err = new BridgeError('BRIDGE_STOPPED', `${this.device} stopped with ${count} readings the sink never stored`, { device: this.device, abandoned: count });
    for (const p of abandoned) p.reject(err);
  }

  // ── status and events ────────────────────────────────────────────────────

  protected get state(): AdapterState {
    return this.currentState;
  }

  protected setState(state: AdapterState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.logger.debug({ device: this.device, state }, 'state');
    for (const s of this.status()) this.emitSafely('state', s);
  }

  /** A throwing listener is logged, never allowed into the adapter's own control flow (it would stall delivery or reconnects). */
  private emitSafely(event: keyof AdapterEvents, arg: DeviceStatus | Error): void {
    for (const listener of this.events.listeners(event)) {
      try {
        (listener as (a: typeof arg) => void)(arg);
      } catch (err) {
        this.logger.error({ device: this.device, event, err: (err as Error)?.message ?? String(err) }, 'adapter event listener threw');
      }
    }
  }

  /** Counts an error, remembers it as `lastError`, emits 'error' when anyone listens (never throws for lack of a listener). */
  protected noteError(err: Error): void {
    this.counters.errors++;
    this.lastError = err.message;
    this.logger.warn({ device: this.device, code: (err as BridgeError).code, err: err.message }, 'adapter error');
    this.emitSafely('error', err);
  }

  /** The status of this adapter's device. Adapters with several devices (Modbus slaves) override `status()`. */
  protected baseStatus(): DeviceStatus {
    return {
      device: this.device,
      kind: this.kind,
      state: this.currentState,
      connected: this.currentState === 'connected' || (this.currentState === 'paused' && this.stateBeforePause === 'connected'),
      lastReadingAt: this.lastReadingAt,
      readings: this.counters.readings,
      decodeErrors: this.counters.decodeErrors,
      deadLetters: this.counters.deadLetters,
      errors: this.counters.errors,
      lastError: this.lastError,
      clockSkewMs: this.pipeline.builder.clockSkewMs,
    };
  }

  status(): DeviceStatus[] {
    return [this.baseStatus()];
  }

  on<E extends keyof AdapterEvents>(event: E, listener: AdapterEvents[E]): this {
    this.events.on(event, listener);
    return this;
  }

  off<E extends keyof AdapterEvents>(event: E, listener: AdapterEvents[E]): this {
    this.events.off(event, listener);
    return this;
  }
}
