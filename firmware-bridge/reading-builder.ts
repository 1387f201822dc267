/**
 * Turns a decoded JSON object into a `Reading`: the key from a configured
 * field, the event time from the device's timestamp field when present (else
 * the receive time), and the headers every source sets.
 *
 * Headers (all strings; see `HEADERS`):
 * - `source`: the source kind (`serial`, `modbus-rtu`, `modbus-tcp`, `mqtt`)
 * - `device`: the configured device name
 * - `gateway_id`: this gateway's id
 * - `received_at`: receive time, decimal ms since the epoch (always set, so
 *   both device time and receive time are kept)
 * - `clock_skew_ms`: only when the device clock is off by more than
 *   `maxClockSkewMs`: event time minus receive time, signed decimal ms
 *
 * Clock skew: each reading that carries a device time is compared with its
 * receive time; the builder remembers the latest verdict (`clockSkewMs`), so
 * a device whose clock is fixed stops being flagged with its next reading.
 */
import { BridgeError } from './errors.ts';
import type { Reading, SourceKind } from './types.ts';

export const HEADERS = Object.freeze({
  source: 'source',
  device: 'device',
  gatewayId: 'gateway_id',
  receivedAt: 'received_at',
  clockSkewMs: 'clock_skew_ms',
});

export interface ReadingBuilderOptions {
  /** Target log topic. Required. */
  topic: string;
  /** Device name (headers, status, dead letters). Required. */
  device: string;
  kind: SourceKind;
  /** This gateway's id, sent in the `gateway_id` header. Required. */
  gatewayId: string;
  /** Field holding the partitioning key; a reading without it gets a null key (round-robin). Default 'sensor_id'. */
  keyField?: string;
  /** Field holding the device's event time: an ISO-8601 string or epoch ms (number or digit string). Default 'reading_ts'. */
  timestampField?: string;
  /** A device time further than this from the receive time (either way) flags the device, in ms. Default 300000 (5 min); 0 disables the check. */
  maxClockSkewMs?: number;
}

export const READING_BUILDER_DEFAULTS = Object.freeze({ keyField: 'sensor_id', timestampField: 'reading_ts', maxClockSkewMs: 300_000 });

/** ISO-8601 date-time: date, 'T' or space, time with optional fraction, optional zone. Date-only strings are refused (no time of day). */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const EPOCH_MS = /^\d{1,16}$/;
/** Parses an ISO-8601 string or epoch ms; returns NaN for anything else. Zone-less ISO times are read as UTC. */
export function parseEventTime(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : Number.NaN;
  if (typeof value !== 'string') return Number.NaN;
  if (value.length === 24) {
    const t = parseIsoUtcMs(value);
    if (t === t) return t;
  }
  const s = value.trim();
  if (EPOCH_MS.test(s)) return Number(s);
  if (!ISO_8601.test(s)) return Number.NaN;
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(s);
  return Date.parse(hasZone ? s.replace(' ', 'T') : `${s.replace(' ', 'T')}Z`);
}

/** The digits at `i` and `i + 1` of `s` as a number 0–99, or -1 when either is not an ASCII digit. */
function twoDigits(s: string, i: number): number {
  const hi = s.charCodeAt(i) - 0x30;
  const lo = s.charCodeAt(i + 1) - 0x30;
  return hi >= 0 && hi <= 9 && lo >= 0 && lo <= 9 ? hi * 10 + lo : -1;
}

/**
 * \`Date.prototype.toISOString\` output (\`YYYY-MM-DDTHH:MM:SS.sssZ\`), what
 * most devices send, read digit by digit: the same ms as \`Date.parse\` at a
 * fraction of its cost (reading-builder.test.ts checks it against
 * Date.parse as a property). NaN when `s` has another shape (the caller
 * goes on to the general parse); values outside the plain ranges (years
 * before 100, which `Date.UTC` would read as 19xx, hour 24, a zero or too
 * large month or day, minute or second 60+) are left to `Date.parse`
 * itself, so they get its verdict.
 */
