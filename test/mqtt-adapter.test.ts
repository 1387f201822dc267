/**
 * The MQTT adapter against real brokers: aedes in-process always, Mosquitto
 * as a child process where it is installed. Same suite for both.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttAdapter, type MqttAdapterConfig } from '../firmware-bridge/mqtt-adapter.ts';
import type { CaptureFrame, CaptureWriter } from '../firmware-bridge/capture.ts';
import { SchemaCheck } from '../firmware-bridge/schema-check.ts';
import { brokerKinds, startBroker, type TestBroker } from './support/mqtt-broker.ts';
import { MemorySink, waitFor } from './support/mqtt-sink.ts';

const fastRetry = { initialMs: 20, maxMs: 200 };

function reading(sensor: string, n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    reading_ts: new Date(Date.UTC(2020, 1, 14, 12, 19, 27) + n * 1000).toISOString(),
    sensor_id: sensor,
    production_line: 'w01',
    widget_type: 'acme94',
    colour: 'RED',
    temp_celcius: 23,
    widget_weight_g: 100 + n,
    n,
    ...extra,
  };
}

class ArrayCapture implements CaptureWriter {
  readonly frames: CaptureFrame[] = [];
  readonly dropped = 0;
  write(frame: CaptureFrame): void {
    this.frames.push(frame);
  }
  async close(): Promise<void> {}
}

describe.each(brokerKinds)('MQTT adapter against $kind', ({ kind, available, skipReason }) => {
  let broker: TestBroker;
  let publisher: MqttClient;
  const adapters: MqttAdapter[] = [];
  let seq = 0;

  beforeAll(async () => {
    if (!available) return;
    broker = await startBroker(kind);
  });
  afterAll(async () => {
    await broker?.close();
  });
  afterEach(async () => {
    for (const a of adapters.splice(0)) await a.stop();
    await publisher?.endAsync(true);
  });

  function adapter(sink: MemorySink, config: Partial<MqttAdapterConfig> = {}, capture?: CaptureWriter): MqttAdapter {
    const a = new MqttAdapter(
      {
        device: 'broker-1',
        topic: 'widgets',
        url: broker.url,
        clientId: `millstream-test-${kind}-${++seq}`,
        subscriptions: [{ topic: 'factory/+line/+sensor_id/reading' }],
        reconnect: fastRetry,
        sinkRetry: fastRetry,
        ...config,
      },
      { sink, gatewayId: 'gw-7', ...(capture ? { capture } : {}) },
    );
    adapters.push(a);
    return a;
  }

  async function connectPublisher(): Promise<MqttClient> {
    publisher = await connectAsync(broker.url, { clientId: `pub-${kind}-${++seq}`, reconnectPeriod: 50 });
    return publisher;
  }

  it.skipIf(!available)(`readings flow to the sink with topic levels as fields${skipReason ? ` (skipped: ${skipReason})` : ''}`, async () => {
    const sink = new MemorySink();
    const capture = new ArrayCapture();
    const a = adapter(sink, {}, capture);
    await a.start();
    expect(a.status()[0]).toMatchObject({ device: 'broker-1', kind: 'mqtt', state: 'connected', connected: true });
    const pub = await connectPublisher();
    await pub.publishAsync('factory/w01/aa-101/reading', JSON.stringify(reading('aa-101', 1)), { qos: 1 });
    await pub.publishAsync('factory/w02/aa-102/reading', JSON.stringify(reading('aa-102', 2)), { qos: 1 });
    await pub.publishAsync('factory/w02/aa-102/status', JSON.stringify({ up: true }), { qos: 1 });
    await waitFor(() => sink.readings.length >= 2);

    const [r1, r2] = sink.readings;
    expect(r1).toMatchObject({
      topic: 'widgets',
      key: 'aa-101',
      timestamp: Date.UTC(2020, 1, 14, 12, 19, 28),
      value: { ...reading('aa-101', 1), line: 'w01', sensor_id: 'aa-101' },
      headers: { source: 'mqtt', device: 'broker-1', gateway_id: 'gw-7' },
    });
    expect(Number(r1!.headers.received_at)).toBeGreaterThan(0);
    expect(r2).toMatchObject({ key: 'aa-102', value: { line: 'w02', n: 2 } });
    // The raw topic and payload are captured as received.
    expect(capture.frames.map((f) => [f.kind, f.device, f.topic, Buffer.from(f.data!).toString()])).toEqual([
      ['mqtt', 'broker-1', 'factory/w01/aa-101/reading', JSON.stringify(reading('aa-101', 1))],
      ['mqtt', 'broker-1', 'factory/w02/aa-102/reading', JSON.stringify(reading('aa-102', 2))],
    ]);
    await waitFor(() => a.status()[0]!.readings === 2);
    expect(a.status()[0]).toMatchObject({ readings: 2, decodeErrors: 0, deadLetters: 0, lastReadingAt: expect.any(Number) });
  });

  it.skipIf(!available)('wildcards: # with a named rest, several subscriptions with their own log topics and QoS', async () => {
    const sink = new MemorySink();
    const a = adapter(sink, {
      subscriptions: [
        { topic: 'plant/+site/sensors/#path', logTopic: 'plant-sensors', qos: 0 },
        { topic: 'lab/+sensor_id', logTopic: 'lab', qos: 1 },
      ],
    });
    await a.start();
    const pub = await connectPublisher();
    await pub.publishAsync('plant/berlin/sensors/hall-2/aa-7', JSON.stringify({ sensor_id: 'aa-7', v: 1 }), { qos: 1 });
    await pub.publishAsync('plant/berlin/sensors', JSON.stringify({ sensor_id: 'aa-8', v: 2 }), { qos: 1 });
    await pub.publishAsync('lab/bb-1', JSON.stringify({ v: 3 }), { qos: 1 });
    await pub.publishAsync('lab/bb-1/extra', JSON.stringify({ v: 4 }), { qos: 1 });
    await pub.publishAsync('plant/berlin/other', JSON.stringify({ v: 5 }), { qos: 1 });
    await waitFor(() => sink.readings.length >= 3);
    // One more round trip through the broker so a wrongly delivered message would have arrived too.
    await pub.publishAsync('lab/bb-2', JSON.stringify({ v: 6 }), { qos: 1 });
    await waitFor(() => sink.readings.length >= 4);
    const byV = Object.fromEntries(sink.readings.map((r) => [r.value.v, r]));
    expect(Object.keys(byV).sort()).toEqual(['1', '2', '3', '6']);
    expect(byV[1]).toMatchObject({ topic: 'plant-sensors', key: 'aa-7', value: { site: 'berlin', path: 'hall-2/aa-7' } });
    expect(byV[2]).toMatchObject({ topic: 'plant-sensors', key: 'aa-8', value: { site: 'berlin', path: '' } });
    // The topic level feeds the key field.
    expect(byV[3]).toMatchObject({ topic: 'lab', key: 'bb-1', value: { sensor_id: 'bb-1', v: 3 } });
    expect(sink.letters).toEqual([]);
  });

  it.skipIf(!available)('readings are stored as their payload bytes, except on topics with a JSON Schema, which are checked', async () => {
    const sink = new MemorySink();
    const schemaCheck = new SchemaCheck({ schemas: { widgets: { type: 'object', required: ['temp_celcius'], properties: { temp_celcius: { type: 'number' } } } } });
    const a = new MqttAdapter(
      {
        device: 'broker-1',
        topic: 'widgets',
        url: broker.url,
        clientId: `millstream-test-${kind}-${++seq}`,
        subscriptions: [{ topic: 'factory/+line/+sensor_id/reading' }, { topic: 'lab/+sensor_id', logTopic: 'lab' }],
        reconnect: fastRetry,
        sinkRetry: fastRetry,
      },
      { sink, gatewayId: 'gw-7', schemaCheck },
    );
    adapters.push(a);
    await a.start();
    const pub = await connectPublisher();
    await pub.publishAsync('factory/w01/aa-101/reading', '{"sensor_id":"aa-101","temp_celcius":21}', { qos: 1 });
    await pub.publishAsync('factory/w01/aa-102/reading', '{"sensor_id":"aa-102","temp_celcius":"hot"}', { qos: 1 });
    await pub.publishAsync('lab/bb-1', '{ "temp_celcius": "hot", "n": 1 }', { qos: 1 });
    await waitFor(() => sink.readings.length + sink.letters.length >= 3);
    const widget = sink.readings.find((r) => r.topic === 'widgets')!;
    const lab = sink.readings.find((r) => r.topic === 'lab')!;
    // The schema-checked topic went through the parsed value; the other one is its payload's bytes, the level spliced in.
    expect(widget).toMatchObject({ key: 'aa-101', value: { sensor_id: 'aa-101', temp_celcius: 21, line: 'w01' }, valueJson: '{"sensor_id":"aa-101","temp_celcius":21,"line":"w01"}' });
    expect(widget.valueBytes).toBeUndefined();
    expect(Buffer.from(lab.valueBytes!).toString()).toBe('{ "temp_celcius": "hot", "n": 1 ,"sensor_id":"bb-1"}');
    expect(lab).toMatchObject({ key: 'bb-1', value: { temp_celcius: 'hot', n: 1, sensor_id: 'bb-1' } });
    expect(sink.letters).toHaveLength(1);
    expect(sink.letters[0]).toMatchObject({ intendedTopic: 'widgets', raw: '{"sensor_id":"aa-102","temp_celcius":"hot"}', reason: expect.stringContaining('temp_celcius') });
    await waitFor(() => a.status()[0]!.deadLetters === 1);
    expect(a.status()[0]).toMatchObject({ readings: 2, decodeErrors: 0 });
  });

  it.skipIf(!available)('payloads that are not a JSON object go to the dead-letter topic with the raw payload', async () => {
    const sink = new MemorySink();
    const a = adapter(sink, { deadLetterTopic: 'widgets-dead' });
    await a.start();
    const pub = await connectPublisher();
    await pub.publishAsync('factory/w01/aa-101/reading', 'temp=23;colour=RED', { qos: 1 });
    await pub.publishAsync('factory/w01/aa-101/reading', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { qos: 1 });
    await pub.publishAsync('factory/w01/aa-101/reading', '[1,2,3]', { qos: 1 });
    await pub.publishAsync('factory/w01/aa-101/reading', JSON.stringify({ reading_ts: 'yesterday-ish', sensor_id: 'aa-101' }), { qos: 1 });
    await pub.publishAsync('factory/w01/aa-101/reading', JSON.stringify(reading('aa-101', 9)), { qos: 1 });
    await waitFor(() => sink.letters.length >= 4 && sink.readings.length >= 1);

    expect(sink.readings.map((r) => r.value.n)).toEqual([9]);
    expect(sink.letters.map((l) => ({ ...l, receivedAt: typeof l.receivedAt }))).toEqual([
      { topic: 'widgets-dead', intendedTopic: 'widgets', device: 'broker-1', raw: 'temp=23;colour=RED', reason: expect.stringMatching(/^BRIDGE_DECODE: payload on factory\/w01\/aa-101\/reading is not JSON/), receivedAt: 'number' },
      { topic: 'widgets-dead', intendedTopic: 'widgets', device: 'broker-1', raw: 'hex:7bfffe7d', reason: 'BRIDGE_INVALID_UTF8: payload on factory/w01/aa-101/reading is not valid UTF-8: 7bfffe7d', receivedAt: 'number' },
      { topic: 'widgets-dead', intendedTopic: 'widgets', device: 'broker-1', raw: '[1,2,3]', reason: 'BRIDGE_DECODE: payload on factory/w01/aa-101/reading must be a JSON object, got an array', receivedAt: 'number' },
      { topic: 'widgets-dead', intendedTopic: 'widgets', device: 'broker-1', raw: JSON.stringify({ reading_ts: 'yesterday-ish', sensor_id: 'aa-101' }), reason: 'reading_ts "yesterday-ish" is neither ISO-8601 nor epoch ms', receivedAt: 'number' },
    ]);
    await waitFor(() => a.status()[0]!.deadLetters === 4);
    expect(a.status()[0]).toMatchObject({ readings: 1, decodeErrors: 4, deadLetters: 4 });
  });

  it.skipIf(!available)('QoS 1 messages not yet stored are redelivered to the next session of the same client id', async () => {
    const clientId = `millstream-session-${kind}-${++seq}`;
    // A sink that refuses everything: received, never stored, so never acknowledged.
    const held = new MemorySink();
    held.refuseNext = Number.MAX_SAFE_INTEGER;
    const seen = new ArrayCapture();
    const first = adapter(held, { clientId, stopTimeoutMs: 200 }, seen);
    await first.start();
    const pub = await connectPublisher();
    for (let n = 0; n < 20; n++) await pub.publishAsync(`factory/w01/s-${n}/reading`, JSON.stringify(reading(`s-${n}`, n)), { qos: 1 });
    await waitFor(() => seen.frames.length === 20 && held.attempts.length > 0);
    // Stopped while the sink still refuses them: nothing was acknowledged.
    await first.stop();
    expect(held.readings).toEqual([]);
    // Published while no one is connected: the persistent session queues them.
    for (let n = 20; n < 30; n++) await pub.publishAsync(`factory/w01/s-${n}/reading`, JSON.stringify(reading(`s-${n}`, n)), { qos: 1 });

    const sink = new MemorySink();
    const second = adapter(sink, { clientId });
    await second.start();
    await waitFor(() => new Set(sink.readings.map((r) => r.value.n)).size === 30);
    expect([...new Set(sink.readings.map((r) => r.value.n))].sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 30 }, (_, n) => n));
    // Acknowledged this time: a third session gets nothing more.
    await second.stop();
    const after = new MemorySink();
    const third = adapter(after, { clientId });
    await third.start();
    await pub.publishAsync('factory/w01/last/reading', JSON.stringify(reading('last', 99)), { qos: 1 });
    await waitFor(() => after.readings.length >= 1);
    expect(after.readings.map((r) => r.value.n)).toEqual([99]);
  });

  it.skipIf(!available || kind !== 'mosquitto')('MQTT 5: the session outlives the connection and receiveMaximum bounds what is in flight', async () => {
    const clientId = `millstream-v5-${++seq}`;
    const refusing = new MemorySink();
    refusing.refuseNext = Number.MAX_SAFE_INTEGER;
    const seen = new ArrayCapture();
    const first = adapter(refusing, { clientId, protocolVersion: 5, maxPendingReadings: 5, stopTimeoutMs: 200 }, seen);
    await first.start();
    const pub = await connectPublisher();
    const total = 50;
    for (let n = 0; n < total; n++) await pub.publishAsync(`factory/w05/v-${n}/reading`, JSON.stringify(reading(`v-${n}`, n)), { qos: 1 });
    await waitFor(() => seen.frames.length >= 5 && refusing.attempts.length > 2);
    // Nothing acked: the broker sent receiveMaximum (= maxPendingReadings) messages and then waited (the adapter's own hold is one further).
    expect(seen.frames.length).toBe(5);
    await first.stop();

    const sink = new MemorySink();
    const second = adapter(sink, { clientId, protocolVersion: 5 });
    await second.start();
    await waitFor(() => new Set(sink.readings.map((r) => r.value.n)).size === total);
  });

  it.skipIf(!available)('a clean session does not get what was published while it was away', async () => {
    const clientId = `millstream-clean-${kind}-${++seq}`;
    const first = adapter(new MemorySink(), { clientId, cleanSession: true });
    await first.start();
    await first.stop();
    const pub = await connectPublisher();
    await pub.publishAsync('factory/w01/away/reading', JSON.stringify(reading('away', 1)), { qos: 1 });
    const sink = new MemorySink();
    const second = adapter(sink, { clientId, cleanSession: true });
    await second.start();
    await pub.publishAsync('factory/w01/back/reading', JSON.stringify(reading('back', 2)), { qos: 1 });
    await waitFor(() => sink.readings.length >= 1);
    expect(sink.readings.map((r) => r.key)).toEqual(['back']);
  });

  for (const leanPublishReader of [true, false]) {
    it.skipIf(!available)(`backpressure${leanPublishReader ? '' : ' (MQTT.js parses every PUBLISH)'}: a refusing sink gets the same batch again, nothing is acked or lost, input pauses at the mark`, async () => {
      const sink = new MemorySink();
      sink.hold();
      sink.refuseNext = 3;
      const maxPendingReadings = 5;
      let maxUnstored = 0;
      const capture: CaptureWriter = {
        dropped: 0,
        write: () => {
          received++;
          maxUnstored = Math.max(maxUnstored, received - sink.readings.length);
        },
        close: async () => {},
      };
      let received = 0;
      const a = adapter(sink, { maxPendingReadings, leanPublishReader }, capture);
      await a.start();
      const pub = await connectPublisher();
      const total = 60;
      await Promise.all(Array.from({ length: total }, (_, n) => pub.publishAsync(`factory/w01/s-${n}/reading`, JSON.stringify(reading(`s-${n}`, n)), { qos: 1 })));
      // Every message is at the broker; the adapter took what fits under the mark and stopped reading.
      await waitFor(() => sink.attempts.length >= 4);
      expect(received).toBeLessThan(total);
      expect(a.status()[0]!.state).toBe('paused');
      expect(a.status()[0]!.errors).toBeGreaterThanOrEqual(3);
      expect(a.status()[0]!.lastError).toMatch(/disk below floor/);
      // The refused batch came back unchanged.
      expect(sink.attempts[1]).toEqual(sink.attempts[0]);
      sink.release();
      await waitFor(() => new Set(sink.readings.map((r) => r.value.n)).size === total);
      expect(sink.readings.map((r) => r.value.n).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: total }, (_, n) => n));
      expect(maxUnstored).toBeLessThanOrEqual(maxPendingReadings + 1);
      await waitFor(() => a.status()[0]!.state === 'connected');
    });
  }

  it.skipIf(!available || kind !== 'mosquitto')('MQTT 5: PUBLISH properties, QoS 0 and QoS 1 side by side, and large payloads read like plain ones; a QoS 1 one is acked once', async () => {
    const sink = new MemorySink();
    const clientId = `millstream-v5-props-${++seq}`;
    const a = adapter(sink, { clientId, protocolVersion: 5, subscriptions: [{ topic: 'factory/+line/+sensor_id/reading', qos: 1 }] });
    await a.start();
    publisher = await connectAsync(broker.url, { clientId: `pub-v5-${++seq}`, protocolVersion: 5 });
    const big = 'x'.repeat(200_000);
    await publisher.publishAsync('factory/w01/p-1/reading', JSON.stringify(reading('p-1', 1)), {
      qos: 1,
      properties: { userProperties: { site: 'plant-7', tags: ['a', 'b'] }, contentType: 'application/json', messageExpiryInterval: 600, payloadFormatIndicator: true, correlationData: Buffer.from([1, 2]) },
    });
    await publisher.publishAsync('factory/w02/p-2/reading', JSON.stringify(reading('p-2', 2)), { qos: 0 });
    await publisher.publishAsync('factory/w03/p-3/reading', JSON.stringify(reading('p-3', 3, { big })), { qos: 1, properties: { responseTopic: 'replies/p-3' } });
    await waitFor(() => sink.readings.length >= 3);
    expect(sink.readings.map((r) => [r.key, r.value.line, r.value.n])).toEqual([
      ['p-1', 'w01', 1],
      ['p-2', 'w02', 2],
      ['p-3', 'w03', 3],
    ]);
    expect(sink.readings[2]!.value.big).toBe(big);
    await waitFor(() => a.status()[0]!.readings === 3);
    // Acked: a second session of the same client id gets nothing again.
    await a.stop();
    const again = new MemorySink();
    const b = adapter(again, { clientId, protocolVersion: 5 });
    await b.start();
    await publisher.publishAsync('factory/w04/p-4/reading', JSON.stringify(reading('p-4', 4)), { qos: 1 });
    await waitFor(() => again.readings.length >= 1);
    expect(again.readings.map((r) => r.key)).toEqual(['p-4']);
  });

  it.skipIf(!available)('reconnects with back-off when the broker goes away and comes back', async () => {
    const sink = new MemorySink();
    const states: string[] = [];
    const a = adapter(sink);
    a.on('state', (s) => states.push(s.state));
    await a.start();
    await broker.restart();
    await waitFor(() => states.includes('backoff') && a.status()[0]!.state === 'connected');
    const pub = await connectPublisher();
    await pub.publishAsync('factory/w09/after/reading', JSON.stringify(reading('after', 1)), { qos: 1 });
    await waitFor(() => sink.readings.length >= 1);
    expect(sink.readings[0]!.key).toBe('after');
    expect(a.status()[0]!.errors).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(!available)('broker restart under load: every QoS 1 message ends stored', async () => {
    const sink = new MemorySink();
    const a = adapter(sink);
    await a.start();
    const pub = await connectAsync(broker.url, { clientId: `pub-load-${kind}-${++seq}`, clean: false, reconnectPeriod: 50 });
    publisher = pub;
    const total = 3000;
    const sent: Array<Promise<unknown>> = [];
    let restarted: Promise<void> | null = null;
    for (let n = 0; n < total; n++) {
      sent.push(pub.publishAsync(`factory/w01/s-${n % 50}/reading`, JSON.stringify(reading(`s-${n % 50}`, n)), { qos: 1 }));
      if (n === total / 3) restarted = waitFor(() => sink.readings.length > 100).then(() => broker.restart());
      if (n % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await restarted;
    await Promise.all(sent);
    await waitFor(() => new Set(sink.readings.map((r) => r.value.n)).size === total);
    const stored = new Set(sink.readings.map((r) => r.value.n));
    expect(stored.size).toBe(total);
    expect(a.status()[0]!.state).toBe('connected');
  });

  // Mosquitto grants every SUBSCRIBE and applies its ACL when delivering, so only aedes refuses one.
  it.skipIf(!available || kind !== 'aedes')('a subscription the broker refuses keeps the adapter out, with the refusal as its last error', async () => {
    const guarded = await startBroker(kind, { allowedTopics: ['factory/#'] });
    try {
      const a = new MqttAdapter(
        { device: 'guarded', topic: 'widgets', url: guarded.url, clientId: `guarded-${kind}`, subscriptions: [{ topic: 'factory/+line/+sensor_id/reading' }, { topic: 'secret/#' }], reconnect: fastRetry },
        { sink: new MemorySink(), gatewayId: 'gw' },
      );
      adapters.push(a);
      await a.start();
      await waitFor(() => a.status()[0]!.errors >= 1);
      expect(a.status()[0]!.connected).toBe(false);
      expect(a.status()[0]!.lastError).toMatch(/^mqtt guarded: the broker refused subscribing to factory\/\+\/\+\/reading, secret\/#: /);
    } finally {
      for (const a of adapters.splice(0)) await a.stop();
      await guarded.close();
    }
  });

  it.skipIf(!available)('start and stop are idempotent', async () => {
    const a = adapter(new MemorySink());
    await Promise.all([a.start(), a.start()]);
    await a.start();
    expect(a.status()[0]!.state).toBe('connected');
    await Promise.all([a.stop(), a.stop()]);
    await a.stop();
    expect(a.status()[0]!.state).toBe('stopped');
  });
});
