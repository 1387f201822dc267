/**
 * The lean PUBLISH reader against golden bytes and against MQTT.js's own
 * codec (mqtt-packet, the package MQTT.js parses and writes with): every
 * packet it generates reads back the same whatever the chunking, packets
 * the reader leaves to MQTT.js reach `other` whole and in order, and
 * backpressure stops and resumes reading without losing or reordering.
 */
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { MqttPublishReader, type MqttPublishHandler } from './mqtt-publish-reader.ts';

type Event = { publish: { topic: string; payload: string; qos: number; messageId: number; dup: boolean } } | { other: string };

/** Records what the reader hands out; `stopAfter`: return false from the n-th publish (1-based). */
function recorder(stopAfter: number[] = []): { handler: MqttPublishHandler; events: Event[] } {
  const events: Event[] = [];
  let publishes = 0;
  return {
    events,
    handler: {
      publish(topic, payload, qos, messageId, dup) {
        events.push({ publish: { topic, payload: payload.toString('hex'), qos, messageId, dup } });
        return !stopAfter.includes(++publishes);
      },
      other(bytes) {
        events.push({ other: bytes.toString('hex') });
      },
    },
  };
}

const generate = (packet: object, protocolVersion: 4 | 5): Buffer => mqttPacket.generate(packet as mqttPacket.Packet, { protocolVersion });

/** What mqtt-packet's parser makes of `bytes`, in the recorder's terms (QoS 0/1 PUBLISH → publish, else → other). */
function reference(packets: Buffer[], protocolVersion: 4 | 5): Event[] {
  return packets.map((bytes) => {
    const parser = mqttPacket.parser({ protocolVersion });
    let parsed: mqttPacket.Packet | undefined;
    parser.on('packet', (p) => (parsed = p));
    parser.parse(bytes);
    if (parsed?.cmd === 'publish' && parsed.qos < 2 && parsed.properties?.topicAlias === undefined) {
      const payload = typeof parsed.payload === 'string' ? Buffer.from(parsed.payload) : parsed.payload;
      return { publish: { topic: parsed.topic, payload: payload.toString('hex'), qos: parsed.qos, messageId: parsed.messageId ?? 0, dup: parsed.dup } };
    }
    return { other: bytes.toString('hex') };
  });
}

/** Feeds `stream` cut at `cuts` (sorted offsets). */
function feed(reader: MqttPublishReader, stream: Buffer, cuts: number[]): void {
  let at = 0;
  for (const cut of [...cuts, stream.length]) {
    reader.push(stream.subarray(at, cut));
    at = cut;
  }
}

const v5Packets = (): Buffer[] => [
  generate({ cmd: 'connack', sessionPresent: true, reasonCode: 0, properties: { receiveMaximum: 100 } }, 5),
  generate({ cmd: 'suback', messageId: 1, granted: [1], properties: {} }, 5),
  generate({ cmd: 'publish', topic: 'factory/w01/aa-100/reading', payload: Buffer.from('{"temp":21}'), qos: 1, messageId: 2, dup: false, retain: false }, 5),
  generate(
    {
      cmd: 'publish',
      topic: 'factory/w02/ä-ü/reading',
      payload: Buffer.from('{"x":"é"}'),
      qos: 1,
      messageId: 65535,
      dup: true,
      retain: true,
      properties: {
        payloadFormatIndicator: true,
        messageExpiryInterval: 3600,
        contentType: 'application/json',
        responseTopic: 'replies/1',
        correlationData: Buffer.from([1, 2, 3]),
        subscriptionIdentifier: 200_000,
        userProperties: { site: 'plant-7', line: ['a', 'b'] },
      },
    },
    5,
  ),
  generate({ cmd: 'publish', topic: 't/qos0', payload: Buffer.alloc(0), qos: 0, dup: false, retain: false }, 5),
  generate({ cmd: 'publish', topic: 't/qos2', payload: Buffer.from('two'), qos: 2, messageId: 9, dup: false, retain: false }, 5),
  generate({ cmd: 'publish', topic: 't/alias', payload: Buffer.from('{}'), qos: 1, messageId: 10, dup: false, retain: false, properties: { topicAlias: 3 } }, 5),
  generate({ cmd: 'publish', topic: 't/big', payload: Buffer.alloc(20_000, 0x61), qos: 1, messageId: 11, dup: false, retain: false }, 5),
  generate({ cmd: 'pingresp' }, 5),
  generate({ cmd: 'disconnect', reasonCode: 0x8b }, 5),
];

const v4Packets = (): Buffer[] => [
  generate({ cmd: 'connack', sessionPresent: false, returnCode: 0 }, 4),
  generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('{"v":1}'), qos: 1, messageId: 7, dup: false, retain: false }, 4),
  generate({ cmd: 'publish', topic: 'a/c', payload: Buffer.alloc(300, 0x7a), qos: 0, dup: false, retain: false }, 4),
  generate({ cmd: 'publish', topic: 'a/d', payload: Buffer.from('q2'), qos: 2, messageId: 8, dup: false, retain: false }, 4),
  generate({ cmd: 'pingresp' }, 4),
];

