/**
 * Golden tables: rule text + input readings → the exact rows the rules write
 * to their output topics and `_late` topics, through the whole runtime
 * (planner, runner, log, SQLite checkpoints).
 */
import { describe, expect, it } from 'vitest';
import { runGolden, type OutRow, type Reading } from './support/rules-golden.ts';

const T0 = Date.UTC(2020, 1, 14, 12, 0, 0);
const MIN = 60_000;

function w(sec: number, sensor: string, line: string, colour: string | null, temp: number, weight: number): Record<string, unknown> {
  return {
    reading_ts: new Date(T0 + sec * 1000).toISOString().replace('.000', ''),
    sensor_id: sensor,
    production_line: line,
    widget_type: 'acme94',
    colour,
    temp_celcius: temp,
    widget_weight_g: weight,
  };
}

const SOURCE = `
-- the source stream every rule below reads
CREATE STREAM widgets (reading_ts VARCHAR, sensor_id VARCHAR, production_line VARCHAR, widget_type VARCHAR,
                       colour VARCHAR, temp_celcius DOUBLE, widget_weight_g INT)
  WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');
SET 'auto.offset.reset'='earliest';
`;

/** Rounds every number to 9 decimals so float noise in AVG/STDDEV does not decide a golden comparison. */
function round(x: unknown): unknown {
  if (typeof x === 'number') return Math.round(x * 1e9) / 1e9;
  if (Array.isArray(x)) return x.map(round);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, round(v)]));
  return x;
}

interface Case {
  name: string;
  sql: string;
  readings: Reading[];
  closeAtEnd?: boolean;
  expected: Record<string, OutRow[]>;
}

const r1 = w(0, 'aa-101', 'w01', 'RED', 23, 100);
const r2 = w(1, 'aa-102', 'w01', 'BLUE', 25, 130);
const r3 = w(2, 'aa-103', 'w02', 'RED', 19, 125);
const r4 = w(3, 'bb-201', 'w01', 'RED', 20, 110);
const r5 = w(4, 'aa-104', 'w02', 'GREEN', 20, 110);

const c1 = w(0, 'aa-101', 'w01', null, 20, 100);
const c2 = w(1, 'aa-102', 'w01', 'RED', 24, 110);
const c3 = w(2, 'aa-103', 'w02', 'BLUE', 30, 120);
const c4 = w(3, 'aa-101', 'w01', 'GREEN', 22, 130);

const e5 = w(59, 'aa-105', 'w02', 'RED', 20, 100);
const h3 = { sensor_id: 'aa-1', colour: 'RED' };

