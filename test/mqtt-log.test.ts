/**
 * End to end: MQTT broker → MQTT adapter → the real log store. Readings land
 * durably, keyed to Kafka's partition, with event time and headers; dead
 * letters land in their topic; when the log refuses (disk below its floor)
 * the adapter pauses without acking, and once space is back every message is
 * stored exactly once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MqttAdapter } from '../firmware-bridge/mqtt-adapter.ts';
import { kafkaPartition, openLogStore, type LogStoreApi } from '../log-store/index.ts';
import { LogStoreSink } from './support/bridge-log-sink.ts';
import { FaultFileSystem } from './support/fault-fs.ts';
import { brokerKinds, startBroker, type TestBroker } from './support/mqtt-broker.ts';
import { waitFor } from './support/mqtt-sink.ts';
import { readAllRecords } from './support/log-read.ts';

describe.each(brokerKinds)('MQTT → log store against $kind', ({ kind, available, skipReason }) => {
  let broker: TestBroker;
  let dir: string;
  let log: LogStoreApi;
  let fs: FaultFileSystem;
  let adapter: MqttAdapter | null = null;
  let publisher: MqttClient | null = null;

  beforeEach(async () => {
    if (!available) return;
    broker = await startBroker(kind);
    dir = await mkdtemp(join(tmpdir(), 'ms-mqtt-log-'));
    fs = new FaultFileSystem();
    log = await openLogStore({ dataDir: join(dir, 'data'), fs, minFreeBytes: 1024 * 1024, retentionCheckIntervalMs: 0 });
    publisher = await connectAsync(broker.url, { clientId: `log-pub-${kind}` });
  });
  afterEach(async () => {
    if (!available) return;
    await adapter?.stop();
    await publisher?.endAsync(true);
    await log.close();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
    adapter = null;
  });

  it.skipIf(!available)(`readings and dead letters land durably in their topics${skipReason ? ` (skipped: ${skipReason})` : ''}`, async () => {
    adapter = new MqttAdapter(
      { device: 'plant-broker', topic: 'widgets', deadLetterTopic: 'widgets-dlq', url: broker.url, clientId: `log-${kind}`, subscriptions: [{ topic: 'factory/+line/+sensor_id/reading' }] },
      { sink: new LogStoreSink(log), gatewayId: 'gw-e2e' },
    );
    await adapter.start();
    const sensors = ['aa-101', 'aa-102', 'aa-103', 'aa-104'];
    for (let i = 0; i < 40; i++) {
      const sensor = sensors[i % 4]!;
      const ts = new Date(Date.UTC(2020, 1, 14, 12, 0, i)).toISOString();
      await publisher!.publishAsync(`factory/w0${1 + (i % 2)}/${sensor}/reading`, JSON.stringify({ reading_ts: ts, colour: 'RED', temp_celcius: 20 + (i % 5), seq: i }), { qos: 1 });
      if (i === 20) await publisher!.publishAsync(`factory/w01/${sensor}/reading`, '<xml>not json</xml>', { qos: 1 });
    }
    await waitFor(() => adapter!.status()[0]!.readings === 40 && adapter!.status()[0]!.deadLetters === 1);

    const stored = await readAllRecords(log, 'widgets');
    expect(stored).toHaveLength(40);
    for (const r of stored) {
      const value = JSON.parse(r.value.toString()) as { seq: number; sensor_id: string; line: string };
      expect(r.key).toBe(value.sensor_id);
      expect(r.partition).toBe(kafkaPartition(r.key!, 3));
      expect(value.line).toBe(`w0${1 + (value.seq % 2)}`);
      expect(r.timestamp).toBe(Date.UTC(2020, 1, 14, 12, 0, value.seq));
      expect(r.headers).toMatchObject({ source: 'mqtt', device: 'plant-broker', gateway_id: 'gw-e2e', received_at: expect.stringMatching(/^\d+$/) });
    }
    for (const s of sensors) {
      const seqs = stored.filter((r) => r.key === s).sort((a, b) => a.offset - b.offset).map((r) => JSON.parse(r.value.toString()).seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    const dead = await readAllRecords(log, 'widgets-dlq');
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0]!.value.toString())).toMatchObject({ intendedTopic: 'widgets', device: 'plant-broker', raw: '<xml>not json</xml>', reason: expect.stringContaining('BRIDGE_DECODE') });
  });

  it.skipIf(!available)('log below its disk floor: the adapter pauses and acks nothing; the next session stores every message exactly once', async () => {
    await log.ensureTopic('widgets', { partitions: 3 });
    const codes: string[] = [];
    const make = () =>
      new MqttAdapter(
        {
          device: 'plant-broker',
          topic: 'widgets',
          url: broker.url,
          clientId: `log-full-${kind}`,
          subscriptions: [{ topic: 'factory/+line/+sensor_id/reading' }],
          maxPendingReadings: 5,
          sinkRetry: { initialMs: 20, maxMs: 50 },
          stopTimeoutMs: 300,
        },
        { sink: new LogStoreSink(log), gatewayId: 'gw-e2e' },
      );
    adapter = make();
    adapter.on('error', (e) => codes.push((e.cause as { code?: string } | undefined)?.code ?? (e as { code?: string }).code ?? ''));
    await adapter.start();
    // The disk is full.
    fs.freeBytes = 0;
    const total = 100;
    await Promise.all(Array.from({ length: total }, (_, i) => publisher!.publishAsync(`factory/w01/bp-${i % 3}/reading`, JSON.stringify({ seq: i }), { qos: 1 })));
    await waitFor(() => adapter!.status()[0]!.state === 'paused' && codes.length >= 3);
    expect(codes).toContain('LOG_DISK_FULL');
    expect(await readAllRecords(log, 'widgets')).toEqual([]);
    // Stopped while refused: whatever it had received was never acknowledged, so the broker still has everything.
    await adapter.stop();
    // Space is freed; the next session of the same client id stores it all.
    fs.freeBytes = null;
    adapter = make();
    await adapter.start();
    await waitFor(async () => (await readAllRecords(log, 'widgets')).length >= total);
    const seqs = (await readAllRecords(log, 'widgets')).map((r) => JSON.parse(r.value.toString()).seq as number).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i));
  });
});
