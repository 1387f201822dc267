import { describe, expect, it } from 'vitest';
import { analyzeQuery } from './analyzer.ts';
import { formatExpr, type CreateAsSelect } from './ast.ts';
import { parseRules } from './parser.ts';
import { getField } from './compile-expression.ts';
import {
  REWRITE_RULES,
  formatDiagnostic,
  groupKeyText,
  optimize,
  planRuleText,
  type DerivedPlan,
  type GroupRow,
  type RuleFilePlan,
  type SourceRow,
  type StreamPlan,
  type TablePlan,
} from './plan.ts';

const reading = {
  reading_ts: '2020-02-14T12:19:27Z',
  sensor_id: 'aa-101',
  production_line: 'w01',
  widget_type: 'acme94',
  colour: 'RED',
  temp_celcius: 23,
  widget_weight_g: 100,
};
const READING_MS = Date.UTC(2020, 1, 14, 12, 19, 27);

const row = (value: Record<string, unknown>, key: string | null = 'aa-101'): SourceRow => ({ value, key, timestamp: READING_MS, partition: 2, offset: 41 });

function planOk(text: string): RuleFilePlan {
  const p = planRuleText(text, 'rules/test.sql');
  expect(p.diagnostics.map(formatDiagnostic)).toEqual([]);
  return p;
}

function rule<K extends DerivedPlan['kind']>(p: RuleFilePlan, name: string, kind: K): Extract<DerivedPlan, { kind: K }> {
  const r = p.rules.find((x) => x.name === name);
  if (r === undefined || r.kind !== kind) throw new Error(`no ${kind} ${name}`);
  return r as Extract<DerivedPlan, { kind: K }>;
}

const DESIGN = `CREATE STREAM widgets (reading_ts VARCHAR, sensor_id VARCHAR KEY, production_line VARCHAR, widget_type VARCHAR,
  colour VARCHAR, temp_celcius INT, widget_weight_g INT)
  WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');

CREATE STREAM widgets_red AS
  SELECT * FROM widgets WHERE colour = 'RED';

SET 'auto.offset.reset'='earliest';

CREATE TABLE heavy_by_line AS
  SELECT production_line, COUNT(*) AS n FROM widgets
  WINDOW TUMBLING (SIZE 1 MINUTE)
  WHERE widget_weight_g > 120
  GROUP BY production_line EMIT CHANGES;

CREATE TABLE hot_sensors AS
  SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets
  WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE, GRACE PERIOD 30 SECONDS)
  GROUP BY sensor_id HAVING temp > 20 EMIT FINAL;`;

