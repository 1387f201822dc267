/**
 * Exactly-once output across SIGKILL: a child process runs five rules
 * (hopping EMIT CHANGES with grace and late records, session EMIT FINAL, a
 * filter/projection stream, a `SELECT *` filter the prefilter settles
 * from the scan, and a tumbling EMIT FINAL aggregation fed key runs from the
 * scan) over readings already in a real log with three
 * partitions, and is killed at seeded random moments, then restarted, until
 * it finishes. Its output topics must equal, record for record, those of an
 * uninterrupted run over the same input.
 *
 * A few kills by default; MILLSTREAM_LONG=1 makes it a soak (many kills).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openLogStore } from '../log-store/index.ts';
import { seededRandom } from './support/seeded-random.ts';

const CHILD = fileURLToPath(new URL('./support/rules-crash-child.ts', import.meta.url));
const LONG = process.env.MILLSTREAM_LONG === '1';

const SQL = `
CREATE STREAM widgets (sensor_id VARCHAR, production_line VARCHAR, temp_celcius DOUBLE, ts BIGINT)
  WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='ts');
SET 'auto.offset.reset'='earliest';
CREATE TABLE hop AS
  SELECT sensor_id, COUNT(*) AS n, AVG(temp_celcius) AS t, LATEST_BY_OFFSET(production_line) AS line FROM widgets
  WINDOW HOPPING (SIZE 20 SECONDS, ADVANCE BY 5 SECONDS, GRACE PERIOD 3 SECONDS)
  GROUP BY sensor_id EMIT CHANGES;
CREATE TABLE sess AS
  SELECT production_line, COUNT(*) AS n, MAX(temp_celcius) AS hi FROM widgets
  WINDOW SESSION (4 SECONDS, GRACE PERIOD 2 SECONDS)
  GROUP BY production_line EMIT FINAL;
CREATE STREAM hot AS SELECT sensor_id, temp_celcius * 2 AS t2 FROM widgets WHERE temp_celcius > 25;
CREATE STREAM widgets_at (sensor_id VARCHAR, production_line VARCHAR, temp_celcius DOUBLE, at VARCHAR)
  WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='at');
CREATE STREAM line1 AS SELECT * FROM widgets_at WHERE production_line = 'w01';
CREATE TABLE tumble AS
  SELECT sensor_id, COUNT(*) AS n, AVG(temp_celcius) AS t, LATEST_BY_OFFSET(temp_celcius) AS last FROM widgets_at
  WINDOW TUMBLING (SIZE 5 SECONDS, GRACE PERIOD 2 SECONDS)
  GROUP BY sensor_id EMIT FINAL;
`;
const TOPICS = ['hop', 'hop_late', 'sess', 'sess_late', 'hot', 'hot_late', 'line1', 'line1_late', 'tumble', 'tumble_late'];


async function writeInput(dataDir: string, seed: number, count: number): Promise<void> {
  const rand = seededRandom(seed);
  const log = await openLogStore({ dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
  await log.createTopic('widgets', { partitions: 3 });
  let t = 1_600_000_000_000;
  for (let i = 0; i < count; i += 100) {
    const chunk = [];
    for (let k = i; k < Math.min(count, i + 100); k++) {
      t += Math.floor(rand() * 400);
      // mostly in order; some a little late (within grace), a few far behind (late records)
      const jitter = rand() < 0.05 ? -Math.floor(rand() * 30_000) : -Math.floor(rand() * 2_000);
      const sensor = `s-${Math.floor(rand() * 10)}`;
      // one in a hundred has no event time: every rule sends it to its _late topic
      const ts = rand() < 0.01 ? null : t + jitter;
      // `at`: the same instant as ISO text to the second, in runs of one text (line1 settles such runs from the scan: the prefilter)
      const at = ts === null ? null : new Date(Math.floor(ts / 1000) * 1000).toISOString();
      const value = { sensor_id: sensor, production_line: `w0${Math.floor(rand() * 3)}`, temp_celcius: Math.round(rand() * 400) / 10, ts, at };
      chunk.push({ key: sensor, value: JSON.stringify(value), timestamp: t });
    }
    await log.appendBatch('widgets', chunk);
  }
  await log.close();
}

async function readOutputs(dataDir: string): Promise<Record<string, string[][]>> {
  const log = await openLogStore({ dataDir, readOnly: true, retentionCheckIntervalMs: 0 });
  const out: Record<string, string[][]> = {};
  try {
    for (const topic of TOPICS) {
      out[topic] = [];
      for (let p = 0; p < log.describe(topic).partitionsInfo.length; p++) {
        const rows: string[] = [];
        let off = 0;
        const end = log.endOffset(topic, p);
        while (off < end) {
          const res = await log.read(topic, p, off, { maxRecords: 5000 });
          for (const r of res.records) rows.push(`${r.key} ${r.timestamp} ${r.value.toString('utf8')}`);
          off = res.nextOffset;
        }
        out[topic].push(rows);
      }
    }
  } finally {
    await log.close();
  }
  return out;
}

const children = new Set<ReturnType<typeof spawn>>();
const dirs: string[] = [];
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

let recoveries = 0;

/** Runs the child; with `killAfterMs`, SIGKILLs it that long after it reported ready. Resolves true when it finished on its own. */
function runChild(dataDir: string, stateDir: string, killAfterMs: number | null): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify({ dataDir, stateDir, sql: SQL, batchRecords: 20 })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | null = null;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (killAfterMs !== null && timer === null && out.includes('ready\n')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (timer) clearTimeout(timer);
      recoveries += out.split('\n').filter((l) => l === 'recovered').length;
      if (signal === 'SIGKILL') resolve(false);
      else if (code === 0 && out.includes('done\n')) resolve(true);
      else reject(new Error(`rules child exited ${code ?? signal}: ${err}`));
    });
  });
}

describe('rules exactly-once output across SIGKILL', () => {
  it('output after random kills and restarts equals an uninterrupted run', async () => {
    const seed = Number(process.env.MILLSTREAM_SEED ?? 20261126);
    const count = LONG ? 8000 : 1000;
    const kills = LONG ? 40 : 4;
    const ref = await mkdtemp(join(tmpdir(), 'millstream-rules-ref-'));
    const crash = await mkdtemp(join(tmpdir(), 'millstream-rules-crash-'));
    dirs.push(ref, crash);
    await writeInput(join(ref, 'log'), seed, count);
    await writeInput(join(crash, 'log'), seed, count);

    expect(await runChild(join(ref, 'log'), join(ref, 'state'), null)).toBe(true);
    const expected = await readOutputs(join(ref, 'log'));
    // the input really exercises every output: rows, late rows
    for (const t of TOPICS) expect(expected[t]!.flat().length, t).toBeGreaterThan(0);

    const rand = seededRandom(seed ^ 0x5eed);
    let killed = 0;
    let finished = false;
    for (let i = 0; i < kills && !finished; i++) {
      finished = await runChild(join(crash, 'log'), join(crash, 'state'), Math.floor(rand() * (LONG ? 400 : 700)));
      if (!finished) killed++;
    }
    while (!finished) finished = await runChild(join(crash, 'log'), join(crash, 'state'), null);
    expect(killed).toBeGreaterThan(0);
    // how many kills landed between an output append and its checkpoint (the case dedupe exists for)
    console.info(`rules crash test: seed ${seed}, ${killed} kills, ${recoveries} interrupted batches completed on restart`);
    if (LONG) expect(recoveries).toBeGreaterThan(0);
    const got = await readOutputs(join(crash, 'log'));
    for (const t of TOPICS) expect(got[t], t).toEqual(expected[t]);
  });
});
