/**
 * log-store benchmark (issue 2). Measures, in one process and one run:
 *
 * 1. durable appends: ~150-byte JSON widget readings through `appendBatch`
 *    with fsync 'always' and the store's group commit (records/s, MB/s of
 *    payload), on a 1-partition topic (the like-for-like comparison) and on a
 *    3-partition keyed topic (the widget case);
 * 2. baseline (a): raw sequential `write` + `fdatasync` of the same payload
 *    bytes in the same group sizes the store used (counted through the
 *    store's file-system port): the physical limit of this disk;
 * 3. baseline (b): SQLite (sqlite3 package, WAL, synchronous=FULL) batched
 *    multi-row inserts of the same records, one transaction per group;
 * 4. reopen after a kill: a child `millstream log produce` appends to the
 *    large log written above and is SIGKILLed mid-stream; `openLogStore` is
 *    timed (only the tail is scanned, so it should not grow with the log).
 *
 * Targets (issue 2, 2-core machine): ≥ 1,000,000 records/s, ≥ 0.5 × (a),
 * ≥ 5 × (b), reopen < 1 s. Peak RSS is printed by the runner.
 * `BENCH_SCALE` multiplies the record counts (default 1: 1,000,000 records).
 */
import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import sqlite3 from 'sqlite3';
import { nodeFileSystem, openLogStore } from '../log-store/index.ts';
import type { LogFileHandle, LogFileSystem, LogStoreApi, RecordInput } from '../log-store/index.ts';
import type { BenchReporter, BenchSuite } from './harness.ts';

/** Records per `appendBatch` call, as a bridge gathering a burst of readings would hand them over. */
const BATCH_RECORDS = 1000;
/** appendBatch calls waiting for durability at once (the producers the store serves concurrently). */
const BATCHES_IN_FLIGHT = 64;
/** Distinct readings generated up front and cycled through (JSON encoding is the producer's cost, not the store's). */
const POOL_SIZE = 10_000;
const SENSORS = 200;
const MB = 1024 * 1024;

interface Reading {
  key: string;
  value: string;
}

/** Widget readings as they come from the field (DESIGN.md), about 150 bytes each. */
function readingPool(): Reading[] {
  const colours = ['RED', 'BLUE', 'GREEN', 'YELLOW'];
  const t0 = Date.parse('2020-02-14T12:19:27Z');
  const pool: Reading[] = [];
  for (let i = 0; i < POOL_SIZE; i++) {
    const sensor = `aa-${100 + (i % SENSORS)}`;
    const value = JSON.stringify({
      reading_ts: t0 + i * 250,
      sensor_id: sensor,
      production_line: `w0${1 + (i % 4)}`,
      widget_type: 'acme94',
      colour: colours[i % colours.length],
      temp_celcius: 15 + ((i * 7) % 20),
      widget_weight_g: 90 + ((i * 13) % 60),
    });
    pool.push({ key: sensor, value });
  }
  return pool;
}

/** The real file system, counting fdatasync/fsync calls on log files and bytes written to them. */
function countingFileSystem(): { fs: LogFileSystem; syncs: () => number; logBytes: () => number } {
  let syncs = 0;
  let logBytes = 0;
  const wrap = (path: string, fh: LogFileHandle): LogFileHandle => {
    if (!path.endsWith('.log')) return fh;
    return {
      write: async (buffer, offset, length, position) => {
        const n = await fh.write(buffer, offset, length, position);
        logBytes += n;
        return n;
      },
      writev: async (buffers, position) => {
        const n = await fh.writev(buffers, position);
        logBytes += n;
        return n;
      },
      read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
      datasync: () => {
        syncs++;
        return fh.datasync();
      },
      sync: () => {
        syncs++;
        return fh.sync();
      },
      truncate: (length) => fh.truncate(length),
      size: () => fh.size(),
      close: () => fh.close(),
    };
  };
  const fs: LogFileSystem = {
    ...nodeFileSystem,
    open: async (path, mode) => wrap(path, await nodeFileSystem.open(path, mode)),
  };
  return { fs, syncs: () => syncs, logBytes: () => logBytes };
}

/** Appends `count` readings, BATCHES_IN_FLIGHT batches of BATCH_RECORDS at a time; returns elapsed ms. */
async function appendReadings(store: LogStoreApi, topic: string, pool: readonly Reading[], count: number, keyed: boolean): Promise<number> {
  const t0 = Date.parse('2020-02-14T12:19:27Z');
  const pending: Array<Promise<unknown>> = [];
  const start = performance.now();
  for (let i = 0; i < count; ) {
    const n = Math.min(BATCH_RECORDS, count - i);
    const batch: RecordInput[] = new Array(n);
    for (let j = 0; j < n; j++, i++) {
      const r = pool[i % POOL_SIZE]!;
      batch[j] = { key: keyed ? r.key : null, value: r.value, timestamp: t0 + i };
    }
    pending.push(store.appendBatch(topic, batch));
    if (pending.length >= BATCHES_IN_FLIGHT) await pending.shift();
  }
  await Promise.all(pending);
  return performance.now() - start;
}