describe('planner: the DESIGN.md rule file', () => {
  const p = planOk(DESIGN);

  it('declares the source with its topic, columns and event-time field', () => {
    expect(p.sources).toHaveLength(1);
    const s = p.sources[0]!;
    expect({ name: s.name, topic: s.topic, timestampField: s.timestampField, declared: s.declared }).toEqual({
      name: 'widgets',
      topic: 'widgets',
      timestampField: 'reading_ts',
      declared: true,
    });
    expect(s.columns[1]).toMatchObject({ name: 'sensor_id', type: 'VARCHAR', key: true, typeNode: { kind: 'BaseType', name: 'VARCHAR' } });
    expect(s.origin).toMatchObject({ file: 'rules/test.sql', line: 1, col: 1 });
  });

  it('plans the filter stream: WHERE, pass-through projection, input key, latest offset (before SET)', () => {
    const r = rule(p, 'widgets_red', 'stream');
    expect({ topic: r.outputTopic, partitions: r.partitions, reset: r.offsetReset, settings: r.settings, source: r.source.name }).toEqual({
      topic: 'widgets_red',
      partitions: null,
      reset: 'latest',
      settings: {},
      source: 'widgets',
    });
    expect(r.where(row(reading))).toBe(true);
    expect(r.where(row({ ...reading, colour: 'BLUE' }))).toBe(false);
    expect(r.where(row({ ...reading, colour: null }))).toBe(false);
    const out = r.project(row(reading));
    expect(out).toEqual(reading);
    expect(out).not.toBe(reading);
    expect(r.outputKey(row(reading))).toBe('aa-101');
    expect(r.origin).toMatchObject({ line: 5, col: 1, sql: "CREATE STREAM widgets_red AS\n  SELECT * FROM widgets WHERE colour = 'RED'" });
  });

  it('plans the tumbling count with its window, key, projection and settings after SET', () => {
    const r = rule(p, 'heavy_by_line', 'table');
    expect(r.window).toEqual({ kind: 'tumbling', sizeMs: 60_000, advanceMs: 60_000, graceMs: 0 });
    expect(r.emit).toBe('changes');
    expect(r.offsetReset).toBe('earliest');
    expect(r.settings).toEqual({ 'auto.offset.reset': 'earliest' });
    expect(r.where(row({ ...reading, widget_weight_g: 121 }))).toBe(true);
    expect(r.where(row(reading))).toBe(false);
    expect(r.groupBy.map((g) => g(row(reading)))).toEqual(['w01']);
    expect(r.groupByNames).toEqual(['production_line']);
    expect(r.aggregates.map((a) => [a.fn, a.text, a.arg])).toEqual([['COUNT', 'COUNT(*)', null]]);
    const g: GroupRow = { keys: ['w01'], aggregates: [7], windowStart: 60_000, windowEnd: 120_000 };
    expect(r.project(g)).toEqual({ production_line: 'w01', n: 7 });
    expect(r.outputColumns).toEqual(['production_line', 'n']);
    expect(r.outputKey(g)).toBe('w01@60000');
    expect(r.having(g)).toBe(true);
  });

  it('plans the hopping average: HAVING through the alias, EMIT FINAL, grace', () => {
    const r = rule(p, 'hot_sensors', 'table');
    expect(r.window).toEqual({ kind: 'hopping', sizeMs: 300_000, advanceMs: 60_000, graceMs: 30_000 });
    expect(r.emit).toBe('final');
    expect(r.aggregates.map((a) => [a.fn, a.text, a.arg?.(row(reading))])).toEqual([['AVG', 'AVG(TEMP_CELCIUS)', 23]]);
    const g = (avg: number | null): GroupRow => ({ keys: ['aa-101'], aggregates: [avg], windowStart: 0, windowEnd: 300_000 });
    expect(r.having(g(20.5))).toBe(true);
    expect(r.having(g(20))).toBe(false);
    expect(r.having(g(null))).toBe(false);
    expect(r.project(g(21.25))).toEqual({ sensor_id: 'aa-101', temp: 21.25 });
  });
});

describe('planner: the value fields a rule reads', () => {
  it('lists the fields of WHERE, projection, PARTITION BY, GROUP BY, aggregates and the event time; none for SELECT * with extras', () => {
    const p = planOk(`${DESIGN}
      CREATE STREAM loose WITH (KAFKA_TOPIC='loose', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');
      CREATE STREAM picked AS SELECT sensor_id, \`Widget_Type\` AS wt, ROWKEY AS k, extra->x AS x FROM loose WHERE colour = 'RED' PARTITION BY production_line;
      CREATE STREAM starred AS SELECT *, UCASE(colour) AS shout FROM widgets;
      CREATE STREAM clash AS SELECT \`reading_ts\` AS ts FROM loose;
      CREATE STREAM proto AS SELECT constructor FROM loose;`);
    const names = (r: DerivedPlan) => r.valueFields?.map((f) => `${f.name}${f.caseSensitive ? '!' : ''}`).sort() ?? null;
    expect(names(rule(p, 'widgets_red', 'stream'))).toEqual(['colour', 'reading_ts']);
    expect(names(rule(p, 'hot_sensors', 'table'))).toEqual(['reading_ts', 'sensor_id', 'temp_celcius']);
    expect(names(rule(p, 'heavy_by_line', 'table'))).toEqual(['production_line', 'reading_ts', 'widget_weight_g']);
    expect(names(rule(p, 'picked', 'stream'))).toEqual(['Widget_Type!', 'colour', 'extra', 'production_line', 'reading_ts', 'sensor_id']);
    expect(names(rule(p, 'starred', 'stream'))).toBeNull();
    // one name read both case-sensitively and not (here with the event time), or a name of Object.prototype: whole values
    expect(names(rule(p, 'clash', 'stream'))).toBeNull();
    expect(names(rule(p, 'proto', 'stream'))).toBeNull();
  });
});

