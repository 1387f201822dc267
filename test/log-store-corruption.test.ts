/**
 * Random damage, Kafka-style: files of a real log are truncated at random
 * offsets, have random bytes flipped, or get nonsense written over their
 * tail, in closed and active segments and in index files. After each, the
 * store must open without an untyped error, keep the valid prefix, return
 * only records identical to what was written, confine closed-segment damage
 * to LOG_CORRUPT ranges, and take appends again.
 *
 * Seeded: MILLSTREAM_SEED picks the seed (printed on failure);
 * MILLSTREAM_LONG=1 runs ten times as many cases.
 */
import { cpSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogError, type LogRecord } from '../log-store/index.ts';
import { readBatchHeader } from '../log-store/record-batch.ts';
import { Fixtures, readAround } from './support/log-store-fixtures.ts';
import { seededRandom } from './support/seeded-random.ts';

const SEED = Number(process.env.MILLSTREAM_SEED ?? 20_260_226);
const CASES = process.env.MILLSTREAM_LONG ? 400 : 40;


interface Batch {
  pos: number;
  baseOffset: number;
  count: number;
  bytes: number;
}

const fx = new Fixtures();
let template = '';
let original: Array<{ key: string | null; value: string; timestamp: number }> = [];
let files: Array<{ name: string; kind: 'log' | 'index' | 'timeindex'; active: boolean; size: number; base: number; nextBase: number; batches: Batch[] }> = [];

beforeAll(async () => {
  template = fx.tempDir();
  const rand = seededRandom(SEED ^ 0x5eed);
  const log = await fx.open({ dataDir: template });
  await log.createTopic('t', { segmentBytes: 4096, indexIntervalBytes: 400 });
  let offset = 0;
  for (let b = 0; b < 60; b++) {
    const n = 1 + Math.floor(rand() * 4);
    const records = Array.from({ length: n }, (_, j) => {
      const i = offset + j;
      return {
        key: i % 11 === 0 ? null : `aa-${100 + (i % 13)}`,
        value: JSON.stringify({ sensor_id: `aa-${i % 13}`, temp_celcius: Math.floor(rand() * 40), pad: 'x'.repeat(Math.floor(rand() * 120)) }),
        timestamp: 1_600_000_000_000 + i * 1000 - Math.floor(rand() * 3000),
        partition: 0,
      };
    });
    await log.appendBatch('t', records);
    original.push(...records.map(({ key, value, timestamp }) => ({ key, value, timestamp })));
    offset += n;
  }
  await log.close();
  const dir = join(template, 't-0');
  const logs = readdirSync(dir).filter((f) => f.endsWith('.log')).sort();
  expect(logs.length).toBeGreaterThan(3);
  files = [];
  logs.forEach((name, i) => {
    const buf = readFileSync(join(dir, name));
    const batches: Batch[] = [];
    for (let pos = 0; pos < buf.length; ) {
      const h = readBatchHeader(buf, pos);
      batches.push({ pos, baseOffset: h.baseOffset, count: h.recordCount, bytes: h.totalBytes });
      pos += h.totalBytes;
    }
    const base = Number(name.slice(0, 20));
    const nextBase = i + 1 < logs.length ? Number(logs[i + 1]!.slice(0, 20)) : original.length;
    const active = i === logs.length - 1;
    files.push({ name, kind: 'log', active, size: buf.length, base, nextBase, batches });
    for (const kind of ['index', 'timeindex'] as const) {
      const f = name.replace('.log', `.${kind}`);
      files.push({ name: f, kind, active, size: readFileSync(join(dir, f)).length, base, nextBase, batches });
    }
  });
});

afterAll(() => fx.cleanup());

type Damage = { how: 'truncate' | 'flip' | 'nonsense'; file: (typeof files)[number]; pos: number };

function pickDamage(rand: () => number): Damage {
  const how = (['truncate', 'flip', 'flip', 'nonsense'] as const)[Math.floor(rand() * 4)]!;
  // Weight .log files: they hold the data.
  const candidates = rand() < 0.75 ? files.filter((f) => f.kind === 'log') : files.filter((f) => f.kind !== 'log' && f.size > 0);
  const file = candidates[Math.floor(rand() * candidates.length)]!;
  return { how, file, pos: Math.floor(rand() * file.size) };
}

