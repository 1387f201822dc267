/**
 * The MQTT adapter's per-message fast path: a payload that is a plain JSON
 * object is checked in one pass over its bytes (json-object-scanner.ts) and
 * stored as those bytes, with the named topic levels it lacks spliced in
 * before its closing brace; no string, no parsed object, no re-encoding per
 * message. The reading's `value` is parsed only if someone asks for it
 * (`ScannedReading`).
 *
 * It gives exactly what the general path (`decodeMqttMessage` →
 * `ReadingBuilder.build`) gives, or declines (`decode` returns false) and the
 * caller takes the general path, which then also produces any dead letter
 * and its message. mqtt-fast-decoder.test.ts cross-checks both paths as a
 * property. Declined: a topic no subscription matches; bytes that are not
 * UTF-8, not JSON or not an object; a top-level name with an escape; a
 * topic level the payload also holds with another value (or an escaped
 * one), or whose name JSON objects would not append in order
 * (`MqttRouteHit.members` null); a key that is an escaped string, an object
 * or an array; an event time that is escaped, not a string or number, or
 * unreadable (the general path dead-letters it); a configuration where the
 * timestamp field is itself a topic level or the key field; and topics
 * whose log topic has a JSON Schema (the check needs the value).
 *
 * Value bytes: copied into arena buffers of ARENA_BYTES (a larger payload
 * gets its own) that are never written again once a value is in them, so a
 * reading's bytes stay valid for as long as it is held; arenas are freed by
 * the GC once no reading refers to them.
 */
import { AsciiTextCache } from './ascii-text-cache.ts';
import {
  JsonObjectScanner,
  MEMBER_ABSENT,
  MEMBER_FALSE,
  MEMBER_NULL,
  MEMBER_NUMBER,
  MEMBER_STRING,
  MEMBER_TRUE,
} from './json-object-scanner.ts';
import type { MqttRouteHit, MqttRoutes } from './mqtt-payload.ts';
import { parseEventTime } from './reading-builder.ts';

/** Bytes per arena buffer of value bytes. */
const ARENA_BYTES = 64 * 1024;
/** Topics remembered before the memo starts over (as MqttRoutes' memo). */
const MEMO_SIZE = 4096;

export interface MqttFastDecoderOptions {
  /** Field holding the partitioning key (ReadingBuilder's keyField). */
  keyField: string;
  /** Field holding the event time (ReadingBuilder's timestampField). */
  timestampField: string;
  /** The adapter's default log topic (routes without `logTopic`). */
  topic: string;
  /** True when readings of this log topic need their parsed value before they are stored (a JSON Schema): those are declined. Default: none does. */
  needsValue?: (logTopic: string) => boolean;
}

/** A topic's fast-path plan. */
interface FastHit {
  /** Log topic of the route; undefined: the adapter's default. */
  logTopic: string | undefined;
  scanner: JsonObjectScanner;
  /** Per named level: its slot in the scanner's names, its value's UTF-8 bytes, its member (`"line":"w01"`) as UTF-8 bytes. */
  slots: number[];
  fieldBytes: Uint8Array[];
  memberBytes: Uint8Array[];
  /** The key when the key field is a named level (the level wins); undefined: read from the payload. */
  topicKey: string | undefined;
  /** The last splice built for this topic (see `spliceFor`) and its mask of missing levels (-1: none yet). */
  splice: Buffer;
  spliceMask: number;
}

const COMMA_BYTES = Buffer.from(',');

const KEY_SLOT = 0;
const TIME_SLOT = 1;

export class MqttFastDecoder {
  /** The last accepted message's key. */
  key: string | null = null;
  /** The last accepted message's event time in ms; NaN: it has none (the receive time is used). */
  eventTime = Number.NaN;
  /** The last accepted message's log topic; undefined: the adapter's default. */
  logTopic: string | undefined = undefined;
  /** The last accepted message's value as UTF-8 JSON (payload + spliced levels); a view of an arena, never written again. */
  valueBytes: Uint8Array | null = null;

  private readonly memo = new Map<string, FastHit | null>();
  /** Scanners per route (their names depend on the route's levels, not on the topic). */
  private readonly scanners = new Map<object, JsonObjectScanner>();
  private arena: Buffer = Buffer.alloc(0);
  /** `arena.buffer` and `arena.byteOffset`, kept so that making a value's view reads no Buffer property (~50 ns a message). */
  private arenaBuffer: ArrayBuffer = new ArrayBuffer(0);
  private arenaOffset = 0;
  private arenaUsed = 0;
  /** Key strings: sensors repeat their ids, so the common key costs no string. */
  private readonly keys = new AsciiTextCache(MEMO_SIZE);
  /** The date part (`YYYY-MM-DD`) of the last ISO event time read from bytes, and its start in ms (NaN: none yet). */
  private readonly dayBytes = new Uint8Array(10);
  private dayMs = Number.NaN;
  private readonly keyBytes: Uint8Array;
  private readonly timeBytes: Uint8Array;

