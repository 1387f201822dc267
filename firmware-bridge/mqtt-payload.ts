/**
 * MQTT message → decoded value, shared by the live adapter and
 * `millstream capture replay` (through `mqttReplayDecoder`), so a captured
 * session replays into exactly the readings and dead letters it produced.
 *
 * Rules: the first subscription whose pattern matches the topic routes the
 * message (its `logTopic`, its named levels). The payload must be UTF-8
 * JSON holding an object; the named topic levels are added to it and win
 * over payload fields of the same name (the topic is what the broker routed
 * on). Anything else is a decode error carrying the raw payload (text, or
 * `hex:` for bytes that are not UTF-8).
 */
import { isUtf8 } from 'node:buffer';
import type { CaptureFrame } from './capture.ts';
import type { FrameDecoder, FrameOutput } from './capture-replay.ts';
import { BridgeError, hexPreview } from './errors.ts';
import { parseTopicPattern, type TopicPattern } from './mqtt-topic-pattern.ts';
import { rawPayload } from './reading-pipeline.ts';

/** A parsed subscription: where its messages go. */
export interface MqttRoute {
  pattern: TopicPattern;
  /** Log topic of its readings; undefined: the adapter's `topic`. */
  logTopic: string | undefined;
}

/** Parses subscription patterns into routes (throws TopicPatternError for a bad pattern). */
export function mqttRoutes(subscriptions: ReadonlyArray<{ topic: string; logTopic?: string }>): MqttRoutes {
  return new MqttRoutes(subscriptions.map((s) => ({ pattern: parseTopicPattern(s.topic), logTopic: s.logTopic })));
}

/** Topics remembered by `MqttRoutes.find` before the memo starts over. */
const ROUTE_MEMO_SIZE = 4096;

/**
 * The subscriptions in order, with a per-instance memo of topic → route:
 * sensors publish on the same few thousand topics, so each is matched once.
 * The memo holds at most ROUTE_MEMO_SIZE topics (then it is cleared).
 */
export class MqttRoutes {
  private readonly memo = new Map<string, { route: MqttRoute; fields: Readonly<Record<string, string>> } | null>();

  constructor(readonly routes: readonly MqttRoute[]) {}

  /** The first route whose pattern matches, with the named levels; null when none does. The fields object is shared: copy, do not keep. */
  find(topic: string): { route: MqttRoute; fields: Readonly<Record<string, string>> } | null {
    let hit = this.memo.get(topic);
    if (hit !== undefined) return hit;
    hit = null;
    for (const route of this.routes) {
      const fields = route.pattern.match(topic);
      if (fields) {
        hit = { route, fields };
        break;
      }
    }
    if (this.memo.size >= ROUTE_MEMO_SIZE) this.memo.clear();
    this.memo.set(topic, hit);
    return hit;
  }
}

/** Decodes one message. `topic` of the result is the route's log topic (undefined: the adapter's default). */
export function decodeMqttMessage(routes: MqttRoutes, topic: string, payload: Buffer): FrameOutput {
  const found = routes.find(topic);
  const route = found?.route;
  const fields = found?.fields;
  const logTopic = route?.logTopic;
  if (!isUtf8(payload)) {
    return {
      ok: false,
      raw: rawPayload(payload),
      error: new BridgeError('BRIDGE_INVALID_UTF8', `payload on ${topic} is not valid UTF-8: ${hexPreview(payload)}`, { topic }),
      topic: logTopic,
    };
  }
  const raw = payload.toString('utf8');
  if (!route || !fields) {
    // E.g. a subscription an earlier configuration left in the persistent session.
    return { ok: false, raw, error: new BridgeError('BRIDGE_DECODE', `topic ${topic} matches no configured subscription`, { topic }) };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { ok: false, raw, error: new BridgeError('BRIDGE_DECODE', `payload on ${topic} is not JSON: ${(err as Error).message}`, { topic }), topic: logTopic };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    return { ok: false, raw, error: new BridgeError('BRIDGE_DECODE', `payload on ${topic} must be a JSON object, got ${got}`, { topic }), topic: logTopic };
  }
  // The parsed object is ours alone: add the topic levels in place (same result as a spread, one allocation less).
  if (route.pattern.fields.length > 0) Object.assign(value, fields);
  return { ok: true, raw, value: value as Record<string, unknown>, topic: logTopic };
}

/**
 * A capture-replay decoder for MQTT frames with the adapter's subscriptions:
 * `replayCapture(file, { decoders: { mqtt: mqttReplayDecoder(config.subscriptions) } })`.
 */
export function mqttReplayDecoder(subscriptions: ReadonlyArray<{ topic: string; logTopic?: string }>): (device: string) => FrameDecoder {
  const routes = mqttRoutes(subscriptions);
  return () => ({
    decode(frame: CaptureFrame): FrameOutput[] {
      if (!frame.data || frame.topic === undefined) return [];
      const data = Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength);
      return [decodeMqttMessage(routes, frame.topic, data)];
    },
  });
}
