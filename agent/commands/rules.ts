/**
 * `millstream rules ...`: an operator's tools for rule files.
 *
 *   check <folder>                 validate every *.sql file; prints `file:line:col: message`
 *                                  per problem and exits 1 when there is any
 *   test <file> --input <jsonl>    run the file's rules over recorded readings in a temporary
 *        [--expect <jsonl>]        log (the live log is never touched); print the output rows as
 *                                  JSON lines, or compare them with the expected file (exit 1 on
 *                                  any difference, naming the first differing line)
 *
 * `rules test` details: the file is planned within its folder, so sources
 * declared in the other files apply (as live). Each input line is one reading (a JSON object). It
 * is appended to every source topic the file's rules read (topics the file's
 * own rules write are left to those rules), keyed by its `sensor_id` and
 * stamped with its `reading_ts` (ISO-8601 or epoch ms) or else its
 * `timestamp` field, else 0. Rules start from the earliest reading whatever
 * their `auto.offset.reset`, and at the end of the input every open window
 * closes, as an idle close would, so EMIT FINAL rows appear. Each output
 * line is `{"topic": ..., "key": ..., "value": ...}`, output topics in rule
 * order, then each rule's `_late` topic.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import { openLogStore } from '../../log-store/index.ts';
import type { LogStoreApi, Logger } from '../../log-store/index.ts';
import { formatDiagnostic } from '../../rules/plan.ts';
import { checkRules, loadRuleFile, loadRuleFolder } from '../../rules/rule-file.ts';
import { createRuleRunner } from '../../rules/rule-runner.ts';

type Write = (text: string) => void;

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** `rules check`: exit code 0 when every file is valid, else 1 after printing each problem. */
export async function rulesCheck(folder: string, out: Write, err: Write): Promise<number> {
  const diagnostics = await checkRules(folder);
  for (const d of diagnostics) err(`${formatDiagnostic(d)}\n`);
  if (diagnostics.length) {
    err(`millstream: ${diagnostics.length} problem(s) in ${folder}\n`);
    return 1;
  }
  out(`ok: ${folder}\n`);
  return 0;
}

