import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MqttFastDecoder } from './mqtt-fast-decoder.ts';
import { decodeMqttMessage, mqttRoutes } from './mqtt-payload.ts';
import { ReadingBuilder, ScannedReading } from './reading-builder.ts';

const subscriptions = [{ topic: 'factory/+line/+sensor_id/reading' }, { topic: 'lab/#rest', logTopic: 'lab' }, { topic: 'plain/+/x' }];
const RECEIVED_AT = Date.parse('2026-11-26T12:00:00.000Z');

function paths(options: { needsValue?: (t: string) => boolean; keyField?: string; timestampField?: string } = {}) {
  const routes = mqttRoutes(subscriptions);
  const keyField = options.keyField ?? 'sensor_id';
  const timestampField = options.timestampField ?? 'reading_ts';
  const fast = new MqttFastDecoder(routes, { keyField, timestampField, topic: 'widgets', needsValue: options.needsValue });
  const builderOptions = { topic: 'widgets', device: 'broker-1', kind: 'mqtt' as const, gatewayId: 'gw-1', keyField, timestampField };
  const fastBuilder = new ReadingBuilder(builderOptions);
  const generalBuilder = new ReadingBuilder(builderOptions);
  /** The general path's reading (or null when it dead-letters), as the adapter builds it. */
  const general = (topic: string, payload: Buffer) => {
    const out = decodeMqttMessage(routes, topic, payload);
    if (!out.ok) return null;
    try {
      return generalBuilder.build(out.value, RECEIVED_AT, out.topic, out.valueJson);
    } catch {
      return null;
    }
  };
  const viaFast = (topic: string, payload: Buffer) => {
    if (!fast.decode(topic, payload)) return null;
    return fastBuilder.buildScanned(fast.valueBytes!, fast.key, fast.eventTime, RECEIVED_AT, fast.logTopic);
  };
  return { fast, general, viaFast };
}

const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes!).toString('utf8');