describe('planner: the prefilter (WHERE <value column> = \'<text>\')', () => {
  it('is the column and text for exactly that form, and null for every other WHERE', () => {
    const p = planOk(`${DESIGN}
      CREATE STREAM loose WITH (KAFKA_TOPIC='loose', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');
      CREATE STREAM exact AS SELECT * FROM loose WHERE \`Colour\` = 'Red';
      CREATE STREAM flipped AS SELECT * FROM loose WHERE 'RED' = colour;
      CREATE STREAM unequal AS SELECT * FROM loose WHERE colour <> 'RED';
      CREATE STREAM number AS SELECT * FROM loose WHERE colour = 1;
      CREATE STREAM anded AS SELECT * FROM loose WHERE colour = 'RED' AND sensor_id = 'a';
      CREATE STREAM pseudo AS SELECT * FROM loose WHERE ROWKEY = 'a';
      CREATE STREAM nowhere AS SELECT * FROM loose;
      CREATE TABLE per_line AS SELECT production_line, COUNT(*) AS n FROM loose WHERE colour = 'RED' GROUP BY production_line;`);
    expect(rule(p, 'widgets_red', 'stream').prefilter).toEqual({ field: { name: 'colour', caseSensitive: false }, equals: 'RED' });
    expect(rule(p, 'exact', 'stream').prefilter).toEqual({ field: { name: 'Colour', caseSensitive: true }, equals: 'Red' });
    expect(rule(p, 'per_line', 'table').prefilter).toEqual({ field: { name: 'colour', caseSensitive: false }, equals: 'RED' });
    // the optimizer puts the column first
    expect(rule(p, 'flipped', 'stream').prefilter).toEqual({ field: { name: 'colour', caseSensitive: false }, equals: 'RED' });
    for (const name of ['unequal', 'number', 'anded', 'pseudo', 'nowhere']) expect(rule(p, name, 'stream').prefilter).toBeNull();
  });
});