function parseJsonLines(text: string, file: string): unknown[] {
  const rows: unknown[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      rows.push(JSON.parse(line));
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON: ${(e as Error).message}`);
    }
  });
  return rows;
}

function readingTimestamp(r: Record<string, unknown>): number {
  const ts = r.reading_ts ?? r.timestamp;
  if (typeof ts === 'number' && Number.isFinite(ts)) return ts;
  if (typeof ts === 'string') {
    const n = /^\d+$/.test(ts) ? Number(ts) : Date.parse(ts);
    if (Number.isFinite(n)) return n;
  }
  return 0;
}

async function readAll(log: LogStoreApi, topic: string): Promise<Array<{ topic: string; key: string | null; value: unknown }>> {
  const rows: Array<{ topic: string; key: string | null; value: unknown }> = [];
  for (let p = 0; p < log.describe(topic).partitionsInfo.length; p++) {
    let off = log.earliestOffset(topic, p);
    const end = log.endOffset(topic, p);
    while (off < end) {
      const res = await log.read(topic, p, off, { maxRecords: 10_000 });
      for (const r of res.records) rows.push({ topic, key: r.key, value: JSON.parse(r.value.toString('utf8')) });
      off = res.nextOffset;
    }
  }
  return rows;
}

/** Runs the rules of `file` over the readings; returns the output rows. Throws on a broken file (message lists the problems). */
export async function runRulesOverReadings(file: string, readings: unknown[]): Promise<Array<{ topic: string; key: string | null; value: unknown }>> {
  // Planned within its folder, so sources declared in the other files (columns, TIMESTAMP) apply as they do live.
  const folder = await loadRuleFolder(dirname(file)).catch(() => null);
  const plan = folder?.find((f) => resolve(f.file) === resolve(file)) ?? (await loadRuleFile(file));
  if (plan.diagnostics.length) throw new Error(plan.diagnostics.map(formatDiagnostic).join('\n'));
  if (!plan.rules.length) throw new Error(`${file}: no CREATE STREAM/TABLE ... AS SELECT rule to test`);
  const dir = await mkdtemp(join(tmpdir(), 'millstream-rules-test-'));
  const log = await openLogStore({ dataDir: join(dir, 'log'), minFreeBytes: 0, retentionCheckIntervalMs: 0, topicDefaults: { fsync: 'never' } });
  try {
    const outputs = new Set(plan.rules.map((r) => r.outputTopic));
    const inputs = [...new Set(plan.rules.map((r) => r.source.topic))].filter((t) => !outputs.has(t));
    const records = readings.map((r, i) => {
      if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new Error(`input line ${i + 1}: a reading must be a JSON object`);
      const o = r as Record<string, unknown>;
      return { key: typeof o.sensor_id === 'string' ? o.sensor_id : null, value: JSON.stringify(o), timestamp: readingTimestamp(o), partition: 0 };
    });
    for (const t of inputs) {
      await log.createTopic(t, { partitions: 1 });
      if (records.length) await log.appendBatch(t, records);
    }
    const rows: Array<{ topic: string; key: string | null; value: unknown }> = [];
    const late: Array<{ topic: string; key: string | null; value: unknown }> = [];
    for (const rule of plan.rules) {
      const runner = createRuleRunner({
        plan: { ...rule, offsetReset: 'earliest' },
        log,
        stateDir: dir,
        clock: { now: () => Date.now() },
        timers: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
        logger: quiet,
        idleCloseMs: 0,
        // A scratch log in a temporary folder: no fsync.
        durable: false,
      });
      if (!log.hasTopic(rule.source.topic)) await log.createTopic(rule.source.topic, { partitions: 1 });
      await runner.drain();
      await runner.closeAllWindows();
      await runner.stop();
      rows.push(...(await readAll(log, rule.outputTopic)));
      late.push(...(await readAll(log, `${rule.outputTopic}_late`)));
    }
    return [...rows, ...late];
  } finally {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `rules test`: exit code 0 (printed, or matched the expected file) or 1 (mismatch). */
export async function rulesTest(file: string, opts: { input: string; expect?: string }, out: Write, err: Write): Promise<number> {
  const readings = parseJsonLines(await readFile(opts.input, 'utf8'), opts.input);
  const rows = await runRulesOverReadings(file, readings);
  if (!opts.expect) {
    for (const r of rows) out(`${JSON.stringify(r)}\n`);
    return 0;
  }
  const expected = parseJsonLines(await readFile(opts.expect, 'utf8'), opts.expect);
  for (let i = 0; i < Math.max(rows.length, expected.length); i++) {
    if (!isDeepStrictEqual(rows[i], expected[i])) {
      err(`${opts.expect}: row ${i + 1} differs\n  expected: ${i < expected.length ? JSON.stringify(expected[i]) : '(no more rows)'}\n  actual:   ${i < rows.length ? JSON.stringify(rows[i]) : '(no more rows)'}\n`);
      err(`millstream: ${file}: output does not match ${opts.expect} (${rows.length} rows, expected ${expected.length})\n`);
      return 1;
    }
  }
  out(`ok: ${rows.length} rows match ${opts.expect}\n`);
  return 0;
}

export function register(program: Command): void {
  const rules = program.command('rules').description('check and try SQL rule files');
  rules
    .command('check')
    .description('validate every *.sql rule file of a folder (exit 1 with file:line:col messages)')
    .argument('<folder>', 'rules folder')
    .action(async (folder: string) => {
      process.exitCode = await rulesCheck(folder, (t) => process.stdout.write(t), (t) => process.stderr.write(t));
    });
  rules
    .command('test')
    .description('run a rule file over recorded readings (JSON lines) without touching the live log')
    .argument('<file>', 'rule file (.sql)')
    .requiredOption('--input <file>', 'readings, one JSON object per line')
    .option('--expect <file>', 'expected output rows (JSON lines); exit 1 on any difference')
    .action(async (file: string, opts: { input: string; expect?: string }) => {
      process.exitCode = await rulesTest(file, opts, (t) => process.stdout.write(t), (t) => process.stderr.write(t));
    });
}