const cases: Case[] = [
  {
    name: 'filter: SELECT * passes matching readings through unchanged, keyed as the input',
    sql: `${SOURCE} CREATE STREAM widgets_red AS SELECT * FROM widgets WHERE colour = 'RED';`,
    readings: [r1, r2, r3],
    expected: {
      widgets_red: [
        { key: 'aa-101', value: r1, timestamp: T0 },
        { key: 'aa-103', value: r3, timestamp: T0 + 2000 },
      ],
    },
  },
  {
    name: 'projection: functions, arithmetic, CASE, BETWEEN, IN, LIKE, aliases',
    sql: `${SOURCE}
      CREATE STREAM widgets_f AS
        SELECT sensor_id, UCASE(production_line) AS line, temp_celcius * 9 / 5 + 32 AS temp_f,
               CASE WHEN widget_weight_g > 120 THEN 'heavy' ELSE 'ok' END AS class
        FROM widgets
        WHERE widget_weight_g BETWEEN 100 AND 130 AND colour IN ('RED', 'BLUE') AND sensor_id LIKE 'aa-%'
        EMIT CHANGES;`,
    readings: [r1, r2, r3, r4, r5],
    expected: {
      widgets_f: [
        { key: 'aa-101', value: { sensor_id: 'aa-101', line: 'W01', temp_f: 73.4, class: 'ok' }, timestamp: T0 },
        { key: 'aa-102', value: { sensor_id: 'aa-102', line: 'W01', temp_f: 77, class: 'heavy' }, timestamp: T0 + 1000 },
        { key: 'aa-103', value: { sensor_id: 'aa-103', line: 'W02', temp_f: 66.2, class: 'heavy' }, timestamp: T0 + 2000 },
      ],
    },
  },
  {
    name: 'every aggregate, unwindowed, EMIT CHANGES: one updated row per reading',
    sql: `${SOURCE}
      CREATE TABLE line_stats AS
        SELECT production_line, COUNT(*) AS n, COUNT(colour) AS n_coloured, SUM(widget_weight_g) AS weight,
               AVG(temp_celcius) AS temp, MIN(temp_celcius) AS lo, MAX(temp_celcius) AS hi,
               STDDEV_SAMP(temp_celcius) AS sd, LATEST_BY_OFFSET(colour) AS last_colour,
               EARLIEST_BY_OFFSET(colour) AS first_colour
        FROM widgets GROUP BY production_line;`,
    readings: [c1, c2, c3, c4],
    expected: {
      line_stats: [
        {
          key: 'w01',
          value: { production_line: 'w01', n: 1, n_coloured: 0, weight: 100, temp: 20, lo: 20, hi: 20, sd: null, last_colour: null, first_colour: null },
          timestamp: T0,
        },
        {
          key: 'w01',
          value: { production_line: 'w01', n: 2, n_coloured: 1, weight: 210, temp: 22, lo: 20, hi: 24, sd: Math.SQRT2 * 2, last_colour: 'RED', first_colour: 'RED' },
          timestamp: T0 + 1000,
        },
        {
          key: 'w02',
          value: { production_line: 'w02', n: 1, n_coloured: 1, weight: 120, temp: 30, lo: 30, hi: 30, sd: null, last_colour: 'BLUE', first_colour: 'BLUE' },
          timestamp: T0 + 2000,
        },
        {
          key: 'w01',
          value: { production_line: 'w01', n: 3, n_coloured: 2, weight: 340, temp: 22, lo: 20, hi: 24, sd: 2, last_colour: 'GREEN', first_colour: 'RED' },
          timestamp: T0 + 3000,
        },
      ],
    },
  },
  {
    name: 'tumbling window, WHERE, EMIT CHANGES (the DESIGN example heavy_by_line)',
    sql: `${SOURCE}
      CREATE TABLE heavy_by_line AS
        SELECT production_line, COUNT(*) AS n FROM widgets
        WINDOW TUMBLING (SIZE 1 MINUTE)
        WHERE widget_weight_g > 120
        GROUP BY production_line EMIT CHANGES;`,
    readings: [w(10, 'aa-101', 'w01', 'RED', 20, 125), w(20, 'aa-102', 'w01', 'RED', 20, 100), w(50, 'aa-103', 'w02', 'RED', 20, 130), w(55, 'aa-104', 'w01', 'RED', 20, 121), w(70, 'aa-101', 'w01', 'RED', 20, 140)],
    expected: {
      heavy_by_line: [
        { key: `w01@${T0}`, value: { production_line: 'w01', n: 1 }, timestamp: T0 },
        { key: `w02@${T0}`, value: { production_line: 'w02', n: 1 }, timestamp: T0 },
        { key: `w01@${T0}`, value: { production_line: 'w01', n: 2 }, timestamp: T0 },
        { key: `w01@${T0 + MIN}`, value: { production_line: 'w01', n: 1 }, timestamp: T0 + MIN },
      ],
    },
  },
  {
    name: 'tumbling window with grace, EMIT FINAL, WINDOWSTART/WINDOWEND, a record beyond grace goes to _late with the reason',
    sql: `${SOURCE}
      CREATE TABLE lines_final AS
        SELECT production_line, COUNT(*) AS n, WINDOWSTART AS ws, WINDOWEND AS we FROM widgets
        WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS)
        GROUP BY production_line EMIT FINAL;`,
    readings: [w(10, 'aa-101', 'w01', 'RED', 20, 1), w(65, 'aa-102', 'w01', 'RED', 20, 1), w(55, 'aa-103', 'w02', 'RED', 20, 1), w(71, 'aa-104', 'w01', 'RED', 20, 1), e5],
    closeAtEnd: true,
    expected: {
      lines_final: [
        { key: `w01@${T0}`, value: { production_line: 'w01', n: 1, ws: T0, we: T0 + MIN }, timestamp: T0 },
        { key: `w02@${T0}`, value: { production_line: 'w02', n: 1, ws: T0, we: T0 + MIN }, timestamp: T0 },
        { key: `w01@${T0 + MIN}`, value: { production_line: 'w01', n: 2, ws: T0 + MIN, we: T0 + 2 * MIN }, timestamp: T0 + MIN },
      ],
      lines_final_late: [
        {
          key: 'aa-105',
          value: {
            reason: 'WINDOW_CLOSED',
            message: 'every window of the record closed (event time beyond the grace period)',
            rule: 'lines_final',
            topic: 'widgets',
            partition: 0,
            offset: 4,
            eventTime: T0 + 59_000,
            streamTime: T0 + 71_000,
            key: 'aa-105',
            value: e5,
          },
          timestamp: T0 + 59_000,
        },
      ],
    },
  },
  {
    name: 'hopping window, EMIT FINAL, HAVING on a select alias (the DESIGN example hot_sensors)',
    sql: `${SOURCE}
      CREATE TABLE hot_sensors AS
        SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets
        WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 1 MINUTE)
        GROUP BY sensor_id HAVING temp > 20 EMIT FINAL;`,
    readings: [w(30, 'aa-101', 'w01', 'RED', 25, 1), w(90, 'aa-101', 'w01', 'RED', 15, 1), w(100, 'aa-102', 'w01', 'RED', 30, 1)],
    closeAtEnd: true,
    expected: {
      hot_sensors: [
        // [T0-1min, T0+1min) closes when stream time reaches T0+90s; aa-101@T0 averages exactly 20: HAVING drops it
        { key: `aa-101@${T0 - MIN}`, value: { sensor_id: 'aa-101', temp: 25 }, timestamp: T0 - MIN },
        { key: `aa-102@${T0}`, value: { sensor_id: 'aa-102', temp: 30 }, timestamp: T0 },
        { key: `aa-102@${T0 + MIN}`, value: { sensor_id: 'aa-102', temp: 30 }, timestamp: T0 + MIN },
      ],
    },
  },
  {
    name: 'session window, EMIT CHANGES: sessions grow, a gap starts a new one',
    sql: `${SOURCE}
      CREATE TABLE sessions AS
        SELECT sensor_id, COUNT(*) AS n, WINDOWSTART AS ws, WINDOWEND AS we FROM widgets
        WINDOW SESSION (30 SECONDS)
        GROUP BY sensor_id EMIT CHANGES;`,
    readings: [w(0, 'aa-101', 'w01', 'RED', 1, 1), w(20, 'aa-101', 'w01', 'RED', 1, 1), w(100, 'aa-101', 'w01', 'RED', 1, 1), w(110, 'aa-102', 'w01', 'RED', 1, 1)],
    expected: {
      sessions: [
        { key: `aa-101@${T0}`, value: { sensor_id: 'aa-101', n: 1, ws: T0, we: T0 }, timestamp: T0 },
        { key: `aa-101@${T0}`, value: { sensor_id: 'aa-101', n: 2, ws: T0, we: T0 + 20_000 }, timestamp: T0 },
        { key: `aa-101@${T0 + 100_000}`, value: { sensor_id: 'aa-101', n: 1, ws: T0 + 100_000, we: T0 + 100_000 }, timestamp: T0 + 100_000 },
        { key: `aa-102@${T0 + 110_000}`, value: { sensor_id: 'aa-102', n: 1, ws: T0 + 110_000, we: T0 + 110_000 }, timestamp: T0 + 110_000 },
      ],
    },
  },
  {
    name: 'undecodable payloads and readings without event time go to _late with the reason, never dropped',
    sql: `${SOURCE} CREATE STREAM widgets_red AS SELECT * FROM widgets WHERE colour = 'RED';`,
    readings: [r1, 'not json', h3],
    expected: {
      widgets_red: [{ key: 'aa-101', value: r1, timestamp: T0 }],
      widgets_red_late: [
        {
          key: null,
          value: { reason: 'INVALID_JSON', message: 'the payload is not a JSON object', rule: 'widgets_red', topic: 'widgets', partition: 0, offset: 1, eventTime: null, streamTime: T0, key: null, value: 'not json' },
          timestamp: 1000,
        },
        {
          key: 'aa-1',
          value: { reason: 'NO_EVENT_TIME', message: 'the event time field is missing or not a timestamp', rule: 'widgets_red', topic: 'widgets', partition: 0, offset: 2, eventTime: null, streamTime: T0, key: 'aa-1', value: h3 },
          timestamp: 2000,
        },
      ],
    },
  },
];

