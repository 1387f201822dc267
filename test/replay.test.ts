/**
 * Replay: recorded readings through rules in a sandbox. Deterministic (two
 * runs, and two speeds, give byte-identical output), correct against known
 * expected rule output, bounded by offsets and times, and it never touches
 * the live log (which it opens read-only, even while another process owns it).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile, mkdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCaptureWriter } from '../firmware-bridge/index.ts';
import { openLogStore, type LogStoreApi } from '../log-store/index.ts';
import { replay } from '../agent/replay.ts';

const run = promisify(execFile);
const bin = new URL('../bin/millstream.js', import.meta.url).pathname;
const T0 = Date.parse('2020-02-14T12:00:00Z');
const LINES = ['w01', 'w02'];
const COLOURS = ['RED', 'BLUE', 'GREEN'];

/** 240 readings over 4 minutes, 2 lines, 6 sensors; deterministic. */
function readings() {
  const out = [];
  for (let i = 0; i < 240; i++) {
    out.push({
      reading_ts: new Date(T0 + i * 1000).toISOString(),
      sensor_id: `aa-10${i % 6}`,
      production_line: LINES[i % 2]!,
      widget_type: 'acme94',
      colour: COLOURS[i % 3]!,
      temp_celcius: 18 + (i % 7),
      widget_weight_g: 100 + ((i * 13) % 50),
    });
  }
  return out;
}

const RULES = `
SET 'auto.offset.reset'='earliest';
CREATE STREAM widgets (sensor_id VARCHAR, production_line VARCHAR, colour VARCHAR, temp_celcius DOUBLE, widget_weight_g DOUBLE)
  WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON');
CREATE STREAM widgets_red AS SELECT sensor_id, colour FROM widgets WHERE colour = 'RED' EMIT CHANGES;
CREATE TABLE heavy_by_line AS
  SELECT production_line, COUNT(*) AS n FROM widgets
  WINDOW TUMBLING (SIZE 1 MINUTE)
  WHERE widget_weight_g > 120
  GROUP BY production_line EMIT FINAL;
`;

let dir: string;
let dataDir: string;
let rulesDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-replay-'));
  dataDir = join(dir, 'data');
  rulesDir = join(dir, 'rules');
  await mkdir(rulesDir);
  await writeFile(join(rulesDir, 'widgets.sql'), RULES);
  const log = await openLogStore({ dataDir, minFreeBytes: 0 });
  await log.createTopic('widgets', { partitions: 3 });
  await log.appendBatch(
    'widgets',
    readings().map((r) => ({ key: r.sensor_id, value: JSON.stringify(r), timestamp: Date.parse(r.reading_ts) })),
  );
  await log.close();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function snapshot(d: string): Promise<string> {
  const parts: string[] = [];
  for (const e of (await readdir(d, { recursive: true })).sort()) {
    const s = await stat(join(d, e));
    if (s.isFile()) parts.push(`${e}:${s.size}:${s.mtimeMs}`);
  }
  return parts.join('\n');
}

