/**
 * Crash test of the log: a real `millstream log produce --report-acks`
 * appends keyed widget readings to a 3-partition topic and is SIGKILLed at
 * seeded random moments (during start-up and recovery, or mid-stream just
 * after an acknowledgement). After each kill the log is reopened (taking over
 * the dead owner's lock, recovering the torn tail) and checked record by
 * record:
 *
 * - every acknowledged record is present exactly once;
 * - per partition, records are in input order, each on the partition its key
 *   maps to, with its key, value and timestamp intact;
 * - what survived of a run is, per partition, a prefix of what that run was
 *   fed (no holes: nothing later survived while something earlier was lost);
 * - `verify()` finds no damage.
 *
 * CI runs 10 cycles; MILLSTREAM_LONG=1 runs 300 (MILLSTREAM_CRASH_CYCLES=N
 * for any other count). MILLSTREAM_CRASH_SEED replays a given schedule.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { kafkaPartition, openLogStore } from '../log-store/index.ts';
import type { LogStoreApi } from '../log-store/index.ts';
import { collectLines, createCliRunner } from './support/cli.ts';
import { seededRandom } from './support/seeded-random.ts';

const LONG = process.env.MILLSTREAM_LONG === '1';
const CRASH_CYCLES = Number(process.env.MILLSTREAM_CRASH_CYCLES ?? (LONG ? 300 : 10));
const SEED = Number(process.env.MILLSTREAM_CRASH_SEED ?? 0x5eed2);
const TOPIC = 'widgets';
const PARTITIONS = 3;
const SENSORS = 23;
const TS0 = Date.UTC(2020, 1, 14, 12, 19, 27);
/** Lines written to the child's stdin per write. */
const FEED_LINES = 500;


const keyOf = (seq: number): string => `aa-${100 + ((seq * 7919) % SENSORS)}`;
const partitionOf = (seq: number): number => kafkaPartition(keyOf(seq), PARTITIONS);
const lineOf = (seq: number): string =>
  JSON.stringify({
    reading_ts: TS0 + seq,
    sensor_id: keyOf(seq),
    production_line: `w0${1 + (seq % 4)}`,
    widget_type: 'acme94',
    colour: seq % 3 ? 'RED' : 'BLUE',
    temp_celcius: 15 + (seq % 20),
    widget_weight_g: 90 + (seq % 60),
    seq,
  });

interface Run {
  /** First seq fed to this run. */
  from: number;
  /** One past the last seq written to its stdin. */
  to: number;
  /** Last `acked n` it printed: seqs from..from+n-1 are durable. */
  acked: number;
}

const cli = createCliRunner();
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-log-crash-'));
});

afterAll(async () => {
  await cli.killAll();
  await rm(dir, { recursive: true, force: true });
});

/** One producer run, SIGKILLed at a moment drawn from `rand`. */
async function produceAndKill(dataDir: string, from: number, rand: () => number): Promise<Run> {
  const child = cli.spawn(['log', 'produce', TOPIC, '--key-field', 'sensor_id', '--report-acks', '--data-dir', dataDir]);
  const out = collectLines(child.stdout);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let dead = false;
  void closed.then(() => (dead = true));

  const run: Run = { from, to: from, acked: 0 };
  const feeding = (async () => {
    while (!dead) {
      const chunk = Array.from({ length: FEED_LINES }, (_, i) => `${lineOf(run.to + i)}\n`).join('');
      run.to += FEED_LINES;
      if (!child.stdin.write(chunk)) await Promise.race([new Promise((r) => child.stdin.once('drain', r)), closed]);
    }
  })();

  const ackedAtLeast = (n: number) => (lines: readonly string[]) =>
    lines.some((l) => l.startsWith('acked ') && Number(l.slice(6)) >= n);
  if (rand() < 0.15) {
    // Early: while the store opens, recovers the previous run's tail, or takes the first groups.
    await new Promise((r) => setTimeout(r, Math.floor(rand() * 1500)));
  } else {
    await out.until(ackedAtLeast(1 + Math.floor(rand() * 4_000)));
    await new Promise((r) => setTimeout(r, Math.floor(rand() * 8)));
  }
  expect(dead, `producer exited before it was killed: ${stderr}`).toBe(false);
  child.kill('SIGKILL');
  await closed;
  await feeding;
  for (const line of out.lines) if (line.startsWith('acked ')) run.acked = Math.max(run.acked, Number(line.slice(6)));
  return run;
}

