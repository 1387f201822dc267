import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatExpr, formatStatement, type Expr } from './ast.ts';
import { isRulesError, type RulesError } from './errors.ts';
import { parseExpression, parseRules } from './parser.ts';
import { planRuleText } from './plan.ts';

function parseError(text: string): string {
  try {
    parseRules(text);
  } catch (e) {
    if (!isRulesError(e)) throw e;
    return (e as RulesError).formatted;
  }
  throw new Error(`expected a syntax error for: ${text}`);
}

const printed = (text: string): string[] => parseRules(text).map((p) => formatStatement(p.statement));

describe('parser: exact tree', () => {
  it('gives every node its line, column and offset', () => {
    const text = "-- red widgets\nCREATE STREAM red AS\n  SELECT colour FROM widgets WHERE colour = 'RED';";
    const [parsed] = parseRules(text);
    expect(parsed!.text).toBe("CREATE STREAM red AS\n  SELECT colour FROM widgets WHERE colour = 'RED'");
    expect(parsed!.statement).toEqual({
      kind: 'CreateAsSelect',
      pos: { line: 2, col: 1, offset: 15 },
      objectType: 'STREAM',
      name: { kind: 'Identifier', pos: { line: 2, col: 15, offset: 29 }, name: 'red', quoted: false },
      orReplace: false,
      ifNotExists: false,
      properties: [],
      query: {
        kind: 'Select',
        pos: { line: 3, col: 3, offset: 38 },
        items: [
          {
            kind: 'SelectExpr',
            pos: { line: 3, col: 10, offset: 45 },
            expr: {
              kind: 'ColumnRef',
              pos: { line: 3, col: 10, offset: 45 },
              qualifier: null,
              column: { kind: 'Identifier', pos: { line: 3, col: 10, offset: 45 }, name: 'colour', quoted: false },
            },
            alias: null,
          },
        ],
        from: {
          pos: { line: 3, col: 17, offset: 52 },
          name: { kind: 'Identifier', pos: { line: 3, col: 22, offset: 57 }, name: 'widgets', quoted: false },
          alias: null,
        },
        window: null,
        where: {
          kind: 'Binary',
          pos: { line: 3, col: 36, offset: 71 },
          op: '=',
          left: {
            kind: 'ColumnRef',
            pos: { line: 3, col: 36, offset: 71 },
            qualifier: null,
            column: { kind: 'Identifier', pos: { line: 3, col: 36, offset: 71 }, name: 'colour', quoted: false },
          },
          right: { kind: 'StringLiteral', pos: { line: 3, col: 45, offset: 80 }, value: 'RED' },
        },
        groupBy: [],
        partitionBy: [],
        having: null,
        emit: null,
        emitPos: null,
      },
    });
  });

  it('keeps the window durations in milliseconds with their units', () => {
    const [p] = parseRules('CREATE TABLE t AS SELECT a, COUNT(*) FROM s WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE, GRACE PERIOD 30 SECONDS) GROUP BY a;');
    const s = p!.statement;
    if (s.kind !== 'CreateAsSelect' || s.query.window?.kind !== 'HoppingWindow') throw new Error('expected a hopping window');
    expect(s.query.window.size).toMatchObject({ value: 5, unit: 'MINUTE', ms: 300_000 });
    expect(s.query.window.advance).toMatchObject({ value: 1, unit: 'MINUTE', ms: 60_000 });
    expect(s.query.window.grace).toMatchObject({ value: 30, unit: 'SECOND', ms: 30_000 });
    expect(s.query.window.retention).toBeNull();
  });
});

