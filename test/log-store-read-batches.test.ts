/**
 * `readBatches` against real files: the same records, next offsets and
 * errors as `read`, over random data across segment boundaries, from random
 * offsets with random limits, after a torn tail was cut, after retention
 * deleted segments, and at damage in a closed segment.
 */
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { blockRecord, type LogRecord, type LogStoreApi, type ReadOptions, type RecordBlock, type RecordInput } from '../log-store/index.ts';
import { encodeBatch, readBatchHeader, sealBatch } from '../log-store/record-batch.ts';
import { decodeWorker, decodeWorkerChunks, killDecodeWorker } from '../log-store/decode-worker.ts';
import { Fixtures, ManualTimers, reading } from './support/log-store-fixtures.ts';
import { seededRandom } from './support/seeded-random.ts';

const fx = new Fixtures();
afterEach(() => fx.cleanup());

const SEED = Number(process.env.MILLSTREAM_SEED ?? 20261126);

function randomRecord(rnd: () => number, i: number): RecordInput {
  const r = rnd();
  const text = JSON.stringify({ i, sensor_id: `aa-${i % 17}`, pad: 'é'.repeat(Math.floor(rnd() * 5)), big: r < 0.05 ? 'x'.repeat(3000) : '' });
  return {
    key: r < 0.2 ? null : `aa-${i % 17}${r < 0.3 ? '-ü' : ''}`,
    value: r > 0.9 ? new Uint8Array([i & 0xff, 0, 200]) : text,
    timestamp: 1_700_000_000_000 + Math.floor(rnd() * 10_000_000) - 5_000_000,
    headers: r > 0.7 ? { source: 'mqtt', n: String(i) } : undefined,
  };
}

/** Every record of a readBatches call, as read returns them (values copied). */
async function viaBatches(log: LogStoreApi, topic: string, partition: number, offset: number, options?: ReadOptions): Promise<{ records: LogRecord[]; nextOffset: number }> {
  const res = await log.readBatches(topic, partition, offset, options);
  const records: LogRecord[] = [];
  for (const block of res.blocks) {
    expect(block.count).toBeGreaterThan(0);
    for (let i = 0; i < block.count; i++) records.push(copy(blockRecord(block, i)));
  }
  expect(res.count).toBe(records.length);
  return { records, nextOffset: res.nextOffset };
}

function copy(r: LogRecord): LogRecord {
  return { ...r, value: Buffer.from(r.value) };
}

async function viaRead(log: LogStoreApi, topic: string, partition: number, offset: number, options?: ReadOptions): Promise<{ records: LogRecord[]; nextOffset: number }> {
  const res = await log.read(topic, partition, offset, options);
  return { records: res.records.map(copy), nextOffset: res.nextOffset };
}

/** Appends readings 0 .. n-1 to partition 0 of `topic`, `per` to a log batch. */
async function appendReadings(log: LogStoreApi, topic: string, n: number, per: number): Promise<void> {
  for (let at = 0; at < n; at += per) await log.appendBatch(topic, Array.from({ length: per }, (_, k) => ({ ...reading(at + k), partition: 0 })));
}

/** The values of a block's records, as text, read in place. */
function blockValues(b: RecordBlock): string[] {
  return Array.from({ length: b.count }, (_, i) => b.buf.toString('utf8', b.valueStarts[i]!, b.valueEnds[i]!));
}

/** The values of readings from .. from + count - 1. */
function readingValues(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => reading(from + i).value as string);
}

function segmentLogs(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.log')).sort().map((f) => join(dir, f));
}

