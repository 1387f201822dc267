/**
 * `millstream rules check` and `millstream rules test`: the real command in
 * child processes for the main paths, the command functions in-process for
 * the rest (each child costs a tsx start-up).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rulesCheck, rulesTest } from '../agent/commands/rules.ts';
import { createCliRunner } from './support/cli.ts';

const cli = createCliRunner();
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-rules-cli-'));
});
afterEach(async () => {
  await cli.killAll();
  await rm(dir, { recursive: true, force: true });
});

const GOOD = `CREATE STREAM widgets (reading_ts VARCHAR, sensor_id VARCHAR, colour VARCHAR, temp_celcius DOUBLE)
  WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');
CREATE TABLE hot AS SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets
  WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor_id HAVING temp > 20 EMIT FINAL;
CREATE STREAM red AS SELECT sensor_id, colour FROM widgets WHERE colour = 'RED';
`;
const BAD = `SET 'auto.offset.reset'='earliest';\nCREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'RED' GROUP;\n`;
const READINGS = [
  { reading_ts: '2020-02-14T12:19:27Z', sensor_id: 'aa-101', colour: 'RED', temp_celcius: 23 },
  { reading_ts: '2020-02-14T12:19:37Z', sensor_id: 'aa-101', colour: 'BLUE', temp_celcius: 25 },
  { reading_ts: '2020-02-14T12:20:07Z', sensor_id: 'aa-102', colour: 'RED', temp_celcius: 19 },
  { reading_ts: '2020-02-14T12:18:00Z', sensor_id: 'aa-103', colour: 'RED', temp_celcius: 30 },
];
const EXPECTED = [
  { topic: 'hot', key: 'aa-101@1581682740000', value: { sensor_id: 'aa-101', temp: 24 } },
  { topic: 'red', key: 'aa-101', value: { sensor_id: 'aa-101', colour: 'RED' } },
  { topic: 'red', key: 'aa-102', value: { sensor_id: 'aa-102', colour: 'RED' } },
  { topic: 'red', key: 'aa-103', value: { sensor_id: 'aa-103', colour: 'RED' } },
];
const jsonl = (rows: unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

describe('millstream rules check', () => {
  it('exits 1 with file:line:col messages on a broken folder, 0 on a valid one', async () => {
    await mkdir(join(dir, 'rules'));
    await writeFile(join(dir, 'rules', 'good.sql'), GOOD);
    const out: string[] = [];
    expect(await rulesCheck(join(dir, 'rules'), (t) => out.push(t), (t) => out.push(t))).toBe(0);
    await writeFile(join(dir, 'rules', 'bad.sql'), BAD);
    const bad = await cli.run(['rules', 'check', join(dir, 'rules')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.split('\n')[0]).toBe(`${join(dir, 'rules', 'bad.sql')}:2:70: expected BY but found ';'`);
  });
});

describe('millstream rules test', () => {
  beforeEach(async () => {
    await writeFile(join(dir, 'hot.sql'), GOOD);
    await writeFile(join(dir, 'readings.jsonl'), jsonl(READINGS));
  });

  it('prints the output rows (EMIT FINAL windows closed at the end of input, the late reading in _late), never opens the live log, and compares with --expect', async () => {
    const res = await cli.run(['rules', 'test', 'hot.sql', '--input', 'readings.jsonl'], { cwd: dir });
    expect(res.code).toBe(0);
    const rows = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { topic: string });
    expect(rows.filter((r) => r.topic !== 'hot_late')).toEqual(EXPECTED);
    // aa-103 at 12:18:00 arrives after stream time reached 12:20:07: its window had closed
    expect(rows.filter((r) => r.topic === 'hot_late').map((r) => (r as unknown as { value: { reason: string; key: string } }).value)).toMatchObject([
      { reason: 'WINDOW_CLOSED', key: 'aa-103' },
    ]);
    expect(existsSync(join(dir, 'data'))).toBe(false);

    await writeFile(join(dir, 'expected.jsonl'), res.stdout);
    const same = await cli.run(['rules', 'test', 'hot.sql', '--input', 'readings.jsonl', '--expect', 'expected.jsonl'], { cwd: dir });
    expect(same.code).toBe(0);
    expect(same.stdout).toBe('ok: 5 rows match expected.jsonl\n');

    await writeFile(join(dir, 'expected.jsonl'), res.stdout.replace('"temp":24', '"temp":25'));
    const diff = await cli.run(['rules', 'test', 'hot.sql', '--input', 'readings.jsonl', '--expect', 'expected.jsonl'], { cwd: dir });
    expect(diff.code).toBe(1);
    expect(diff.stderr).toContain('expected.jsonl: row 1 differs');
    expect(diff.stderr).toContain('"temp":25');
  });

  it('a broken rule file fails with file:line:col', async () => {
    await writeFile(join(dir, 'bad.sql'), BAD);
    const err: string[] = [];
    await expect(rulesTest(join(dir, 'bad.sql'), { input: join(dir, 'readings.jsonl') }, () => {}, (t) => err.push(t))).rejects.toThrow(
      `${join(dir, 'bad.sql')}:2:70: expected BY but found ';'`,
    );
  });

  it('plans the file within its folder: a source declared in another file (its TIMESTAMP field) applies', async () => {
    await mkdir(join(dir, 'rules'));
    await writeFile(join(dir, 'rules', 'sources.sql'), "CREATE STREAM gadgets (id VARCHAR, t_ms BIGINT) WITH (KAFKA_TOPIC='gadgets', VALUE_FORMAT='JSON', TIMESTAMP='t_ms');\n");
    await writeFile(join(dir, 'rules', 'per_min.sql'), 'CREATE TABLE per_min AS SELECT id, COUNT(*) AS n FROM gadgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY id EMIT FINAL;\n');
    await writeFile(join(dir, 'g.jsonl'), jsonl([{ id: 'g', t_ms: 1_000 }, { id: 'g', t_ms: 61_000 }, { id: 'g', t_ms: 62_000 }]));
    const out: string[] = [];
    expect(await rulesTest(join(dir, 'rules', 'per_min.sql'), { input: join(dir, 'g.jsonl') }, (t) => out.push(t), () => {})).toBe(0);
    expect(out.join('').trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { topic: 'per_min', key: 'g@0', value: { id: 'g', n: 1 } },
      { topic: 'per_min', key: 'g@60000', value: { id: 'g', n: 2 } },
    ]);
  });
});
