/**
 * A lean reader for the broker → client byte stream of one MQTT connection:
 * it splits the stream into packets, reads each PUBLISH of QoS 0 or 1 in
 * place and hands it to `publish`, and hands every other packet, whole and
 * unchanged, to `other` (the MQTT adapter feeds those to MQTT.js's own
 * parser, which keeps CONNACK, SUBACK, PINGRESP, DISCONNECT, AUTH, QoS 2 and
 * every protocol error). Why: MQTT.js parses each packet through a
 * BufferList, a packet object, a debug trace and a process.nextTick before
 * our handler sees it (see mqtt-adapter.ts); reading PUBLISH here costs a
 * header scan and two string decodes.
 *
 * Wire format (MQTT 3.1.1 §2.2 and §3.3, MQTT 5.0 §2.1, §2.2.2 and §3.3):
 * - fixed header: byte 0 = packet type (high nibble; 3 = PUBLISH) and flags
 *   (PUBLISH: DUP bit 3, QoS bits 2–1, RETAIN bit 0); then the remaining
 *   length, a variable byte integer of 1 to 4 bytes (7 bits each, low first,
 *   high bit = more);
 * - PUBLISH variable header: topic name (2-byte big-endian length, UTF-8),
 *   packet identifier (2 bytes, QoS > 0 only), MQTT 5 only: properties
 *   (variable byte integer length, then the properties);
 * - PUBLISH payload: the rest of the packet.
 *
 * What goes to `other` instead of `publish`: any packet that is not a
 * PUBLISH; a PUBLISH of QoS 2 or with both QoS bits set; a PUBLISH whose
 * variable header does not fit its remaining length; an MQTT 5 PUBLISH with
 * a Topic Alias property (we advertise no Topic Alias Maximum, so it is a
 * protocol error MQTT.js reports) or with a property identifier PUBLISH may
 * not carry (malformed, MQTT.js reports it). Properties a PUBLISH may carry
 * (payload format, expiry, content type, response topic, correlation data,
 * subscription identifiers, user properties) are skipped: the adapter uses
 * none of them. A remaining length longer than 4 bytes leaves the packet
 * boundaries unknown: from there on every byte goes to `other` as it comes
 * (MQTT.js then fails the connection).
 *
 * Backpressure: `publish` returns false to stop reading; the reader keeps
 * the unread bytes (and buffers what `push` adds) until `resume()`.
 *
 * Memory: a packet split across chunks is joined once its length is known,
 * from its own bytes only (the rest of the next chunk is read in place, not
 * copied); `payload` is a view into the chunk (valid during the `publish`
 * call only: copy it to keep it).
 */

import { AsciiTextCache } from './ascii-text-cache.ts';

/** Where the reader's packets go. */
export interface MqttPublishHandler {
  /**
   * One PUBLISH of QoS 0 or 1. `messageId` is the packet identifier (0 for
   * QoS 0). Return false to stop reading until `resume()`.
   */
  publish(topic: string, payload: Buffer, qos: 0 | 1, messageId: number, dup: boolean): boolean;
  /** Any other packet, whole (fixed header included); after a malformed remaining length, raw stream bytes. */
  other(bytes: Buffer): void;
}

/** MQTT 5 PUBLISH property identifiers (§3.3.2.3) and the size of their value; -1: UTF-8 string or binary data (2-byte length), -2: string pair, -3: variable byte integer. */
const PUBLISH_PROPERTY_SIZE: ReadonlyMap<number, number> = new Map([
  [0x01, 1], // payload format indicator
  [0x02, 4], // message expiry interval
  [0x03, -1], // content type
  [0x08, -1], // response topic
  [0x09, -1], // correlation data
  [0x0b, -3], // subscription identifier
  [0x26, -2], // user property
]);
const TOPIC_ALIAS = 0x23;

const PUBLISH = 3;
/** Topic names remembered by the reader (see AsciiTextCache). */
const TOPIC_CACHE_SIZE = 4096;
const EMPTY = Buffer.alloc(0);

export class MqttPublishReader {
  /** Unread bytes: a partial packet, or packets left unread while paused. */
  private rest: Buffer = EMPTY;
  /** Chunks that arrived while `rest` holds a partial packet, not yet joined to it. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  /** Bytes `rest` must hold before the packet at its start can be read. */
  private need = 0;
  private stopped = false;
  private passthrough = false;
  /** Topic names: devices publish on the same topics again and again, so most PUBLISH packets cost no topic string. */
  private readonly topics = new AsciiTextCache(TOPIC_CACHE_SIZE);

  /** `protocolVersion`: 4 (3.1.1) or 5 (5.0; PUBLISH carries properties). */
  constructor(
    private readonly protocolVersion: 4 | 5,
    private readonly handler: MqttPublishHandler,
  ) {}

  /** True after `publish` returned false, until `resume()`. */
  get paused(): boolean {
    return this.stopped;
  }

  /** Bytes held (unread and queued). */
  get bufferedBytes(): number {
    return this.rest.length + this.queuedBytes;
  }

