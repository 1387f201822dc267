import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isRulesError } from './errors.ts';
import { catalogOf, checkRules, formatDiagnostic, isRuleFile, loadRuleFile, loadRuleFolder, type RuleFs } from './rule-file.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'millstream-rule-file-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SOURCE = "CREATE STREAM widgets (sensor_id VARCHAR KEY, colour VARCHAR, temp_celcius INT, reading_ts VARCHAR)\n  WITH (KAFKA_TOPIC='widgets_raw', VALUE_FORMAT='JSON', TIMESTAMP='reading_ts');\n";

describe('loadRuleFolder / checkRules over a real folder', () => {
  it('plans every *.sql file in name order, sharing sources across files', async () => {
    await writeFile(path.join(dir, '00-sources.sql'), SOURCE);
    await writeFile(path.join(dir, 'red.sql'), "CREATE STREAM widgets_red AS SELECT * FROM widgets WHERE colour = 'RED';");
    await writeFile(path.join(dir, 'avg.sql'), 'CREATE TABLE avg_temp AS SELECT sensor_id, AVG(temp_celcius) AS t FROM widgets GROUP BY sensor_id;');
    await writeFile(path.join(dir, 'notes.txt'), 'not a rule');
    await mkdir(path.join(dir, 'sub.sql'));
    const files = await loadRuleFolder(dir);
    expect(files.map((f) => path.basename(f.file))).toEqual(['00-sources.sql', 'avg.sql', 'red.sql', 'sub.sql']);
    const byName = new Map(files.map((f) => [path.basename(f.file), f]));
    expect(byName.get('00-sources.sql')!.sources.map((s) => s.name)).toEqual(['widgets']);
    // avg.sql and red.sql read the declared source (its topic and event-time field), not an implicit 'widgets' topic.
    for (const name of ['avg.sql', 'red.sql']) {
      const f = byName.get(name)!;
      expect(f.diagnostics).toEqual([]);
      expect(f.rules[0]!.source.topic).toBe('widgets_raw');
      expect(f.rules[0]!.source.timestampField).toBe('reading_ts');
    }
    // A directory named *.sql is reported as unreadable, not thrown.
    expect(byName.get('sub.sql')!.diagnostics).toEqual([
      { file: path.join(dir, 'sub.sql'), line: 1, col: 1, code: 'RULES_IO', message: 'cannot read rule file: EISDIR' },
    ]);
  });

  it('a broken file lends nothing to the others, as after a reload of any one of them', async () => {
    await writeFile(path.join(dir, 'a.sql'), SOURCE + 'CREATE STREAM broken AS SELECT FROM widgets;');
    await writeFile(path.join(dir, 'b.sql'), 'CREATE STREAM ok AS SELECT colour FROM widgets;');
    const files = await loadRuleFolder(dir);
    const [a, b] = files;
    expect(a!.diagnostics.map((d) => d.message)).toEqual(["expected an expression but found 'FROM'"]);
    expect(a!.sources).toEqual([]);
    expect(b!.diagnostics).toEqual([]);
    expect(b!.rules[0]!.source).toMatchObject({ topic: 'widgets', declared: false });
    const reloaded = await loadRuleFile(b!.file, { catalog: catalogOf(files, b!.file) });
    expect(reloaded.rules[0]!.source).toMatchObject({ topic: 'widgets', declared: false });
  });

  it('a name defined in two files stays with the first; the second is reported', async () => {
    await writeFile(path.join(dir, 'a.sql'), "CREATE STREAM red AS SELECT * FROM raw WHERE colour = 'RED';");
    await writeFile(path.join(dir, 'b.sql'), "CREATE STREAM red AS SELECT * FROM raw WHERE colour = 'BLUE';");
    const [a, b] = await loadRuleFolder(dir);
    expect(a!.diagnostics).toEqual([]);
    expect(b!.diagnostics.map(formatDiagnostic)).toEqual([`${path.join(dir, 'b.sql')}:1:15: 'red' is already defined at ${path.join(dir, 'a.sql')}:1:1`]);
  });

  it('a source declared in a later file is visible to an earlier one', async () => {
    await writeFile(path.join(dir, 'a.sql'), 'CREATE STREAM early AS SELECT colour FROM widgets;');
    await writeFile(path.join(dir, 'z.sql'), SOURCE);
    const files = await loadRuleFolder(dir);
    expect(files[0]!.diagnostics).toEqual([]);
    expect(files[0]!.rules[0]!.source.topic).toBe('widgets_raw');
  });

  it('plans a file defining a stream before the files that read it, whatever their names', async () => {
    await writeFile(path.join(dir, 'a-reader.sql'), 'CREATE STREAM reader AS SELECT * FROM red;');
    await writeFile(path.join(dir, 'b-red.sql'), SOURCE + "CREATE STREAM red WITH (KAFKA_TOPIC='red_topic') AS SELECT * FROM widgets WHERE colour = 'RED';");
    const files = await loadRuleFolder(dir);
    expect(files.map((f) => path.basename(f.file))).toEqual(['a-reader.sql', 'b-red.sql']);
    expect(files[0]!.diagnostics).toEqual([]);
    expect(files[0]!.rules[0]!.source.topic).toBe('red_topic');
  });

  it('checkRules returns file:line:col diagnostics naming the token, for every broken file', async () => {
    await writeFile(path.join(dir, 'good.sql'), SOURCE + "CREATE STREAM ok AS SELECT * FROM widgets WHERE colour = 'RED';\n");
    await writeFile(
      path.join(dir, 'hot.sql'),
      "-- hot sensors\nCREATE TABLE hot AS SELECT sensor_id, AVG(temp_celcius) AS temp\n  FROM widgets WHERE (temp_celcius > 20 GROUP BY sensor_id;\n",
    );
    await writeFile(path.join(dir, 'typo.sql'), 'CREATE STREAM typo AS\n  SELECT colur FROM widgets;\n');
    await writeFile(path.join(dir, 'zz-dup.sql'), 'CREATE STREAM ok AS SELECT * FROM widgets;\n');
    const diags = await checkRules(dir);
    expect(diags.map(formatDiagnostic)).toEqual([
      `${path.join(dir, 'hot.sql')}:3:41: expected ')' but found 'GROUP'`,
      `${path.join(dir, 'typo.sql')}:2:10: unknown column 'colur' in stream 'widgets'`,
      `${path.join(dir, 'zz-dup.sql')}:1:15: 'ok' is already defined at ${path.join(dir, 'good.sql')}:3:1`,
    ]);
    expect(diags.map((d) => d.code)).toEqual(['RULES_SYNTAX', 'RULES_ANALYSIS', 'RULES_PLAN']);
  });

  it('checkRules is empty for a valid folder, and throws RULES_IO for a missing one', async () => {
    await writeFile(path.join(dir, 'good.sql'), SOURCE);
    expect(await checkRules(dir)).toEqual([]);
    const missing = path.join(dir, 'nope');
    await expect(checkRules(missing)).rejects.toSatisfy((e: unknown) => isRulesError(e, 'RULES_IO') && (e as Error).message === `cannot read rules folder ${missing}: ENOENT`);
  });
});