describe('MqttFastDecoder', () => {
  it('stores the payload bytes with the missing topic levels spliced in, byte for byte as the general path spells valueJson', () => {
    const { general, viaFast } = paths();
    const payload = Buffer.from(' { "sensor_id" : "aa-101", "reading_ts":"2020-02-14T12:19:27.250Z", "t" : 1.50 }\n');
    const r = viaFast('factory/w01/aa-101/reading', payload)!;
    expect(r).toBeInstanceOf(ScannedReading);
    expect(text(r.valueBytes)).toBe(' { "sensor_id" : "aa-101", "reading_ts":"2020-02-14T12:19:27.250Z", "t" : 1.50 ,"line":"w01"}\n');
    const g = general('factory/w01/aa-101/reading', payload)!;
    expect(text(r.valueBytes)).toBe(g.valueJson);
    expect([r.topic, r.key, r.timestamp, r.headers, r.value]).toEqual([g.topic, g.key, g.timestamp, g.headers, g.value]);
    expect(r.key).toBe('aa-101');
    expect(r.timestamp).toBe(Date.parse('2020-02-14T12:19:27.250Z'));
    expect(r.headers.clock_skew_ms).toBe(String(r.timestamp - RECEIVED_AT));
  });

  it('splices into an empty object without a comma, and leaves a payload that has every level as it is', () => {
    const { viaFast } = paths();
    expect(text(viaFast('factory/w01/aa-101/reading', Buffer.from('{}'))!.valueBytes)).toBe('{"line":"w01","sensor_id":"aa-101"}');
    expect(text(viaFast('factory/w01/aa-101/reading', Buffer.from('{ }'))!.valueBytes)).toBe('{ "line":"w01","sensor_id":"aa-101"}');
    expect(text(viaFast('factory/w01/aa-101/reading', Buffer.from('{"line":"w01","sensor_id":"aa-101"}'))!.valueBytes)).toBe('{"line":"w01","sensor_id":"aa-101"}');
    expect(text(viaFast('plain/q/x', Buffer.from('{"v": 2}'))!.valueBytes)).toBe('{"v": 2}');
  });

  const declined: Array<[string, string, string | Buffer]> = [
    ['no subscription matches', 'other/topic', '{"v":1}'],
    ['not UTF-8', 'lab/a', Buffer.from([0x7b, 0xc3, 0x28, 0x7d])],
    ['not UTF-8 inside a string', 'lab/a', Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
    ['not JSON', 'lab/a', 'colour=RED'],
    ['not an object', 'lab/a', '[1]'],
    ['a topic level overridden with another value', 'factory/w01/aa-101/reading', '{"sensor_id":"spoofed"}'],
    ['a topic level held as a number', 'factory/w01/aa-101/reading', '{"line":1}'],
    ['a topic level held escaped', 'factory/w01/aa-101/reading', '{"line":"w\\u00301"}'],
    ['an escaped member name', 'lab/a', '{"sensor\\u005fid":"x"}'],
    ['an escaped key', 'lab/a', '{"sensor_id":"a\\nb"}'],
    ['an object key', 'lab/a', '{"sensor_id":{"a":1}}'],
    ['an unreadable event time', 'lab/a', '{"reading_ts":"tomorrow"}'],
    ['an event time that is not a string or number', 'lab/a', '{"reading_ts":true}'],
    ['an escaped event time', 'lab/a', '{"reading_ts":"2020-02-14T12:19:27\\u002e000Z"}'],
  ];
  it.each(declined)('declines %s (the general path decides)', (_, topic, payload) => {
    const { fast } = paths();
    expect(fast.decode(topic, Buffer.isBuffer(payload) ? payload : Buffer.from(payload))).toBe(false);
  });

  it('declines topics whose log topic has a JSON Schema (the check needs the parsed value)', () => {
    const { fast } = paths({ needsValue: (t) => t === 'lab' });
    expect(fast.decode('lab/a', Buffer.from('{"v":1}'))).toBe(false);
    expect(fast.decode('plain/q/x', Buffer.from('{"v":1}'))).toBe(true);
  });

  it('takes the key from the topic level when the key field is one (the level wins)', () => {
    const { fast } = paths({ keyField: 'line' });
    expect(fast.decode('factory/w02/aa-1/reading', Buffer.from('{"line":"w02","v":1}'))).toBe(true);
    expect(fast.key).toBe('w02');
    expect(text(fast.valueBytes!)).toBe('{"line":"w02","v":1,"sensor_id":"aa-1"}');
    expect(fast.decode('factory/w02/aa-1/reading', Buffer.from('{"line":"w03"}'))).toBe(false);
  });

  it('declines every message when the timestamp field is a topic level', () => {
    const { fast } = paths({ timestampField: 'line' });
    expect(fast.decode('factory/w02/aa-1/reading', Buffer.from('{"v":1}'))).toBe(false);
  });

  it('value bytes stay intact while later messages are decoded (arenas are never reused)', () => {
    const { viaFast } = paths();
    const kept = Array.from({ length: 2000 }, (_, i) => viaFast('plain/q/x', Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(i % 50) })))!);
    kept.forEach((r, i) => expect(JSON.parse(text(r.valueBytes))).toEqual({ i, pad: 'x'.repeat(i % 50) }));
    const big = viaFast('plain/q/x', Buffer.from(JSON.stringify({ big: 'y'.repeat(100_000) })))!;
    expect(text(big.valueBytes).length).toBe(100_010);
    expect(JSON.parse(text(kept[0]!.valueBytes))).toEqual({ i: 0, pad: '' });
  });

  it('gives exactly the general path reading whenever it accepts, and accepts the common shapes (property)', () => {
    const { general, viaFast } = paths();
    const iso = fc.date({ min: new Date(-62_000_000_000_000), max: new Date(250_000_000_000_000), noInvalidDate: true }).map((d) => d.toISOString());
    const isoLike = fc
      .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.integer({ min: 0, max: 61 }), fc.integer({ min: 0, max: 999 }))
      .map(([y, mo, d, h, mi, s, ms]) => `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}.${String(ms).padStart(3, '0')}Z`);
    const timestamp = fc.oneof(iso, isoLike, fc.integer({ min: -5, max: 2 ** 53 }), fc.double(), fc.constantFrom('2020-02-14 12:19:27', '1581682767000', '', 'soon', null, true, [1]));
    const key = fc.oneof(fc.constantFrom('aa-101', 'aa-102', 'ü-1'), fc.string({ maxLength: 8 }), fc.integer(), fc.constantFrom(null, true, false, 1.5e300, { a: 1 }));
    const extra = fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
    const level = fc.constantFrom('w01', 'aa-101', 'é');
    const payload = fc.record(
      { reading_ts: timestamp, sensor_id: key, line: fc.oneof(level, fc.integer()), extra },
      { requiredKeys: ['extra'] },
    );
    const topic = fc.oneof(
      fc.tuple(level, level).map(([l, s]) => `factory/${l}/${s}/reading`),
      fc.constantFrom('lab/a', 'lab/a/b', 'plain/q/x', 'nowhere'),
    );
    fc.assert(
      fc.property(topic, payload, fc.constantFrom(undefined, 1, ' '), fc.boolean(), (t, p, space, extraFirst) => {
        const { extra: rest, ...named } = p;
        const obj = extraFirst ? { ...rest, ...named } : { ...named, ...rest };
        const bytes = Buffer.from(JSON.stringify(obj, null, space));
        const g = general(t, bytes);
        const f = viaFast(t, bytes);
        if (f === null) return;
        expect(g).not.toBeNull();
        expect({ topic: f.topic, key: f.key, timestamp: f.timestamp, headers: f.headers, value: f.value }).toEqual({
          topic: g!.topic,
          key: g!.key,
          timestamp: g!.timestamp,
          headers: g!.headers,
          value: g!.value,
        });
        if (g!.valueJson !== undefined) expect(text(f.valueBytes)).toBe(g!.valueJson);
      }),
      { numRuns: 3000 },
    );
    // The common shape is taken by the fast path: an ISO time, a string key, levels missing or equal.
    expect(viaFast('factory/w01/aa-101/reading', Buffer.from(JSON.stringify({ reading_ts: '2020-02-14T12:19:27.000Z', sensor_id: 'aa-101', v: 1 })))).not.toBeNull();
    expect(viaFast('factory/w01/aa-101/reading', Buffer.from(JSON.stringify({ reading_ts: 1581682767000, v: 1 })))).not.toBeNull();
  });

  it('reads ISO event times from bytes exactly as parseEventTime reads the text (property)', () => {
    const { general, viaFast } = paths();
    const digits = (n: number) => fc.integer({ min: 0, max: 10 ** n - 1 }).map((v) => String(v).padStart(n, '0'));
    const time = fc
      .tuple(digits(4), digits(2), digits(2), digits(2), digits(2), digits(2), digits(3), fc.constantFrom('T', 't', ' '), fc.constantFrom('Z', 'z', 'X'))
      .map(([y, mo, d, h, mi, s, ms, sep, z]) => `${y}-${mo}-${d}${sep}${h}:${mi}:${s}.${ms}${z}`);
    fc.assert(
      fc.property(time, (ts) => {
        const bytes = Buffer.from(JSON.stringify({ reading_ts: ts }));
        const f = viaFast('lab/a', bytes);
        const g = general('lab/a', bytes);
        expect(f?.timestamp ?? null).toBe(g?.timestamp ?? null);
      }),
      { numRuns: 3000 },
    );
  });
});
