/**
 * The device-adapter contract. Every source (serial, Modbus RTU/TCP, MQTT)
 * turns device traffic into `Reading`s and hands them to an injected `ReadingSink`;
 * the bridge imports nothing of ours (the agent wires the sink to the log store).
 */

/** One sensor reading, the shape every source produces. */
export interface Reading {
  /** Target log topic. */
  topic: string;
  /** Partitioning key: the sensor id. */
  key: string | null;
  /** The reading as a JSON object (e.g. {reading_ts, sensor_id, colour, temp_celcius, ...}). */
  value: Record<string, unknown>;
  /**
   * Optional: `value` already encoded as JSON text, so a sink stores it
   * without serialising again (`r.valueJson ?? JSON.stringify(r.value)`).
   * Invariant: `JSON.parse(valueJson)` has exactly the keys and values of
   * `value` (so it is a faithful encoding of it), and `value` is not changed
   * after the reading is built. It may differ from `JSON.stringify(value)`
   * only in spelling the device chose: insignificant whitespace, number and
   * string-escape forms, key order, duplicate keys (the last wins, as in
   * `value`). Sources set it when they hold the device's JSON text (MQTT:
   * the payload with the topic-level fields spliced in); absent, sinks
   * serialise `value`.
   */
  valueJson?: string;
  /**
   * Optional: `value` already encoded as UTF-8 JSON bytes, with the same
   * invariant as `valueJson`; when set, sinks store these bytes as they are
   * (`r.valueBytes ?? r.valueJson ?? JSON.stringify(r.value)`). The bytes
   * are never written again while the reading is held. Set by the MQTT fast
   * path (mqtt-fast-decoder.ts), whose readings parse `value` from these
   * bytes on first access only.
   */
  valueBytes?: Uint8Array;
  /** Event time in ms: the device's own time (`reading_ts`) when it sends one, else receive time. */
  timestamp: number;
  /** Source kind, device, gateway id, receive time, clock-skew flag. */
  headers: Record<string, string>;
}

/** A reading or frame that could not be used, bound for the dead-letter topic. */
export interface DeadLetter {
  /** Dead-letter topic. */
  topic: string;
  /** Topic the reading was meant for. */
  intendedTopic: string;
  device: string;
  /** Why it was refused: decode error, schema error with the failing path. */
  reason: string;
  /** Raw payload, as received (a string for text, hex for bytes that are not UTF-8). */
  raw: string;
  receivedAt: number;
}

/**
 * Where readings go. `write` resolves once the readings are durable; it
 * rejects when the log refuses (disk floor, I/O): adapters then slow down or
 * pause (MQTT stops acknowledging) instead of buffering without bound.
 */
export interface ReadingSink {
  write(readings: readonly Reading[]): Promise<void>;
  deadLetter(letters: readonly DeadLetter[]): Promise<void>;
}

export type AdapterState = 'stopped' | 'connecting' | 'connected' | 'backoff' | 'paused';

/** The source kinds, as they appear in `DeviceStatus.kind`, the `source` header and capture files. */
export type SourceKind = 'serial' | 'modbus-rtu' | 'modbus-tcp' | 'mqtt';

/*
 * Injected ports (added by bridge-serial). The bridge imports nothing of ours,
 * so these mirror log-store's shapes; a pino logger and the globals fit them.
 */

/** Wall clock. Default everywhere: `{ now: Date.now }`. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** Timer port, so tests drive back-off and polling with fake time. Default: the global setTimeout/clearTimeout. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Minimal pino-compatible logger: structured fields first, message second. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Uniform random number in [0, 1). Default: Math.random. Injected so jitter is deterministic in tests. */
export type Random = () => number;

export interface DeviceStatus {
  device: string;
  kind: SourceKind;
  state: AdapterState;
  connected: boolean;
  lastReadingAt: number | null;
  readings: number;
  decodeErrors: number;
  deadLetters: number;
  errors: number;
  lastError: string | null;
  /** Set when the device clock is off by more than the configured skew. */
  clockSkewMs: number | null;
}

export interface AdapterEvents {
  state: (status: DeviceStatus) => void;
  error: (err: Error) => void;
}

export interface DeviceAdapter {
  readonly device: string;
  /** Idempotent; resolves once the adapter is running (it keeps reconnecting in the background). */
  start(): Promise<void>;
  /** Idempotent; bounded by a timeout; removes every listener and timer it added. */
  stop(): Promise<void>;
  status(): DeviceStatus[];
  on<E extends keyof AdapterEvents>(event: E, listener: AdapterEvents[E]): this;
  off<E extends keyof AdapterEvents>(event: E, listener: AdapterEvents[E]): this;
}