describe('replay', () => {
  it('produces the expected rule output', async () => {
    const result = await replay({ input: { kind: 'log', dataDir, topic: 'widgets' }, rules: rulesDir, speed: 'max' });
    expect(result.records).toBe(240);
    expect(result.rules).toEqual(['widgets_red', 'heavy_by_line']);
    const red = result.rows.filter((r) => r.topic === 'widgets_red');
    // Every third reading is RED.
    expect(red).toHaveLength(80);
    expect(new Set(red.map((r) => (r.value as { colour: string }).colour))).toEqual(new Set(['RED']));
    // Brute force: heavy readings per line per minute.
    const expected = new Map<string, number>();
    for (const r of readings()) {
      if (r.widget_weight_g <= 120) continue;
      const minute = Math.floor((Date.parse(r.reading_ts) - T0) / 60_000);
      const k = `${r.production_line}@${minute}`;
      expected.set(k, (expected.get(k) ?? 0) + 1);
    }
    const got = new Map<string, number>();
    for (const r of result.rows.filter((x) => x.topic === 'heavy_by_line')) {
      const v = r.value as Record<string, unknown>;
      const line = (v.PRODUCTION_LINE ?? v.production_line) as string;
      const n = (v.N ?? v.n) as number;
      const start = (v.WINDOWSTART ?? v.windowstart ?? r.timestamp) as number;
      got.set(`${line}@${Math.floor((start - T0) / 60_000)}`, n);
    }
    expect(got).toEqual(expected);
    expect(result.rows.filter((r) => r.topic.endsWith('_late'))).toEqual([]);
  });

  it('is deterministic: two runs and two speeds give byte-identical output', async () => {
    const a = await replay({ input: { kind: 'log', dataDir, topic: 'widgets' }, rules: rulesDir, speed: 'max' });
    const b = await replay({ input: { kind: 'log', dataDir, topic: 'widgets' }, rules: rulesDir, speed: 'max' });
    // 1000x over 4 minutes of event time: the pacing sleeps, the output must not change.
    const c = await replay({ input: { kind: 'log', dataDir, topic: 'widgets' }, rules: rulesDir, speed: 1000 });
    const text = (r: typeof a) => r.rows.map((x) => JSON.stringify(x)).join('\n');
    expect(text(a)).toBe(text(b));
    expect(text(a)).toBe(text(c));
    expect(text(a).length).toBeGreaterThan(1000);
  });

  it('honours --from/--to by time and by offset', async () => {
    const byTime = await replay({
      input: { kind: 'log', dataDir, topic: 'widgets', from: { time: T0 + 60_000 }, to: { time: T0 + 120_000 } },
      speed: 'max',
    });
    expect(byTime.records).toBe(60);
    expect(byTime.rows.every((r) => r.timestamp >= T0 + 60_000 && r.timestamp < T0 + 120_000)).toBe(true);
    const byOffset = await replay({ input: { kind: 'log', dataDir, topic: 'widgets', from: { offset: 10 }, to: { offset: 20 } }, speed: 'max' });
    expect(byOffset.records).toBe(30);
    // Without rules the rows keep their offsets in the input log.
    expect(byOffset.rows.every((r) => r.offset >= 10 && r.offset < 20)).toBe(true);
    // The same records as the live log holds at offsets 10..19 of each partition.
    const live = await openLogStore({ dataDir, readOnly: true, minFreeBytes: 0 });
    const expected: string[] = [];
    for (let p = 0; p < 3; p++) for (const r of (await live.read('widgets', p, 10, { maxRecords: 10 })).records) expected.push(r.value.toString());
    await live.close();
    expect(byOffset.rows.map((r) => JSON.stringify(r.value)).sort()).toEqual(expected.sort());
  });

  it('never touches the live log: it reads while another writer owns it, and changes no file', async () => {
    const owner: LogStoreApi = await openLogStore({ dataDir, minFreeBytes: 0 });
    try {
      const before = await snapshot(dataDir);
      const r = await replay({ input: { kind: 'log', dataDir, topic: 'widgets' }, rules: rulesDir, speed: 'max' });
      expect(r.records).toBe(240);
      expect(await snapshot(dataDir)).toBe(before);
    } finally {
      await owner.close();
    }
  });

  it('replays a raw capture file through the device decoders', async () => {
    const file = join(dir, 'scale.capture');
    const capture = openCaptureWriter(file);
    const rs = readings().slice(0, 12);
    // A serial device sends lines in arbitrary chunks: split one line across two frames, and send one bad line.
    const text = rs.map((r) => `${JSON.stringify(r)}\n`).join('') + 'not json\n';
    const cut = 50;
    capture.write({ kind: 'serial', device: 'scale-1', receivedAt: T0 + 500, data: Buffer.from(text.slice(0, cut)) });
    capture.write({ kind: 'serial', device: 'scale-1', receivedAt: T0 + 600, data: Buffer.from(text.slice(cut)) });
    await capture.close();
    const r = await replay({ input: { kind: 'capture', file, topic: 'widgets' }, rules: rulesDir, speed: 'max' });
    expect(r.records).toBe(12);
    expect(r.deadLetters).toBe(1);
    expect(r.rows.filter((x) => x.topic === 'widgets_red')).toHaveLength(4);
  });

  it('--into appends the output rows to a sandbox topic of another log, leaving the live one alone', async () => {
    const sandboxDir = join(dir, 'sandbox');
    const { stderr } = await run(process.execPath, [bin, 'replay', '--topic', 'widgets', '--data-dir', dataDir, '--rules', rulesDir, '--into', 'try_red', '--into-data-dir', sandboxDir]);
    expect(stderr).toMatch(/replay: 240 records in, \d+ rows appended to try_red/);
    const sandbox = await openLogStore({ dataDir: sandboxDir, readOnly: true, minFreeBytes: 0 });
    const live = await openLogStore({ dataDir, readOnly: true, minFreeBytes: 0 });
    try {
      const rows = (await sandbox.read('try_red', 0, 0, { maxRecords: 10_000 })).records;
      expect(rows.filter((r) => r.headers['millstream.replay.topic'] === 'widgets_red')).toHaveLength(80);
      expect(live.hasTopic('try_red')).toBe(false);
    } finally {
      await sandbox.close();
      await live.close();
    }
  });

  it.skipIf(!existsSync('/usr/bin/script'))('on a terminal the CLI draws a progress bar with rate and ETA', async () => {
    // util-linux `script` runs the command on a real pseudo-terminal, as an operator's shell would.
    const cmd = [process.execPath, bin, 'replay', '--topic', 'widgets', '--data-dir', dataDir, '--speed', 'max', '--out', join(dir, 'tty-out.jsonl')]
      .map((a) => `'${a}'`)
      .join(' ');
    const { stdout } = await run('script', ['-qec', cmd, '/dev/null']);
    expect(stdout).toMatch(/\r\[#+\.*\] 100\.0% 240\/240 records \d+\/s ETA 0s/);
    expect(stdout).not.toMatch(/^replay: 240\/240 records \(100\.0%\)/m);
  });

  it('the CLI prints rows as JSON lines and plain progress lines when not on a terminal', async () => {
    const { stdout, stderr } = await run(process.execPath, [bin, 'replay', '--topic', 'widgets', '--data-dir', dataDir, '--rules', rulesDir, '--speed', 'max']);
    const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as { topic: string });
    expect(rows.filter((r) => r.topic === 'widgets_red')).toHaveLength(80);
    expect(stderr).toMatch(/^replay: 240\/240 records \(100\.0%\)/m);
    expect(stderr).toMatch(/replay: 240 records in \(rules widgets_red, heavy_by_line\)/);
    expect(stderr).not.toContain('\r');
    const bad = await run(process.execPath, [bin, 'replay', '--topic', 'widgets', '--data-dir', dataDir, '--speed', 'fast']).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toContain('--speed "fast": expected 1x, 10x, ... or max');
    const both = await run(process.execPath, [bin, 'replay', '--topic', 'widgets', '--data-dir', dataDir, '--into', 'x', '--out', 'stdout']).catch((e: { code: number; stderr: string }) => e);
    expect((both as { code: number }).code).toBe(1);
    expect((both as { stderr: string }).stderr).toContain('give either --into <topic> or --out <stdout|file>, not both');
  });
});
