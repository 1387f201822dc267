/**
 * Runs rule text over readings through the real runtime (planner → runner →
 * log → SQLite checkpoint) and returns what the rules wrote: the golden
 * tables of test/rules-golden.test.ts compare these rows exactly.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogStoreApi, Logger } from '../../log-store/index.ts';
import { planRuleText } from '../../rules/rule-file.ts';
import { createRuleRunner } from '../../rules/rule-runner.ts';
import { openTestLog } from './rules-log.ts';

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface OutRow {
  key: string | null;
  value: unknown;
  timestamp: number;
}

export interface GoldenResult {
  /** Output topic → rows in offset order (partition 0, then 1, ...). */
  out: Record<string, OutRow[]>;
}

/** A reading: the JSON value (a string: raw payload text); `_ts` (removed from the value) sets the record timestamp, else its index × 1000. */
export type Reading = Record<string, unknown> | string;

export async function readTopic(log: LogStoreApi, topic: string): Promise<OutRow[]> {
  const rows: OutRow[] = [];
  const parts = log.describe(topic).partitionsInfo.length;
  for (let p = 0; p < parts; p++) {
    let off = log.earliestOffset(topic, p);
    const end = log.endOffset(topic, p);
    while (off < end) {
      const res = await log.read(topic, p, off, { maxRecords: 10_000 });
      for (const r of res.records) rows.push({ key: r.key, value: JSON.parse(r.value.toString('utf8')), timestamp: r.timestamp });
      off = res.nextOffset;
    }
  }
  return rows;
}

/**
 * Plans `sql` (one file), appends `readings` to topic `widgets` (keyed by
 * sensor_id), runs every rule until it has read everything, then, with
 * `closeAtEnd`, closes all open windows as an idle close would.
 */
export async function runGolden(sql: string, readings: Reading[], opts: { closeAtEnd?: boolean; partitions?: number } = {}): Promise<GoldenResult> {
  const dir = await mkdtemp(join(tmpdir(), 'millstream-golden-'));
  const log = await openTestLog(join(dir, 'log'));
  try {
    const plan = planRuleText(sql, 'golden.sql');
    if (plan.diagnostics.length) throw new Error(plan.diagnostics.map((d) => `${d.line}:${d.col}: ${d.message}`).join('\n'));
    await log.createTopic('widgets', { partitions: opts.partitions ?? 1 });
    await log.appendBatch(
      'widgets',
      readings.map((r, i) => {
        if (typeof r === 'string') return { key: null, value: r, timestamp: i * 1000 };
        const { _ts, ...value } = r;
        return { key: typeof value.sensor_id === 'string' ? value.sensor_id : null, value: JSON.stringify(value), timestamp: typeof _ts === 'number' ? _ts : i * 1000 };
      }),
    );
    const out: Record<string, OutRow[]> = {};
    for (const rule of plan.rules) {
      const runner = createRuleRunner({
        plan: rule,
        log,
        stateDir: dir,
        clock: { now: () => 0 },
        timers: { setTimeout: () => 0, clearTimeout: () => {} },
        logger: silentLogger,
        idleCloseMs: 0,
      });
      await runner.drain();
      if (opts.closeAtEnd) await runner.closeAllWindows();
      await runner.stop();
      out[rule.outputTopic] = await readTopic(log, rule.outputTopic);
      const late = await readTopic(log, `${rule.outputTopic}_late`);
      if (late.length) out[`${rule.outputTopic}_late`] = late;
    }
    return { out };
  } finally {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
}