  /** Feeds the next bytes of the stream. */
  push(chunk: Buffer): void {
    if (this.passthrough) {
      this.handler.other(chunk);
      return;
    }
    if (chunk.length === 0) return;
    if (this.stopped || this.queued.length > 0) {
      // Paused, or a packet longer than the chunks so far still gathering: keep the chunk, join once enough is there.
      this.queued.push(chunk);
      this.queuedBytes += chunk.length;
      if (this.stopped || this.rest.length + this.queuedBytes < this.need) return;
      this.rest = Buffer.concat([this.rest, ...this.queued], this.rest.length + this.queuedBytes);
      this.queued = [];
      this.queuedBytes = 0;
      this.read();
      return;
    }
    if (this.rest.length === 0) {
      this.rest = chunk;
      this.read();
      return;
    }
    if (this.rest.length + chunk.length < this.need) {
      this.queued.push(chunk);
      this.queuedBytes += chunk.length;
      return;
    }
    // A partial packet waits in `rest`: complete it with just the bytes it lacks (a few header bytes at a time
    // while its length is unknown), then read on in the chunk itself, so a chunk is not copied whole to join
    // the few hundred bytes of a packet cut at its start.
    let offset = 0;
    while (this.rest.length > 0 && offset < chunk.length && !this.stopped) {
      const take = Math.min(chunk.length - offset, Math.max(1, this.need - this.rest.length));
      this.rest = Buffer.concat([this.rest, chunk.subarray(offset, offset + take)], this.rest.length + take);
      offset += take;
      this.read();
    }
    if (offset === chunk.length) return;
    const tail = offset === 0 ? chunk : chunk.subarray(offset);
    if (this.rest.length === 0 && !this.stopped) {
      this.rest = tail;
      this.read();
    } else {
      // Stopped: the tail comes after what `rest` still holds.
      this.queued.push(tail);
      this.queuedBytes += tail.length;
    }
  }

  /** Reads on after `publish` returned false. */
  resume(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.queued.length > 0) {
      this.rest = Buffer.concat([this.rest, ...this.queued], this.rest.length + this.queuedBytes);
      this.queued = [];
      this.queuedBytes = 0;
    }
    this.read();
  }

  private read(): void {
    const buf = this.rest;
    const end = buf.length;
    let pos = 0;
    this.need = 0;
    while (pos < end && !this.stopped) {
      if (end - pos < 2) {
        this.need = end - pos + 1;
        break;
      }
      // Remaining length: 1 to 4 bytes.
      let length = 0;
      let multiplier = 1;
      let at = pos + 1;
      let complete = false;
      for (let i = 0; i < 4 && at < end; i++) {
        const byte = buf[at++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (at - pos - 1 === 4) {
          // A fifth length byte: malformed, the packet boundaries are lost.
          this.passthrough = true;
          this.rest = EMPTY;
          this.handler.other(pos === 0 ? buf : buf.subarray(pos));
          return;
        }
        this.need = end - pos + 1;
        break;
      }
      const packetEnd = at + length;
      if (packetEnd > end) {
        this.need = packetEnd - pos;
        break;
      }
      const first = buf[pos]!;
      if (first >> 4 !== PUBLISH || !this.readPublish(buf, first, at, packetEnd)) {
        this.handler.other(buf.subarray(pos, packetEnd));
      }
      pos = packetEnd;
    }
    this.rest = pos === end ? EMPTY : buf.subarray(pos);
  }

  /** Reads the PUBLISH whose variable header starts at `at`; false: leave it to `other`. */
  private readPublish(buf: Buffer, first: number, at: number, packetEnd: number): boolean {
    const qos = (first >> 1) & 3;
    if (qos > 1) return false;
    if (at + 2 > packetEnd) return false;
    // Two-byte big-endian reads by hand (bounds checked above): Buffer.readUInt16BE re-checks them per call.
    const topicEnd = at + 2 + ((buf[at]! << 8) | buf[at + 1]!);
    let pos = topicEnd + (qos === 0 ? 0 : 2);
    if (pos > packetEnd) return false;
    const messageId = qos === 0 ? 0 : (buf[topicEnd]! << 8) | buf[topicEnd + 1]!;
    if (this.protocolVersion === 5) {
      pos = skipProperties(buf, pos, packetEnd);
      if (pos < 0) return false;
    }
    const topic = this.topics.text(buf, at + 2, topicEnd);
    if (!this.handler.publish(topic, buf.subarray(pos, packetEnd), qos as 0 | 1, messageId, (first & 0x08) !== 0)) this.stopped = true;
    return true;
  }
}

/**
 * Skips the MQTT 5 PUBLISH properties at `pos`; returns where the payload
 * starts, or -1 when they are malformed, overrun the packet, or hold a
 * Topic Alias.
 */
function skipProperties(buf: Buffer, pos: number, packetEnd: number): number {
  const header = readVarInt(buf, pos, packetEnd);
  if (header < 0) return -1;
  pos += header % 8;
  const end = pos + Math.floor(header / 8);
  if (end > packetEnd) return -1;
  while (pos < end) {
    const id = buf[pos++]!;
    if (id === TOPIC_ALIAS) return -1;
    const size = PUBLISH_PROPERTY_SIZE.get(id);
    if (size === undefined) return -1;
    if (size > 0) {
      pos += size;
    } else if (size === -3) {
      const value = readVarInt(buf, pos, end);
      if (value < 0) return -1;
      pos += value % 8;
    } else {
      for (let strings = size === -2 ? 2 : 1; strings > 0; strings--) {
        if (pos + 2 > end) return -1;
        pos += 2 + buf.readUInt16BE(pos);
      }
    }
    if (pos > end) return -1;
  }
  return end;
}

/**
 * A variable byte integer (1–4 bytes) at `pos`, before `limit`, as
 * `value * 8 + bytes read` (no object per call); -1 when it is longer or
 * cut off.
 */
function readVarInt(buf: Buffer, pos: number, limit: number): number {
  let value = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4 && pos < limit; i++) {
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) return value * 8 + i;
  }
  return -1;
}