describe('MqttPublishReader', () => {
  it('reads a 3.1.1 QoS 1 PUBLISH from golden bytes', () => {
    const { handler, events } = recorder();
    // 0x3a: PUBLISH, QoS 1, DUP; remaining length 12; topic "a/b"; packet id 7; payload "hello".
    new MqttPublishReader(4, handler).push(Buffer.from([0x3a, 12, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x00, 0x07, 0x68, 0x65, 0x6c, 0x6c, 0x6f]));
    expect(events).toEqual([{ publish: { topic: 'a/b', payload: Buffer.from('hello').toString('hex'), qos: 1, messageId: 7, dup: true } }]);
  });

  it('reads an MQTT 5 PUBLISH with an empty property list and a two-byte remaining length from golden bytes', () => {
    const { handler, events } = recorder();
    const payload = Buffer.alloc(200, 0x30);
    // 0x32: PUBLISH QoS 1; remaining length 2 + 1 + 2 + 1 + 200 = 206 = 0xce 0x01; topic "t"; id 0x0102; properties length 0.
    const packet = Buffer.concat([Buffer.from([0x32, 0xce, 0x01, 0x00, 0x01, 0x74, 0x01, 0x02, 0x00]), payload]);
    new MqttPublishReader(5, handler).push(packet);
    expect(events).toEqual([{ publish: { topic: 't', payload: payload.toString('hex'), qos: 1, messageId: 0x0102, dup: false } }]);
  });

  for (const [version, packets] of [
    [5, v5Packets],
    [4, v4Packets],
  ] as const) {
    it(`MQTT ${version}: reads what mqtt-packet generates as mqtt-packet parses it, whatever the chunking; the rest goes to other() whole and in order`, () => {
      const list = packets();
      const stream = Buffer.concat(list);
      const expected = reference(list, version);
      // Every single cut point.
      for (let cut = 0; cut <= stream.length; cut += cut < 400 ? 1 : 97) {
        const { handler, events } = recorder();
        feed(new MqttPublishReader(version, handler), stream, [cut]);
        expect(events).toEqual(expected);
      }
      // Many random cuts.
      fc.assert(
        fc.property(fc.uniqueArray(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), (cuts) => {
          const { handler, events } = recorder();
          feed(new MqttPublishReader(version, handler), stream, cuts.sort((a, b) => a - b));
          expect(events).toEqual(expected);
        }),
        { numRuns: 200 },
      );
    });

    it(`MQTT ${version}: stops and resumes anywhere, whatever the chunking, without losing or reordering a packet (property)`, () => {
      const list = packets();
      const stream = Buffer.concat(list);
      const expected = reference(list, version);
      const publishes = expected.filter((e) => 'publish' in e).length;
      fc.assert(
        fc.property(
          fc.uniqueArray(fc.integer({ min: 0, max: stream.length }), { maxLength: 30 }),
          fc.uniqueArray(fc.integer({ min: 1, max: publishes }), { maxLength: publishes }),
          fc.array(fc.boolean(), { minLength: 31, maxLength: 31 }),
          (cuts, stops, resumeAfterChunk) => {
            const { handler, events } = recorder(stops);
            const reader = new MqttPublishReader(version, handler);
            let at = 0;
            const sorted = [...cuts.sort((a, b) => a - b), stream.length];
            sorted.forEach((cut, i) => {
              reader.push(stream.subarray(at, cut));
              at = cut;
              // Resume at once, or only after more chunks arrived while paused.
              if (resumeAfterChunk[i]) while (reader.paused) reader.resume();
            });
            while (reader.paused) reader.resume();
            expect(events).toEqual(expected);
            expect(reader.bufferedBytes).toBe(0);
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it('leaves to other() an MQTT 5 PUBLISH whose properties are malformed or overrun the packet', () => {
    const cases = [
      // Property id 0x24 (Maximum QoS) may not appear in a PUBLISH.
      Buffer.from([0x32, 0x09, 0x00, 0x01, 0x74, 0x00, 0x01, 0x02, 0x24, 0x01, 0x7b]),
      // Properties length 9 overruns the packet.
      Buffer.from([0x32, 0x07, 0x00, 0x01, 0x74, 0x00, 0x01, 0x09, 0x01]),
      // Topic length 0x0100 overruns the packet.
      Buffer.from([0x30, 0x04, 0x01, 0x00, 0x74, 0x74]),
    ];
    for (const packet of cases) {
      const { handler, events } = recorder();
      new MqttPublishReader(5, handler).push(packet);
      expect(events).toEqual([{ other: packet.toString('hex') }]);
    }
  });

  it('after a remaining length longer than 4 bytes hands every further byte to other() as it comes', () => {
    const { handler, events } = recorder();
    const reader = new MqttPublishReader(4, handler);
    const good = generate({ cmd: 'publish', topic: 'a', payload: Buffer.from('1'), qos: 0, dup: false, retain: false }, 4);
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]);
    reader.push(Buffer.concat([good, bad]));
    reader.push(good);
    expect(events).toEqual([{ publish: { topic: 'a', payload: '31', qos: 0, messageId: 0, dup: false } }, { other: bad.toString('hex') }, { other: good.toString('hex') }]);
  });

  it('backpressure: stops after a publish() that returns false, keeps what comes meanwhile, and resumes in order', () => {
    const list = Array.from({ length: 6 }, (_, i) => generate({ cmd: 'publish', topic: `t/${i}`, payload: Buffer.from(String(i)), qos: 1, messageId: i + 1, dup: false, retain: false }, 5));
    const { handler, events } = recorder([2, 4]);
    const reader = new MqttPublishReader(5, handler);
    reader.push(Buffer.concat(list.slice(0, 3)));
    expect(events.length).toBe(2);
    expect(reader.paused).toBe(true);
    // Bytes that arrive while paused (the socket's last chunk) are kept, not read.
    reader.push(Buffer.concat(list.slice(3)).subarray(0, 10));
    reader.push(Buffer.concat(list.slice(3)).subarray(10));
    expect(events.length).toBe(2);
    expect(reader.bufferedBytes).toBe(Buffer.concat(list.slice(2)).length);
    reader.resume();
    expect(events.length).toBe(4);
    expect(reader.paused).toBe(true);
    reader.resume();
    expect(reader.paused).toBe(false);
    expect(reader.bufferedBytes).toBe(0);
    expect(events.map((e) => ('publish' in e ? e.publish.messageId : -1))).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
