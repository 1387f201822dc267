import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultFileSystem } from '../test/support/fault-fs.ts';
import { ManualTimers, readAll, reading } from '../test/support/log-store-fixtures.ts';
import { isLogError, kafkaPartition, openLogStore, type LogStoreApi, type LogStoreOptions } from './index.ts';

const dirs: string[] = [];
const stores: LogStoreApi[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'millstream-log-'));
  dirs.push(d);
  return d;
}

async function open(options: Partial<LogStoreOptions> & { dataDir: string }): Promise<LogStoreApi> {
  const s = await openLogStore({ minFreeBytes: 0, retentionCheckIntervalMs: 0, ...options });
  stores.push(s);
  return s;
}

describe('log store: append and read', () => {
  it('round-trips readings across partitions by Kafka key partitioning, null keys round-robin', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    await log.createTopic('widgets', { partitions: 3 });
    const records = Array.from({ length: 200 }, (_, i) => reading(i));
    const ack = await log.appendBatch('widgets', records);
    expect(ack.count).toBe(200);
    expect(ack.partitions.reduce((n, p) => n + p.count, 0)).toBe(200);
    const nulls = await Promise.all(Array.from({ length: 6 }, (_, i) => log.append('widgets', { key: null, value: `n${i}` })));
    expect(nulls.map((a) => a.partition).sort()).toEqual([0, 0, 1, 1, 2, 2]);
    for (let p = 0; p < 3; p++) {
      const got = await readAll(log, 'widgets', p);
      const expected = records.filter((r) => kafkaPartition(r.key, 3) === p);
      const keyed = got.filter((r) => r.key !== null);
      expect(keyed.map((r) => r.value.toString())).toEqual(expected.map((r) => r.value));
      expect(keyed.map((r) => r.timestamp)).toEqual(expected.map((r) => r.timestamp));
      expect(keyed.every((r) => r.headers.source === 'mqtt' && r.topic === 'widgets' && r.partition === p)).toBe(true);
      expect(got.map((r) => r.offset)).toEqual(got.map((_, i) => i));
      expect(log.partitionFor('widgets', 'aa-101')).toBe(kafkaPartition('aa-101', 3));
    }
    // A read-only view beside the writer verifies clean.
    const ro = await open({ dataDir, readOnly: true });
    expect(await ro.verify()).toMatchObject({ records: 206, problems: [] });
    await expect(ro.append('widgets', { key: null, value: 'x' })).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT' });
    await log.close();
    const again = await open({ dataDir });
    expect(again.describe('widgets').partitionsInfo.reduce((n, p) => n + p.endOffset, 0)).toBe(206);
    expect(again.recovery).toEqual([]);
    expect(await again.verify()).toMatchObject({ segments: 3, records: 206, problems: [] });
  });

  it('rolls segments by size, names them by 20-digit base offset, and finds every offset through the index', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    await log.createTopic('t', { segmentBytes: 4096, indexIntervalBytes: 300 });
    for (let i = 0; i < 60; i++) await log.append('t', reading(i));
    for (let i = 60; i < 150; i += 10) await log.appendBatch('t', Array.from({ length: 10 }, (_, j) => reading(i + j)));
    const files = readdirSync(join(dataDir, 't-0')).filter((f) => f.endsWith('.log'));
    expect(files.length).toBeGreaterThan(4);
    for (const f of files) expect(f).toMatch(/^\d{20}\.log$/);
    expect(log.describe('t').partitionsInfo[0]!.segments).toBe(files.length);
    await log.close();
    const again = await open({ dataDir });
    expect(again.recovery).toEqual([]);
    for (const from of [0, 1, 17, 40, 77, 119, 120, 149]) {
      const r = await again.read('t', 0, from, { maxRecords: 2 });
      expect(r.records[0]!.offset).toBe(from);
      expect(r.records[0]!.value.toString()).toBe(reading(from).value);
    }
    expect((await readAll(again, 't', 0)).map((r) => r.value.toString())).toEqual(Array.from({ length: 150 }, (_, i) => reading(i).value));
    const end = await again.read('t', 0, 150);
    expect(end).toEqual({ records: [], nextOffset: 150 });
    await expect(again.read('t', 0, 151)).rejects.toMatchObject({ code: 'LOG_OUT_OF_RANGE', context: { endOffset: 150 } });
  });

  it('rolls the active segment by age (injected clock)', async () => {
    let now = 1_000_000;
    const log = await open({ dataDir: tempDir(), clock: { now: () => now } });
    await log.createTopic('t', { segmentMs: 60_000 });
    await log.append('t', { key: 'a', value: '1' });
    now += 59_999;
    await log.append('t', { key: 'a', value: '2' });
    expect(log.describe('t').partitionsInfo[0]!.segments).toBe(1);
    now += 1;
    await log.append('t', { key: 'a', value: '3' });
    expect(log.describe('t').partitionsInfo[0]!.segments).toBe(2);
    expect((await readAll(log, 't', 0)).map((r) => [r.offset, r.value.toString(), r.timestamp])).toEqual([
      [0, '1', 1_000_000],
      [1, '2', 1_059_999],
      [2, '3', 1_060_000],
    ]);
  });

  it('finds the first offset at or after a timestamp, across segments and after reopen', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    await log.createTopic('t', { segmentBytes: 2048, indexIntervalBytes: 200 });
    // Mostly increasing event time with late readings mixed in.
    const stamps = Array.from({ length: 90 }, (_, i) => 10_000 + i * 10 - (i % 5 === 4 ? 35 : 0));
    for (let i = 0; i < 90; i += 3) await log.appendBatch('t', stamps.slice(i, i + 3).map((ts, j) => ({ key: 'k', value: `v${i + j}`.padEnd(80, '.'), timestamp: ts })));
    const check = async (l: LogStoreApi) => {
      for (const t of [0, 10_000, 10_001, 10_055, 10_400, 10_445, 10_890, 10_891, 99_999]) {
        const expected = stamps.findIndex((s) => s >= t);
        expect(await l.offsetForTimestamp('t', 0, t), `t=${t}`).toBe(expected === -1 ? 90 : expected);
      }
    };
    await check(log);
    expect(log.describe('t').partitionsInfo[0]!.segments).toBeGreaterThan(2);
    await log.close();
    const again = await open({ dataDir });
    await check(again);
  });
});

