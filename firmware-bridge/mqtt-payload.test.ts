import { describe, expect, it } from 'vitest';
import { decodeMqttMessage, mqttRoutes } from './mqtt-payload.ts';

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
});
