import { describe, expect, it } from 'vitest';
import type { CreateAsSelect } from './ast.ts';
import { analyzeQuery, type SourceSchema } from './analyzer.ts';
import { formatExpr } from './ast.ts';
import { formatDiagnostic, planRuleText } from './plan.ts';
import { parseRules } from './parser.ts';

const WIDGETS = `CREATE STREAM widgets (reading_ts VARCHAR, sensor_id VARCHAR KEY, production_line VARCHAR, widget_type VARCHAR,
  colour VARCHAR, temp_celcius INT, widget_weight_g INT, payload STRUCT<temp DOUBLE>)
  WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');
`;

/** Diagnostics of a rule file made of the widgets declaration and `sql` (which starts on line 4). */
function diagnostics(sql: string, file = 'rules/hot.sql'): string[] {
  return planRuleText(WIDGETS + sql, file).diagnostics.map(formatDiagnostic);
}

describe('analyzer: error golden table (file:line:col: message)', () => {
  const cases: Array<[string, string]> = [
    ["CREATE STREAM s AS SELECT colour FROM widgets WHERE COUNT(*) > 1;", 'rules/hot.sql:4:53: aggregate function COUNT needs CREATE TABLE ... AS SELECT ... GROUP BY'],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets WHERE COUNT(*) > 1 GROUP BY sensor_id;', 'rules/hot.sql:4:65: aggregate function COUNT is not allowed in WHERE'],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets GROUP BY COUNT(*);', 'rules/hot.sql:4:68: aggregate function COUNT is not allowed in GROUP BY'],
    ['CREATE TABLE t AS SELECT sensor_id, colour, COUNT(*) FROM widgets GROUP BY sensor_id;', "rules/hot.sql:4:37: column 'colour' must be in GROUP BY or inside an aggregate function"],
    ['CREATE TABLE t AS SELECT sensor_id, SUM(AVG(temp_celcius)) FROM widgets GROUP BY sensor_id;', 'rules/hot.sql:4:41: aggregate function AVG is not allowed in an aggregate argument'],
    ['CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets GROUP BY sensor_id HAVING colour = \'RED\';', "rules/hot.sql:4:102: column 'colour' must be in GROUP BY or inside an aggregate function"],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets;', 'rules/hot.sql:4:19: CREATE TABLE ... AS SELECT needs GROUP BY (source tables are not supported)'],
    ['CREATE TABLE t AS SELECT * FROM widgets GROUP BY sensor_id;', 'rules/hot.sql:4:26: SELECT * is not supported in CREATE TABLE ... AS SELECT; list the GROUP BY columns and aggregates'],
    ['CREATE STREAM s AS SELECT * FROM widgets GROUP BY sensor_id;', 'rules/hot.sql:4:51: GROUP BY needs CREATE TABLE ... AS SELECT'],
    ['CREATE STREAM s AS SELECT * FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE);', 'rules/hot.sql:4:49: WINDOW needs CREATE TABLE ... AS SELECT ... GROUP BY'],
    ['CREATE STREAM s AS SELECT * FROM widgets EMIT FINAL;', 'rules/hot.sql:4:42: EMIT FINAL needs a windowed CREATE TABLE ... AS SELECT'],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets GROUP BY sensor_id EMIT FINAL;', 'rules/hot.sql:4:78: EMIT FINAL needs a WINDOW'],
    ['CREATE STREAM s AS SELECT colour, WINDOWSTART FROM widgets;', 'rules/hot.sql:4:35: WINDOWSTART is only available in the select list or HAVING of a windowed table'],
    ['CREATE TABLE t AS SELECT sensor_id, WINDOWEND, COUNT(*) FROM widgets GROUP BY sensor_id;', 'rules/hot.sql:4:37: WINDOWEND is only available in the select list or HAVING of a windowed table'],
    ['CREATE STREAM s AS SELECT colur FROM widgets;', "rules/hot.sql:4:27: unknown column 'colur' in stream 'widgets'"],
    ['CREATE STREAM s AS SELECT `Colour` FROM widgets;', "rules/hot.sql:4:27: unknown column 'Colour' in stream 'widgets'"],
    ['CREATE STREAM s AS SELECT payload->tmp FROM widgets;', "rules/hot.sql:4:36: unknown field 'tmp' in 'PAYLOAD' (STRUCT<TEMP DOUBLE>)"],
    ['CREATE STREAM s AS SELECT colour->x FROM widgets;', "rules/hot.sql:4:35: '->' needs a STRUCT but 'COLOUR' is VARCHAR"],
    ["CREATE STREAM s AS SELECT * FROM widgets WHERE payload->TEMP = 'x';", "rules/hot.sql:4:64: cannot compare PAYLOAD->TEMP (DOUBLE) with 'x' (VARCHAR)"],
    ['CREATE STREAM s AS SELECT colour[1] FROM widgets;', "rules/hot.sql:4:27: '[...]' needs an ARRAY or MAP but 'COLOUR' is VARCHAR"],
    ['CREATE STREAM s AS SELECT x.colour FROM widgets w;', "rules/hot.sql:4:27: unknown stream or alias 'x'"],
    ['CREATE STREAM s AS SELECT FROBNICATE(colour) FROM widgets;', "rules/hot.sql:4:27: unknown function 'FROBNICATE'"],
    ['CREATE STREAM s AS SELECT SUBSTRING(colour) FROM widgets;', 'rules/hot.sql:4:27: SUBSTRING takes 2 to 3 arguments, got 1'],
    ['CREATE STREAM s AS SELECT UCASE(colour, 1) FROM widgets;', 'rules/hot.sql:4:27: UCASE takes 1 argument, got 2'],
    ['CREATE STREAM s AS SELECT UCASE(temp_celcius) FROM widgets;', "rules/hot.sql:4:33: UCASE expects a string but 'TEMP_CELCIUS' is INT"],
    ['CREATE STREAM s AS SELECT colour + 1 FROM widgets;', "rules/hot.sql:4:27: '+' expects a number but 'COLOUR' is VARCHAR"],
    ["CREATE STREAM s AS SELECT * FROM widgets WHERE temp_celcius = 'hot';", "rules/hot.sql:4:63: cannot compare TEMP_CELCIUS (INT) with 'hot' (VARCHAR)"],
    ["CREATE STREAM s AS SELECT * FROM widgets WHERE colour IN ('RED', 7);", "rules/hot.sql:4:66: cannot compare COLOUR (VARCHAR) with 7 (INT)"],
    ['CREATE STREAM s AS SELECT * FROM widgets WHERE temp_celcius + 1;', "rules/hot.sql:4:48: WHERE must be a BOOLEAN expression but '(TEMP_CELCIUS + 1)' is INT"],
    ['CREATE STREAM s AS SELECT * FROM widgets WHERE colour AND TRUE;', "rules/hot.sql:4:48: AND expects BOOLEAN but 'COLOUR' is VARCHAR"],
    ['CREATE STREAM s AS SELECT * FROM widgets WHERE temp_celcius LIKE \'2%\';', "rules/hot.sql:4:48: LIKE expects a string but 'TEMP_CELCIUS' is INT"],
    ['CREATE TABLE t AS SELECT sensor_id, SUM(colour) FROM widgets GROUP BY sensor_id;', "rules/hot.sql:4:41: SUM expects a number but 'COLOUR' is VARCHAR"],
    ['CREATE TABLE t AS SELECT sensor_id, SUM(*) FROM widgets GROUP BY sensor_id;', 'rules/hot.sql:4:37: SUM(*) is not supported; name a column'],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(DISTINCT colour) FROM widgets GROUP BY sensor_id;', 'rules/hot.sql:4:37: DISTINCT is not supported in COUNT'],
    ['CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius, 2) FROM widgets GROUP BY sensor_id;', 'rules/hot.sql:4:37: AVG takes 1 argument, got 2'],
    ['CREATE STREAM s AS SELECT colour, colour FROM widgets;', "rules/hot.sql:4:35: duplicate output column 'colour'"],
    ['CREATE STREAM s AS SELECT colour AS c, sensor_id AS C FROM widgets;', "rules/hot.sql:4:53: duplicate output column 'C'"],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets WINDOW TUMBLING (SIZE 0 SECONDS) GROUP BY sensor_id;', 'rules/hot.sql:4:81: window SIZE must be greater than zero'],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 2 MINUTES) GROUP BY sensor_id;', 'rules/hot.sql:4:101: ADVANCE BY must not exceed the window SIZE'],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets WINDOW SESSION (0 SECONDS) GROUP BY sensor_id;', 'rules/hot.sql:4:75: session gap must be greater than zero'],
    ['CREATE STREAM s AS SELECT * FROM widgets PARTITION BY sensor_id, colour;', "rules/hot.sql:4:66: PARTITION BY takes one expression"],
    ['CREATE TABLE t AS SELECT sensor_id, COUNT(*) FROM widgets GROUP BY sensor_id PARTITION BY sensor_id;', 'rules/hot.sql:4:91: PARTITION BY is not supported in CREATE TABLE ... AS SELECT; the key is the GROUP BY'],
    ["CREATE STREAM s AS SELECT TIMESTAMPTOSTRING(ROWTIME, 'EEE dd') FROM widgets;", "rules/hot.sql:4:27: unsupported pattern 'EEE' in TIMESTAMPTOSTRING (supported: yyyy yy MM M dd d HH H mm m ss s SSS X XXX and 'quoted text')"],
    ["CREATE STREAM s AS SELECT TIMESTAMPTOSTRING(ROWTIME, 'HH:mm', 'Europe/Paris') FROM widgets;", "rules/hot.sql:4:27: unsupported time zone 'Europe/Paris' (use 'UTC' or a fixed offset like '+02:00')"],
    // Planner errors (properties, names, topics) come out the same way.
    ["CREATE STREAM s WITH (KAFKA_TOPC='x') AS SELECT * FROM widgets;", "rules/hot.sql:4:23: unknown property 'KAFKA_TOPC'"],
    ["CREATE STREAM s WITH (VALUE_FORMAT='AVRO') AS SELECT * FROM widgets;", "rules/hot.sql:4:36: unsupported VALUE_FORMAT 'AVRO': only 'JSON' is supported"],
    ['CREATE STREAM s WITH (PARTITIONS=0) AS SELECT * FROM widgets;', 'rules/hot.sql:4:34: PARTITIONS must be a whole number of at least 1'],
    ["CREATE STREAM s WITH (PARTITIONS='3') AS SELECT * FROM widgets;", "rules/hot.sql:4:34: property 'PARTITIONS' expects a number"],
    ['CREATE STREAM widgets AS SELECT * FROM widgets;', "rules/hot.sql:4:15: 'widgets' is already defined at rules/hot.sql:1:1"],
    ["CREATE STREAM s WITH (KAFKA_TOPIC='widgets') AS SELECT * FROM widgets;", "rules/hot.sql:4:15: rule 's' would write to its own input topic 'widgets'"],
    ["SET 'auto.offset.reset'='beginning';", "rules/hot.sql:4:1: 'auto.offset.reset' must be 'earliest' or 'latest', not 'beginning'"],
  ];
  it.each(cases)('%s', (sql, want) => {
    expect(diagnostics(sql)).toEqual([want]);
  });

  it('reports every broken statement of a file, and a broken file yields no plans', () => {
    const text = WIDGETS + 'CREATE STREAM ok AS SELECT * FROM widgets;\nCREATE STREAM a AS SELECT nope FROM widgets;\nCREATE STREAM b AS SELECT colour + 1 FROM widgets;';
    const plan = planRuleText(text, 'r.sql');
    expect(plan.diagnostics.map(formatDiagnostic)).toEqual([
      "r.sql:5:27: unknown column 'nope' in stream 'widgets'",
      "r.sql:6:27: '+' expects a number but 'COLOUR' is VARCHAR",
    ]);
    expect(plan.rules).toEqual([]);
    expect(plan.sources).toEqual([]);
  });

  it('resumes after a syntax error at the next semicolon, reporting statements in file order', () => {
    const text = "CREATE STREAM a AS SELECT FROM x;\nCREATE STREAM b AS SELECT * FROM x WHERE colour + 1;\nCREATE STREAM c AS SELECT (1 FROM x;\nCREATE STREAM d AS SELECT * FROM x;";
    const plan = planRuleText(WIDGETS.replace(/\n/g, ' ') + '\n' + text.replace(/FROM x/g, 'FROM widgets'), 'r.sql');
    expect(plan.diagnostics.map(formatDiagnostic)).toEqual([
      "r.sql:2:27: expected an expression but found 'FROM'",
      "r.sql:3:48: '+' expects a number but 'COLOUR' is VARCHAR",
      "r.sql:4:30: expected ')' but found 'FROM'",
    ]);
    expect(plan.rules).toEqual([]);
  });

  it('a lexical error ends the file (what follows cannot be tokenized reliably)', () => {
    const plan = planRuleText("CREATE STREAM a AS SELECT 'open FROM x;\nCREATE STREAM b AS SELECT nope FROM widgets;", 'r.sql');
    expect(plan.diagnostics.map(formatDiagnostic)).toEqual(["r.sql:1:27: unterminated string literal: missing closing '"]);
  });

  it('accepts a schemaless source: any column, checks at run time', () => {
    expect(planRuleText("CREATE STREAM s AS SELECT anything->goes, UCASE(x) FROM undeclared WHERE y = 'z';", 'f.sql').diagnostics).toEqual([]);
  });
});