describe('planner: stream details', () => {
  it('projects expressions, star plus extras, and keys by PARTITION BY', () => {
    const p = planOk(`CREATE STREAM hot WITH (KAFKA_TOPIC='hot_out', PARTITIONS=4) AS
      SELECT *, UCASE(colour) AS shout, temp_celcius * 9 / 5 + 32 AS temp_f FROM widgets PARTITION BY production_line;
      CREATE STREAM slim AS SELECT sensor_id AS id, ROWTIME AS t, ROWPARTITION AS p, ROWOFFSET AS o, ROWKEY AS k FROM widgets;`);
    const hot = rule(p, 'hot', 'stream');
    expect(hot.outputTopic).toBe('hot_out');
    expect(hot.partitions).toBe(4);
    expect(hot.project(row(reading))).toEqual({ ...reading, shout: 'RED', temp_f: 73.4 });
    expect(hot.outputKey(row(reading))).toBe('w01');
    expect(hot.outputKey(row({ ...reading, production_line: null }))).toBeNull();
    const slim = rule(p, 'slim', 'stream');
    expect(slim.project(row(reading))).toEqual({ id: 'aa-101', t: READING_MS, p: 2, o: 41, k: 'aa-101' });
    expect(slim.outputKey(row(reading, 'the-key'))).toBe('the-key');
  });

  it('reads a KEY column from the record key when the value lacks it', () => {
    const p = planOk(`CREATE STREAM w (sensor_id VARCHAR KEY, temp INT) WITH (KAFKA_TOPIC='w');
      CREATE STREAM s AS SELECT sensor_id, temp FROM w;`);
    expect(rule(p, 's', 'stream').project(row({ temp: 5 }, 'k-9'))).toEqual({ sensor_id: 'k-9', temp: 5 });
    expect(rule(p, 's', 'stream').project(row({ temp: 5, sensor_id: 'v-1' }, 'k-9'))).toEqual({ sensor_id: 'v-1', temp: 5 });
  });

  it('reads the decoded fields (SourceRow.fields, in valueFields order) as it reads the whole value', () => {
    const p = planOk(`CREATE STREAM w (sensor_id VARCHAR KEY, colour VARCHAR, temp INT, reading_ts VARCHAR) WITH (KAFKA_TOPIC='w', TIMESTAMP='reading_ts');
      CREATE STREAM s AS SELECT temp * 2 AS t2, sensor_id, UCASE(colour) AS c FROM w WHERE colour <> 'BLUE' AND temp > 1 PARTITION BY colour;
      CREATE TABLE a AS SELECT sensor_id, AVG(temp) AS t, LATEST_BY_OFFSET(colour) AS c FROM w GROUP BY sensor_id HAVING COUNT(*) > 0;`);
    const values: Array<Record<string, unknown>> = [
      { colour: 'RED', temp: 5, sensor_id: 'v-1', reading_ts: 'x' },
      { COLOUR: 'GREEN', Temp: 7 },
      { colour: 'BLUE', temp: 9, sensor_id: null },
      { temp: '3' },
    ];
    for (const r of p.rules) {
      const fields = r.valueFields!;
      // the fields the closures read, each once, then the event-time field
      expect(fields.map((f) => f.name).sort()).toEqual(['colour', 'reading_ts', 'sensor_id', 'temp']);
      expect(fields.at(-1)!.name).toBe('reading_ts');
      for (const value of values) {
        const whole = row(value, 'k-9');
        const decoded = { ...row({}, 'k-9'), fields: fields.map((f) => getField(value, f.name, f.caseSensitive)) };
        expect(r.where(decoded)).toBe(r.where(whole));
        if (r.kind === 'stream') {
          expect(r.project(decoded)).toEqual(r.project(whole));
          expect(r.outputKey(decoded)).toEqual(r.outputKey(whole));
        } else {
          expect(r.groupBy.map((g) => g(decoded))).toEqual(r.groupBy.map((g) => g(whole)));
          expect(r.aggregates.map((a) => a.arg?.(decoded))).toEqual(r.aggregates.map((a) => a.arg?.(whole)));
        }
      }
    }
  });

  it('treats a source declared without columns as schemaless, and survives non-object values', () => {
    const p = planOk("CREATE STREAM raw WITH (KAFKA_TOPIC='raw_topic'); CREATE STREAM s AS SELECT anything, ROWKEY AS k FROM raw WHERE anything IS NULL;");
    const s = rule(p, 's', 'stream');
    expect(s.source.topic).toBe('raw_topic');
    expect(s.project(row({ Anything: 1 }))).toEqual({ anything: 1, k: 'aa-101' });
    expect(s.where(row(null as unknown as Record<string, unknown>))).toBe(true);
    expect(s.project(row(42 as unknown as Record<string, unknown>))).toEqual({ anything: null, k: 'aa-101' });
  });

  it('a source declaring only KEY columns leaves its value columns open, as ksqlDB schema inference would', () => {
    const p = planOk("CREATE STREAM pv (page_id BIGINT KEY) WITH (KAFKA_TOPIC='pv', VALUE_FORMAT='JSON'); CREATE STREAM s AS SELECT page_id, user_id FROM pv;");
    expect(rule(p, 's', 'stream').project(row({ user_id: 'u1' }, '17'))).toEqual({ page_id: '17', user_id: 'u1' });
    const closed = planRuleText("CREATE STREAM pv (page_id BIGINT KEY, viewtime BIGINT) WITH (KAFKA_TOPIC='pv'); CREATE STREAM s AS SELECT user_id FROM pv;", 'f.sql');
    expect(closed.diagnostics.map(formatDiagnostic)).toEqual(["f.sql:1:107: unknown column 'user_id' in stream 'pv'"]);
  });

  it('uses integer division for declared integer columns', () => {
    const p = planOk(`CREATE STREAM w (a INT, b BIGINT, c DOUBLE) WITH (KAFKA_TOPIC='w');
      CREATE STREAM s AS SELECT a / b AS ints, c / b AS dbl, -a / 2 AS neg FROM w;`);
    expect(rule(p, 's', 'stream').project(row({ a: 7, b: 2, c: 7 }))).toEqual({ ints: 3, dbl: 3.5, neg: -3 });
  });

  it('lower-cases unquoted names and keeps quoted ones; FROM an undeclared name reads that topic', () => {
    const p = planOk('CREATE STREAM Widgets_RED AS SELECT * FROM Widgets; CREATE STREAM `Exact` AS SELECT * FROM `RawTopic`;');
    expect(p.rules.map((r) => [r.name, r.outputTopic, r.source.topic, r.source.declared])).toEqual([
      ['widgets_red', 'widgets_red', 'widgets', false],
      ['Exact', 'Exact', 'RawTopic', false],
    ]);
  });

  it('reads a derived stream through its output topic; a table is not an input', () => {
    const p = planOk("CREATE STREAM a WITH (KAFKA_TOPIC='a_topic') AS SELECT * FROM raw; CREATE STREAM b AS SELECT * FROM a;");
    expect(rule(p, 'b', 'stream').source.topic).toBe('a_topic');
    const bad = planRuleText('CREATE TABLE t AS SELECT k, COUNT(*) FROM raw GROUP BY k; CREATE STREAM c AS SELECT * FROM t;', 'f.sql');
    expect(bad.diagnostics.map(formatDiagnostic)).toEqual(["f.sql:1:92: 't' is a table; a rule reads from a stream"]);
  });

  it('refuses two rules writing one topic, and rules feeding each other in a cycle', () => {
    const twice = planRuleText("CREATE STREAM a WITH (KAFKA_TOPIC='out') AS SELECT * FROM raw;\nCREATE STREAM b WITH (KAFKA_TOPIC='out') AS SELECT * FROM raw2;", 'f.sql');
    expect(twice.diagnostics.map(formatDiagnostic)).toEqual(["f.sql:2:15: topic 'out' is already written by 'a' at f.sql:1:1"]);
    // a reads topic b (undeclared yet), b reads a's output and writes topic b: a → b → a.
    const cycle = planRuleText('CREATE STREAM a AS SELECT * FROM b_in;\nCREATE STREAM c AS SELECT * FROM a;\nCREATE STREAM b WITH (KAFKA_TOPIC=\'b_in\') AS SELECT * FROM c;', 'f.sql');
    expect(cycle.diagnostics.map(formatDiagnostic)).toEqual(['f.sql:3:15: rules form a cycle: b → a → c → b']);
    // A plain chain is fine.
    planOk('CREATE STREAM a AS SELECT * FROM raw; CREATE STREAM b AS SELECT * FROM a; CREATE STREAM c AS SELECT * FROM b;');
  });

  it('SET applies to the statements after it, later SETs win, the value is case-insensitive', () => {
    const p = planOk("CREATE STREAM a AS SELECT * FROM raw;\nSET 'AUTO.OFFSET.RESET'='Earliest';\nCREATE STREAM b AS SELECT * FROM raw;\nSET 'auto.offset.reset'='latest';\nSET 'other'='x';\nCREATE STREAM c AS SELECT * FROM raw;");
    expect(p.rules.map((r) => [r.name, r.offsetReset, r.settings])).toEqual([
      ['a', 'latest', {}],
      ['b', 'earliest', { 'auto.offset.reset': 'earliest' }],
      ['c', 'latest', { 'auto.offset.reset': 'latest', other: 'x' }],
    ]);
  });

  it('IF NOT EXISTS skips a name that is already defined', () => {
    const p = planOk('CREATE STREAM a AS SELECT * FROM raw; CREATE STREAM IF NOT EXISTS a AS SELECT x FROM raw;');
    expect(p.rules).toHaveLength(1);
    expect(rule(p, 'a', 'stream').outputColumns).toEqual([]);
  });
});