  constructor(
    private readonly routes: MqttRoutes,
    private readonly options: MqttFastDecoderOptions,
  ) {
    this.keyBytes = Buffer.from(options.keyField);
    this.timeBytes = Buffer.from(options.timestampField);
  }

  /**
   * Decodes one message; true: `key`, `eventTime`, `logTopic` and
   * `valueBytes` hold it; false: declined, take the general path. `payload`
   * is not kept.
   */
  decode(topic: string, payload: Buffer): boolean {
    let hit = this.memo.get(topic);
    if (hit === undefined) hit = this.plan(topic);
    // Not UTF-8: the scan refuses it (it checks UTF-8 inside strings, the only place it is JSON).
    if (hit === null) return false;
    const length = payload.length;
    const scanner = hit.scanner;
    const close = scanner.scan(payload, 0, length);
    if (close < 0) return false;
    const found = scanner.found;

    // Named levels: the ones the payload lacks are spliced in; one it holds must be the same plain string.
    const slots = hit.slots;
    let addBytes = 0;
    let addMask = 0;
    for (let i = 0; i < slots.length; i++) {
      const at = slots[i]! * 3;
      const kind = found[at]!;
      if (kind === MEMBER_ABSENT) {
        addMask |= 1 << i;
        addBytes += hit.memberBytes[i]!.length + 1;
      } else if (kind !== MEMBER_STRING || !sameBytes(payload, found[at + 1]!, found[at + 2]!, hit.fieldBytes[i]!)) {
        return false;
      }
    }

    let key: string | null;
    if (hit.topicKey !== undefined) {
      key = hit.topicKey;
    } else {
      const at = KEY_SLOT * 3;
      const kind = found[at]!;
      if (kind === MEMBER_ABSENT || kind === MEMBER_NULL) key = null;
      else if (kind === MEMBER_STRING) key = this.keys.text(payload, found[at + 1]!, found[at + 2]!);
      else if (kind === MEMBER_NUMBER) key = String(Number(utf8(payload, found[at + 1]!, found[at + 2]!)));
      else if (kind === MEMBER_TRUE) key = 'true';
      else if (kind === MEMBER_FALSE) key = 'false';
      else return false;
    }

    let eventTime = Number.NaN;
    const timeKind = found[TIME_SLOT * 3]!;
    if (timeKind === MEMBER_STRING || timeKind === MEMBER_NUMBER) {
      const start = found[TIME_SLOT * 3 + 1]!;
      const end = found[TIME_SLOT * 3 + 2]!;
      if (timeKind === MEMBER_STRING) eventTime = this.isoTime(payload, start, end);
      if (eventTime !== eventTime) {
        const text = utf8(payload, start, end);
        eventTime = parseEventTime(timeKind === MEMBER_STRING ? text : Number(text));
      }
      // Unreadable: the general path dead-letters it with its message.
      if (eventTime !== eventTime) return false;
    } else if (timeKind !== MEMBER_ABSENT && timeKind !== MEMBER_NULL) {
      return false;
    }

    // payload[0, close) + (',' when the object has members) + the missing members, comma-separated + payload[close, end).
    const size = length + addBytes - (addMask !== 0 && scanner.members === 0 ? 1 : 0);
    const out = this.reserve(size);
    let p = this.arenaUsed;
    // The whole payload in one native copy (a partial one makes a view per call), then the members over its tail.
    payload.copy(out, p);
    p += close;
    if (addMask !== 0) {
      const splice = hit.spliceMask === addMask ? hit.splice : this.spliceFor(hit, addMask);
      // The splice starts with a comma, skipped when the object is empty.
      p += scanner.members === 0 ? splice.copy(out, p, 1) : splice.copy(out, p);
    }
    for (let i = close; i < length; i++) out[p++] = payload[i]!;
    this.valueBytes = new Uint8Array(this.arenaBuffer, this.arenaOffset + this.arenaUsed, p - this.arenaUsed);
    this.arenaUsed = p;
    this.key = key;
    this.eventTime = eventTime;
    this.logTopic = hit.logTopic;
    return true;
  }