describe('parser: statements golden table (SQL → canonical tree)', () => {
  const cases: Array<[string, string[]]> = [
    // The DESIGN.md examples, unchanged.
    [
      `CREATE STREAM widgets_red AS
  SELECT * FROM widgets WHERE colour = 'RED';

CREATE TABLE heavy_by_line AS
  SELECT production_line, COUNT(*) AS n FROM widgets
  WINDOW TUMBLING (SIZE 1 MINUTE)
  WHERE widget_weight_g > 120
  GROUP BY production_line EMIT CHANGES;

CREATE TABLE hot_sensors AS
  SELECT sensor_id, AVG(temp_celcius) AS temp FROM widgets
  WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE, GRACE PERIOD 30 SECONDS)
  GROUP BY sensor_id HAVING temp > 20 EMIT FINAL;`,
      [
        "CREATE STREAM WIDGETS_RED AS SELECT * FROM WIDGETS WHERE (COLOUR = 'RED')",
        'CREATE TABLE HEAVY_BY_LINE AS SELECT PRODUCTION_LINE, COUNT(*) AS N FROM WIDGETS WINDOW TUMBLING (SIZE 1 MINUTE) WHERE (WIDGET_WEIGHT_G > 120) GROUP BY PRODUCTION_LINE EMIT CHANGES',
        'CREATE TABLE HOT_SENSORS AS SELECT SENSOR_ID, AVG(TEMP_CELCIUS) AS TEMP FROM WIDGETS WINDOW HOPPING (SIZE 5 MINUTES, ADVANCE BY 1 MINUTE, GRACE PERIOD 30 SECONDS) GROUP BY SENSOR_ID HAVING (TEMP > 20) EMIT FINAL',
      ],
    ],
    [
      "CREATE STREAM widgets (reading_ts VARCHAR, sensor_id VARCHAR KEY, temp_celcius INT, payload STRUCT<temp DOUBLE, tags ARRAY<STRING>>) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');",
      [
        "CREATE STREAM WIDGETS (READING_TS VARCHAR, SENSOR_ID VARCHAR KEY, TEMP_CELCIUS INT, PAYLOAD STRUCT<TEMP DOUBLE, TAGS ARRAY<VARCHAR>>) WITH (KAFKA_TOPIC='widgets', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts')",
      ],
    ],
    [
      "SET 'auto.offset.reset'='earliest';\nCREATE STREAM IF NOT EXISTS s2 WITH (KAFKA_TOPIC='out', PARTITIONS=3) AS SELECT w.sensor_id AS id, payload->temp FROM widgets w PARTITION BY w.sensor_id EMIT CHANGES",
      [
        "SET 'auto.offset.reset'='earliest'",
        "CREATE STREAM IF NOT EXISTS S2 WITH (KAFKA_TOPIC='out', PARTITIONS=3) AS SELECT W.SENSOR_ID AS ID, PAYLOAD->TEMP FROM WIDGETS W PARTITION BY W.SENSOR_ID EMIT CHANGES",
      ],
    ],
    [
      'CREATE OR REPLACE TABLE t AS SELECT `Line`, MIN(x), MAX(x) FROM "Src" WINDOW SESSION (90 SECONDS, RETENTION 2 DAYS, GRACE PERIOD 0 MILLISECONDS) GROUP BY (`Line`, b);',
      ['CREATE OR REPLACE TABLE T AS SELECT `Line`, MIN(X), MAX(X) FROM `Src` WINDOW SESSION (90 SECONDS, RETENTION 2 DAYS, GRACE PERIOD 0 MILLISECONDS) GROUP BY `Line`, B'],
    ],
    // Comments, '' escapes, a missing final ';', empty statements.
    [
      ";; /* block\n comment */ CREATE STREAM s AS SELECT 'it''s' AS q, a -- trailing\n FROM x",
      ["CREATE STREAM S AS SELECT 'it''s' AS Q, A FROM X"],
    ],
    // GROUP BY (a + b) is one expression, not a list.
    ['CREATE TABLE t AS SELECT COUNT(*) FROM x GROUP BY (a + b);', ['CREATE TABLE T AS SELECT COUNT(*) FROM X GROUP BY (A + B)']],
    // An alias without AS, a window name, keywords that may name columns.
    ['CREATE TABLE t AS SELECT size s, COUNT(*) n FROM x WINDOW w1 TUMBLING (SIZE 10 SECONDS) GROUP BY size;', ['CREATE TABLE T AS SELECT SIZE AS S, COUNT(*) AS N FROM X WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY SIZE']],
  ];
  it.each(cases)('%s', (sql, want) => {
    expect(printed(sql)).toEqual(want);
  });
});