describe('planner: event time', () => {
  const p = planOk("CREATE STREAM w (ts VARCHAR) WITH (KAFKA_TOPIC='w', TIMESTAMP='ts'); CREATE STREAM u WITH (KAFKA_TOPIC='u');");
  const declared = p.sources.find((s) => s.name === 'w')!;
  const plain = p.sources.find((s) => s.name === 'u')!;

  it.each([
    [{ ts: '2020-02-14T12:19:27Z' }, READING_MS],
    [{ ts: '2020-02-14T12:19:27.5Z' }, READING_MS + 500],
    [{ ts: '2020-02-14T13:19:27+01:00' }, READING_MS],
    [{ ts: '2020-02-14T12:19:27' }, READING_MS],
    [{ TS: '2020-02-14T12:19:27Z' }, READING_MS],
    [{ ts: READING_MS }, READING_MS],
    [{ ts: String(READING_MS) }, READING_MS],
    [{ ts: 'yesterday' }, null],
    [{ ts: '2020-02-31T00:00:00Z' }, null],
    [{ ts: true }, null],
    [{}, null],
  ])('%j → %s', (value, want) => {
    expect(declared.eventTime(value, 5)).toBe(want);
  });

  it('uses the record timestamp when no TIMESTAMP field is named', () => {
    expect(plain.eventTime({ ts: 'x' }, 1234)).toBe(1234);
  });
});

