/**
 * Fault injection through the log store's file-system port (real files,
 * faults injected by test/support/fault-fs.ts): ENOSPC, EIO and short
 * writes mid-append, a failed fdatasync, and the free-disk floor.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLogError, type LogStoreApi } from '../log-store/index.ts';
import { FaultFileSystem } from './support/fault-fs.ts';
import { Fixtures, readAll, reading } from './support/log-store-fixtures.ts';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

function sizes(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = statSync(join(dir, name));
    if (st.isFile()) out[name] = st.size;
  }
  return out;
}

async function acked(log: LogStoreApi, from: number, n: number): Promise<string[]> {
  const values: string[] = [];
  for (let i = from; i < from + n; i++) {
    await log.append('t', { ...reading(i), partition: 0 });
    values.push(reading(i).value);
  }
  return values;
}

describe('log store under file-system faults', () => {
  it('ENOSPC in the middle of a write: the append fails, the torn bytes are cut, the log goes on', async () => {
    const dataDir = fx.tempDir();
    const fs = new FaultFileSystem();
    const log = await fx.open({ dataDir, fs });
    await log.createTopic('t');
    const kept = await acked(log, 0, 5);
    fs.inject({ op: 'write', path: '.log', shortBytes: 70, code: 'ENOSPC' });
    const err = await log.appendBatch('t', [reading(5), reading(6)].map((r) => ({ ...r, partition: 0 }))).catch((e: unknown) => e);
    expect(isLogError(err, 'LOG_DISK_FULL')).toBe(true);
    expect((err as { retriable: boolean }).retriable).toBe(true);
    expect(log.endOffset('t', 0)).toBe(5);
    kept.push(...(await acked(log, 7, 3)));
    expect((await readAll(log, 't', 0)).map((r) => r.value.toString())).toEqual(kept);
    await log.close();
    const again = await fx.open({ dataDir });
    expect(again.recovery).toEqual([]);
    expect((await readAll(again, 't', 0)).map((r) => r.value.toString())).toEqual(kept);
  });

  it('a short write is completed, not lost', async () => {
    const fs = new FaultFileSystem();
    const log = await fx.open({ dataDir: fx.tempDir(), fs });
    await log.createTopic('t');
    fs.inject({ op: 'write', path: '.log', shortBytes: 33 });
    const values = await acked(log, 0, 3);
    expect((await readAll(log, 't', 0)).map((r) => r.value.toString())).toEqual(values);
    expect((await log.verify()).problems).toEqual([]);
  });

  it('EIO on write with a failing truncate: the partition refuses calls until reopened; recovery cuts the torn tail', async () => {
    const dataDir = fx.tempDir();
    const fs = new FaultFileSystem();
    const log = await fx.open({ dataDir, fs });
    await log.createTopic('t');
    const kept = await acked(log, 0, 4);
    fs.inject({ op: 'write', path: '.log', shortBytes: 90, code: 'EIO' });
    fs.inject({ op: 'truncate', path: '.log', code: 'EIO' });
    const queued = [log.append('t', { ...reading(4), partition: 0 }), log.append('t', { ...reading(5), partition: 0 })];
    const results = await Promise.allSettled(queued);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'LOG_IO' });
    await expect(log.append('t', { ...reading(6), partition: 0 })).rejects.toMatchObject({ code: 'LOG_FAILED' });
    await expect(log.read('t', 0, 0)).rejects.toMatchObject({ code: 'LOG_FAILED' });
    await log.close();
    const again = await fx.open({ dataDir });
    expect(again.recovery).toEqual([expect.objectContaining({ bytesTruncated: 90 })]);
    expect((await readAll(again, 't', 0)).map((r) => r.value.toString())).toEqual(kept);
    expect((await again.append('t', { ...reading(7), partition: 0 })).offset).toBe(4);
  });

  it('a failed fdatasync fails the partition (LOG_FAILED) until reopened; acknowledged records survive', async () => {
    const dataDir = fx.tempDir();
    const fs = new FaultFileSystem();
    const log = await fx.open({ dataDir, fs });
    await log.createTopic('t', { partitions: 2 });
    const kept = await acked(log, 0, 6);
    fs.inject({ op: 'datasync', path: 't-0', code: 'EIO' });
    await expect(log.append('t', { ...reading(6), partition: 0 })).rejects.toMatchObject({ code: 'LOG_IO' });
    const refused = await log.append('t', { ...reading(7), partition: 0 }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'LOG_FAILED', context: { topic: 't', partition: 0 } });
    expect((refused as Error).cause).toMatchObject({ code: 'LOG_IO' });
    // Another partition is unaffected.
    await expect(log.append('t', { key: null, value: 'p1', partition: 1 })).resolves.toMatchObject({ partition: 1, offset: 0 });
    await log.close();
    const again = await fx.open({ dataDir });
    const values = (await readAll(again, 't', 0)).map((r) => r.value.toString());
    // The unacknowledged record may or may not be there; every acknowledged one is, in order, once.
    expect(values.slice(0, kept.length)).toEqual(kept);
    expect(values.length).toBeLessThanOrEqual(kept.length + 1);
    await expect(again.append('t', { key: null, value: 'ok', partition: 0 })).resolves.toBeDefined();
  });

  it('ENOSPC while rolling a segment leaves the log openable with every acknowledged record', async () => {
    const dataDir = fx.tempDir();
    const fs = new FaultFileSystem();
    const log = await fx.open({ dataDir, fs });
    await log.createTopic('t', { segmentBytes: 2048 });
    const kept = await acked(log, 0, 10);
    fs.inject({ op: 'open', path: '.log', code: 'ENOSPC', times: Infinity });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => log.append('t', { ...reading(10 + i), partition: 0 })));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    expect(results.some((r) => r.status === 'rejected' && isLogError(r.reason))).toBe(true);
    const values = [...kept, ...Array.from({ length: ok }, (_, i) => reading(10 + i).value)];
    await log.close();
    fs.clearFaults();
    const again = await fx.open({ dataDir, fs });
    expect((await readAll(again, 't', 0)).map((r) => r.value.toString())).toEqual(values);
  });
});

describe('free-disk floor (minFreeBytes)', () => {
  it('rejects appends with LOG_DISK_FULL below the floor without touching stored data, and recovers when space returns', async () => {
    const dataDir = fx.tempDir();
    const fs = new FaultFileSystem();
    fs.freeBytes = 1 << 30;
    let now = 0;
    const log = await fx.open({ dataDir, fs, minFreeBytes: 64 << 20, clock: { now: () => now } });
    await log.createTopic('t', { partitions: 2 });
    const first = await log.appendBatch('t', Array.from({ length: 20 }, (_, i) => reading(i)));
    expect(first.count).toBe(20);
    const before = sizes(dataDir);
    fs.freeBytes = (64 << 20) - 1;
    // The drop is seen at the next check (every diskCheckIntervalMs, default 1000).
    now += 1000;
    const err = await log.appendBatch('t', [reading(20)]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LOG_DISK_FULL', retriable: true, context: { minFreeBytes: 64 << 20, freeBytes: (64 << 20) - 1 } });
    await expect(log.append('t', reading(21))).rejects.toMatchObject({ code: 'LOG_DISK_FULL' });
    expect(sizes(dataDir)).toEqual(before);
    expect(log.describe('t').partitionsInfo.reduce((n, p) => n + p.endOffset, 0)).toBe(20);
    // Just above the floor, but not by enough for this append.
    fs.freeBytes = (64 << 20) + 10;
    await expect(log.append('t', reading(22))).rejects.toMatchObject({ code: 'LOG_DISK_FULL' });
    fs.freeBytes = 1 << 30;
    await expect(log.append('t', reading(23))).resolves.toBeDefined();
    expect(log.describe('t').partitionsInfo.reduce((n, p) => n + p.endOffset, 0)).toBe(21);
  });

  it('counts appended bytes against the last statfs between checks', async () => {
    const fs = new FaultFileSystem();
    fs.freeBytes = (1 << 20) + 5000;
    let now = 0;
    const log = await fx.open({ dataDir: fx.tempDir(), fs, minFreeBytes: 1 << 20, diskCheckIntervalMs: 60_000, clock: { now: () => now } });
    await log.createTopic('t');
    const statfs = fs.count('statfs');
    await log.append('t', { key: null, value: 'x'.repeat(3000) });
    expect(fs.count('statfs')).toBe(statfs + 1);
    await log.append('t', { key: null, value: 'x'.repeat(100) });
    expect(fs.count('statfs')).toBe(statfs + 1);
    fs.freeBytes = (1 << 20) + 1000; // what our writes used
    // The estimate (5000 - ~3100) cannot take another 3000 bytes: statfs again, still full.
    await expect(log.append('t', { key: null, value: 'x'.repeat(3000) })).rejects.toMatchObject({ code: 'LOG_DISK_FULL' });
    expect(fs.count('statfs')).toBe(statfs + 2);
    now += 60_000;
    fs.freeBytes = 1 << 30;
    await log.append('t', { key: null, value: 'x'.repeat(10) });
    expect(fs.count('statfs')).toBe(statfs + 3);
  });
});
