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
/** `Date.prototype.toISOString` output, what most devices send: parsed by Date.parse as is, no trimming or rewriting. */
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Parses an ISO-8601 string or epoch ms; returns NaN for anything else. Zone-less ISO times are read as UTC. */
export function parseEventTime(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : Number.NaN;
  if (typeof value !== 'string') return Number.NaN;
  if (value.length === 24 && ISO_UTC_MS.test(value)) return Date.parse(value);
  const s = value.trim();
  if (EPOCH_MS.test(s)) return Number(s);
  if (!ISO_8601.test(s)) return Number.NaN;
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(s);
  return Date.parse(hasZone ? s.replace(' ', 'T') : `${s.replace(' ', 'T')}Z`);
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
    let timestamp = receivedAt;
    let skewed: number | null = null;
    const rawTs = obj[this.timestampField];
    if (rawTs !== undefined && rawTs !== null) {
      const eventTime = parseEventTime(rawTs);
      if (Number.isNaN(eventTime)) {
        throw new BridgeError('BRIDGE_BAD_TIMESTAMP', `${this.timestampField} ${JSON.stringify(rawTs)} is neither ISO-8601 nor epoch ms`, {
          device: this.device,
          field: this.timestampField,
        });
      }
      timestamp = eventTime;
      const offset = eventTime - receivedAt;
      if (this.maxClockSkewMs > 0 && Math.abs(offset) > this.maxClockSkewMs) {
        this.skew = skewed = offset;
      } else {
        this.skew = null;
      }
    }
    const headers = skewed === null ? this.sharedHeaders(receivedAt) : { ...this.sharedHeaders(receivedAt), [HEADERS.clockSkewMs]: String(skewed) };
    const rawKey = obj[this.keyField];
    const key = rawKey === undefined || rawKey === null ? null : typeof rawKey === 'string' ? rawKey : String(rawKey);
    return valueJson === undefined ? { topic, key, value: obj, timestamp, headers } : { topic, key, value: obj, timestamp, headers, valueJson };
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
