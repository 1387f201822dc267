/**
 * Recovery on open against real files: torn and corrupt tails are cut and
 * reported, indexes are rebuilt, damage in closed segments is reported and
 * readers get LOG_CORRUPT with a place to resume, never silently skipped.
 */
import { appendFileSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBatch, readBatchHeader, sealBatch } from '../log-store/record-batch.ts';
import { FaultFileSystem } from './support/fault-fs.ts';
import { Fixtures, capturingLogger, readAll, readAround, reading } from './support/log-store-fixtures.ts';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

/** The batches of a .log file, parsed independently of the store. */
function batchesOf(file: string): Array<{ pos: number; baseOffset: number; count: number; bytes: number }> {
  const buf = readFileSync(file);
  const out = [];
  for (let pos = 0; pos < buf.length; ) {
    const h = readBatchHeader(buf, pos);
    out.push({ pos, baseOffset: h.baseOffset, count: h.recordCount, bytes: h.totalBytes });
    pos += h.totalBytes;
  }
  return out;
}

function segmentLogs(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.log')).sort().map((f) => join(dir, f));
}

function flipByte(file: string, pos: number): void {
  const buf = readFileSync(file);
  buf[pos] ^= 0x5a;
  writeFileSync(file, buf);
}

/** A topic with several closed segments and an active one, batches of 5 readings. */
async function build(dataDir: string, batches = 30, opts = { segmentBytes: 8192, indexIntervalBytes: 1024 }) {
  const log = await fx.open({ dataDir });
  await log.createTopic('t', opts);
  for (let b = 0; b < batches; b++) await log.appendBatch('t', Array.from({ length: 5 }, (_, j) => ({ ...reading(b * 5 + j), partition: 0 })));
  await log.close();
  return { total: batches * 5, dir: join(dataDir, 't-0') };
}