// every test twice: chunks checked and decoded on this thread, and all of them on the decode worker
describe.each([
  ['on the reading thread', 0],
  ['on the decode worker', 1],
])('readBatches, batches decoded %s', (_where, decodeOffloadBytes) => {
  const before = decodeWorkerChunks();
  afterAll(() => {
    // the worker's path was taken (or not) as the option says
    if (decodeOffloadBytes > 0) expect(decodeWorkerChunks()).toBeGreaterThan(before);
  });

  it('returns what read returns, from random offsets with random limits, across segments and partitions', async () => {
    const rnd = seededRandom(SEED);
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes });
    await log.createTopic('t', { partitions: 2, segmentBytes: 6000, indexIntervalBytes: 700, fsync: 'never' });
    let i = 0;
    for (let b = 0; b < 60; b++) {
      const n = 1 + Math.floor(rnd() * 12);
      await log.appendBatch('t', Array.from({ length: n }, () => ({ ...randomRecord(rnd, i), partition: i++ % 3 === 0 ? 1 : 0 })));
    }
    for (const p of [0, 1]) {
      const end = log.endOffset('t', p);
      expect(log.describe('t').partitionsInfo[p]!.segments).toBeGreaterThan(2);
      // whole partition, both ways, in steps that cross segment boundaries
      for (let off = 0; off < end; ) {
        const a = await viaBatches(log, 't', p, off, { maxRecords: 29 });
        expect(a).toEqual(await viaRead(log, 't', p, off, { maxRecords: 29 }));
        off = a.nextOffset;
      }
      for (let k = 0; k < 25; k++) {
        const off = Math.floor(rnd() * (end + 1));
        const options = { maxRecords: 1 + Math.floor(rnd() * 80), maxBytes: 1 + Math.floor(rnd() * 20_000) };
        expect(await viaBatches(log, 't', p, off, options)).toEqual(await viaRead(log, 't', p, off, options));
      }
      expect(await viaBatches(log, 't', p, end)).toEqual({ records: [], nextOffset: end });
      await expect(log.readBatches('t', p, end + 1)).rejects.toMatchObject({ code: 'LOG_OUT_OF_RANGE' });
    }
  });

  it('keeps the bytes of a block valid after later reads (a read buffer is reused only once its blocks are handed back)', async () => {
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes });
    await log.createTopic('t', { segmentBytes: 4096 });
    await log.appendBatch('t', Array.from({ length: 100 }, (_, i) => ({ ...reading(i), partition: 0 })));
    const first = await log.readBatches('t', 0, 0, { maxRecords: 10 });
    for (let off = 10; off < 100; off = (await log.readBatches('t', 0, off, { maxRecords: 7 })).nextOffset);
    await log.read('t', 0, 0, { maxRecords: 100 });
    const records = first.blocks.flatMap((b) => Array.from({ length: b.count }, (_, i) => blockRecord(b, i)));
    expect(records.map((r) => r.value.toString())).toEqual(Array.from({ length: 10 }, (_, i) => reading(i).value));
  });

  it('reads into a buffer again only once every block over it was handed back and no read took records from it', async () => {
    const timers = new ManualTimers();
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes, timers });
    await log.createTopic('t', { partitions: 2, fsync: 'never' });
    const n = 6000;
    // the same readings in both partitions, in log batches of 100 (about 11 KB): a read buffer of 64 KiB holds several
    for (let at = 0; at < n; at += 100) {
      for (const partition of [0, 1]) await log.appendBatch('t', Array.from({ length: 100 }, (_, k) => ({ ...reading(at + k), partition })));
    }
    const values = (blocks: readonly RecordBlock[]): string[] => blocks.flatMap(blockValues);
    const want = (from: number, to: number): string[] => readingValues(from, to - from);
    // blocks never handed back (read to hand back, and read without), and records read with `read` (views of their buffer)
    const held = await log.readBatches('t', 0, 0, { maxRecords: 100, maxBytes: 1, handBack: true });
    const first = await log.readBatches('t', 0, 1500, { maxRecords: 100, maxBytes: 1, handBack: true });
    // a read that does not hand back, from the buffer the read before made
    const kept = await log.readBatches('t', 0, 1600, { maxRecords: 100, maxBytes: 1 });
    expect(kept.blocks[0]!.buf).toBe(first.blocks[0]!.buf);
    log.releaseBlocks(first.blocks);
    const pinned = (await log.read('t', 0, 3000, { maxRecords: 5, maxBytes: 1 })).records;
    const released: Array<{ block: RecordBlock; text: string[] }> = [];
    // the partitions in turn: each partition's segment keeps its last buffer for its next read, while the other reads
    for (let pass = 0; pass < 3; pass++) {
      const next = [0, 0];
      while (next[0]! < n || next[1]! < n) {
        for (const p of [0, 1]) {
          const off = next[p]!;
          if (off >= n) continue;
          const res = await log.readBatches('t', p, off, { maxRecords: 700, maxBytes: 1, handBack: true });
          expect(values(res.blocks)).toEqual(want(off, res.nextOffset));
          for (const block of res.blocks) released.push({ block, text: values([block]) });
          log.releaseBlocks(res.blocks);
          // a second hand-back is ignored
          log.releaseBlocks(res.blocks);
          next[p] = res.nextOffset;
        }
      }
    }
    expect(values(held.blocks)).toEqual(want(0, 100));
    expect(values(kept.blocks)).toEqual(want(1600, 1700));
    expect(pinned.map((r) => r.value.toString())).toEqual(want(3000, 3005));
    // buffers were read into again: some block handed back now shows other bytes (or its memory went to the decode worker)
    const bytes = (b: RecordBlock): string[] => Array.from({ length: b.count }, (_, i) => b.buf.toString('utf8', b.valueStarts[i]!, b.valueEnds[i]!));
    const reused = released.filter(({ block, text }) => block.buf.buffer.byteLength === 0 || bytes(block).join() !== text.join());
    expect(reused.length).toBeGreaterThan(0);
    // the last reads reached the end of the log: the idle buffers are dropped after a delay (the pool's one timer), and a read
    // from the start then gets a new one
    expect(timers.pending.size).toBe(1);
    timers.fireAll();
    const again = await log.readBatches('t', 0, 0, { maxRecords: 100, maxBytes: 1, handBack: true });
    expect(released.some(({ block }) => block.buf.buffer === again.blocks[0]!.buf.buffer)).toBe(false);
  });

  it('a read that goes on into another buffer of the same segment keeps the one before for its block (it is not read into again while the block is out)', async () => {
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes });
    await log.createTopic('t', { fsync: 'never' });
    const n = 3000;
    // one segment, log batches of 10 readings (about 1.2 KB): a buffer of 64 KiB holds about 50 of them
    await appendReadings(log, 't', n, 10);
    // a small read leaves the segment a buffer; handed back, that buffer now has no block out
    const small = await log.readBatches('t', 0, 0, { maxRecords: 10, maxBytes: 1, handBack: true });
    log.releaseBlocks(small.blocks);
    // the next read takes the rest of that buffer, then reads on into another one: two blocks, the first over the old buffer
    const across = await log.readBatches('t', 0, 10, { maxRecords: 1000, maxBytes: 200_000, handBack: true });
    expect(across.blocks.length).toBeGreaterThanOrEqual(2);
    expect(across.blocks[0]!.buf.buffer).toBe(small.blocks[0]!.buf.buffer);
    const held = across.blocks.map((b) => ({ block: b, text: blockValues(b) }));
    // many more reads with buffers of that size, each handed back: none may read into the first block's buffer
    for (let off = across.nextOffset; off < n; ) {
      const res = await log.readBatches('t', 0, off, { maxRecords: 10, maxBytes: 1, handBack: true });
      log.releaseBlocks(res.blocks);
      off = res.nextOffset;
    }
    let at = 10;
    for (const { block, text } of held) {
      expect(block.buf.buffer.byteLength).toBeGreaterThan(0);
      expect(blockValues(block)).toEqual(text);
      expect(text).toEqual(readingValues(at, block.count));
      at += block.count;
    }
    log.releaseBlocks(across.blocks);
  });

  it('reads of different lengths read into longer idle buffers (their first bytes) and give the right records', async () => {
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes });
    await log.createTopic('t', { fsync: 'never' });
    const n = 4000;
    // one segment, log batches of 10 readings (about 1.2 KB)
    await appendReadings(log, 't', n, 10);
    const chunksBefore = decodeWorkerChunks();
    let shorterViews = 0;
    const buffers = new Set<Buffer>();
    // buffers of about 200 KB, 100 KB and 64 KB in turn (maxBytes), each read's blocks handed back
    const sizes = [200_000, 1, 100_000, 1, 1];
    for (let off = 0, k = 0; off < n; k++) {
      const res = await log.readBatches('t', 0, off, { maxRecords: 5000, maxBytes: sizes[k % sizes.length]!, handBack: true });
      let at = off;
      for (const block of res.blocks) {
        expect(blockValues(block)).toEqual(readingValues(at, block.count));
        at += block.count;
        if (block.buf.buffer.byteLength > block.buf.length) shorterViews++;
        buffers.add(block.buf);
      }
      expect(at).toBe(res.nextOffset);
      log.releaseBlocks(res.blocks);
      off = res.nextOffset;
    }
    expect(shorterViews).toBeGreaterThan(0);
    // every buffer went to the decode worker when it should, a view of a longer memory too (its memory comes back from
    // the worker under a new ArrayBuffer, which the pool must still know as its own)
    if (decodeOffloadBytes > 0) expect(decodeWorkerChunks() - chunksBefore).toBe(buffers.size);
  });

  it('a batch across the end of the last buffer is read with the batches after it, into a buffer of the usual length', async () => {
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes });
    await log.createTopic('t', { fsync: 'never', indexIntervalBytes: 4096 });
    const n = 2000;
    // log batches of 100 readings (about 12 KB): buffers of 64 KiB and an index interval end inside one
    await appendReadings(log, 't', n, 100);
    const lengths: number[] = [];
    let last: Buffer | null = null;
    // one batch a read: each buffer is read from where the batch that did not fit in the one before starts
    for (let off = 0; off < n; ) {
      const res = await log.readBatches('t', 0, off, { maxRecords: 100, maxBytes: 1, handBack: true });
      const buf = res.blocks[0]!.buf;
      if (buf !== last) lengths.push(buf.length);
      last = buf;
      log.releaseBlocks(res.blocks);
      off = res.nextOffset;
    }
    expect(lengths.length).toBeGreaterThan(2);
    // every buffer but the segment's last is of the usual length, none the straddling batch alone
    expect(lengths.slice(0, -1)).toEqual(lengths.slice(0, -1).map(() => 64 * 1024 + 4096));
  });

  it('a big read of fewer records than its maxBytes holds reads a buffer that ends with the batches holding them (at least 1 MiB)', async () => {
    const dir = fx.tempDir();
    const log = await fx.open({ dataDir: dir, decodeOffloadBytes });
    await log.createTopic('t', { fsync: 'never', indexIntervalBytes: 4096 });
    const n = 40_000;
    // log batches of 100 readings (about 12 KB), each indexed: about 4.8 MB in one segment
    await appendReadings(log, 't', n, 100);
    await log.flush();
    // where each batch starts in the .log
    const file = readFileSync(segmentLogs(join(dir, 't-0'))[0]!);
    const starts = new Map<number, number>();
    for (let at = 0; at < file.length; ) {
      const header = readBatchHeader(file, at);
      starts.set(header.baseOffset, at);
      at += header.totalBytes;
    }
    // 15,000 records wanted, 16 MiB allowed: the buffer ends where the batch of record 15,000 starts, not 16 MiB on
    const first = await log.readBatches('t', 0, 0, { maxRecords: 15_000, maxBytes: 16 << 20, handBack: true });
    expect(first.count).toBe(15_000);
    expect(first.blocks.map((b) => b.buf.length)).toEqual([starts.get(15_000)]);
    expect(blockValues(first.blocks[0]!)).toEqual(readingValues(0, 15_000));
    log.releaseBlocks(first.blocks);
    // 100 records wanted: a buffer of 1 MiB all the same, from which the next small reads are taken
    const small = await log.readBatches('t', 0, 15_000, { maxRecords: 100, maxBytes: 16 << 20, handBack: true });
    expect(small.blocks.map((b) => b.buf.length)).toEqual([1 << 20]);
    const next = await log.readBatches('t', 0, 15_100, { maxRecords: 100, maxBytes: 16 << 20, handBack: true });
    expect(next.blocks[0]!.buf).toBe(small.blocks[0]!.buf);
    expect([...blockValues(small.blocks[0]!), ...blockValues(next.blocks[0]!)]).toEqual(readingValues(15_000, 200));
    log.releaseBlocks([...small.blocks, ...next.blocks]);
    // and the rest, in reads of 15,000, give every record once
    let at = 15_200;
    while (at < n) {
      const res = await log.readBatches('t', 0, at, { maxRecords: 15_000, maxBytes: 16 << 20, handBack: true });
      const values = res.blocks.flatMap(blockValues);
      expect(values).toEqual(readingValues(at, res.count));
      log.releaseBlocks(res.blocks);
      at = res.nextOffset;
    }
    expect(at).toBe(n);
  });

  it('reads what recovery kept after a torn tail, and only that', async () => {
    const dataDir = fx.tempDir();
    let log = await fx.open({ dataDir, decodeOffloadBytes });
    await log.createTopic('t', { segmentBytes: 1 << 20 });
    await log.appendBatch('t', Array.from({ length: 30 }, (_, i) => ({ ...reading(i), partition: 0 })));
    await log.close();
    const next = encodeBatch([reading(999)], null, 0);
    sealBatch(next.buf, 30);
    appendFileSync(segmentLogs(join(dataDir, 't-0')).at(-1)!, next.buf.subarray(0, 90));
    log = await fx.open({ dataDir, decodeOffloadBytes });
    expect(log.recovery[0]!.bytesTruncated).toBe(90);
    const all = await viaBatches(log, 't', 0, 0, { maxRecords: 1000 });
    expect(all).toEqual(await viaRead(log, 't', 0, 0, { maxRecords: 1000 }));
    expect(all.records.map((r) => r.value.toString())).toEqual(Array.from({ length: 30 }, (_, i) => reading(i).value));
    expect(all.nextOffset).toBe(30);
  });

  it('after retention deleted segments: LOG_OUT_OF_RANGE below the earliest offset, the same records from it', async () => {
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes });
    await log.createTopic('t', { segmentBytes: 3000, retentionBytes: 6000 });
    for (let b = 0; b < 20; b++) await log.appendBatch('t', Array.from({ length: 5 }, (_, j) => ({ ...reading(b * 5 + j), partition: 0 })));
    const report = await log.enforceRetention();
    expect(report.deletedSegments.length).toBeGreaterThan(0);
    const earliest = log.earliestOffset('t', 0);
    expect(earliest).toBeGreaterThan(0);
    const below = await log.readBatches('t', 0, earliest - 1).catch((e: unknown) => e);
    expect(below).toMatchObject({ code: 'LOG_OUT_OF_RANGE', context: { earliestOffset: earliest } });
    expect(await viaBatches(log, 't', 0, earliest, { maxRecords: 1000 })).toEqual(await viaRead(log, 't', 0, earliest, { maxRecords: 1000 }));
  });

  it('at a corrupt batch in a closed segment: the same LOG_CORRUPT, and the records before it', async () => {
    const dataDir = fx.tempDir();
    let log = await fx.open({ dataDir, decodeOffloadBytes });
    await log.createTopic('t', { segmentBytes: 8192, indexIntervalBytes: 1024 });
    for (let b = 0; b < 30; b++) await log.appendBatch('t', Array.from({ length: 5 }, (_, j) => ({ ...reading(b * 5 + j), partition: 0 })));
    await log.close();
    const closed = segmentLogs(join(dataDir, 't-0'))[1]!;
    const buf = readFileSync(closed);
    const batches: Array<{ pos: number; baseOffset: number }> = [];
    for (let pos = 0; pos < buf.length; pos += readBatchHeader(buf, pos).totalBytes) batches.push({ pos, baseOffset: readBatchHeader(buf, pos).baseOffset });
    const bad = batches[Math.floor(batches.length / 2)]!;
    buf[bad.pos + 50]! ^= 0x5a;
    writeFileSync(closed, buf);
    log = await fx.open({ dataDir, decodeOffloadBytes });
    const viaB = await log.readBatches('t', 0, bad.baseOffset).catch((e: unknown) => e);
    const viaR = await log.read('t', 0, bad.baseOffset).catch((e: unknown) => e);
    expect(viaB).toMatchObject({ code: 'LOG_CORRUPT', context: { file: closed, position: bad.pos, offset: bad.baseOffset } });
    expect((viaB as { context: unknown }).context).toEqual((viaR as { context: unknown }).context);
    const before = await viaBatches(log, 't', 0, bad.baseOffset - 3, { maxRecords: 100 });
    expect(before.records.map((r) => r.offset)).toEqual([bad.baseOffset - 3, bad.baseOffset - 2, bad.baseOffset - 1]);
    expect(before.nextOffset).toBe(bad.baseOffset);
  });
});

