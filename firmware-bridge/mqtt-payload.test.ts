import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMqttMessage, mqttRoutes, spliceTopicFields } from './mqtt-payload.ts';

const routes = mqttRoutes([
  { topic: 'factory/+line/+sensor_id/reading' },
  { topic: 'lab/#rest', logTopic: 'lab' },
  { topic: 'plain/+/x' },
]);
const decode = (topic: string, payload: string | Buffer) => {
  const out = decodeMqttMessage(routes, topic, Buffer.isBuffer(payload) ? payload : Buffer.from(payload));
  return out.ok ? { ok: true, value: out.value, raw: out.raw, topic: out.topic } : { ok: false, code: out.error.code, message: out.error.message, raw: out.raw, topic: out.topic };
};

describe('decodeMqttMessage', () => {
  const golden: Array<[string, string | Buffer, object]> = [
    ['factory/w01/aa-101/reading', '{"temp_celcius":23}', { ok: true, value: { temp_celcius: 23, line: 'w01', sensor_id: 'aa-101' }, raw: '{"temp_celcius":23}', topic: undefined }],
    // Topic levels win over payload fields of the same name.
    ['factory/w01/aa-101/reading', '{"sensor_id":"spoofed","line":"x"}', { ok: true, value: { sensor_id: 'aa-101', line: 'w01' }, raw: '{"sensor_id":"spoofed","line":"x"}', topic: undefined }],
    ['lab/a/b', '{"v":1}', { ok: true, value: { v: 1, rest: 'a/b' }, raw: '{"v":1}', topic: 'lab' }],
    ['plain/q/x', '{"v":2}', { ok: true, value: { v: 2 }, raw: '{"v":2}', topic: undefined }],
    ['lab/a', 'nope', { ok: false, code: 'BRIDGE_DECODE', message: expect.stringMatching(/^payload on lab\/a is not JSON: /), raw: 'nope', topic: 'lab' }],
    ['lab/a', '"text"', { ok: false, code: 'BRIDGE_DECODE', message: 'payload on lab/a must be a JSON object, got string', raw: '"text"', topic: 'lab' }],
    ['lab/a', 'null', { ok: false, code: 'BRIDGE_DECODE', message: 'payload on lab/a must be a JSON object, got null', raw: 'null', topic: 'lab' }],
    ['lab/a', '[{"v":1}]', { ok: false, code: 'BRIDGE_DECODE', message: 'payload on lab/a must be a JSON object, got an array', raw: '[{"v":1}]', topic: 'lab' }],
    ['lab/a', '', { ok: false, code: 'BRIDGE_DECODE', message: expect.stringMatching(/^payload on lab\/a is not JSON/), raw: '', topic: 'lab' }],
    ['lab/a', Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { ok: false, code: 'BRIDGE_INVALID_UTF8', message: 'payload on lab/a is not valid UTF-8: 7bc3287d', raw: 'hex:7bc3287d', topic: 'lab' }],
    ['other/topic', '{"v":1}', { ok: false, code: 'BRIDGE_DECODE', message: 'topic other/topic matches no configured subscription', raw: '{"v":1}', topic: undefined }],
    ['factory/w01/aa-101/reading', '{"t":"ü€"}', { ok: true, value: { t: 'ü€', line: 'w01', sensor_id: 'aa-101' }, raw: '{"t":"ü€"}', topic: undefined }],
  ];
  it.each(golden)('%s %s', (topic, payload, expected) => {
    expect(decode(topic, payload)).toEqual(expected);
  });

  it('the first matching subscription routes the message', () => {
    const r = mqttRoutes([{ topic: 'a/+x', logTopic: 'first' }, { topic: 'a/#', logTopic: 'second' }]);
    const out = decodeMqttMessage(r, 'a/b', Buffer.from('{}'));
    expect(out).toMatchObject({ ok: true, topic: 'first', value: { x: 'b' } });
  });

  it('the topic memo stays bounded and correct past its size', () => {
    const r = mqttRoutes([{ topic: 'dev/+id/reading' }]);
    for (let i = 0; i < 10_000; i++) {
      const out = decodeMqttMessage(r, `dev/d${i}/reading`, Buffer.from('{"v":1}'));
      expect(out).toMatchObject({ ok: true, value: { v: 1, id: `d${i}` } });
    }
    expect(decodeMqttMessage(r, 'dev/d0/reading', Buffer.from('{}'))).toMatchObject({ ok: true, value: { id: 'd0' } });
    expect(decodeMqttMessage(r, 'dev/d0/other', Buffer.from('{}'))).toMatchObject({ ok: false });
  });

  it('carries the payload text as valueJson: spliced with the topic fields, or as is without any', () => {
    const out = decodeMqttMessage(routes, 'factory/w01/aa-101/reading', Buffer.from(' { "t" : 1.50 }\n'));
    expect(out).toMatchObject({ ok: true, valueJson: ' { "t" : 1.50 ,"line":"w01","sensor_id":"aa-101"}\n' });
    expect(decodeMqttMessage(routes, 'factory/w01/aa-101/reading', Buffer.from('{}'))).toMatchObject({ valueJson: '{"line":"w01","sensor_id":"aa-101"}' });
    expect(decodeMqttMessage(routes, 'plain/q/x', Buffer.from('{"v": 2}'))).toMatchObject({ valueJson: '{"v": 2}' });
    // A payload key equal to its topic level: nothing to add for it.
    expect(decodeMqttMessage(routes, 'factory/w01/aa-101/reading', Buffer.from('{"sensor_id":"aa-101","t":1}'))).toMatchObject({ valueJson: '{"sensor_id":"aa-101","t":1,"line":"w01"}' });
    expect(decodeMqttMessage(routes, 'factory/w01/aa-101/reading', Buffer.from('{"line":"w01","sensor_id":"aa-101"}'))).toMatchObject({ valueJson: '{"line":"w01","sensor_id":"aa-101"}' });
    // A payload key that a topic level overrides: no splice, the sink serialises the merged value.
    const spoofed = decodeMqttMessage(routes, 'factory/w01/aa-101/reading', Buffer.from('{"sensor_id":"spoofed"}'));
    expect(spoofed).toMatchObject({ ok: true, value: { sensor_id: 'aa-101' } });
    expect(spoofed.ok && spoofed.valueJson).toBeUndefined();
    // `__proto__` as a field name never becomes a key (of fields or value): valueJson agrees with the value.
    const proto = decodeMqttMessage(mqttRoutes([{ topic: 'p/+__proto__' }]), 'p/x', Buffer.from('{"v":1}'));
    expect(proto.ok && JSON.parse(proto.valueJson!)).toStrictEqual(proto.ok && proto.value);
  });
});