describe('parser: statements from the ksqlDB documentation parse unchanged', () => {
  // Taken from ksqlDB's docs (time and windows, CREATE STREAM, CREATE TABLE AS SELECT, quick reference).
  const docs = [
    "SELECT regionid, COUNT(*) FROM pageviews\n  WINDOW HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS)\n  WHERE UCASE(gender)='FEMALE' AND LCASE (regionid) LIKE '%_6'\n  GROUP BY regionid\n  EMIT CHANGES",
    'SELECT card_number, count(*) FROM authorization_attempts\n  WINDOW TUMBLING (SIZE 5 SECONDS)\n  GROUP BY card_number HAVING COUNT(*) > 3\n  EMIT CHANGES',
    'SELECT regionid, COUNT(*) FROM pageviews\n  WINDOW SESSION (60 SECONDS)\n  GROUP BY regionid\n  EMIT CHANGES',
    "CREATE TABLE pageviews_per_region AS\n  SELECT regionid, COUNT(*) FROM pageviews\n  WINDOW HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS, RETENTION 7 DAYS, GRACE PERIOD 30 MINUTES)\n  WHERE UCASE(gender)='FEMALE' AND LCASE (regionid) LIKE '%_6'\n  GROUP BY regionid\n  EMIT CHANGES;",
    "CREATE STREAM pageviews (page_id BIGINT KEY, viewtime BIGINT, user_id VARCHAR)\n  WITH (KAFKA_TOPIC = 'pageviews-topic', VALUE_FORMAT = 'JSON');",
    "CREATE STREAM pageviews (viewtime BIGINT, user_id VARCHAR, page_id VARCHAR)\n  WITH (KAFKA_TOPIC='pageviews', VALUE_FORMAT='JSON', TIMESTAMP='viewtime');",
    'CREATE STREAM filtered AS\n   SELECT \n     a, \n     few,\n     columns \n   FROM source_stream;',
    "SELECT id, CONCAT(CAST(COUNT(*) AS VARCHAR), '_HELLO') FROM views WINDOW TUMBLING (SIZE 1 HOUR, GRACE PERIOD 2 HOURS) GROUP BY id EMIT FINAL",
    "SELECT event FROM events WHERE event_id BETWEEN 10 AND 20 EMIT CHANGES",
    "SELECT CASE WHEN orderunits < 2.0 THEN 'small' WHEN orderunits < 4.0 THEN 'medium' ELSE 'large' END AS case_result FROM orders EMIT CHANGES",
    "SELECT * FROM pageviews WHERE pageid LIKE 'home%' AND userid IS NOT NULL AND regionid IN ('Region_1', 'Region_2') EMIT CHANGES",
    "CREATE STREAM pageviews (\n    page_id BIGINT,\n    viewtime BIGINT,\n    user_id VARCHAR\n  ) WITH (\n    KAFKA_TOPIC = 'keyless-pageviews-topic',\n    VALUE_FORMAT = 'JSON'\n  );",
    "CREATE STREAM pageviews WITH (\n    KAFKA_TOPIC = 'keyless-pageviews-topic',\n    VALUE_FORMAT = 'JSON'\n  );",
    "CREATE STREAM pageviews (\n    page_id BIGINT KEY\n  ) WITH (\n    KAFKA_TOPIC = 'keyed-pageviews-topic',\n    VALUE_FORMAT = 'JSON'\n  );",
  ];
  it.each(docs)('%s', (sql) => {
    // A bare SELECT becomes the persistent query it would be in a rule file.
    const text = sql.startsWith('SELECT') ? `CREATE ${/GROUP BY/.test(sql) ? 'TABLE' : 'STREAM'} x AS ${sql};` : sql;
    expect(() => parseRules(text)).not.toThrow();
    // They fall in the dialect, so they also plan.
    expect(planRuleText(text, 'docs.sql').diagnostics).toEqual([]);
  });
});