function parseIsoUtcMs(s: string): number {
  if (s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(10) !== 0x54 || s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a || s.charCodeAt(19) !== 0x2e || s.charCodeAt(23) !== 0x5a) {
    return Number.NaN;
  }
  const century = twoDigits(s, 0);
  const yy = twoDigits(s, 2);
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  const hour = twoDigits(s, 11);
  const minute = twoDigits(s, 14);
  const second = twoDigits(s, 17);
  const ms = twoDigits(s, 20);
  const msLast = s.charCodeAt(22) - 0x30;
  if (century < 0 || yy < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || ms < 0 || msLast < 0 || msLast > 9) return Number.NaN;
  const year = century * 100 + yy;
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return Date.parse(s);
  return Date.UTC(year, month - 1, day, hour, minute, second, ms * 10 + msLast);
}

/** A signed integer as decimal text; beyond ±2^31 in two halves, each a small integer V8 prints fast (String() of a large double costs ~10× more). */
function integerText(n: number): string {
  if ((n >= -0x8000_0000 && n < 0x8000_0000) || !Number.isInteger(n)) return String(n);
  const abs = Math.abs(n);
  const high = Math.floor(abs / 1e9);
  if (high >= 0x8000_0000) return String(n);
  const low = String(abs - high * 1e9);
  return `${n < 0 ? '-' : ''}${high}${'000000000'.slice(low.length)}${low}`;
}

/**
 * The headers of a reading from a device whose clock is off: the shared
 * ones plus `clock_skew_ms`. Spelled with literal keys (the values of
 * HEADERS, in its order; reading-builder.test.ts checks they agree): a
 * spread with a computed key cost ~150 ns per reading.
 */
function skewedHeaders(shared: Readonly<Record<string, string>>, skewText: string): Record<string, string> {
  return { source: shared.source!, device: shared.device!, gateway_id: shared.gateway_id!, received_at: shared.received_at!, clock_skew_ms: skewText };
}

export class ReadingBuilder {
  readonly topic: string;
  readonly device: string;
  readonly kind: SourceKind;
  readonly gatewayId: string;
  readonly keyField: string;
  readonly timestampField: string;
  readonly maxClockSkewMs: number;
  private skew: number | null = null;
  /** The headers of the last reading built without a clock-skew flag, shared (frozen) by readings received in the same ms. */
  private lastHeaders: Readonly<Record<string, string>> | null = null;
  private lastHeadersAt = Number.NaN;

  constructor(options: ReadingBuilderOptions) {
    for (const name of ['topic', 'device', 'gatewayId'] as const) {
      if (typeof options[name] !== 'string' || options[name] === '') {
        throw new BridgeError('BRIDGE_CONFIG', `reading builder: ${name} must be a non-empty string`, { device: options.device });
      }
    }
    this.topic = options.topic;
    this.device = options.device;
    this.kind = options.kind;
    this.gatewayId = options.gatewayId;
    this.keyField = options.keyField ?? READING_BUILDER_DEFAULTS.keyField;
    this.timestampField = options.timestampField ?? READING_BUILDER_DEFAULTS.timestampField;
    this.maxClockSkewMs = options.maxClockSkewMs ?? READING_BUILDER_DEFAULTS.maxClockSkewMs;
    if (!(this.maxClockSkewMs >= 0)) {
      throw new BridgeError('BRIDGE_CONFIG', `reading builder: maxClockSkewMs must be >= 0 (got ${this.maxClockSkewMs})`, { device: this.device });
    }
  }

  /** The device's clock offset (event time minus receive time, ms) while it exceeds the limit, else null. */
  get clockSkewMs(): number | null {
    return this.skew;
  }

