/**
 * End to end: a sensor on a real pty → serial adapter → the real log store.
 * Readings land durably in the topic, keyed to the partition Kafka's
 * partitioner picks, with event time and headers; undecodable lines land in
 * the dead-letter topic with device and reason; when the log refuses
 * (disk floor), the adapter pauses and nothing is lost or duplicated.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialAdapter } from '../firmware-bridge/serial-adapter.ts';
import type { ReadingSink } from '../firmware-bridge/types.ts';
import { kafkaPartition, openLogStore, type LogStoreApi } from '../log-store/index.ts';
import { until } from './support/adapter-contract.ts';
import { LogStoreSink } from './support/bridge-log-sink.ts';
import { openPtyPair, type PtyPair } from './support/pty.ts';
import { readAllRecords } from './support/log-read.ts';

describe('serial → log store', () => {
  let dir: string;
  let pty: PtyPair;
  let log: LogStoreApi;
  let adapter: SerialAdapter | null;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ms-bridge-log-'));
    pty = await openPtyPair();
    log = await openLogStore({ dataDir: join(dir, 'data'), minFreeBytes: 0, retentionCheckIntervalMs: 0 });
    adapter = null;
  });
  afterEach(async () => {
    await adapter?.stop();
    await log.close();
    await pty.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores readings durably with key partitioning, event time and headers; dead letters beside them', async () => {
    adapter = new SerialAdapter(
      { kind: 'serial', device: 'line-1', topic: 'widgets', path: pty.devicePath, baudRate: 9600 },
      { sink: new LogStoreSink(log), gatewayId: 'gw-e2e' },
    );
    await adapter.start();
    await until(() => adapter!.status()[0]!.connected);
    const sensors = ['aa-101', 'aa-102', 'aa-103', 'aa-104'];
    let text = '';
    for (let i = 0; i < 40; i++) {
      text += `${JSON.stringify({ reading_ts: new Date(Date.UTC(2020, 1, 14, 12, 0, i)).toISOString(), sensor_id: sensors[i % 4], seq: i, temp_celcius: 20 + (i % 5) })}\n`;
      if (i === 20) text += 'this is not json\n';
    }
    await pty.write(text);
    await until(() => adapter!.status()[0]!.readings === 40 && adapter!.status()[0]!.deadLetters === 1);

    const stored = await readAllRecords(log, 'widgets');
    expect(stored).toHaveLength(40);
    for (const r of stored) {
      expect(r.partition).toBe(kafkaPartition(r.key!, 3));
      const value = JSON.parse(r.value.toString()) as { seq: number; sensor_id: string };
      expect(r.key).toBe(value.sensor_id);
      expect(r.timestamp).toBe(Date.UTC(2020, 1, 14, 12, 0, value.seq));
      expect(r.headers).toMatchObject({ source: 'serial', device: 'line-1', gateway_id: 'gw-e2e', received_at: expect.stringMatching(/^\d+$/) });
    }
    // Per key, the log keeps the device's order.
    for (const s of sensors) {
      const seqs = stored.filter((r) => r.key === s).sort((a, b) => a.offset - b.offset).map((r) => JSON.parse(r.value.toString()).seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs).toHaveLength(10);
    }
    const dead = await readAllRecords(log, 'dead-letters');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.key).toBe('line-1');
    expect(JSON.parse(dead[0]!.value.toString())).toMatchObject({ intendedTopic: 'widgets', device: 'line-1', raw: 'this is not json', reason: expect.stringContaining('BRIDGE_DECODE') });
  });

  it('when the log refuses (below its disk floor) the adapter pauses, then stores every reading exactly once', async () => {
    // A store whose disk floor cannot be met refuses every append with LOG_DISK_FULL, as on a full gateway disk.
    await log.ensureTopic('widgets', { partitions: 3 });
    await log.close();
    const dataDir = join(dir, 'data');
    log = await openLogStore({ dataDir, minFreeBytes: Number.MAX_SAFE_INTEGER, retentionCheckIntervalMs: 0 });
    let current = new LogStoreSink(log);
    const errors: string[] = [];
    const sink: ReadingSink = { write: (r) => current.write(r), deadLetter: (l) => current.deadLetter(l) };
    adapter = new SerialAdapter(
      { kind: 'serial', device: 'line-2', topic: 'widgets', path: pty.devicePath, maxPendingReadings: 5, sinkRetry: { initialMs: 20, maxMs: 50 } },
      { sink, gatewayId: 'gw-e2e' },
    );
    adapter.on('error', (e) => errors.push((e.cause as { code?: string } | undefined)?.code ?? ''));
    await adapter.start();
    await until(() => adapter!.status()[0]!.connected);
    const sending = (async () => {
      for (let i = 0; i < 100; i++) await pty.write(`{"sensor_id":"bp-${i % 3}","seq":${i}}\n`);
    })();
    await until(() => adapter!.status()[0]!.state === 'paused' && errors.length >= 3);
    expect(errors).toContain('LOG_DISK_FULL');
    // Space is freed: the same data directory opens with a floor it meets.
    const refusing = log;
    log = await (async () => {
      await refusing.close();
      return openLogStore({ dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
    })();
    current = new LogStoreSink(log);
    await sending;
    await until(() => adapter!.status()[0]!.readings === 100);
    const stored = await readAllRecords(log, 'widgets');
    expect(stored.map((r) => JSON.parse(r.value.toString()).seq).sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