describe('parser: expression precedence golden table', () => {
  const cases: Array<[string, string]> = [
    ['a + b * c - d / e % f', '((A + (B * C)) - ((D / E) % F))'],
    ['-a * b', '((-A) * B)'],
    ["a || b + c", '(A || (B + C))'],
    ['NOT a = 1 AND b OR c', '(((NOT (A = 1)) AND B) OR C)'],
    ['a OR b AND c', '(A OR (B AND C))'],
    ['NOT NOT a', '(NOT (NOT A))'],
    ['a != b', '(A <> B)'],
    ['x NOT BETWEEN 1 + 1 AND 5 AND y', '((X NOT BETWEEN (1 + 1) AND 5) AND Y)'],
    ["c NOT LIKE 'a\\_%' ESCAPE '\\'", "(C NOT LIKE 'a\\_%' ESCAPE '\\')"],
    ['x IS NOT NULL OR y IS NULL', '((X IS NOT NULL) OR (Y IS NULL))'],
    ['x NOT IN (1, 2, 3)', '(X NOT IN (1, 2, 3))'],
    ['payload->inner->`Temp C`[2]', 'PAYLOAD->INNER->`Temp C`[2]'],
    ['CASE colour WHEN \'RED\' THEN 1 ELSE 0 END + 1', "(CASE COLOUR WHEN 'RED' THEN 1 ELSE 0 END + 1)"],
    ['CAST(temp AS DECIMAL(5, 2)) >= 1.5e1', '(CAST(TEMP AS DECIMAL(5, 2)) >= 1.5e1)'],
    ['(a + b) * c', '((A + B) * C)'],
    ['round(avg(x), 2)', 'ROUND(AVG(X), 2)'],
    ['w.colour = \'RED\'', "(W.COLOUR = 'RED')"],
  ];
  it.each(cases)('%s', (sql, want) => {
    expect(formatExpr(parseExpression(sql))).toBe(want);
  });
});

