import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reading } from '../firmware-bridge/index.ts';
import { openLogStore, LogError, type LogStoreApi } from '../log-store/index.ts';
import { createLogSink } from './log-sink.ts';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const reading = (topic: string, key: string, n: number): Reading => ({
  topic,
  key,
  value: { sensor_id: key, n },
  timestamp: 1_700_000_000_000 + n,
  headers: { source: 'serial', device: 'd1' },
});

async function count(log: LogStoreApi, topic: string): Promise<number> {
  let n = 0;
  for (let p = 0; p < log.describe(topic).partitionsInfo.length; p++) n += log.endOffset(topic, p) - log.earliestOffset(topic, p);
  return n;
}

describe('log sink', () => {
  it('stores readings per topic with key, timestamp, headers and JSON value', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-sink-'));
    dirs.push(dir);
    const log = await openLogStore({ dataDir: dir, minFreeBytes: 0 });
    const sink = createLogSink({ log, deadLetterTopic: 'dead', topicSettings: (t) => (t === 'widgets' ? { partitions: 3 } : {}) });
    await sink.write([reading('widgets', 'aa-1', 1), reading('other', 'aa-2', 2)]);
    await sink.deadLetter([{ topic: 'dead', intendedTopic: 'widgets', device: 'd1', reason: 'decode: not JSON', raw: 'xx', receivedAt: 5 }]);
    expect(log.describe('widgets').partitionsInfo).toHaveLength(3);
    const p = log.partitionFor('widgets', 'aa-1');
    const [r] = (await log.read('widgets', p, 0)).records;
    expect(r).toMatchObject({ key: 'aa-1', timestamp: 1_700_000_000_001, headers: { source: 'serial', device: 'd1' } });
    expect(JSON.parse(r!.value.toString())).toEqual({ sensor_id: 'aa-1', n: 1 });
    const [d] = (await log.read('dead', 0, 0)).records;
    expect(JSON.parse(d!.value.toString())).toMatchObject({ device: 'd1', reason: 'decode: not JSON', raw: 'xx' });
    expect(sink.stored()).toEqual({ widgets: 1, other: 1 });
    await log.close();
  });

  it('stores a reading\'s valueJson as its value when it has one (no re-serialisation)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-sink-'));
    dirs.push(dir);
    const log = await openLogStore({ dataDir: dir, minFreeBytes: 0 });
    const sink = createLogSink({ log, deadLetterTopic: 'dead', topicSettings: () => ({}) });
    await sink.write([{ ...reading('widgets', 'aa-1', 1), valueJson: '{"sensor_id": "aa-1", "n": 1.0}' }, reading('widgets', 'aa-1', 2)]);
    const records = (await log.read('widgets', 0, 0)).records;
    expect(records.map((r) => r.value.toString())).toEqual(['{"sensor_id": "aa-1", "n": 1.0}', '{"sensor_id":"aa-1","n":2}']);
    await log.close();
  });

  it('a retry of a batch that failed on one topic does not store the other topic twice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-sink-'));
    dirs.push(dir);
    const real = await openLogStore({ dataDir: dir, minFreeBytes: 0 });
    let refuse = true;
    // The log refuses the second topic once (as a full disk would), then recovers.
    const log: LogStoreApi = Object.assign(Object.create(real) as LogStoreApi, {
      appendBatch: (topic: string, records: Parameters<LogStoreApi['appendBatch']>[1]) => {
        if (topic === 'b' && refuse) {
          refuse = false;
          return Promise.reject(new LogError('LOG_DISK_FULL', 'free space below the floor'));
        }
        return real.appendBatch(topic, records);
      },
    });
    const sink = createLogSink({ log, deadLetterTopic: 'dead', topicSettings: () => ({}) });
    const batch = [reading('a', 'k1', 1), reading('b', 'k2', 2), reading('a', 'k3', 3)];
    await expect(sink.write(batch)).rejects.toMatchObject({ code: 'LOG_DISK_FULL' });
    expect(await count(real, 'a')).toBe(2);
    await sink.write(batch);
    expect(await count(real, 'a')).toBe(2);
    expect(await count(real, 'b')).toBe(1);
    await real.close();
  });
});