describe('planner: tables', () => {
  it('keys groups by several expressions and builds output keys and state identities', () => {
    const p = planOk(`CREATE TABLE t AS SELECT production_line AS line, UCASE(colour) AS c, SUM(widget_weight_g) AS w, MAX(temp_celcius) AS hi,
        WINDOWSTART AS ws, WINDOWEND AS we FROM widgets WINDOW SESSION (5 MINUTES) GROUP BY production_line, UCASE(colour);`);
    const t = rule(p, 't', 'table');
    expect(t.window).toEqual({ kind: 'session', gapMs: 300_000, graceMs: 0 });
    expect(t.groupBy.map((g) => g(row(reading)))).toEqual(['w01', 'RED']);
    expect(t.groupByNames).toEqual(['production_line', 'UCASE(COLOUR)']);
    const g: GroupRow = { keys: ['w01', 'RED'], aggregates: [300, 25], windowStart: 10, windowEnd: 20 };
    expect(t.project(g)).toEqual({ line: 'w01', c: 'RED', w: 300, hi: 25, ws: 10, we: 20 });
    expect(t.outputKey(g)).toBe('["w01","RED"]@10');
  });

  it('unwindowed tables key by the group only', () => {
    const t = rule(planOk('CREATE TABLE t AS SELECT sensor_id, LATEST_BY_OFFSET(temp_celcius) AS last FROM widgets GROUP BY sensor_id;'), 't', 'table');
    expect(t.window).toBeNull();
    expect(t.outputKey({ keys: ['aa-101'], aggregates: [1], windowStart: null, windowEnd: null })).toBe('aa-101');
  });

  it('groupKeyText tells apart values that print alike', () => {
    const texts = [['x'], ['1'], [1], [null], ['null'], ['a', 'b'], ['a,b'], [['a', 'b']]].map(groupKeyText);
    expect(new Set(texts).size).toBe(texts.length);
    expect(groupKeyText(['x'])).toBe(groupKeyText(['x']));
  });

  it('state signature changes with GROUP BY, window shape, aggregates or input; not with grace, EMIT, WHERE, HAVING, projection or spelling', () => {
    const sig = (sql: string): string => rule(planOk(sql), 't', 'table').stateSignature;
    const base = sig('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor_id;');
    expect(sig("create table t as select SENSOR_ID as s, avg( temp_celcius ) from widgets window tumbling (size 60 seconds) where colour = 'RED' group by sensor_id having avg(temp_celcius) > 3;")).toBe(base);
    expect(sig('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) FROM widgets WINDOW TUMBLING (SIZE 2 MINUTES) GROUP BY sensor_id;')).not.toBe(base);
    expect(sig('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 1 SECOND) GROUP BY sensor_id EMIT FINAL;')).toBe(base);
    expect(sig('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) FROM widgets WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 30 SECONDS) GROUP BY sensor_id;')).not.toBe(base);
    expect(sig('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) FROM widgets GROUP BY sensor_id;')).not.toBe(base);
    expect(sig('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) FROM widgets GROUP BY sensor_id, colour;')).not.toBe(base);
    expect(sig('CREATE TABLE t AS SELECT production_line, AVG(temp_celcius) FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY production_line;')).not.toBe(base);
    expect(sig('CREATE TABLE t AS SELECT sensor_id, MAX(temp_celcius) FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor_id;')).not.toBe(base);
    expect(sig('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) FROM other WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor_id;')).not.toBe(base);
  });
});