describe('log store: built batches', () => {
  it('appends a builder\'s records to one partition, durable on resolve, and leaves the builder empty for the next batch', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    await log.createTopic('out', { partitions: 3 });
    const builder = log.batchBuilder();
    const src = Buffer.from('aa-101{"t":1}');
    builder.add(10, 'k1', '{"a":1}', { 'ms.batch': '1' });
    builder.addBytes(11, src, 0, 6, 6, 13);
    builder.add(12, null, new Uint8Array([1, 2, 3]));
    const appended = log.appendBuilt('out', 1, builder);
    // taken at the call: records added now belong to the next batch
    expect(builder.count).toBe(0);
    builder.add(13, 'k2', 'second');
    expect(await appended).toEqual({ count: 3, partitions: [{ partition: 1, baseOffset: 0, count: 3 }] });
    expect(await log.appendBuilt('out', 1, builder)).toEqual({ count: 1, partitions: [{ partition: 1, baseOffset: 3, count: 1 }] });
    expect(await log.appendBuilt('out', 1, builder)).toEqual({ count: 0, partitions: [] });
    await log.close();
    const again = await open({ dataDir });
    const got = await readAll(again, 'out', 1);
    expect(got.map((r) => [r.offset, r.key, r.value.toString('hex'), r.timestamp, r.headers])).toEqual([
      [0, 'k1', Buffer.from('{"a":1}').toString('hex'), 10, { 'ms.batch': '1' }],
      [1, 'aa-101', Buffer.from('{"t":1}').toString('hex'), 11, {}],
      [2, null, '010203', 12, {}],
      [3, 'k2', Buffer.from('second').toString('hex'), 13, {}],
    ]);
    expect(again.endOffset('out', 0)).toBe(0);
    expect(await again.verify()).toMatchObject({ records: 4, problems: [] });
  });

  it('refuses bad records, partitions and builders with LOG_INVALID_ARGUMENT, and empties the builder whatever happens', async () => {
    const log = await open({ dataDir: tempDir() });
    await log.createTopic('out', { partitions: 2 });
    const builder = log.batchBuilder();
    let err: unknown = null;
    try {
      builder.add(1.5, 'k', 'v');
    } catch (e) {
      err = e;
    }
    expect(isLogError(err, 'LOG_INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toBe('record 0: timestamp must be an integer number of ms');
    expect(builder.count).toBe(0);
    builder.add(1, 'k', 'v');
    await expect(log.appendBuilt('out', 2, builder)).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT', message: 'topic out has no partition 2' });
    expect(builder.count).toBe(0);
    builder.add(1, 'k', 'v');
    await expect(log.appendBuilt('nope', 0, builder)).rejects.toMatchObject({ code: 'LOG_TOPIC_NOT_FOUND' });
    expect(builder.count).toBe(0);
    const foreign = { count: 1, add() {}, addBytes() {}, clear() {} };
    await expect(log.appendBuilt('out', 0, foreign)).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT' });
    expect(log.endOffset('out', 0) + log.endOffset('out', 1)).toBe(0);
  });
});

describe('log store: durability and group commit', () => {
  it('makes concurrent appends share one fdatasync and resolves them all in order', async () => {
    const fs = new FaultFileSystem();
    const log = await open({ dataDir: tempDir(), fs });
    await log.createTopic('t');
    const before = fs.count('datasync');
    const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append('t', { key: null, value: `r${i}` })));
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(fs.count('datasync') - before).toBe(1);
    // Sequential appends each wait for their own fsync.
    const mid = fs.count('datasync');
    for (let i = 0; i < 3; i++) await log.append('t', { key: null, value: 'x' });
    expect(fs.count('datasync') - mid).toBe(3);
  });

  it('holds appends for flushIntervalMs, or flushes at once past flushBytes', async () => {
    const timers = new ManualTimers();
    const fs = new FaultFileSystem();
    const log = await open({ dataDir: tempDir(), fs, timers });
    await log.createTopic('t', { flushIntervalMs: 50, flushBytes: 10_000 });
    let resolved = 0;
    const first = [log.append('t', { key: null, value: 'a' }), log.append('t', { key: null, value: 'b' })].map((p) => p.then(() => resolved++));
    await new Promise((r) => setTimeout(r, 20));
    expect(resolved).toBe(0);
    expect(log.endOffset('t', 0)).toBe(0);
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([50]);
    const syncs = fs.count('datasync');
    timers.fireAll();
    await Promise.all(first);
    expect(resolved).toBe(2);
    expect(fs.count('datasync') - syncs).toBe(1);
    // Past flushBytes, no timer is needed.
    await log.append('t', { key: null, value: 'z'.repeat(12_000) });
    expect(log.endOffset('t', 0)).toBe(3);
  });

  it("with fsync 'never' resolves after write without any fdatasync", async () => {
    const fs = new FaultFileSystem();
    const log = await open({ dataDir: tempDir(), fs });
    await log.createTopic('bulk', { fsync: 'never' });
    const before = fs.count('datasync');
    await log.appendBatch('bulk', Array.from({ length: 50 }, (_, i) => reading(i)));
    await log.append('bulk', reading(50));
    expect(fs.count('datasync')).toBe(before);
    expect((await readAll(log, 'bulk', 0)).length).toBe(51);
  });
});