describe('log store recovery', () => {
  it('cuts a torn batch at the end of the active segment, reports and logs the bytes dropped', async () => {
    const dataDir = fx.tempDir();
    const { total, dir } = await build(dataDir, 6, { segmentBytes: 1 << 20, indexIntervalBytes: 4096 });
    const active = segmentLogs(dir).at(-1)!;
    const sizeBefore = statSync(active).size;
    // The first 100 bytes of a real next batch: a write torn by a crash.
    const next = encodeBatch([reading(999)], null, 0);
    sealBatch(next.buf, total);
    appendFileSync(active, next.buf.subarray(0, 100));
    const logger = capturingLogger();
    const log = await fx.open({ dataDir, logger });
    expect(log.recovery).toEqual([{ topic: 't', partition: 0, segment: active, bytesTruncated: 100, indexesRebuilt: [], problems: [expect.objectContaining({ position: sizeBefore })] }]);
    expect(logger.lines.some((l) => l.level === 'warn' && l.obj.bytesTruncated === 100 && l.obj.file === active)).toBe(true);
    expect(statSync(active).size).toBe(sizeBefore);
    expect((await readAll(log, 't', 0)).map((r) => r.value.toString())).toEqual(Array.from({ length: total }, (_, i) => reading(i).value));
    expect((await log.append('t', { key: 'x', value: 'after' })).offset).toBe(total);
    await log.close();
    const again = await fx.open({ dataDir });
    expect(again.recovery).toEqual([]);
    expect(again.endOffset('t', 0)).toBe(total + 1);
  });

  it('scans only the tail of the active segment on open, whatever the size of the log', async () => {
    const dataDir = fx.tempDir();
    const { total, dir } = await build(dataDir, 60, { segmentBytes: 16_384, indexIntervalBytes: 1024 });
    const logs = segmentLogs(dir);
    expect(logs.length).toBeGreaterThan(3);
    const fs = new FaultFileSystem();
    const log = await fx.open({ dataDir, fs });
    expect(log.endOffset('t', 0)).toBe(total);
    for (const closed of logs.slice(0, -1)) expect(fs.bytesRead.get(closed) ?? 0, closed).toBe(0);
    const active = logs.at(-1)!;
    const batches = batchesOf(active);
    const biggest = Math.max(...batches.map((b) => b.bytes));
    // From the last index entry: at most one index interval plus the batch crossing it, and the entry's own check.
    expect(fs.bytesRead.get(active) ?? 0).toBeLessThanOrEqual(1024 + 3 * biggest);
    expect(statSync(active).size).toBeGreaterThan(1024 + 3 * biggest);
  });

  it('keeps only a few closed segments open while reading a long history', async () => {
    const dataDir = fx.tempDir();
    const { total, dir } = await build(dataDir, 60, { segmentBytes: 4096, indexIntervalBytes: 1024 });
    const logs = segmentLogs(dir);
    expect(logs.length).toBeGreaterThan(10);
    const fs = new FaultFileSystem();
    const log = await fx.open({ dataDir, fs });
    expect((await readAll(log, 't', 0)).length).toBe(total);
    await new Promise((r) => setTimeout(r, 20));
    const openClosed = logs.slice(0, -1).filter((f) => fs.openHandles.has(f));
    expect(openClosed.length).toBeGreaterThan(0);
    expect(openClosed.length).toBeLessThanOrEqual(4);
    // verify and time lookups over every segment leave no more open.
    expect((await log.verify()).problems).toEqual([]);
    for (let o = 0; o < total; o += 17) expect(await log.offsetForTimestamp('t', 0, reading(o).timestamp)).toBe(o);
    await new Promise((r) => setTimeout(r, 20));
    expect(logs.slice(0, -1).filter((f) => fs.openHandles.has(f)).length).toBeLessThanOrEqual(4);
    // Reading an evicted segment again reopens it.
    expect((await log.read('t', 0, 0, { maxRecords: 1 })).records[0]!.value.toString()).toBe(reading(0).value);
    expect(fs.openHandles.has(logs[0]!)).toBe(true);
  });

  it('cuts the first corrupt batch of the active segment and everything after it', async () => {
    const dataDir = fx.tempDir();
    const { dir } = await build(dataDir, 8, { segmentBytes: 1 << 20, indexIntervalBytes: 1 << 20 });
    const active = segmentLogs(dir).at(-1)!;
    const batches = batchesOf(active);
    const bad = batches[5]!;
    flipByte(active, bad.pos + 60);
    const sizeBefore = statSync(active).size;
    const log = await fx.open({ dataDir });
    expect(log.recovery).toHaveLength(1);
    expect(log.recovery[0]).toMatchObject({ bytesTruncated: sizeBefore - bad.pos, problems: [{ position: bad.pos, message: expect.stringContaining('CRC') }] });
    expect(log.endOffset('t', 0)).toBe(bad.baseOffset);
    expect((await readAll(log, 't', 0)).map((r) => r.value.toString())).toEqual(Array.from({ length: bad.baseOffset }, (_, i) => reading(i).value));
    expect((await log.verify()).problems).toEqual([]);
  });

  it('rebuilds missing index files byte for byte and keeps lookups working', async () => {
    const dataDir = fx.tempDir();
    const { total, dir } = await build(dataDir);
    const logs = segmentLogs(dir);
    expect(logs.length).toBeGreaterThan(3);
    const originals = new Map<string, Buffer>();
    for (const f of readdirSync(dir).filter((n) => /\.(time)?index$/.test(n))) originals.set(f, readFileSync(join(dir, f)));
    for (const f of originals.keys()) rmSync(join(dir, f));
    const log = await fx.open({ dataDir });
    // Closed segments are rebuilt at open (their index is checked), the active one during recovery.
    const rebuilt = log.recovery.flatMap((r) => r.indexesRebuilt).sort();
    expect(rebuilt).toEqual([...originals.keys()].map((f) => join(dir, f)).sort());
    expect(log.recovery.every((r) => r.bytesTruncated === 0 && r.problems.length === 0)).toBe(true);
    for (const [f, bytes] of originals) expect(readFileSync(join(dir, f)).equals(bytes), f).toBe(true);
    for (const off of [0, 7, 33, 64, 101, total - 1]) expect((await log.read('t', 0, off, { maxRecords: 1 })).records[0]!.value.toString()).toBe(reading(off).value);
    expect(await log.offsetForTimestamp('t', 0, reading(77).timestamp)).toBe(77);
  });

  it('notices a garbled index of a closed segment on read and rebuilds it', async () => {
    const dataDir = fx.tempDir();
    const { dir } = await build(dataDir);
    const index = segmentLogs(dir)[1]!.replace(/\.log$/, '.index');
    const original = readFileSync(index);
    expect(original.length).toBeGreaterThan(8);
    // Swap the positions of two entries: still well-formed, but pointing at the wrong batches.
    const garbled = Buffer.from(original);
    original.copy(garbled, 4, 12, 16);
    original.copy(garbled, 12, 4, 8);
    writeFileSync(index, garbled);
    const logger = capturingLogger();
    const log = await fx.open({ dataDir, logger });
    expect((await readAll(log, 't', 0)).map((r) => r.offset)).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(readFileSync(index).equals(original)).toBe(true);
  });

  it('reports a corrupt batch in a closed segment: readers get LOG_CORRUPT with where to resume, verify names it', async () => {
    const dataDir = fx.tempDir();
    const { total, dir } = await build(dataDir);
    const closed = segmentLogs(dir)[1]!;
    const batches = batchesOf(closed);
    const bad = batches[Math.floor(batches.length / 2)]!;
    flipByte(closed, bad.pos + 50);
    const log = await fx.open({ dataDir });
    // Opening scans only the tail: the closed segment is not read.
    expect(log.recovery).toEqual([]);
    const err = await log.read('t', 0, bad.baseOffset).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LOG_CORRUPT', context: { file: closed, position: bad.pos, offset: bad.baseOffset } });
    const resume = (err as { context: { nextValidOffset: number } }).context.nextValidOffset;
    expect(resume).toBeGreaterThanOrEqual(bad.baseOffset + bad.count);
    // A read that starts before the damage returns the records up to it.
    const before = await log.read('t', 0, bad.baseOffset - 3, { maxRecords: 100 });
    expect(before.records.map((r) => r.offset)).toEqual([bad.baseOffset - 3, bad.baseOffset - 2, bad.baseOffset - 1]);
    const { records, corrupt } = await readAround(log, 't', 0);
    expect(corrupt).toEqual([{ offset: bad.baseOffset, nextValidOffset: resume }]);
    const expected = Array.from({ length: total }, (_, i) => i).filter((i) => i < bad.baseOffset || i >= resume);
    expect(records.map((r) => r.offset)).toEqual(expected);
    for (const r of records) expect(r.value.toString()).toBe(reading(r.offset).value);
    const report = await log.verify();
    expect(report.problems).toEqual([expect.objectContaining({ topic: 't', partition: 0, file: closed, position: bad.pos })]);
    expect(report.segments).toBe(segmentLogs(dir).length);
  });

  it('reports closed-segment damage found while rebuilding its indexes at open', async () => {
    const dataDir = fx.tempDir();
    const { dir } = await build(dataDir);
    const closed = segmentLogs(dir)[0]!;
    const bad = batchesOf(closed)[2]!;
    flipByte(closed, bad.pos + 40);
    rmSync(closed.replace(/\.log$/, '.index'));
    const logger = capturingLogger();
    const log = await fx.open({ dataDir, logger });
    expect(log.recovery).toEqual([
      expect.objectContaining({ segment: closed, bytesTruncated: 0, problems: [expect.objectContaining({ file: closed, position: bad.pos })] }),
    ]);
    expect(logger.lines.some((l) => l.level === 'error' && l.obj.file === closed)).toBe(true);
    // Nothing was cut from a closed segment.
    await expect(log.read('t', 0, bad.baseOffset)).rejects.toMatchObject({ code: 'LOG_CORRUPT' });
    expect((await log.read('t', 0, 0, { maxRecords: bad.baseOffset })).records).toHaveLength(bad.baseOffset);
  });

  it('treats a closed segment cut short as damage, not as missing records', async () => {
    const dataDir = fx.tempDir();
    const { total, dir } = await build(dataDir);
    const closed = segmentLogs(dir)[1]!;
    const batches = batchesOf(closed);
    const cut = batches[batches.length - 2]!;
    truncateSync(closed, cut.pos + 10);
    const log = await fx.open({ dataDir });
    const { records, corrupt } = await readAround(log, 't', 0);
    expect(corrupt.length).toBe(1);
    expect(corrupt[0]!.offset).toBe(cut.baseOffset);
    expect(records.length).toBe(total - (corrupt[0]!.nextValidOffset - cut.baseOffset));
    expect((await log.verify()).problems.length).toBeGreaterThan(0);
  });
});