describe('analyzer: logical query', () => {
  const schema: SourceSchema = { name: 'widgets', columns: null };
  const analyze = (sql: string) => analyzeQuery(parseRules(sql)[0]!.statement as CreateAsSelect, schema);

  it('replaces a HAVING alias by the select expression and shares the aggregate call', () => {
    const q = analyze('CREATE TABLE t AS SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets GROUP BY sensor_id HAVING temp > 20 AND COUNT(*) > 1;');
    if (q.kind !== 'table') throw new Error('expected a table');
    expect(formatExpr(q.having!)).toBe('((AVG(TEMP_CELCIUS) > 20) AND (COUNT(*) > 1))');
    expect(q.aggregates.map((a) => a.text)).toEqual(['AVG(TEMP_CELCIUS)', 'COUNT(*)']);
    expect(q.outputs.map((o) => o.name)).toEqual(['sensor_id', 'temp']);
  });

  it('matches select expressions to GROUP BY expressions across case, spacing and qualifiers', () => {
    const q = analyze('CREATE TABLE t AS SELECT UCASE( W.Production_Line ), COUNT(*) FROM widgets w GROUP BY ucase(production_line);');
    if (q.kind !== 'table') throw new Error('expected a table');
    expect(q.outputs.map((o) => [o.name, formatExpr(o.expr)])).toEqual([
      ['KSQL_COL_0', 'UCASE(PRODUCTION_LINE)'],
      ['KSQL_COL_1', 'COUNT(*)'],
    ]);
  });

  it('names outputs: alias, column as written, last field of a->b, else KSQL_COL_n', () => {
    const q = analyze('CREATE STREAM s AS SELECT colour AS c, Sensor_Id, payload->temp, temp_celcius * 2, ROWTIME, UCASE(colour) FROM widgets;');
    expect(q.outputs.map((o) => o.name)).toEqual(['c', 'Sensor_Id', 'temp', 'KSQL_COL_0', 'ROWTIME', 'KSQL_COL_1']);
    const skip = analyze('CREATE STREAM s AS SELECT a + 1, b AS ksql_col_1, a + 2 FROM widgets;');
    expect(skip.outputs.map((o) => o.name)).toEqual(['KSQL_COL_0', 'ksql_col_1', 'KSQL_COL_2']);
  });
});