describe('parser: error golden table (exact message, position and token)', () => {
  const cases: Array<[string, string]> = [
    ['CREATE TABLE t AS SELECT a FROM x\n WHERE (a > 1 GROUP BY a;', "<input>:2:15: expected ')' but found 'GROUP'"],
    ['CREATE STREAM s AS SELECT a FROM x WHERE;', "<input>:1:41: expected an expression but found ';'"],
    ['CREATE STREAM s AS SELECT a FROM', '<input>:1:33: expected a stream name but found end of input'],
    ["CREATE STREAM s AS SELECT a FROM x WHERE c = 'RED", '<input>:1:46: unterminated string literal: missing closing \''],
    ['CREATE STREAM s AS SELECT a /* never closed', "<input>:1:29: unterminated comment: missing '*/'"],
    ['CREATE STREAM s AS SELECT a # b FROM x;', "<input>:1:29: unexpected character '#'"],
    ['CREATE STREAM s AS SELECT a FROM x WHERE a = 1 = 2;', "<input>:1:48: expected ';' but found '='"],
    ['CREATE TABLE t AS SELECT a FROM x WINDOW TUMBLING (SIZE 1 FORTNIGHT) GROUP BY a;', "<input>:1:59: expected a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS) but found 'FORTNIGHT'"],
    ['CREATE TABLE t AS SELECT a FROM x WINDOW SLIDING (SIZE 1 MINUTE) GROUP BY a;', "<input>:1:42: expected 'TUMBLING', 'HOPPING' or 'SESSION' but found 'SLIDING'"],
    ['CREATE TABLE t AS SELECT a FROM x WINDOW HOPPING (SIZE 1 MINUTE) GROUP BY a;', "<input>:1:64: expected ',' but found ')'"],
    ['CREATE TABLE t AS SELECT a FROM x WINDOW TUMBLING (SIZE 1.5 MINUTES) GROUP BY a;', "<input>:1:57: expected a whole number of time units but found '1.5'"],
    ['CREATE TABLE t AS SELECT a FROM x GROUP BY a EMIT SOMETIMES;', "<input>:1:51: expected 'CHANGES' or 'FINAL' but found 'SOMETIMES'"],
    ['DROP STREAM s;', "<input>:1:1: unsupported statement 'DROP': a rule file holds CREATE STREAM, CREATE TABLE and SET statements"],
    ['CREATE STREAM s AS SELECT a FROM x JOIN y ON x.a = y.a;', "<input>:1:36: JOIN is not supported (found 'JOIN')"],
    ['CREATE STREAM s AS SELECT a FROM x LIMIT 5;', '<input>:1:36: LIMIT is not supported in a rule (rules run continuously)'],
    ["CREATE TABLE users (id VARCHAR PRIMARY KEY) WITH (KAFKA_TOPIC='u');", "<input>:1:8: source tables are not supported: write CREATE TABLE users AS SELECT ..."],
    ['CREATE STREAM s (a INT) AS SELECT a FROM x;', '<input>:1:25: CREATE ... AS SELECT cannot also declare columns'],
    ['CREATE STREAM s (a WIDGET);', "<input>:1:20: expected a type but found 'WIDGET'"],
    ['CREATE STREAM s AS SELECT 12abc FROM x;', "<input>:1:27: invalid number '12abc'"],
    ['CREATE STREAM select AS SELECT a FROM x;', "<input>:1:15: expected a stream name but found 'select'"],
    ['SET auto.offset.reset = earliest;', "<input>:1:5: expected a quoted property name like 'auto.offset.reset' but found 'auto'"],
    ['CREATE STREAM s AS SELECT a FROM x WHERE a IN ();', "<input>:1:48: expected an expression but found ')'"],
    ['CREATE STREAM s AS SELECT CASE END FROM x;', "<input>:1:32: expected 'WHEN' but found 'END'"],
    ['CREATE STREAM s AS SELECT a FROM x\nCREATE STREAM t AS SELECT b FROM y;', "<input>:2:1: expected ';' but found 'CREATE'"],
    ['CREATE TABLE t AS SELECT a, COUNT(*) FROM x WHERE a > 1 WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY a;', "<input>:1:57: 'WINDOW' is out of place: the clauses go in the order FROM, WINDOW, WHERE, GROUP BY, PARTITION BY, HAVING, EMIT"],
    ['CREATE TABLE t AS SELECT a, COUNT(*) FROM x GROUP BY a where a > 1;', "<input>:1:56: 'where' is out of place: the clauses go in the order FROM, WINDOW, WHERE, GROUP BY, PARTITION BY, HAVING, EMIT"],
    ['UPDATE x SET a = 1;', "<input>:1:1: expected 'CREATE' or 'SET' but found 'UPDATE'"],
  ];
  it.each(cases)('%s', (sql, want) => {
    expect(parseError(sql)).toBe(want);
  });

  it('reports the offending token in the error context', () => {
    try {
      parseRules('CREATE TABLE t AS SELECT a FROM x\n WHERE (a > 1 GROUP BY a;');
      expect.unreachable();
    } catch (e) {
      expect(isRulesError(e, 'RULES_SYNTAX')).toBe(true);
      expect((e as RulesError).context).toMatchObject({ line: 2, col: 15, offset: 48, token: 'GROUP' });
      expect((e as RulesError).retriable).toBe(false);
    }
  });
});