/** A JSON object to publish, with keys that collide with the topic fields now and then (and array-index keys, which objects order first). */
const payloadObject = fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('line', 'sensor_id', '0', '7', '__proto__', 'ü€', '"', '\\')), fc.jsonValue(), { maxKeys: 8 });
/** Topic level values as MQTT allows them in a `+` level (no `/`, `+`, `#`, not empty). */
const level = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[/+#\u0000]/.test(s));
/** Re-spells JSON text with insignificant whitespace (RFC 8259 §2) between tokens, the way a device might. */
function respace(json: string, spaces: string[]): string {
  let out = '';
  let inString = false;
  let k = 0;
  for (let i = 0; i < json.length; i++) {
    const ch = json[i]!;
    out += ch;
    if (inString) {
      if (ch === '\\') out += json[++i]!;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if ('{}[],:'.includes(ch)) out += spaces[k++ % spaces.length]!;
  }
  return spaces[0]! + out + spaces[spaces.length - 1]!;
}

describe('valueJson equals the merged value (property)', () => {
  const pattern = mqttRoutes([{ topic: 'factory/+line/+sensor_id/reading' }]);

  it('for JSON.stringify payloads it is byte for byte JSON.stringify of the merged object; else the sink falls back', () => {
    fc.assert(
      fc.property(payloadObject, level, level, fc.boolean(), (obj, line, sensor, echoSensor) => {
        // Devices often repeat the topic's sensor id in the payload.
        if (echoSensor) obj.sensor_id = sensor;
        const payload = JSON.stringify(obj);
        const out = decodeMqttMessage(pattern, `factory/${line}/${sensor}/reading`, Buffer.from(payload));
        if (!out.ok) throw out.error;
        const merged = Object.assign(JSON.parse(payload) as object, { line, sensor_id: sensor });
        const collides = (Object.hasOwn(obj, 'line') && obj.line !== line) || (Object.hasOwn(obj, 'sensor_id') && obj.sensor_id !== sensor);
        expect(out.value).toStrictEqual(merged);
        if (collides) expect(out.valueJson).toBeUndefined();
        else expect(out.valueJson).toBe(JSON.stringify(merged));
        // What a sink stores either way.
        expect(out.valueJson ?? JSON.stringify(out.value)).toBe(JSON.stringify(merged));
      }),
      { numRuns: 400 },
    );
  });

  it('for payloads spelled with whitespace it parses to exactly the merged object', () => {
    const space = fc.constantFrom('', ' ', '\n', '\t', '\r\n', '  ');
    fc.assert(
      fc.property(payloadObject, level, level, fc.boolean(), fc.array(space, { minLength: 1, maxLength: 5 }), (obj, line, sensor, echoSensor, spaces) => {
        if (echoSensor) obj.sensor_id = sensor;
        const payload = respace(JSON.stringify(obj), spaces);
        const out = decodeMqttMessage(pattern, `factory/${line}/${sensor}/reading`, Buffer.from(payload));
        if (!out.ok) throw out.error;
        const merged = Object.assign(JSON.parse(payload) as object, { line, sensor_id: sensor });
        if (out.valueJson !== undefined) expect(JSON.parse(out.valueJson)).toStrictEqual(merged);
        else expect((Object.hasOwn(obj, 'line') && obj.line !== line) || (Object.hasOwn(obj, 'sensor_id') && obj.sensor_id !== sensor)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('spliceTopicFields handles the empty object and trailing whitespace', () => {
    expect(spliceTopicFields('{}', '"a":"b"')).toBe('{"a":"b"}');
    expect(spliceTopicFields(' { \n } \r\n', '"a":"b"')).toBe(' { \n "a":"b"} \r\n');
    expect(spliceTopicFields('{"x":{}}', '"a":"b"')).toBe('{"x":{},"a":"b"}');
    expect(spliceTopicFields('{"x":1}', '')).toBe('{"x":1}');
  });
});
