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
 *
 * A decoded message also carries `valueJson` (see `Reading.valueJson`): the
 * payload text with the named levels it lacks spliced in before its closing
 * brace, so the log stores the device's own JSON text and nothing is
 * serialised again per message. It is left off (and the sink serialises the
 * merged value) only when a topic level overrides a payload field with a
 * different value.
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

/** What a topic resolves to: its route, the named levels and their JSON encoding. */
export interface MqttRouteHit {
  route: MqttRoute;
  /** The named levels. Shared between messages of the topic: copy, do not keep or change. */
  fields: Readonly<Record<string, string>>;
  /** `Object.keys(fields)`. */
  names: readonly string[];
  /**
   * Each named level as a JSON member (`"line":"w01"`), in `names` order, for
   * `spliceTopicFields`; null when splicing could not match `Object.assign`
   * (a name that is an array index, which objects order first, or `__proto__`).
   */
  members: readonly string[] | null;
}

/** Property names `Object.assign` would not append in insertion order (array indices) or set as own data (`__proto__`). */
const UNSPLICEABLE_NAME = /^(?:0|[1-9]\d*|__proto__)$/;

function encodeMembers(fields: Readonly<Record<string, string>>, names: readonly string[]): string[] | null {
  if (names.some((name) => UNSPLICEABLE_NAME.test(name))) return null;
  return names.map((name) => `${JSON.stringify(name)}:${JSON.stringify(fields[name])}`);
}

/**
 * The subscriptions in order, with a per-instance memo of topic → route:
 * sensors publish on the same few thousand topics, so each is matched (and
 * its fields encoded) once. The memo holds at most ROUTE_MEMO_SIZE topics
 * (then it is cleared).
 */
export class MqttRoutes {
  private readonly memo = new Map<string, MqttRouteHit | null>();

  constructor(readonly routes: readonly MqttRoute[]) {}

  /** The first route whose pattern matches, with the named levels; null when none does. The result is shared: do not keep or change it. */
  find(topic: string): MqttRouteHit | null {
    let hit = this.memo.get(topic);
    if (hit !== undefined) return hit;
    hit = null;
    for (const route of this.routes) {
      const fields = route.pattern.match(topic);
      if (fields) {
        const names = Object.keys(fields);
        hit = { route, fields, names, members: encodeMembers(fields, names) };
        break;
      }
    }
    if (this.memo.size >= ROUTE_MEMO_SIZE) this.memo.clear();
    this.memo.set(topic, hit);
    return hit;
  }
}

/** JSON insignificant whitespace (RFC 8259 §2): space, tab, LF, CR. */
function isJsonSpace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/**
 * The JSON text of "the object `objectJson` with the members `membersJson`
 * added at the end": `{"a":1}` + `"line":"w01"` → `{"a":1,"line":"w01"}`.
 * `objectJson` must be the text of a JSON object (as `JSON.parse` accepts
 * it) and none of the added names may already be one of its keys; then
 * `JSON.parse` of the result equals `Object.assign(JSON.parse(objectJson),
 * fields)`, and when `objectJson` is `JSON.stringify` output the result is
 * byte for byte `JSON.stringify` of that merged object
 * (mqtt-payload.test.ts checks both as properties). Costs one scan of the
 * trailing whitespace and a concatenation, not a serialisation.
 */
export function spliceTopicFields(objectJson: string, membersJson: string): string {
  if (membersJson === '') return objectJson;
  let close = objectJson.length - 1;
  while (close > 0 && isJsonSpace(objectJson.charCodeAt(close))) close--;
  let before = close - 1;
  while (before > 0 && isJsonSpace(objectJson.charCodeAt(before))) before--;
  // The only JSON object whose closing brace follows its opening one (spaces aside) is the empty one.
  const separator = objectJson.charCodeAt(before) === 0x7b ? '' : ',';
  return `${objectJson.slice(0, close)}${separator}${membersJson}${objectJson.slice(close)}`;
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
  const valueJson = found.members === null ? undefined : valueText(value, raw, found);
  // The parsed object is ours alone: add the topic levels in place (same result as a spread, one allocation less).
  if (route.pattern.fields.length > 0) Object.assign(value, fields);
  return valueJson === undefined ? { ok: true, raw, value: value as Record<string, unknown>, topic: logTopic } : { ok: true, raw, value: value as Record<string, unknown>, topic: logTopic, valueJson };
}

/**
 * The JSON text of `Object.assign(value, hit.fields)` built from the payload
 * text `raw` (of which `value` is the parse), without serialising: a named
 * level the payload lacks is spliced in; one the payload already holds with
 * the same string changes nothing (Object.assign keeps the key where it is);
 * one the payload holds with another value would have to be rewritten in
 * place, so then undefined (the sink serialises the merged value instead).
 */
function valueText(value: object, raw: string, hit: MqttRouteHit): string | undefined {
  const { names, fields } = hit;
  const members = hit.members!;
  let added = '';
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (Object.hasOwn(value, name)) {
      if ((value as Record<string, unknown>)[name] !== fields[name]) return undefined;
    } else {
      added = added === '' ? members[i]! : `${added},${members[i]!}`;
    }
  }
  return spliceTopicFields(raw, added);
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