describe('rules golden tables', () => {
  it.each(cases)('$name', async (c) => {
    const got = await runGolden(c.sql, c.readings, { closeAtEnd: c.closeAtEnd ?? false });
    expect(round(got.out)).toEqual(round(c.expected));
  });
});

describe('rules over several input partitions', () => {
  it('merges partitions by event time, so one partition running ahead does not make the other late', async () => {
    // aa-101 lands on partition 0, aa-107 on partition 1 (Kafka's partitioner, 2 partitions);
    // all of aa-101's readings are appended first, so partition 0 holds event times far ahead of partition 1's
    const readings = [w(0, 'aa-101', 'w01', 'RED', 1, 1), w(10, 'aa-101', 'w01', 'RED', 1, 1), w(70, 'aa-101', 'w01', 'RED', 1, 1), w(5, 'aa-107', 'w01', 'RED', 1, 1), w(65, 'aa-107', 'w01', 'RED', 1, 1)];
    const got = await runGolden(
      `${SOURCE}
       CREATE TABLE per_min AS SELECT sensor_id, COUNT(*) AS n FROM widgets
       WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor_id EMIT FINAL;`,
      readings,
      { closeAtEnd: true, partitions: 2 },
    );
    expect(got.out.per_min_late).toBeUndefined();
    expect(got.out.per_min!.map((r) => [r.key, r.value]).sort()).toEqual([
      [`aa-101@${T0}`, { sensor_id: 'aa-101', n: 2 }],
      [`aa-101@${T0 + MIN}`, { sensor_id: 'aa-101', n: 1 }],
      [`aa-107@${T0}`, { sensor_id: 'aa-107', n: 1 }],
      [`aa-107@${T0 + MIN}`, { sensor_id: 'aa-107', n: 1 }],
    ]);
  });
});
