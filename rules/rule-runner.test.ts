/**
 * The runner's recovery path in-process: appends that land but whose batch
 * is never checkpointed (the process "dies" right after the output is
 * durable, or between the output and the late append) must not duplicate
 * or lose output once a new runner resumes from the checkpoint. The
 * SIGKILL version with real processes is test/rules-crash.test.ts.
 */
import { existsSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LogStoreApi } from '../log-store/index.ts';
import { readTopic, silentLogger } from '../test/support/rules-golden.ts';
import { openTestLog } from '../test/support/rules-log.ts';
import { seededRandom } from '../test/support/seeded-random.ts';
import { BlockFieldScanner } from './block-field-scanner.ts';
import { planRuleText } from './rule-file.ts';
import type { DerivedPlan } from './plan.ts';
import { type RuleRunner, type RuleRunnerOptions, createRuleRunner } from './rule-runner.ts';

let dir: string;
let log: LogStoreApi;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-runner-'));
  log = await openTestLog(join(dir, 'log'));
});
afterEach(async () => {
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

const SQL = `
CREATE STREAM widgets (sensor_id VARCHAR, temp_celcius DOUBLE, ts BIGINT) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='ts');
SET 'auto.offset.reset'='earliest';
CREATE TABLE per_sensor AS
  SELECT sensor_id, COUNT(*) AS n, SUM(temp_celcius) AS s FROM widgets
  WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY sensor_id EMIT CHANGES;
`;

class Crash extends Error {}

/** A runner on a clock that stands still, with no idle close, reading `batchRecords` per partition per batch. */
function testRunner(plan: DerivedPlan, target: LogStoreApi, stateDir: string, batchRecords: number, options: Partial<RuleRunnerOptions> = {}): RuleRunner {
  return createRuleRunner({
    plan,
    log: target,
    stateDir,
    clock: { now: () => 0 },
    timers: { setTimeout: () => 0, clearTimeout: () => {} },
    logger: silentLogger,
    idleCloseMs: 0,
    batchRecords,
    ...options,
  });
}

/** The log, except that its `failAt`-th appendBuilt call appends and then throws, as if the process died right after. */
function crashingLog(inner: LogStoreApi, failAt: number): LogStoreApi {
  let calls = 0;
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'appendBuilt') {
        return async (...args: Parameters<LogStoreApi['appendBuilt']>) => {
          const ack = await target.appendBuilt(...args);
          if (++calls === failAt) throw new Crash(`crash after append #${failAt}`);
          return ack;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

async function setup(): Promise<void> {
  await log.createTopic('widgets', { partitions: 2 });
  const records = [];
  for (let i = 0; i < 300; i++) {
    const sensor = `s${i % 7}`;
    // every 25th reading is 30 s behind: late, so the late topic is written too
    const ts = 1_000_000 + i * 500 - (i % 25 === 24 ? 30_000 : 0);
    records.push({ key: sensor, value: JSON.stringify({ sensor_id: sensor, temp_celcius: i % 40, ts }), timestamp: ts });
  }
  for (let i = 0; i < records.length; i += 30) await log.appendBatch('widgets', records.slice(i, i + 30));
}

/** Runs `fn` with `log` swapped for a fresh store in another directory: a second run over the same input, into the same topic names. */
async function inOtherLog(fn: () => Promise<void>): Promise<void> {
  const other = await openTestLog(join(dir, 'log2'));
  const saved = log;
  log = other;
  try {
    await fn();
  } finally {
    log = saved;
    await other.close();
  }
}

async function runToEnd(stateDir: string, failAt: number | null, sql = SQL): Promise<number> {
  const plan = planRuleText(sql, 'r.sql').rules[0]!;
  let crashes = 0;
  for (;;) {
    const runner = testRunner(plan, failAt === null ? log : crashingLog(log, failAt), stateDir, 13);
    try {
      await runner.drain();
      await runner.stop();
      return crashes;
    } catch (err) {
      if (!(err instanceof Crash)) throw err;
      crashes++;
      await runner.stop();
    }
  }
}

describe('rule runner recovery', () => {
  it('a batch whose output was appended but not checkpointed is completed once, not repeated', async () => {
    await setup();
    await runToEnd(join(dir, 'ref'), null);
    const expected = { out: await readTopic(log, 'per_sensor'), late: await readTopic(log, 'per_sensor_late') };
    expect(expected.late.length).toBeGreaterThan(0);
    // the same rule under another name would write other topics; instead rerun into a fresh log
    await inOtherLog(async () => {
      await setup();
      // each runner dies right after its 3rd append (output or late): many interrupted batches
      const crashes = await runToEnd(join(dir, 'crashy'), 3);
      expect(crashes).toBeGreaterThan(5);
      expect(await readTopic(log, 'per_sensor')).toEqual(expected.out);
      expect(await readTopic(log, 'per_sensor_late')).toEqual(expected.late);
    });
  });

  it('completes an interrupted batch of a filter whose passing records are written from the scan (the prefilter), once', async () => {
    const RED = `CREATE STREAM widgets (sensor_id VARCHAR, colour VARCHAR, at VARCHAR) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='at');
SET 'auto.offset.reset'='earliest';
CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'RED';`;
    expect(planRuleText(RED, 'r.sql').rules[0]!.prefilter).not.toBeNull();
    const fill = async (): Promise<void> => {
      await log.createTopic('widgets', { partitions: 2 });
      const records = Array.from({ length: 300 }, (_, i) => {
        const sensor = `s${i % 7}`;
        // ISO times to the second, in runs of one text; every 40th reading has none (late: NO_EVENT_TIME)
        const at = i % 40 === 39 ? undefined : new Date(1_600_000_000_000 + Math.floor(i / 6) * 1000).toISOString();
        return { key: sensor, value: JSON.stringify({ sensor_id: sensor, colour: ['RED', 'BLUE', 'RED', 'GREEN'][i % 4], at }), timestamp: 1000 + i, partition: i % 2 };
      });
      for (let i = 0; i < records.length; i += 30) await log.appendBatch('widgets', records.slice(i, i + 30));
    };
    await fill();
    await runToEnd(join(dir, 'ref'), null, RED);
    const expected = { out: await readTopic(log, 'red'), late: await readTopic(log, 'red_late') };
    expect(expected.out.length).toBe(150);
    expect(expected.late.length).toBe(7);
    await inOtherLog(async () => {
      await fill();
      const crashes = await runToEnd(join(dir, 'crashy'), 3, RED);
      expect(crashes).toBeGreaterThan(5);
      expect(await readTopic(log, 'red')).toEqual(expected.out);
      expect(await readTopic(log, 'red_late')).toEqual(expected.late);
    });
  });
});

const FIELDS_SQL = `
CREATE STREAM widgets WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='ts');
SET 'auto.offset.reset'='earliest';
CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'RED';
CREATE STREAM shaped AS SELECT sensor_id, temp_celcius * 2 AS t2, \`Colour\` AS exact_colour, extra->x AS ex FROM widgets WHERE colour <> 'BLUE' PARTITION BY sensor_id;
CREATE TABLE per_sensor AS SELECT sensor_id, AVG(temp_celcius) AS t, COUNT(*) AS n FROM widgets
  WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY sensor_id HAVING COUNT(*) > 0 EMIT CHANGES;
`;
// payloads the extractor handles, and ones it leaves to JSON.parse (duplicate keys, case variants, invalid JSON)
const PAYLOADS = [
  '{"colour":"RED","sensor_id":"a","temp_celcius":20.5,"ts":1000000,"extra":{"x":[1,"}"]}}',
  '{ "COLOUR" : "RED" , "sensor_id":"b","temp_celcius":-1e1,"ts":1000500}',
  '{"colour":"RED","Colour":"blue","sensor_id":"a","temp_celcius":3,"ts":1001000}',
  '{"colour":"RED","colour":"GREEN","sensor_id":"c","temp_celcius":4,"ts":1001500}',
  '{"COLOUR":"RED","sensor_id":"c","COLOUR":"GREEN","temp_celcius":4,"ts":1001600}',
  '{"c\\u006flour":"R\\u0045D","sensor_\\u0069d":"d\\"q","temp_celcius":5,"ts":1002000}',
  '{"colour":"RED","sensor_id":"a","temp_celcius":6}',
  '{"colour":"RED","sensor_id":"a","temp_celcius":6,"ts":1002000,}',
  '[1,2]',
  '{"colour":"BLUE","sensor_id":"e","temp_celcius":"7","ts":1003000}',
  '{"colour":"RED","sensor_id":"a","temp_celcius":8,"ts":900000}',
  // more keys than the block scanner's key template holds (it read past its memory here: 80 bytes of template a key)
  `{${Array.from({ length: 40_000 }, (_, i) => `"k${i}":${i}`).join(',')},"colour":"RED","sensor_id":"f","temp_celcius":9,"ts":1003500}`,
];

/** Each rule's output over `payloads`; `segmentBytes` small: a batch reads several segments, one block each. */
async function outputs(
  target: LogStoreApi,
  whole: boolean,
  payloads: readonly string[] = PAYLOADS,
  { partitions = 2, segmentBytes = 1 << 26, batchRecords = 4, sql = FIELDS_SQL, closeAll = false } = {},
): Promise<Record<string, unknown[]>> {
  await target.createTopic('widgets', { partitions, segmentBytes });
  // several appends: each partition's records lie in several log batches (the runner's blocks)
  for (let at = 0; at < payloads.length; at += 50) {
    await target.appendBatch('widgets', payloads.slice(at, at + 50).map((value, j) => ({ key: `k${at + j}`, value, timestamp: 5_000 + at + j, partition: (at + j) % partitions })));
  }
  const result: Record<string, unknown[]> = {};
  const file = planRuleText(sql, 'f.sql');
  expect(file.diagnostics).toEqual([]);
  for (const planned of file.rules) {
    if (!whole) expect(planned.valueFields).not.toBeNull();
    const plan = whole ? { ...planned, valueFields: null } : planned;
    const runner = testRunner(plan, target, join(dir, whole ? 'whole' : 'fields'), batchRecords);
    await runner.drain();
    // EMIT FINAL: the windows still open are written too, so all of the state is compared
    if (closeAll) await runner.closeAllWindows();
    await runner.stop();
    result[plan.outputTopic] = await readTopic(target, plan.outputTopic);
    result[`${plan.outputTopic}_late`] = await readTopic(target, `${plan.outputTopic}_late`);
  }
  return result;
}

describe('rule runner decoding only the fields a rule reads', () => {
  /** Each rule's output over `payloads` decoding only its fields, checked equal to decoding whole values (in a second log); returns it. */
  async function sameAsWhole(payloads?: readonly string[], shape?: Parameters<typeof outputs>[3]): Promise<Record<string, unknown[]>> {
    const fields = await outputs(log, false, payloads, shape);
    const other = await openTestLog(join(dir, 'log2'));
    try {
      expect(fields).toEqual(await outputs(other, true, payloads, shape));
    } finally {
      await other.close();
    }
    return fields;
  }

  it('writes exactly what decoding whole values writes, late records included', async () => {
    const fields = await sameAsWhole();
    // the cases are exercised: passthrough, late records with whole values, invalid JSON
    expect(fields.red!.length).toBeGreaterThanOrEqual(4);
    expect(JSON.stringify(fields.red_late)).toContain('NO_EVENT_TIME');
    expect(JSON.stringify(fields.red_late)).toContain('INVALID_JSON');
    expect(JSON.stringify(fields.per_sensor_late)).toContain('WINDOW_CLOSED');
  });

  it('writes what decoding whole values writes for random payloads over three partitions (merged by event time, several blocks a batch)', async () => {
    const random = seededRandom(20261126);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const payloads = Array.from({ length: 400 }, (_, i) => {
      const entries: Array<[string, unknown]> = [
        [pick(['colour', 'colour', 'colour', 'COLOUR', 'Colour']), pick(['RED', 'RED', 'BLUE', 'GRÜN', 'R"ED', null, 7])],
        ['sensor_id', pick(['a', 'b', 'c', 'd\\e'])],
        ['temp_celcius', pick([i % 40, -0.5, 1e21, '7', 12.25])],
        ['ts', 1_000_000 + i * 100 - (random() < 0.1 ? 30_000 : 0)],
      ];
      if (random() < 0.3) entries.push(['extra', pick([{ x: [1, '}'] }, { x: 'y' }, []])]);
      if (random() < 0.1) entries.push(...Array.from({ length: 40 }, (_, k): [string, unknown] => [`pad${k}`, k]));
      if (random() < 0.1) entries.push([pick(['colour', 'COLOUR', 'sensor_id']), 'dup']);
      if (random() < 0.5) entries.reverse();
      let text = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(random() < 0.2 ? ' , ' : ',')}}`;
      if (random() < 0.05) text = text.slice(0, Math.floor(random() * text.length));
      return text;
    });
    const fields = await sameAsWhole(payloads, { partitions: 3, segmentBytes: 2048, batchRecords: 60 });
    expect(fields.red!.length).toBeGreaterThan(50);
  });

  it('drops records from their scanned bytes under WHERE colour = \'RED\' (the prefilter) exactly as decoding them would: ISO timestamps in runs', async () => {
    const red = planRuleText(FIELDS_SQL, 'f.sql').rules.find((r) => r.outputTopic === 'red')!;
    expect(red.prefilter).toEqual({ field: { name: 'colour', caseSensitive: false }, equals: 'RED' });
    const random = seededRandom(7);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    let second = 0;
    const payloads = Array.from({ length: 600 }, () => {
      // runs of one timestamp text; now and then a text that is no time, a number, null or none
      if (random() < 0.15) second++;
      const ts = random() < 0.05 ? pick(['soon', 1_000_000 + second * 1000, null, undefined, '2020-02-30T00:00:00Z']) : new Date(1_000_000 + second * 1000 - (random() < 0.05 ? 60_000 : 0)).toISOString();
      const colour = pick(['RED', 'RED', 'BLUE', 'BLUE', 'GREEN', 'RED\\u0000', 'R\\u0045D', 'grün', 'red', '', null, 7, true, { c: 'RED' }, ['RED'], undefined]);
      const entries: Array<[string, string]> = [];
      if (colour !== undefined) entries.push([pick(['colour', 'colour', 'COLOUR']), typeof colour === 'string' && colour.includes('\\') ? `"${colour}"` : JSON.stringify(colour)]);
      entries.push(['sensor_id', JSON.stringify(pick(['a', 'b']))], ['temp_celcius', String(second % 30)]);
      if (ts !== undefined) entries.push([pick(['ts', 'ts', 'TS']), JSON.stringify(ts)]);
      if (random() < 0.05) entries.push(['colour', '"RED"']);
      if (random() < 0.5) entries.reverse();
      let text = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
      if (random() < 0.03) text = text.slice(0, -1);
      return text;
    });
    // runs the random ones make rarely, each record twice (records alternate between the two partitions):
    // a timestamp text that is no time, twice in a row, the second record failing WHERE (late, not dropped);
    // RED written with an escape (passes WHERE) and non-ASCII text, after records of the same time
    const t = JSON.stringify(new Date(1_000_000 + (second + 1) * 1000).toISOString());
    for (const text of ['{"colour":"RED","ts":"soon"}', '{"colour":"BLUE","ts":"soon"}', `{"colour":"BLUE","ts":${t}}`, `{"colour":"R\\u0045D","ts":${t}}`, `{"colour":"grün","ts":${t}}`, `{"colour":"RED","ts":${t}}`]) {
      payloads.push(text, text);
    }
    const fields = await sameAsWhole(payloads, { partitions: 2, segmentBytes: 4096, batchRecords: 80 });
    expect(fields.red!.length).toBeGreaterThan(100);
    expect(JSON.stringify(fields.red_late)).toContain('NO_EVENT_TIME');
  });
});

describe('rule runner aggregating key runs (TUMBLING, EMIT FINAL, no WHERE, GROUP BY one field)', () => {
  const RUNS_SQL = `
CREATE STREAM widgets WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='ts');
SET 'auto.offset.reset'='earliest';
CREATE TABLE runs AS SELECT sensor_id, AVG(temp_celcius) AS t, COUNT(*) AS n, MIN(temp_celcius) AS lo, MAX(w) AS hi,
  LATEST_BY_OFFSET(temp_celcius) AS last, EARLIEST_BY_OFFSET(w) AS first, STDDEV_SAMP(w) AS sd, COUNT(w) AS nw, SUM(temp_celcius) AS s
  FROM widgets WINDOW TUMBLING (SIZE 3 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY sensor_id HAVING COUNT(*) > 1 EMIT FINAL;
`;

  /** Readings in runs of one ISO timestamp text, some late; sensor ids many and few, some not plain strings; arguments numbers, null, absent or not numbers. */
  function readings(seed: number, count: number, sensors: number): string[] {
    const random = seededRandom(seed);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    let second = 0;
    return Array.from({ length: count }, () => {
      if (random() < 0.02) second++;
      const late = random() < 0.03;
      const ts = random() < 0.01 ? pick([1_000_000 + second * 1000, 'soon', null]) : new Date(1_000_000 + second * 1000 - (late ? 5000 : 0)).toISOString();
      const sensor = random() < 0.03 ? pick([7, null, 'd\\e', 'grün']) : `s-${Math.floor(random() * sensors)}`;
      const entries: Array<[string, string]> = [
        ['ts', JSON.stringify(ts)],
        [pick(['sensor_id', 'sensor_id', 'SENSOR_ID']), typeof sensor === 'string' && sensor.includes('\\') ? `"${sensor}"` : JSON.stringify(sensor)],
      ];
      if (random() < 0.95) entries.push(['temp_celcius', random() < 0.03 ? pick(['"7"', 'null', 'true', '1e400', '-0']) : String(Math.round(random() * 4000) / 100 - 10)]);
      if (random() < 0.7) entries.push(['w', random() < 0.05 ? pick(['null', '"x"', '{"g":1}']) : String(Math.floor(random() * 200))]);
      if (random() < 0.3) entries.push(['colour', JSON.stringify(pick(['RED', 'BLUE']))]);
      if (random() < 0.3) entries.reverse();
      let text = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
      if (random() < 0.01) text = text.slice(0, -1);
      return text;
    });
  }

  /** The rule's output, late records and (closing every window at the end) its whole state, checked equal to decoding whole values. */
  async function sameAsWhole(payloads: readonly string[], shape: { partitions: number; segmentBytes: number; batchRecords: number }): Promise<{ result: Record<string, unknown[]>; inRuns: number; runs: number[] }> {
    const keyRun = vi.spyOn(BlockFieldScanner.prototype, 'keyRun');
    let result: Record<string, unknown[]>;
    let runs: number[] = [];
    try {
      result = await outputs(log, false, payloads, { ...shape, sql: RUNS_SQL, closeAll: true });
      // what each keyRun call returned: records read into runs
      runs = keyRun.mock.results.map((r) => r.value as number);
    } finally {
      keyRun.mockRestore();
    }
    const other = await openTestLog(join(dir, 'log2'));
    try {
      expect(result).toEqual(await outputs(other, true, payloads, { ...shape, sql: RUNS_SQL, closeAll: true }));
    } finally {
      await other.close();
    }
    return { result, inRuns: runs.reduce((a, b) => a + b, 0), runs };
  }

  it('the plan names the fields of such an aggregation, and only of such', () => {
    const plan = (sql: string) => {
      const file = planRuleText(`CREATE STREAM widgets (sensor_id VARCHAR KEY, line VARCHAR, temp DOUBLE) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON'); ${sql}`, 'p.sql');
      expect(file.diagnostics).toEqual([]);
      const p = file.rules[0]!;
      return p.kind === 'table' ? p.keyRun : 'stream';
    };
    const line = { name: 'line', caseSensitive: false };
    const temp = { name: 'temp', caseSensitive: false };
    expect(plan('CREATE TABLE a AS SELECT line, AVG(temp) AS t, COUNT(*) AS n FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY line EMIT FINAL;')).toEqual({ group: line, args: [temp, null] });
    for (const other of [
      'CREATE TABLE a AS SELECT line, AVG(temp) AS t FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY line EMIT CHANGES;',
      'CREATE TABLE a AS SELECT line, AVG(temp) AS t FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) WHERE temp > 0 GROUP BY line EMIT FINAL;',
      'CREATE TABLE a AS SELECT line, AVG(temp) AS t FROM widgets WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 10 SECONDS) GROUP BY line EMIT FINAL;',
      'CREATE TABLE a AS SELECT line, AVG(temp) AS t FROM widgets WINDOW SESSION (1 MINUTE) GROUP BY line EMIT FINAL;',
      'CREATE TABLE a AS SELECT line, AVG(temp * 2) AS t FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY line EMIT FINAL;',
      'CREATE TABLE a AS SELECT UCASE(line) AS l, AVG(temp) AS t FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY UCASE(line) EMIT FINAL;',
      'CREATE TABLE a AS SELECT line, temp, COUNT(*) AS n FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY line, temp EMIT FINAL;',
      // a KEY column falls back to the record key
      'CREATE TABLE a AS SELECT sensor_id, AVG(temp) AS t FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor_id EMIT FINAL;',
      'CREATE TABLE a AS SELECT line, MAX(ROWOFFSET) AS o FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY line EMIT FINAL;',
    ]) {
      expect(plan(other), other).toBeNull();
    }
  });

  it('writes exactly what decoding whole values writes, late records and every window included: random readings over three partitions, several blocks a batch', async () => {
    const { result, inRuns } = await sameAsWhole(readings(11, 3000, 40), { partitions: 3, segmentBytes: 8192, batchRecords: 150 });
    // the runs did the work (most records), and the cases are exercised
    expect(inRuns).toBeGreaterThan(1000);
    expect(result.runs!.length).toBeGreaterThan(50);
    expect(JSON.stringify(result.runs_late)).toContain('WINDOW_CLOSED');
    expect(JSON.stringify(result.runs_late)).toContain('NO_EVENT_TIME');
  });

  it('tries no run again at an event time whose run was declined (late records one by one, not each rescanning the run): late records of one time text', async () => {
    const reading = (second: number, i: number) => JSON.stringify({ ts: new Date(1_000_000 + second * 1000).toISOString(), sensor_id: `s-${i % 7}`, temp_celcius: i % 30, w: i % 11 });
    const payloads = [
      ...Array.from({ length: 300 }, (_, i) => reading(10, i)),
      ...Array.from({ length: 10 }, (_, i) => reading(70, i)),
      // far behind stream time: every window of theirs closed
      ...Array.from({ length: 800 }, (_, i) => reading(0, i)),
    ];
    const { result, inRuns, runs } = await sameAsWhole(payloads, { partitions: 1, segmentBytes: 1 << 26, batchRecords: 2000 });
    expect(result.runs_late!.length).toBe(800);
    // the runs: 299 and 9 records taken, one of 799 declined; then none (each late record alone would rescan the rest: about 320,000)
    expect(runs.filter((n) => n > 0)).toEqual([299, 9, 799]);
    expect(inRuns).toBe(1107);
  });

  it('writes what decoding whole values writes over big blocks (scanned in slices by the scan worker too) and many sensors (strings made, not all cached)', async () => {
    const { result, inRuns } = await sameAsWhole(readings(12, 12_000, 6000), { partitions: 1, segmentBytes: 1 << 26, batchRecords: 6000 });
    expect(inRuns).toBeGreaterThan(4000);
    expect(result.runs!.length).toBeGreaterThan(100);
  });
});

describe('rule runner passing records through (SELECT * without PARTITION BY)', () => {
  it('writes each passing record\'s key and payload bytes unchanged, to the partition of its key (null keys: of their input partition)', async () => {
    await log.createTopic('widgets', { partitions: 3 });
    const keys = ['aa-101', null, 'clé-ü', '', 'k'.repeat(50)];
    const payloads = ['{ "colour" : "RED", "ts": 1000 }', '{"colour":"BLUE","ts":1001}', '{"ts":1002,"colour":"RED","note":"温度 \\u00e9"}', '{"colour":"RED","ts":1003,"pad":"' + 'x'.repeat(300) + '"}'];
    const input = Array.from({ length: 60 }, (_, i) => ({ key: keys[i % keys.length]!, value: payloads[i % payloads.length]!, timestamp: 7, partition: i % 3 }));
    await log.appendBatch('widgets', input);
    const sql = `CREATE STREAM widgets (colour VARCHAR, ts BIGINT) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='ts');
SET 'auto.offset.reset'='earliest';
CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'RED';`;
    const runner = testRunner(planRuleText(sql, 'r.sql').rules[0]!, log, join(dir, 'state'), 7);
    await runner.drain();
    await runner.stop();
    const got: string[] = [];
    for (let p = 0; p < 3; p++) {
      for (const r of (await log.read('red', p, 0, { maxRecords: 1000 })).records) {
        got.push(JSON.stringify([r.key, r.value.toString('hex'), r.timestamp, p]));
      }
    }
    const expected = input
      .filter((r) => r.value.includes('"RED"'))
      .map((r) => JSON.stringify([r.key, Buffer.from(r.value).toString('hex'), JSON.parse(r.value).ts as number, r.key === null ? r.partition : log.partitionFor('red', r.key)]));
    expect(got.sort()).toEqual(expected.sort());
    expect(got.length).toBe(45);
  });
});

describe('rule runner yielding to the event loop while it processes a batch', () => {
  it('turns the event loop every few thousand records, also when the prefilter settles them in runs of a thousand', async () => {
    await log.createTopic('widgets', { partitions: 1 });
    const colours = ['RED', 'BLUE', 'GREEN', 'WHITE'];
    for (let at = 0; at < 40_000; at += 10_000) {
      await log.appendBatch('widgets', Array.from({ length: 10_000 }, (_, k) => {
        const i = at + k;
        const ts = new Date(Date.UTC(2020, 1, 14, 12) + Math.floor(i / 1000) * 1000).toISOString();
        return { key: `aa-${i % 1000}`, value: JSON.stringify({ reading_ts: ts, colour: colours[i % 4] }), timestamp: 7, partition: 0 };
      }));
    }
    const sql = `CREATE STREAM widgets (reading_ts VARCHAR, colour VARCHAR) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');
SET 'auto.offset.reset'='earliest';
CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'RED';`;
    const plan = planRuleText(sql, 'r.sql').rules[0]!;
    expect(plan.prefilter).not.toBeNull();
    // event-loop turns, counted by an immediate that queues itself again
    let turns = 0;
    let counting = true;
    const tick = (): void => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    const marks: number[] = [];
    const observed = new Proxy(log, {
      get(target, prop) {
        if (prop === 'readBatches') {
          return async (...args: Parameters<LogStoreApi['readBatches']>) => {
            const res = await target.readBatches(...args);
            // the first batch is read: processing starts on the next microtasks
            if (marks.length === 0) marks.push(turns);
            return res;
          };
        }
        if (prop === 'appendBuilt') {
          return (...args: Parameters<LogStoreApi['appendBuilt']>) => {
            // the first batch is processed
            if (marks.length === 1) marks.push(turns);
            return target.appendBuilt(...args);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const runner = testRunner(plan, observed, join(dir, 'state'), 40_000);
    await runner.drain();
    await runner.stop();
    counting = false;
    expect(runner.status().recordsOut).toBe(10_000);
    // 40,000 records, a yield once 4,096 were processed since the last (a run may carry past that by up to 1,000,
    // as may the turn of the first read): seven turns at least while the batch was processed, none without yields
    expect(marks).toHaveLength(2);
    expect(marks[1]! - marks[0]!).toBeGreaterThanOrEqual(7);
  });
});

describe('rule runner opening its topics and its state file', () => {
  /** Open file descriptors of this process on `file` (Linux). */
  function openFds(file: string): number {
    return readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false;
      }
    }).length;
  }

  it('fails with what failed, and leaves no state file open, when its output topic cannot be made or its state folder is no folder', async () => {
    await setup();
    const plan = planRuleText(SQL, 'r.sql').rules[0]!;
    const stateDir = join(dir, 'state');
    const refusing = new Proxy(log, {
      get(target, prop) {
        if (prop === 'createTopic') return async () => Promise.reject(new Error('no room for topics'));
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const first = testRunner(plan, refusing, stateDir, 13);
    await expect(first.drain()).rejects.toThrow('no room for topics');
    await first.stop();
    // the state file was opened meanwhile, and closed again
    expect(existsSync(join(stateDir, 'per_sensor.sqlite'))).toBe(true);
    expect(openFds(join(stateDir, 'per_sensor.sqlite'))).toBe(0);
    // a state folder under a file
    writeFileSync(join(dir, 'plain'), '');
    const second = testRunner(plan, log, join(dir, 'plain', 'state'), 13);
    await expect(second.drain()).rejects.toThrow(/ENOTDIR|not a directory/);
    await second.stop();
    // then it runs as it should
    const third = testRunner(plan, log, stateDir, 13);
    await third.drain();
    await third.stop();
    expect((await readTopic(log, 'per_sensor')).length).toBeGreaterThan(0);
  });
});

describe('rule runner in scratch mode (durable: false)', () => {
  it('creates its output topics without fsync and still checkpoints: a second runner resumes without repeating output', async () => {
    await setup();
    const plan = planRuleText(SQL, 'r.sql').rules[0]!;
    const make = () => testRunner(plan, log, join(dir, 'scratch'), 50, { durable: false });
    const first = make();
    await first.drain();
    await first.stop();
    expect(log.describe('per_sensor').config.fsync).toBe('never');
    expect(log.describe('per_sensor_late').config.fsync).toBe('never');
    const out = await readTopic(log, 'per_sensor');
    expect(out.length).toBeGreaterThan(0);
    const second = make();
    await second.drain();
    await second.stop();
    expect(second.status().recordsIn).toBe(0);
    expect(await readTopic(log, 'per_sensor')).toEqual(out);
  });
});

describe('rule runner overlapping a batch\'s write with the next batch', () => {
  it('goes on with the next batches while a write is in flight (two writes queued at most), starts the next write only after it, and writes what a plain run writes', async () => {
    await setup();
    await runToEnd(join(dir, 'ref'), null);
    const expected = await readTopic(log, 'per_sensor');
    await inOtherLog(async () => {
      await setup();
      const events: string[] = [];
      let release!: () => void;
      let released = false;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let appends = 0;
      const gated = new Proxy(log, {
        get(target, prop) {
          if (prop === 'appendBuilt') {
            return async (...args: Parameters<LogStoreApi['appendBuilt']>) => {
              const n = ++appends;
              events.push(`append ${n} start`);
              // the append takes the builder's records at the call (the runner goes on adding the next batch's)
              const appended = target.appendBuilt(...args);
              if (!released) await gate;
              const ack = await appended;
              events.push(`append ${n} end`);
              return ack;
            };
          }
          if (prop === 'readBatches') {
            return async (...args: Parameters<LogStoreApi['readBatches']>) => {
              events.push(`read ${args[1]}:${args[2]}`);
              return target.readBatches(...args);
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
      const runner = testRunner(planRuleText(SQL, 'r.sql').rules[0]!, gated, join(dir, 'gated'), 13);
      const drained = runner.drain();
      // the first write is held: the runner goes on to read the second batch (13 records further in each partition)...
      while (!events.includes('read 0:13') || !events.includes('read 1:13')) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      // ...but starts no second write (the first batch's appends, one per partition written, all start at once)
      const held = events.filter((e) => e.startsWith('append'));
      expect(held.length).toBeGreaterThan(0);
      expect(held.every((e) => e.endsWith(' start'))).toBe(true);
      const k = held.length;
      await new Promise((r) => setTimeout(r, 50));
      expect(events.filter((e) => e.startsWith('append'))).toEqual(held);
      // the second batch is finished, its write queued behind the first; the third is processed and waits for
      // the first write before it is finished; the fourth is read meanwhile (read ahead), and no fifth
      expect(events).toContain('read 0:26');
      expect(events).toContain('read 1:26');
      expect(events).toContain('read 0:39');
      expect(events).toContain('read 1:39');
      expect(events).not.toContain('read 0:52');
      expect(events).not.toContain('read 1:52');
      // the held appends are the first batch's alone: they started before the second batch did (with its read ahead)
      expect(Math.max(...held.map((e) => events.indexOf(e)))).toBeLessThan(events.indexOf('read 0:26'));
      released = true;
      release();
      await drained;
      await runner.stop();
      // the next batch's appends start once the held batch's have all ended
      expect(events.indexOf(`append ${k + 1} start`)).toBeGreaterThan(Math.max(...held.map((_, i) => events.indexOf(`append ${i + 1} end`))));
      expect(await readTopic(log, 'per_sensor')).toEqual(expected);
    });
  });
});