describe('log store: follow', () => {
  it('wakes on appends without polling and ends on abort', async () => {
    const fs = new FaultFileSystem();
    const log = await open({ dataDir: tempDir(), fs });
    await log.createTopic('t');
    await log.append('t', { key: null, value: 'old' });
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const batch of log.follow('t', 0, 0, { signal: ac.signal })) {
        seen.push(...batch.map((r) => r.value.toString()));
        if (seen.length === 3) ac.abort();
      }
    })();
    while (seen.length < 1) await new Promise((r) => setTimeout(r, 5));
    const reads = fs.count('read');
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.count('read')).toBe(reads);
    await log.append('t', { key: null, value: 'new1' });
    await log.append('t', { key: null, value: 'new2' });
    await done;
    expect(seen).toEqual(['old', 'new1', 'new2']);
  });

  it('yields every record once, in order, one at a time across batches and segments', async () => {
    const log = await open({ dataDir: tempDir() });
    await log.createTopic('t', { segmentBytes: 8192, indexIntervalBytes: 512 });
    const values = Array.from({ length: 300 }, (_, i) => reading(i).value);
    for (let i = 0; i < 300; i += 30) await log.appendBatch('t', values.slice(i, i + 30).map((value) => ({ key: null, value })));
    expect(log.describe('t').partitionsInfo[0]!.segments).toBeGreaterThan(2);
    const ac = new AbortController();
    const seen: Array<[number, string]> = [];
    for await (const batch of log.follow('t', 0, 5, { maxRecords: 1, maxBytes: 1, signal: ac.signal })) {
      expect(batch).toHaveLength(1);
      seen.push([batch[0]!.offset, batch[0]!.value.toString()]);
      if (seen.length === 295) ac.abort();
    }
    expect(seen).toEqual(values.slice(5).map((v, i) => [i + 5, v]));
  });

  it('ends when the store closes', async () => {
    const log = await open({ dataDir: tempDir() });
    await log.createTopic('t');
    const it = log.follow('t', 0, 0);
    const next = it.next();
    await log.close();
    expect(await next).toEqual({ done: true, value: undefined });
  });
});