describe('planner: rewrite rules', () => {
  const logical = (sql: string) => analyzeQuery(parseRules(sql)[0]!.statement as CreateAsSelect, { name: 'x', columns: null });

  it('runs the named rules in order', () => {
    expect(REWRITE_RULES.map((r) => r.name)).toEqual(['fold-constants', 'literal-on-right', 'drop-true-filters']);
  });

  it('folds constants, puts literals on the right, and drops a WHERE that is always true', () => {
    const q = optimize(logical("CREATE STREAM s AS SELECT 60 * 1000 AS ms, UCASE('red') AS c, a + (1 + 2) AS b FROM x WHERE 5 < temp AND 'RED' = colour;"));
    expect(q.outputs.map((o) => formatExpr(o.expr))).toEqual(['60000', "'RED'", '(A + 3)']);
    expect(formatExpr(q.where!)).toBe("((TEMP > 5) AND (COLOUR = 'RED'))");
    expect(optimize(logical('CREATE STREAM s AS SELECT * FROM x WHERE 1 = 1;')).where).toBeNull();
    expect(formatExpr(optimize(logical('CREATE STREAM s AS SELECT * FROM x WHERE 1 = 2;')).where!)).toBe('FALSE');
  });

  it('does not fold aggregates or columns, and keeps NULL semantics', () => {
    const q = optimize(logical('CREATE TABLE t AS SELECT k, COUNT(*) + (2 * 3), NULL + 1 AS n FROM x GROUP BY k HAVING TRUE;'));
    expect(q.outputs.map((o) => formatExpr(o.expr))).toEqual(['K', '(COUNT(*) + 6)', 'NULL']);
    expect(q.kind === 'table' && q.having).toBeNull();
  });

  it('a rewritten filter still behaves the same on rows', () => {
    const p = planOk("CREATE STREAM s AS SELECT * FROM x WHERE 100 < widget_weight_g + 0 * 5 AND 'RED' = colour;");
    const r = rule(p, 's', 'stream') as StreamPlan;
    expect(r.where(row({ ...reading, widget_weight_g: 101 }))).toBe(true);
    expect(r.where(row({ ...reading, widget_weight_g: 100 }))).toBe(false);
    expect(r.where(row({ ...reading, widget_weight_g: 101, colour: 'BLUE' }))).toBe(false);
  });
});

describe('planner: a table plan is what the runtime needs', () => {
  it('exposes aggregate argument closures evaluated on input rows', () => {
    const t = rule(
      planOk('CREATE TABLE t AS SELECT sensor_id, COUNT(temp_celcius), STDDEV_SAMP(temp_celcius * 2), EARLIEST_BY_OFFSET(colour) FROM widgets GROUP BY sensor_id;'),
      't',
      'table',
    ) as TablePlan;
    expect(t.aggregates.map((a) => [a.fn, a.arg?.(row(reading))])).toEqual([
      ['COUNT', 23],
      ['STDDEV_SAMP', 46],
      ['EARLIEST_BY_OFFSET', 'RED'],
    ]);
  });
});