/** Baseline (a): the same payload bytes, `groups` write + fdatasync rounds, synchronous calls (no thread-pool hop). */
function rawWriteSync(path: string, pool: readonly Reading[], count: number, recordsPerGroup: number): number {
  const groupBuffer = Buffer.from(
    Array.from({ length: recordsPerGroup }, (_, i) => pool[i % POOL_SIZE]!.value).join(''),
    'utf8',
  );
  const perRecord = groupBuffer.length / recordsPerGroup;
  const fd = openSync(path, 'w');
  const start = performance.now();
  try {
    for (let written = 0; written < count; written += recordsPerGroup) {
      const n = Math.min(recordsPerGroup, count - written);
      const len = n === recordsPerGroup ? groupBuffer.length : Math.round(n * perRecord);
      let off = 0;
      while (off < len) off += writeSync(fd, groupBuffer, off, len - off);
      fdatasyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
  return performance.now() - start;
}

function sqlite<T>(fn: (cb: (err: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** Baseline (b): SQLite, WAL + synchronous=FULL (durable at commit), multi-row inserts, one transaction per group. */
async function sqliteInserts(path: string, pool: readonly Reading[], count: number, recordsPerGroup: number): Promise<number> {
  const ROWS_PER_STATEMENT = 250;
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const d = new sqlite3.Database(path, (err) => (err ? reject(err) : resolve(d)));
  });
  try {
    await sqlite<void>((cb) => db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE readings (key TEXT, ts INTEGER, value TEXT);', cb));
    const placeholders = (rows: number): string => Array.from({ length: rows }, () => '(?,?,?)').join(',');
    const full = db.prepare(`INSERT INTO readings (key, ts, value) VALUES ${placeholders(ROWS_PER_STATEMENT)}`);
    const t0 = Date.parse('2020-02-14T12:19:27Z');
    const start = performance.now();
    for (let i = 0; i < count; ) {
      const groupEnd = Math.min(count, i + recordsPerGroup);
      await sqlite<void>((cb) => db.run('BEGIN', cb));
      while (i < groupEnd) {
        const rows = Math.min(ROWS_PER_STATEMENT, groupEnd - i);
        const params: Array<string | number> = [];
        for (let j = 0; j < rows; j++, i++) {
          const r = pool[i % POOL_SIZE]!;
          params.push(r.key, t0 + i, r.value);
        }
        if (rows === ROWS_PER_STATEMENT) await sqlite<void>((cb) => full.run(params, cb));
        else await sqlite<void>((cb) => db.run(`INSERT INTO readings (key, ts, value) VALUES ${placeholders(rows)}`, params, cb));
      }
      await sqlite<void>((cb) => db.run('COMMIT', cb));
    }
    const elapsed = performance.now() - start;
    await sqlite<void>((cb) => full.finalize(cb));
    return elapsed;
  } finally {
    await sqlite<void>((cb) => db.close(cb));
  }
}

/**
 * Starts `millstream log produce --report-acks` on the data directory, feeds
 * it readings until it has acknowledged `ackTarget` records, and SIGKILLs it
 * while it is still writing. Returns the last acknowledged count.
 */
async function produceThenKill(dataDir: string, topic: string, pool: readonly Reading[], ackTarget: number): Promise<number> {
  const bin = fileURLToPath(new URL('../bin/millstream.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'log', 'produce', topic, '--data-dir', dataDir, '--key-field', 'sensor_id', '--report-acks'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.on('error', () => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopped = false;
  const feed = async (): Promise<void> => {
    const chunk = Array.from({ length: 2000 }, (_, i) => pool[i % POOL_SIZE]!.value).join('\n') + '\n';
    while (!stopped) {
      if (!child.stdin.write(chunk)) await Promise.race([new Promise((r) => child.stdin.once('drain', r)), exited]);
    }
  };
  const feeding = feed();
  let acked = 0;
  for await (const line of createInterface({ input: child.stdout })) {
    const m = /^acked (\d+)$/.exec(line);
    if (m) acked = Number(m[1]);
    if (acked >= ackTarget) break;
  }
  child.kill('SIGKILL');
  stopped = true;
  await exited;
  await feeding;
  return acked;
}

async function run(report: BenchReporter, ctx: { scale: number; tmpDir: string }): Promise<void> {
  const count = Math.max(20_000, Math.round(1_000_000 * ctx.scale));
  const sqliteCount = Math.max(10_000, Math.round(200_000 * ctx.scale));
  const pool = readingPool();
  const payloadBytesPerRecord = pool.reduce((s, r) => s + Buffer.byteLength(r.value), 0) / pool.length;
  report.note(
    `${count.toLocaleString('en-US')} readings of ${payloadBytesPerRecord.toFixed(0)} bytes (avg JSON), appendBatch of ${BATCH_RECORDS}, ` +
      `${BATCHES_IN_FLIGHT} batches in flight, fsync 'always'`,
  );

  // 1. Durable appends, 1 partition, group commit.
  const dataDir = join(ctx.tmpDir, 'log');
  const counting = countingFileSystem();
  let store = await openLogStore({ dataDir, fs: counting.fs, retentionCheckIntervalMs: 0 });
  // Warm-up (not timed): the JIT compiles the encode and write paths before the measured run.
  await store.createTopic('warmup', { partitions: 1, retentionMs: -1 });
  await appendReadings(store, 'warmup', pool, Math.round(count / 10), false);
  const syncsBefore = counting.syncs();
  const bytesBefore = counting.logBytes();
  await store.createTopic('bench', { partitions: 1, retentionMs: -1 });
  const storeMs = await appendReadings(store, 'bench', pool, count, false);
  const groups = counting.syncs() - syncsBefore;
  const onDiskBytes = counting.logBytes() - bytesBefore;
  const recordsPerGroup = Math.max(1, Math.round(count / Math.max(1, groups)));
  const storeRate = count / (storeMs / 1000);
  const payloadMb = (count * payloadBytesPerRecord) / MB;
  report.note(
    `store: ${groups} fsyncs of .log files (${recordsPerGroup} records, ${((onDiskBytes / Math.max(1, groups)) / 1024).toFixed(0)} KiB per group); ` +
      `${(onDiskBytes / count).toFixed(1)} bytes on disk per record`,
  );

  // 2. Baseline (a): raw write + fdatasync, same bytes, same group sizes.
  const rawMs = rawWriteSync(join(ctx.tmpDir, 'raw.bin'), pool, count, recordsPerGroup);
  const rawRate = count / (rawMs / 1000);
  report.compare('durable append vs raw write+fdatasync (a)', storeRate, rawRate, 'records/s', { min: 1_000_000, minRatio: 0.5 });
  report.compare('durable append MB/s vs raw (a)', payloadMb / (storeMs / 1000), payloadMb / (rawMs / 1000), 'MB/s', { minRatio: 0.5 });

  // 3. Baseline (b): SQLite, one transaction per group.
  const sqliteMs = await sqliteInserts(join(ctx.tmpDir, 'bench.sqlite'), pool, sqliteCount, recordsPerGroup);
  const sqliteRate = sqliteCount / (sqliteMs / 1000);
  report.compare('durable append vs SQLite batched inserts (b)', storeRate, sqliteRate, 'records/s', { minRatio: 5 });

  // The widget case: 3 partitions, keyed by sensor id; warmed up as the first run was (routing by key is code the
  // unkeyed runs never ran: in one process, a first keyed run took 0.2 µs more CPU per record than a second).
  await store.createTopic('warmup-keyed', { partitions: 3, retentionMs: -1 });
  await appendReadings(store, 'warmup-keyed', pool, Math.round(count / 10), true);
  await store.createTopic('widgets', { partitions: 3, retentionMs: -1 });
  const keyedMs = await appendReadings(store, 'widgets', pool, count, true);
  report.figure('durable append, 3 partitions keyed', count / (keyedMs / 1000), 'records/s', { min: 1_000_000 });
  await store.close();

  // 4. Reopen after a kill: a child appends to the same log and is SIGKILLed mid-write.
  const acked = await produceThenKill(dataDir, 'widgets', pool, Math.max(20_000, Math.round(100_000 * ctx.scale)));
  const start = performance.now();
  store = await openLogStore({ dataDir, retentionCheckIntervalMs: 0 });
  const reopenMs = performance.now() - start;
  const logBytes = store.topics().reduce((s, t) => s + store.describe(t.name).partitionsInfo.reduce((a, p) => a + p.bytes, 0), 0);
  const truncated = store.recovery.reduce((s, r) => s + r.bytesTruncated, 0);
  const segments = store.topics().reduce((s, t) => s + store.describe(t.name).partitionsInfo.reduce((a, p) => a + p.segments, 0), 0);
  await store.close();
  report.note(`killed a producer after ${acked} acks; log holds ${(logBytes / MB).toFixed(0)} MB in ${segments} segments; recovery cut ${truncated} bytes`);
  report.figure('reopen after SIGKILL', reopenMs, 'ms', { max: 1000 });
}

const suite: BenchSuite = {
  name: 'log-store',
  description: 'durable appends with group commit vs raw write+fdatasync and SQLite; reopen after SIGKILL',
  run,
};

export default suite;
