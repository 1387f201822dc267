/**
 * The runner's recovery path in-process: appends that land but whose batch
 * is never checkpointed (the process "dies" right after the output is
 * durable, or between the output and the late append) must not duplicate
 * or lose output once a new runner resumes from the checkpoint. The
 * SIGKILL version with real processes is test/rules-crash.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogStoreApi } from '../log-store/index.ts';
import { readTopic, silentLogger } from '../test/support/rules-golden.ts';
import { openTestLog } from '../test/support/rules-log.ts';
import { planRuleText } from './rule-file.ts';
import { createRuleRunner } from './rule-runner.ts';

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

/** The log, except that its `failAt`-th appendBatch call appends and then throws, as if the process died right after. */
function crashingLog(inner: LogStoreApi, failAt: number): LogStoreApi {
  let calls = 0;
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'appendBatch') {
        return async (topic: string, records: Parameters<LogStoreApi['appendBatch']>[1]) => {
          const ack = await target.appendBatch(topic, records);
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

async function runToEnd(stateDir: string, failAt: number | null): Promise<number> {
  const plan = planRuleText(SQL, 'r.sql').rules[0]!;
  let crashes = 0;
  for (;;) {
    const runner = createRuleRunner({
      plan,
      log: failAt === null ? log : crashingLog(log, failAt),
      stateDir,
      clock: { now: () => 0 },
      timers: { setTimeout: () => 0, clearTimeout: () => {} },
      logger: silentLogger,
      idleCloseMs: 0,
      batchRecords: 13,
    });
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
    const other = await openTestLog(join(dir, 'log2'));
    const saved = log;
    log = other;
    try {
      await setup();
      // each runner dies right after its 3rd append (output or late): many interrupted batches
      const crashes = await runToEnd(join(dir, 'crashy'), 3);
      expect(crashes).toBeGreaterThan(5);
      expect(await readTopic(log, 'per_sensor')).toEqual(expected.out);
      expect(await readTopic(log, 'per_sensor_late')).toEqual(expected.late);
    } finally {
      log = saved;
      await other.close();
    }
  });
});
