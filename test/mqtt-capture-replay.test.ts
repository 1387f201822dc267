/**
 * A live MQTT session captured to a file replays, through the same decoder,
 * into exactly the readings and dead letters the live adapter produced.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openCaptureWriter } from '../firmware-bridge/capture.ts';
import { replayCapture } from '../firmware-bridge/capture-replay.ts';
import { MqttAdapter, type MqttSubscriptionConfig } from '../firmware-bridge/mqtt-adapter.ts';
import { mqttReplayDecoder } from '../firmware-bridge/mqtt-payload.ts';
import type { DeadLetter, Reading } from '../firmware-bridge/types.ts';
import { startBroker, type TestBroker } from './support/mqtt-broker.ts';
import { MemorySink, waitFor } from './support/mqtt-sink.ts';

let dir: string;
let broker: TestBroker;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ms-mqtt-capture-'));
  broker = await startBroker('aedes');
});
afterEach(async () => {
  await broker.close();
  await rm(dir, { recursive: true, force: true });
});

it('replaying a captured MQTT session yields the same readings and dead letters', async () => {
  const file = join(dir, 'session.capture');
  const capture = openCaptureWriter(file);
  const subscriptions: MqttSubscriptionConfig[] = [{ topic: 'factory/+line/+sensor_id/reading' }, { topic: 'lab/#rest', logTopic: 'lab' }];
  const sink = new MemorySink();
  const adapter = new MqttAdapter(
    { device: 'broker-1', topic: 'widgets', deadLetterTopic: 'dlq', url: broker.url, clientId: 'capture-1', subscriptions },
    { sink, gatewayId: 'gw-7', capture },
  );
  await adapter.start();
  const pub = await connectAsync(broker.url, { clientId: 'capture-pub' });
  const sent: Array<[string, string | Buffer]> = [
    ['factory/w01/aa-101/reading', JSON.stringify({ reading_ts: '2020-02-14T12:19:27Z', sensor_id: 'aa-101', colour: 'RED', temp_celcius: 23 })],
    ['factory/w01/aa-102/reading', JSON.stringify({ reading_ts: Date.now(), colour: 'BLUE', temp_celcius: 21 })],
    ['factory/w02/aa-101/reading', 'colour=RED'],
    ['lab/bench/3', JSON.stringify({ sensor_id: 'lab-3', v: 1 })],
    ['lab/bench/3', Buffer.from([0xff, 0x00, 0x7b])],
    ['factory/w02/aa-103/reading', JSON.stringify({ reading_ts: 'tomorrow', sensor_id: 'aa-103' })],
    ['factory/w02/aa-104/reading', JSON.stringify({ sensor_id: 'aa-104', temp_celcius: 25 })],
  ];
  for (const [topic, payload] of sent) await pub.publishAsync(topic, payload, { qos: 1 });
  await waitFor(() => sink.readings.length + sink.letters.length === sent.length);
  await adapter.stop();
  await pub.endAsync();
  await capture.close();

  const readings: Reading[] = [];
  const letters: DeadLetter[] = [];
  for await (const out of replayCapture(file, { topic: 'widgets', gatewayId: 'gw-7', deadLetterTopic: 'dlq', decoders: { mqtt: mqttReplayDecoder(subscriptions) } })) {
    if (out.type === 'reading') readings.push(out.reading);
    if (out.type === 'dead-letter') letters.push(out.letter);
  }
  expect(sink.readings).toHaveLength(4);
  expect(sink.letters).toHaveLength(3);
  // Live readings also carry the payload as valueBytes or valueJson (what the log stores, `value` parsed from it on demand);
  // replay leaves both off and re-serialises `value`.
  const stored = (r: Reading): string => (r.valueBytes ? Buffer.from(r.valueBytes).toString('utf8') : (r.valueJson ?? JSON.stringify(r.value)));
  expect(readings).toEqual(sink.readings.map((r) => ({ topic: r.topic, key: r.key, value: r.value, timestamp: r.timestamp, headers: r.headers })));
  expect(sink.readings.map((r) => JSON.parse(stored(r)))).toEqual(readings.map((r) => r.value));
  expect(sink.readings.filter((r) => r.valueBytes !== undefined || r.valueJson !== undefined).length).toBeGreaterThan(0);
  expect(letters).toEqual(sink.letters);
  expect(readings.map((r) => [r.topic, r.key])).toEqual([
    ['widgets', 'aa-101'],
    ['widgets', 'aa-102'],
    ['lab', 'lab-3'],
    ['widgets', 'aa-104'],
  ]);
});