describe('planner: property', () => {
  it('random rule statements give plans or positioned diagnostics, and planned closures never throw', async () => {
    const fc = (await import('fast-check')).default;
    const col = fc.oneof(
      { weight: 9, arbitrary: fc.constantFrom('sensor_id', 'colour', 'temp_celcius', 'widget_weight_g', 'payload->temp', 'ROWTIME') },
      { weight: 1, arbitrary: fc.constantFrom('nope', 'WINDOWSTART') },
    );
    const lit = fc.constantFrom("'RED'", '20', '1.5', 'NULL', 'TRUE', '0');
    // Scalar expressions (no aggregates).
    const { scalar } = fc.letrec((tie) => ({
      scalar: fc.oneof(
        { depthSize: 'small' },
        col,
        lit,
        fc.tuple(tie('scalar'), fc.constantFrom('+', '/', '%', '=', '>', '<>', 'AND', 'OR', '||'), tie('scalar')).map(([l, o, r]) => `(${l} ${o} ${r})`),
        fc.tuple(fc.constantFrom('UCASE', 'ROUND', 'ABS', 'COALESCE', 'LEN', 'CAST'), tie('scalar')).map(([f, a]) => (f === 'CAST' ? `CAST(${a} AS VARCHAR)` : `${f}(${a})`)),
        tie('scalar').map((e) => `(${e} IS NULL)`),
        fc.tuple(tie('scalar'), tie('scalar')).map(([c, t]) => `CASE WHEN ${c} THEN ${t} END`),
      ),
    }));
    const aggregate = fc.oneof(
      fc.constant('COUNT(*)'),
      fc.tuple(fc.constantFrom('COUNT', 'SUM', 'AVG', 'MIN', 'MAX', 'STDDEV_SAMP', 'LATEST_BY_OFFSET', 'EARLIEST_BY_OFFSET'), scalar).map(([f, a]) => `${f}(${a})`),
    );
    const alias = fc.option(fc.constantFrom('a', 'b', 'temp'), { freq: 2 });
    const streamStmt = fc
      .record({ items: fc.array(fc.tuple(scalar, alias), { minLength: 1, maxLength: 3 }), star: fc.boolean(), where: fc.option(scalar) })
      .map(({ items, star, where }) => {
        const list = items.map(([e, a], i) => `${e} AS ${a ?? 'c' + i}`);
        return `CREATE STREAM out AS SELECT ${star ? '*, ' : ''}${list.join(', ')} FROM widgets ${where ? `WHERE ${where}` : ''};`;
      });
    const tableStmt = fc
      .record({
        keys: fc.subarray(['sensor_id', 'colour', 'UCASE(colour)'], { minLength: 1 }),
        aggs: fc.array(aggregate, { minLength: 1, maxLength: 3 }),
        window: fc.constantFrom('', 'WINDOW TUMBLING (SIZE 1 MINUTE)', 'WINDOW HOPPING (SIZE 2 MINUTES, ADVANCE BY 1 MINUTE, GRACE PERIOD 5 SECONDS)', 'WINDOW SESSION (30 SECONDS)'),
        where: fc.option(scalar),
        having: fc.option(fc.oneof(fc.tuple(aggregate, fc.constantFrom('>', '=', '<'), lit).map(([a, o, l]) => `${a} ${o} ${l}`), fc.constant('x0 > 1'), scalar)),
        bounds: fc.boolean(),
        emit: fc.constantFrom('', 'EMIT CHANGES', 'EMIT FINAL'),
      })
      .map(
        (r) =>
          `CREATE TABLE out AS SELECT ${[...r.keys.map((k, i) => `${k} AS k${i}`), ...r.aggs.map((a, i) => `${a} AS x${i}`), ...(r.bounds ? ['WINDOWSTART AS ws', 'WINDOWEND AS we'] : [])].join(', ')} ` +
          `FROM widgets ${r.window} ${r.where ? `WHERE ${r.where}` : ''} GROUP BY ${r.keys.join(', ')} ${r.having ? `HAVING ${r.having}` : ''} ${r.emit};`,
      );
    const stmt = fc.oneof(streamStmt, tableStmt);
    const value = fc.oneof(fc.constant(null), fc.integer(), fc.double(), fc.string({ maxLength: 4 }), fc.boolean(), fc.constant({ temp: 3 }));
    const input = fc.record({ sensor_id: value, colour: value, temp_celcius: value, widget_weight_g: value, payload: value });
    const declared = "CREATE STREAM widgets (sensor_id VARCHAR KEY, colour VARCHAR, temp_celcius INT, widget_weight_g INT, payload STRUCT<temp DOUBLE>) WITH (KAFKA_TOPIC='w');\n";
    let planned = 0;
    let rejected = 0;
    fc.assert(
      fc.property(stmt, fc.boolean(), input, (sql, withSchema, v) => {
        const plan = planRuleText((withSchema ? declared : '') + sql, 'p.sql');
        if (plan.rules.length > 0) planned++;
        else rejected++;
        for (const d of plan.diagnostics) {
          expect(d.code).toMatch(/^RULES_(SYNTAX|ANALYSIS|PLAN)$/);
          expect(d.message).not.toMatch(/internal error/);
          expect(d.line).toBeGreaterThanOrEqual(1);
        }
        for (const r of plan.rules) {
          const rw = row(v);
          r.where(rw);
          if (r.kind === 'stream') {
            r.project(rw);
            r.outputKey(rw);
          } else {
            const keys = r.groupBy.map((g) => g(rw));
            for (const a of r.aggregates) a.arg?.(rw);
            const g: GroupRow = { keys, aggregates: r.aggregates.map(() => v.temp_celcius), windowStart: r.window ? 0 : null, windowEnd: r.window ? 60_000 : null };
            r.project(g);
            r.having(g);
            r.outputKey(g);
            r.groupKeyText(keys);
          }
        }
      }),
      { numRuns: 500, seed: 3 },
    );
    // Both outcomes are exercised in earnest.
    expect(planned).toBeGreaterThan(40);
    expect(rejected).toBeGreaterThan(75);
  });
});