function apply(dir: string, d: Damage, rand: () => number): void {
  const path = join(dir, 't-0', d.file.name);
  if (d.how === 'truncate') return truncateSync(path, d.pos);
  const buf = readFileSync(path);
  if (d.how === 'flip') buf[d.pos] ^= 1 + Math.floor(rand() * 255);
  else for (let i = d.pos; i < buf.length; i++) buf[i] = Math.floor(rand() * 256);
  writeFileSync(path, buf);
}

function same(r: LogRecord): boolean {
  const o = original[r.offset];
  return o !== undefined && r.key === o.key && r.value.toString() === o.value && r.timestamp === o.timestamp;
}

describe('log store corruption', () => {
  it(`keeps the valid prefix under ${CASES} random truncations, flips and overwrites (seed ${SEED})`, async () => {
    const rand = seededRandom(SEED);
    for (let c = 0; c < CASES; c++) {
      const d = pickDamage(rand);
      const label = `seed ${SEED} case ${c}: ${d.how} ${d.file.name}${d.file.active ? ' (active)' : ''} at ${d.pos}`;
      const dataDir = fx.tempDir();
      cpSync(template, dataDir, { recursive: true });
      apply(dataDir, d, rand);
      let log;
      try {
        log = await fx.open({ dataDir });
      } catch (err) {
        throw new Error(`${label}: open threw ${err instanceof LogError ? err.code : 'an untyped error'}: ${(err as Error).message}`);
      }
      let result;
      try {
        result = await readAround(log, 't', 0);
      } catch (err) {
        throw new Error(`${label}: read threw ${err instanceof LogError ? err.code : 'an untyped error'}: ${(err as Error).message}`);
      }
      const { records, corrupt } = result;
      const got = new Set(records.map((r) => r.offset));
      for (const r of records) expect(same(r), `${label}: record ${r.offset} differs`).toBe(true);
      const damaged = d.file.kind === 'log' ? d.file.batches.find((b) => b.pos + b.bytes > d.pos) : undefined;
      if (d.file.kind !== 'log') {
        // Indexes are derived: every record is still there.
        expect(records.length, label).toBe(original.length);
        expect(corrupt, label).toEqual([]);
      } else if (damaged) {
        for (let o = 0; o < damaged.baseOffset; o++) expect(got.has(o), `${label}: lost offset ${o} before the damage`).toBe(true);
        if (d.file.active) {
          const truncated = log.recovery.some((r) => r.bytesTruncated > 0);
          if (d.how !== 'flip' || truncated) {
            // Recovery cut the first damaged batch and everything after it.
            expect(log.endOffset('t', 0), label).toBe(damaged.baseOffset);
            expect(corrupt, label).toEqual([]);
          } else {
            // A flip before the last index entry is outside the scanned tail: readers get LOG_CORRUPT over it.
            expect(log.endOffset('t', 0), label).toBe(original.length);
            expect(corrupt[0]?.offset, label).toBe(damaged.baseOffset);
          }
        } else {
          // Damage in a closed segment stays in it: every later segment reads in full.
          for (let o = d.file.nextBase; o < original.length; o++) expect(got.has(o), `${label}: lost offset ${o} after the damaged segment`).toBe(true);
          expect(corrupt.length, label).toBeGreaterThan(0);
          expect(corrupt.every((c) => c.offset >= d.file.base && c.nextValidOffset <= d.file.nextBase), label).toBe(true);
        }
      }
      // The store takes appends again, at its end offset.
      const end = log.endOffset('t', 0);
      await expect(log.append('t', { key: 'k', value: 'after', partition: 0 }), label).resolves.toEqual({ partition: 0, offset: end });
      const verify = await log.verify();
      if (d.file.kind === 'log' && d.how !== 'nonsense' && !log.recovery.some((r) => r.bytesTruncated > 0)) expect(verify.problems.length, label).toBeGreaterThan(0);
      await log.close();
    }
  });
});