/** Reads every record and checks it against every run so far; returns the problems found. */
async function check(store: LogStoreApi, runs: readonly Run[]): Promise<string[]> {
  const problems: string[] = [];
  const stored = new Set<number>();
  // Per partition: the seqs each run was fed, in order.
  const runOf = (seq: number): number => runs.findIndex((r) => seq >= r.from && seq < r.to);
  for (let p = 0; p < PARTITIONS; p++) {
    if (store.earliestOffset(TOPIC, p) !== 0) problems.push(`partition ${p}: earliest offset ${store.earliestOffset(TOPIC, p)}`);
    const end = store.endOffset(TOPIC, p);
    const seqs: number[] = [];
    for (let offset = 0; offset < end; ) {
      const { records, nextOffset } = await store.read(TOPIC, p, offset, { maxRecords: 5000, maxBytes: 4 * 1024 * 1024 });
      for (const r of records) {
        const text = r.value.toString('utf8');
        const seq = (JSON.parse(text) as { seq: number }).seq;
        if (r.offset !== seqs.length || text !== lineOf(seq) || r.key !== keyOf(seq) || r.timestamp !== TS0 + seq || partitionOf(seq) !== p) {
          problems.push(`partition ${p} offset ${r.offset}: record ${JSON.stringify({ key: r.key, ts: r.timestamp, text })} is not seq ${seq} as produced`);
        }
        if (seqs.length && seq <= seqs[seqs.length - 1]!) problems.push(`partition ${p} offset ${r.offset}: seq ${seq} after ${seqs[seqs.length - 1]} (order or duplicate)`);
        if (stored.has(seq)) problems.push(`seq ${seq} stored twice`);
        stored.add(seq);
        seqs.push(seq);
      }
      if (records.length === 0) {
        problems.push(`partition ${p}: read at ${offset} returned nothing below end offset ${end}`);
        break;
      }
      offset = nextOffset;
    }
    if (seqs.length !== end) problems.push(`partition ${p}: ${seqs.length} records read, end offset ${end}`);
    // Per run: what survived on this partition is a prefix of what the run fed it.
    const runIndex = seqs.map(runOf);
    for (let i = 0; i < runs.length; i++) {
      const kept = seqs.filter((_, j) => runIndex[j] === i);
      const fed: number[] = [];
      for (let s = runs[i]!.from; s < runs[i]!.to && fed.length < kept.length; s++) if (partitionOf(s) === p) fed.push(s);
      if (kept.some((s, j) => s !== fed[j])) problems.push(`partition ${p}, run ${i}: survivors are not a prefix of what was fed`);
    }
    if (runIndex.some((i) => i < 0)) problems.push(`partition ${p}: a record that was never fed`);
  }
  for (const run of runs) {
    for (let s = run.from; s < run.from + run.acked; s++) {
      if (!stored.has(s)) {
        problems.push(`acknowledged seq ${s} (run from ${run.from}, acked ${run.acked}) is missing`);
        break;
      }
    }
  }
  return problems;
}

// The timeout only catches a hang; it grows with the number of cycles asked for.
it(`every acknowledged record survives SIGKILL of the producer, exactly once and in order (${CRASH_CYCLES} kills, seed ${SEED})`, { timeout: Math.max(120_000, CRASH_CYCLES * 30_000) }, async () => {
  const dataDir = join(dir, 'data');
  const setup = await openLogStore({ dataDir, retentionCheckIntervalMs: 0 });
  // Small segments so that kills also land on segment rolls; no retention: nothing may go.
  await setup.createTopic(TOPIC, { partitions: PARTITIONS, segmentBytes: 256 * 1024, retentionMs: -1 });
  await setup.close();

  const rand = seededRandom(SEED);
  const runs: Run[] = [];
  let next = 0;
  let totalAcked = 0;
  for (let cycle = 0; cycle < CRASH_CYCLES; cycle++) {
    const run = await produceAndKill(dataDir, next, rand);
    runs.push(run);
    next = run.to;
    totalAcked += run.acked;

    const store = await openLogStore({ dataDir, retentionCheckIntervalMs: 0 });
    try {
      const problems = await check(store, runs);
      expect(problems, `cycle ${cycle} (seed ${SEED})`).toEqual([]);
      const damage = await store.verify();
      expect(damage.problems, `cycle ${cycle}: verify after recovery`).toEqual([]);
    } finally {
      await store.close();
    }
  }
  // The kills landed mid-stream: most runs had acknowledged records when they died.
  expect(runs.filter((r) => r.acked > 0).length).toBeGreaterThan(CRASH_CYCLES / 2);
  expect(totalAcked).toBeGreaterThan(0);
});