  /**
   * `Date.prototype.toISOString` output (`YYYY-MM-DDTHH:MM:SS.sssZ`, what
   * most devices send) read from its bytes, in ms: the same value as
   * `parseEventTime` of its text (mqtt-fast-decoder.test.ts checks it as a
   * property), without a string. The date's start is remembered (readings
   * come in time order, so the same day repeats). NaN for another shape or
   * out-of-range fields: the caller then parses the text.
   */
  private isoTime(buf: Buffer, start: number, end: number): number {
    if (end - start !== 24 || buf[start + 4] !== 0x2d || buf[start + 7] !== 0x2d || buf[start + 10] !== 0x54 || buf[start + 13] !== 0x3a || buf[start + 16] !== 0x3a || buf[start + 19] !== 0x2e || buf[start + 23] !== 0x5a) {
      return Number.NaN;
    }
    const day = this.dayBytes;
    let same = this.dayMs === this.dayMs;
    for (let i = 0; same && i < 10; i++) same = day[i] === buf[start + i];
    if (!same) {
      const year = digits(buf, start, 4);
      const month = digits(buf, start + 5, 2);
      const date = digits(buf, start + 8, 2);
      // Years before 100 (Date.UTC reads them as 19xx) and impossible fields: the text parse gives Date.parse's verdict.
      if (year < 100 || month < 1 || month > 12 || date < 1 || date > 31) return Number.NaN;
      this.dayMs = Date.UTC(year, month - 1, date);
      for (let i = 0; i < 10; i++) day[i] = buf[start + i]!;
    }
    const hour = digits(buf, start + 11, 2);
    const minute = digits(buf, start + 14, 2);
    const second = digits(buf, start + 17, 2);
    const ms = digits(buf, start + 20, 3);
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || ms < 0) return Number.NaN;
    return this.dayMs + ((hour * 60 + minute) * 60 + second) * 1000 + ms;
  }

  /** The missing members of `addMask` (bit i: level i), each preceded by a comma, as bytes; remembered on the hit (a topic's payloads usually lack the same levels). */
  private spliceFor(hit: FastHit, addMask: number): Buffer {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < hit.memberBytes.length; i++) {
      if ((addMask & (1 << i)) !== 0) parts.push(COMMA_BYTES, hit.memberBytes[i]!);
    }
    hit.splice = Buffer.concat(parts);
    hit.spliceMask = addMask;
    return hit.splice;
  }

  /** An arena with `size` bytes free at `arenaUsed`. */
  private reserve(size: number): Buffer {
    if (this.arenaUsed + size <= this.arena.length) return this.arena;
    this.arena = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, size));
    this.arenaBuffer = this.arena.buffer as ArrayBuffer;
    this.arenaOffset = this.arena.byteOffset;
    this.arenaUsed = 0;
    return this.arena;
  }

  /** Works out (and remembers) how messages of `topic` are decoded; null: always the general path. */
  private plan(topic: string): FastHit | null {
    const hit = this.routes.find(topic);
    const fast = hit === null ? null : this.planHit(hit);
    if (this.memo.size >= MEMO_SIZE) this.memo.clear();
    this.memo.set(topic, fast);
    return fast;
  }

  private planHit(hit: MqttRouteHit): FastHit | null {
    const { keyField, timestampField } = this.options;
    const logTopic = hit.route.logTopic;
    if (hit.members === null || keyField === timestampField || Object.hasOwn(hit.fields, timestampField)) return null;
    if (this.options.needsValue?.(logTopic ?? this.options.topic)) return null;
    let scanner = this.scanners.get(hit.route);
    const levelNames = hit.route.pattern.fields.map((f) => f.name).filter((n): n is string => typeof n === 'string');
    const own = levelNames.filter((n) => n !== keyField);
    if (!scanner) {
      scanner = new JsonObjectScanner([this.keyBytes, this.timeBytes, ...own.map((n) => Buffer.from(n))]);
      this.scanners.set(hit.route, scanner);
    }
    const slots: number[] = [];
    const fieldBytes: Uint8Array[] = [];
    const memberBytes: Uint8Array[] = [];
    for (let i = 0; i < hit.names.length; i++) {
      const name = hit.names[i]!;
      slots.push(name === keyField ? KEY_SLOT : 2 + own.indexOf(name));
      fieldBytes.push(Buffer.from(hit.fields[name]!));
      memberBytes.push(Buffer.from(hit.members[i]!));
    }
    if (slots.length > 30 || slots.some((s) => s < 0)) return null;
    return { logTopic, scanner, slots, fieldBytes, memberBytes, topicKey: Object.hasOwn(hit.fields, keyField) ? hit.fields[keyField] : undefined, splice: COMMA_BYTES, spliceMask: -1 };
  }
}

/** True when `buf[start, end)` holds exactly `bytes`. */
function sameBytes(buf: Uint8Array, start: number, end: number, bytes: Uint8Array): boolean {
  if (end - start !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) return false;
  return true;
}

/** The `count` ASCII digits at `at` as a number, or -1 when one is not a digit. */
function digits(buf: Uint8Array, at: number, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) {
    const d = buf[at + i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** The UTF-8 text of `buf[start, end)`. */
function utf8(buf: Buffer, start: number, end: number): string {
  return (buf as Buffer & { utf8Slice(start: number, end: number): string }).utf8Slice(start, end);
}
