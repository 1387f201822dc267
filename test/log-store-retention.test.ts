/** Retention by age and by size: whole closed segments, oldest first, on an injected timer. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Fixtures, ManualTimers, readAll, reading, until } from './support/log-store-fixtures.ts';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

const DAY = 86_400_000;

describe('log store retention', () => {
  it('deletes closed segments older than retentionMs on its timer, never the active one', async () => {
    const dataDir = fx.tempDir();
    const timers = new ManualTimers();
    let now = 1_700_000_000_000;
    const log = await fx.open({ dataDir, timers, clock: { now: () => now }, retentionCheckIntervalMs: 60_000 });
    await log.createTopic('t', { segmentBytes: 2048, retentionMs: DAY });
    // Ten days of readings, one batch a day.
    for (let d = 10; d >= 1; d--) await log.appendBatch('t', Array.from({ length: 8 }, (_, j) => ({ ...reading(j, now - d * DAY + j), partition: 0 })));
    const segmentsBefore = log.describe('t').partitionsInfo[0]!.segments;
    expect(segmentsBefore).toBeGreaterThan(4);
    const dir = join(dataDir, 't-0');
    const firstLog = readdirSync(dir).filter((f) => f.endsWith('.log')).sort()[0]!;
    expect([...timers.pending.values()].map((t) => t.ms)).toEqual([60_000]);
    timers.fireAll();
    await until(() => log.describe('t').partitionsInfo[0]!.segments < segmentsBefore && timers.pending.size === 1);
    const info = log.describe('t').partitionsInfo[0]!;
    expect(existsSync(join(dir, firstLog))).toBe(false);
    expect(existsSync(join(dir, firstLog.replace('.log', '.index')))).toBe(false);
    // What is left: every record newer than a day, possibly older ones sharing a segment with them.
    const left = await readAll(log, 't', 0);
    expect(left[0]!.offset).toBe(info.earliestOffset);
    expect(left.filter((r) => r.timestamp >= now - DAY)).toHaveLength(8);
    await expect(log.read('t', 0, 0)).rejects.toMatchObject({ code: 'LOG_OUT_OF_RANGE', context: { earliestOffset: info.earliestOffset } });
    // Everything expired: only the active segment remains.
    now += 30 * DAY;
    const report = await log.enforceRetention();
    expect(report.deletedSegments.every((d) => d.reason === 'age' && d.topic === 't' && d.partition === 0)).toBe(true);
    expect(log.describe('t').partitionsInfo[0]!.segments).toBe(1);
    expect(log.endOffset('t', 0)).toBe(80);
    const earliest = log.earliestOffset('t', 0);
    expect(earliest).toBeGreaterThan(0);
    await log.close();
    const again = await fx.open({ dataDir });
    expect(again.earliestOffset('t', 0)).toBe(earliest);
    expect(again.endOffset('t', 0)).toBe(80);
  });

  it('deletes the oldest closed segments while a partition holds more than retentionBytes', async () => {
    const dataDir = fx.tempDir();
    const log = await fx.open({ dataDir });
    await log.createTopic('t', { partitions: 2, segmentBytes: 2048, retentionBytes: 5000, retentionMs: -1 });
    for (let b = 0; b < 12; b++) await log.appendBatch('t', Array.from({ length: 6 }, (_, j) => reading(b * 6 + j)));
    const before = log.describe('t').partitionsInfo;
    const report = await log.enforceRetention();
    expect(report.deletedSegments.length).toBeGreaterThan(0);
    expect(report.deletedSegments.every((d) => d.reason === 'size')).toBe(true);
    for (const p of log.describe('t').partitionsInfo) {
      expect(p.bytes <= 5000 || p.segments === 1).toBe(true);
      expect(p.endOffset).toBe(before[p.partition]!.endOffset);
      const deleted = report.deletedSegments.filter((d) => d.partition === p.partition);
      // Oldest first: what was deleted ends right before what is kept.
      if (deleted.length) expect(Math.max(...deleted.map((d) => d.lastOffset)) + 1).toBe(p.earliestOffset);
      expect((await readAll(log, 't', p.partition)).length).toBe(p.endOffset - p.earliestOffset);
    }
    expect((await log.enforceRetention()).deletedSegments).toEqual([]);
  });
});