describe('readBatches when the decode worker is gone', () => {
  it('reads a chunk again when the worker fails with it (its memory went there): the same records', async () => {
    const rnd = seededRandom(SEED + 2);
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes: 1 });
    await log.createTopic('t', { segmentBytes: 50_000, fsync: 'never' });
    for (let b = 0; b < 20; b++) await log.appendBatch('t', Array.from({ length: 30 }, (_, j) => ({ ...randomRecord(rnd, b * 30 + j), partition: 0 })));
    // what the reader sees when the worker dies in the middle of a decode: the chunk was handed over, no answer comes
    const worker = decodeWorker()!;
    const decode = worker.decode.bind(worker);
    const handed: Buffer[] = [];
    worker.decode = (chunk) => {
      handed.push(chunk);
      void decode(chunk);
      return Promise.resolve(null);
    };
    let got: Awaited<ReturnType<typeof viaBatches>>;
    try {
      got = await viaBatches(log, 't', 0, 0, { maxRecords: 10_000 });
    } finally {
      delete (worker as { decode?: unknown }).decode;
    }
    expect(got).toEqual(await viaRead(log, 't', 0, 0, { maxRecords: 10_000 }));
    expect(got.records).toHaveLength(600);
    expect(handed.length).toBeGreaterThan(0);
    // the chunks' memory went to the worker
    expect(handed.every((c) => c.buffer.byteLength === 0)).toBe(true);
  });

  it('checks and decodes on the reading thread, with the same records', async () => {
    const rnd = seededRandom(SEED + 1);
    const log = await fx.open({ dataDir: fx.tempDir(), decodeOffloadBytes: 1 });
    await log.createTopic('t', { segmentBytes: 50_000, fsync: 'never' });
    for (let b = 0; b < 20; b++) await log.appendBatch('t', Array.from({ length: 30 }, (_, j) => ({ ...randomRecord(rnd, b * 30 + j), partition: 0 })));
    const want = await viaRead(log, 't', 0, 0, { maxRecords: 10_000 });
    expect(await viaBatches(log, 't', 0, 0, { maxRecords: 10_000 })).toEqual(want);
    const decoded = decodeWorkerChunks();
    await killDecodeWorker();
    expect(await viaBatches(log, 't', 0, 0, { maxRecords: 10_000 })).toEqual(want);
    expect(await viaBatches(log, 't', 0, 123, { maxRecords: 77 })).toEqual(await viaRead(log, 't', 0, 123, { maxRecords: 77 }));
    expect(decodeWorkerChunks()).toBe(decoded);
  });
});