describe('loadRuleFile', () => {
  it('plans one file against a catalog that excludes its own previous version', async () => {
    await writeFile(path.join(dir, 'src.sql'), SOURCE);
    const file = path.join(dir, 'red.sql');
    await writeFile(file, "CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'RED';");
    const folder = await loadRuleFolder(dir);
    // The file changes: it is re-planned against the other files only, so its own name is not a duplicate.
    await writeFile(file, "CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'BLUE';");
    const reloaded = await loadRuleFile(file, { catalog: catalogOf(folder, file) });
    expect(reloaded.diagnostics).toEqual([]);
    expect(reloaded.rules[0]!.source.topic).toBe('widgets_raw');
    expect(reloaded.rules[0]!.origin.sql).toBe("CREATE STREAM red AS SELECT * FROM widgets WHERE colour = 'BLUE'");
    // Planned against the whole catalog, the name clashes with its old self.
    const clash = await loadRuleFile(file, { catalog: catalogOf(folder) });
    expect(clash.diagnostics.map((d) => d.message)).toEqual([`'red' is already defined at ${file}:1:1`]);
  });

  it('reports an unreadable file as a diagnostic through the injected fs', async () => {
    const fs: RuleFs = {
      readFile: async () => {
        throw Object.assign(new Error('boom'), { code: 'EIO' });
      },
      readdir: async () => [],
    };
    expect(await loadRuleFile('rules/x.sql', { fs })).toEqual({
      file: 'rules/x.sql',
      sources: [],
      rules: [],
      diagnostics: [{ file: 'rules/x.sql', line: 1, col: 1, code: 'RULES_IO', message: 'cannot read rule file: EIO' }],
    });
  });

  it('recognises rule files by extension', () => {
    expect(['a.sql', 'B.SQL', '.hidden.sql', 'a.sql~', 'a.txt'].map(isRuleFile)).toEqual([true, true, false, false, false]);
  });
});