  /**
   * Builds the reading. Throws BRIDGE_DECODE when `value` is not a JSON
   * object and BRIDGE_BAD_TIMESTAMP when the timestamp field is present but
   * unreadable. `topic` overrides the configured topic (MQTT topic maps).
   * `valueJson`, when given, is carried onto the reading as is (see
   * `Reading.valueJson`). Readings received in the same ms without a
   * clock-skew flag share one frozen headers object.
   */
  build(value: unknown, receivedAt: number, topic: string = this.topic, valueJson?: string): Reading {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new BridgeError('BRIDGE_DECODE', `a reading must be a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`, {
        device: this.device,
      });
    }
    const obj = value as Record<string, unknown>;
    let eventTime = Number.NaN;
    const rawTs = obj[this.timestampField];
    if (rawTs !== undefined && rawTs !== null) {
      eventTime = parseEventTime(rawTs);
      if (Number.isNaN(eventTime)) {
        throw new BridgeError('BRIDGE_BAD_TIMESTAMP', `${this.timestampField} ${JSON.stringify(rawTs)} is neither ISO-8601 nor epoch ms`, {
          device: this.device,
          field: this.timestampField,
        });
      }
    }
    const timestamp = this.#timestamp(eventTime, receivedAt);
    const headers = this.#headers(receivedAt);
    const rawKey = obj[this.keyField];
    const key = rawKey === undefined || rawKey === null ? null : typeof rawKey === 'string' ? rawKey : String(rawKey);
    return valueJson === undefined ? { topic, key, value: obj, timestamp, headers } : { topic, key, value: obj, timestamp, headers, valueJson };
  }

  /**
   * Builds the reading of a value held as UTF-8 JSON bytes whose key and
   * event time the caller already read (mqtt-fast-decoder.ts): `key` as
   * `build` derives it, `eventTime` the parsed device time (NaN: the value
   * has none, the receive time is used). Same timestamp, clock-skew verdict
   * and headers as `build`; `value` is parsed from `valueBytes` on first
   * access (see `ScannedReading`).
   */
  buildScanned(valueBytes: Uint8Array, key: string | null, eventTime: number, receivedAt: number, topic: string = this.topic): Reading {
    const timestamp = this.#timestamp(eventTime, receivedAt);
    return new ScannedReading(topic, key, timestamp, this.#headers(receivedAt), valueBytes);
  }

  /** The last reading's clock offset when beyond `maxClockSkewMs` (its headers say so), else null. */
  #skewed: number | null = null;

  /** A reading's timestamp: its device time (NaN: none, the receive time then); sets the clock-skew verdict (`skew`). */
  #timestamp(eventTime: number, receivedAt: number): number {
    this.#skewed = null;
    if (Number.isNaN(eventTime)) return receivedAt;
    const offset = eventTime - receivedAt;
    if (this.maxClockSkewMs > 0 && Math.abs(offset) > this.maxClockSkewMs) this.skew = this.#skewed = offset;
    else this.skew = null;
    return eventTime;
  }

  /** The headers of the reading `#timestamp` just judged. */
  #headers(receivedAt: number): Record<string, string> {
    const skewed = this.#skewed;
    return skewed === null ? this.sharedHeaders(receivedAt) : skewedHeaders(this.sharedHeaders(receivedAt), integerText(skewed));
  }

  /** The headers every reading received at `receivedAt` carries (one frozen object per distinct ms in a row). */
  private sharedHeaders(receivedAt: number): Readonly<Record<string, string>> {
    if (this.lastHeaders !== null && this.lastHeadersAt === receivedAt) return this.lastHeaders;
    const headers = Object.freeze({
      [HEADERS.source]: this.kind,
      [HEADERS.device]: this.device,
      [HEADERS.gatewayId]: this.gatewayId,
      [HEADERS.receivedAt]: String(receivedAt),
    });
    this.lastHeaders = headers;
    this.lastHeadersAt = receivedAt;
    return headers;
  }
}

/**
 * A reading held as its JSON bytes (`ReadingBuilder.buildScanned`): `value`
 * is parsed from `valueBytes` on first access and kept; sinks that store
 * `valueBytes` never parse it. Its fields are own data properties except
 * `value`, a getter on the prototype: code that copies a reading field by
 * field (`{ ...r }`) must read `value` explicitly.
 */
export class ScannedReading implements Reading {
  private parsed: Record<string, unknown> | null = null;

  constructor(
    public topic: string,
    public key: string | null,
    public timestamp: number,
    public headers: Record<string, string>,
    public valueBytes: Uint8Array,
  ) {}

  get value(): Record<string, unknown> {
    if (this.parsed === null) {
      const bytes = this.valueBytes;
      this.parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Record<string, unknown>;
    }
    return this.parsed;
  }
}