describe('log store: topics, lock and consumers', () => {
  it('creates topics once, persists their settings, and rejects another partition count', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    await log.createTopic('widgets', { partitions: 2, retentionMs: 1000 });
    expect((await log.createTopic('widgets', { partitions: 2 })).config.retentionMs).toBe(1000);
    await expect(log.createTopic('widgets', { partitions: 3 })).rejects.toMatchObject({ code: 'LOG_TOPIC_EXISTS' });
    await expect(log.ensureTopic('widgets', { partitions: 4 })).rejects.toMatchObject({ code: 'LOG_TOPIC_EXISTS' });
    expect((await log.ensureTopic('widgets', { retentionBytes: 5000 })).config).toMatchObject({ partitions: 2, retentionMs: 1000, retentionBytes: 5000 });
    await log.ensureTopic('derived');
    await expect(log.createTopic('bad/name')).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT' });
    await expect(log.createTopic('t', { segmentBytes: -5 })).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT' });
    expect(() => log.describe('nope')).toThrow(expect.objectContaining({ code: 'LOG_TOPIC_NOT_FOUND' }));
    await expect(log.append('nope', { key: null, value: 'x' })).rejects.toMatchObject({ code: 'LOG_TOPIC_NOT_FOUND' });
    await expect(log.append('widgets', { key: null, value: 'x', partition: 2 })).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT' });
    await expect(log.append('widgets', { key: null, value: 7 as unknown as string })).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT' });
    await log.close();
    const file = JSON.parse(readFileSync(join(dataDir, 'topics.json'), 'utf8'));
    expect(file.version).toBe(1);
    expect(file.topics.widgets).toMatchObject({ partitions: 2, retentionMs: 1000, retentionBytes: 5000, fsync: 'always' });
    const again = await open({ dataDir });
    expect(again.topics().map((t) => t.name).sort()).toEqual(['derived', 'widgets']);
    expect(again.describe('widgets').config.retentionBytes).toBe(5000);
    await expect(again.append('widgets', { key: null, value: 'x' })).resolves.toBeDefined();
    await again.close();
    await expect(again.append('widgets', { key: null, value: 'x' })).rejects.toMatchObject({ code: 'LOG_CLOSED' });
  });

  it('refuses a second owner of the data directory and takes over a dead owner lock', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    const err = await openLogStore({ dataDir, minFreeBytes: 0 }).catch((e: unknown) => e);
    expect(isLogError(err, 'LOG_LOCKED')).toBe(true);
    expect((err as { context: { pid: number; file: string } }).context).toMatchObject({ pid: process.pid, file: join(dataDir, '.lock') });
    expect((err as Error).message).toContain(String(process.pid));
    // A read-only open is allowed beside the owner.
    const ro = await open({ dataDir, readOnly: true });
    expect(ro.topics()).toEqual([]);
    await log.close();
    // A lock left by a process that is gone.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(join(dataDir, '.lock'), `${dead}\n`);
    const taken = await open({ dataDir });
    expect(readFileSync(join(dataDir, '.lock'), 'utf8').trim().split(' ')[0]).toBe(String(process.pid));
    await taken.close();
  });

  it('keeps committed consumer positions across reopen', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    await log.createTopic('widgets', { partitions: 2 });
    const c = await log.consumer('replicator');
    expect(c.get('widgets', 0)).toBeUndefined();
    await c.commit([{ topic: 'widgets', partition: 0, offset: 10 }, { topic: 'widgets', partition: 1, offset: 4 }]);
    await c.commit([{ topic: 'widgets', partition: 0, offset: 12 }]);
    expect(c.all()).toEqual({ widgets: { 0: 12, 1: 4 } });
    await expect(c.commit([{ topic: 'widgets', partition: 0, offset: -1 }])).rejects.toMatchObject({ code: 'LOG_INVALID_ARGUMENT' });
    await log.close();
    const again = await open({ dataDir });
    const c2 = await again.consumer('replicator');
    expect(c2.get('widgets', 0)).toBe(12);
    expect(c2.get('widgets', 1)).toBe(4);
    expect((await again.consumer('rules')).all()).toEqual({});
    expect(readdirSync(join(dataDir, 'consumers'))).toEqual(['replicator.json']);
    await again.close();
    // A crash in the middle of a commit leaves a half-written temp file: the committed positions stand.
    writeFileSync(join(dataDir, 'consumers', 'replicator.json.tmp'), '{"version":1,"positions":{"widgets":{"0":99');
    const third = await open({ dataDir });
    expect((await third.consumer('replicator')).all()).toEqual({ widgets: { 0: 12, 1: 4 } });
    await (await third.consumer('replicator')).commit([{ topic: 'widgets', partition: 1, offset: 5 }]);
    expect(JSON.parse(readFileSync(join(dataDir, 'consumers', 'replicator.json'), 'utf8'))).toEqual({ version: 1, positions: { widgets: { 0: 12, 1: 5 } } });
  });

  it('reports a damaged topics.json or lock file clearly', async () => {
    const dataDir = tempDir();
    const log = await open({ dataDir });
    await log.createTopic('widgets');
    await log.close();
    // An empty lock file (torn write of an older version) is refused while recent, naming the file...
    writeFileSync(join(dataDir, '.lock'), '');
    await expect(openLogStore({ dataDir, minFreeBytes: 0 })).rejects.toMatchObject({ code: 'LOG_LOCKED', context: { file: join(dataDir, '.lock') } });
    // ...and taken over once a few seconds old.
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(join(dataDir, '.lock'), old, old);
    const again = await open({ dataDir });
    await again.close();
    writeFileSync(join(dataDir, 'topics.json'), '{"version":1,"topics":{"widgets":');
    await expect(openLogStore({ dataDir, minFreeBytes: 0 })).rejects.toMatchObject({ code: 'LOG_CORRUPT', context: { file: join(dataDir, 'topics.json') } });
    // The failed open released the lock.
    expect(readdirSync(dataDir)).not.toContain('.lock');
  });
});