describe('parser: nesting limit', () => {
  it('rejects hostile nesting with a positioned syntax error instead of exhausting the stack', () => {
    const deepParens = 'CREATE STREAM s AS SELECT ' + '('.repeat(10_000) + 'a' + ')'.repeat(10_000) + ' FROM x;';
    expect(parseError(deepParens)).toBe('<input>:1:227: expression nested too deeply (more than 200 levels)');
    const longChain = 'CREATE STREAM s AS SELECT a' + ' + a'.repeat(1_000) + ' FROM x;';
    expect(parseError(longChain)).toBe('<input>:1:27: expression nested too deeply (more than 200 levels)');
    expect(parseError('CREATE STREAM s AS SELECT ' + 'NOT '.repeat(1_000) + 'a FROM x;')).toMatch(/expression nested too deeply/);
    expect(parseError('CREATE STREAM s AS SELECT ' + '- '.repeat(1_000) + 'a FROM x;')).toMatch(/expression nested too deeply/);
    expect(parseError('CREATE STREAM s (a ' + 'ARRAY<'.repeat(1_000) + 'INT' + '>'.repeat(1_000) + ');')).toMatch(/expression nested too deeply/);
  });

  it('accepts nesting within the limit', () => {
    expect(() => parseExpression('('.repeat(150) + 'a' + ')'.repeat(150))).not.toThrow();
    expect(() => parseExpression('a' + ' + a'.repeat(150))).not.toThrow();
  });
});

describe('parser: property', () => {
  // Random token soup built from the dialect's own vocabulary (plus junk characters).
  const vocabulary = [
    'a', 'b', 'temp_celcius', '`Q x`', '"dq"', "'s'", "'it''s'", '1', '2.5', '.5', '1e3', 'NULL', 'TRUE', 'FALSE',
    '+', '-', '*', '/', '%', '||', '=', '<>', '!=', '<', '<=', '>', '>=', '(', ')', ',', '->', '[', ']', '.',
    'AND', 'OR', 'NOT', 'IN', 'IS', 'BETWEEN', 'LIKE', 'ESCAPE', 'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'CAST', 'AS', 'INT',
    'DECIMAL', 'ROUND', 'COUNT', 'SELECT', 'FROM', 'WHERE', 'GROUP', 'BY', '--', '/*', '*/', '#', "'", '`', '\n', ';',
  ];
  const soup = fc.array(fc.constantFrom(...vocabulary), { maxLength: 25 }).map((ts) => ts.join(' '));

  it('never crashes on random expressions: it returns a tree or throws a positioned RULES_SYNTAX error', () => {
    fc.assert(
      fc.property(fc.oneof(soup, fc.string({ maxLength: 40 })), (text) => {
        let tree: Expr | undefined;
        try {
          tree = parseExpression(text);
        } catch (e) {
          expect(isRulesError(e, 'RULES_SYNTAX')).toBe(true);
          const ctx = (e as RulesError).context;
          expect(ctx.line).toBeGreaterThanOrEqual(1);
          expect(ctx.col).toBeGreaterThanOrEqual(1);
          expect(ctx.offset).toBeGreaterThanOrEqual(0);
          expect(ctx.offset).toBeLessThanOrEqual(text.length);
          return;
        }
        // A parsed expression prints to text that parses back to the same tree shape.
        const again = formatExpr(parseExpression(formatExpr(tree)));
        expect(again).toBe(formatExpr(tree));
      }),
      { numRuns: 800, seed: 20260226 },
    );
  });

  it('never crashes on random statements either', () => {
    const stmt = fc.tuple(fc.constantFrom('CREATE STREAM s AS SELECT ', 'CREATE TABLE t AS SELECT ', 'SET '), soup).map(([a, b]) => a + b);
    fc.assert(
      fc.property(stmt, (text) => {
        try {
          parseRules(text);
        } catch (e) {
          expect(isRulesError(e, 'RULES_SYNTAX')).toBe(true);
        }
      }),
      { numRuns: 1000, seed: 7 },
    );
  });
});
