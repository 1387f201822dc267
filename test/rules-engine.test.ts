/**
 * The rule engine over a real rules folder: start positions (latest by
 * default, earliest on request), reload on edit through the folder watcher,
 * broken edits reported as file:line:col while the old rule keeps running,
 * fresh state on an incompatible change, and idle close on (fake) wall time.
 */
import { mkdtemp, rename, rm, unlink, writeFile as writeFileNow } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LogStoreApi, Logger, Timers } from '../log-store/index.ts';
import { createRuleEngine, type RuleEngine } from '../rules/rule-engine.ts';
import { readTopic, silentLogger } from './support/rules-golden.ts';
import { openTestLog } from './support/rules-log.ts';

/** Writes a rule file the way editors save: temp file, then rename (the watcher never sees a half-written file). */
async function writeFile(path: string, text: string): Promise<void> {
  await writeFileNow(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

let dir: string;
let log: LogStoreApi;
let engine: RuleEngine | null;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-engine-'));
  log = await openTestLog(join(dir, 'log'));
  await log.createTopic('widgets', { partitions: 1 });
  engine = null;
});
afterEach(async () => {
  await engine?.stop();
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; ; i++) {
    if (await cond()) return;
    if (i > 3000) throw new Error(`condition never held: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let seq = 0;
async function produce(...readings: Array<Record<string, unknown>>): Promise<void> {
  await log.appendBatch(
    'widgets',
    readings.map((r) => ({ key: String(r.sensor_id), value: JSON.stringify(r), timestamp: (r.ts as number | undefined) ?? 1_000 + seq++ })),
  );
}

const realTimers: Timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

function capture(): { logger: Logger; lines: Array<{ level: string; msg: string; obj: object }> } {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, msg: msg ?? '', obj });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

function makeEngine(rulesDir: string, over: Partial<Parameters<typeof createRuleEngine>[0]> = {}): RuleEngine {
  engine = createRuleEngine({
    log,
    rulesDir,
    stateDir: join(dir, 'state'),
    clock: { now: () => Date.now() },
    timers: realTimers,
    logger: silentLogger,
    idleCloseMs: 0,
    debounceMs: 20,
    ...over,
  });
  return engine;
}

async function count(topic: string): Promise<number> {
  return log.hasTopic(topic) ? (await readTopic(log, topic)).length : 0;
}

describe('rule engine', () => {
  it('a new rule starts at the end of its input unless its file says earliest', async () => {
    const rules = join(dir, 'rules');
    await mkdtempLike(rules);
    await writeFile(join(rules, 'a.sql'), 'CREATE STREAM from_end AS SELECT * FROM widgets;\n');
    await writeFile(join(rules, 'b.sql'), "SET 'auto.offset.reset'='earliest';\nCREATE STREAM from_start AS SELECT * FROM widgets;\n");
    await produce({ sensor_id: 's1' }, { sensor_id: 's2' }, { sensor_id: 's3' });
    await makeEngine(rules, { watch: false }).start();
    await until(async () => (await count('from_start')) === 3, 'from_start caught up');
    await produce({ sensor_id: 's4' });
    await until(async () => (await count('from_start')) === 4 && (await count('from_end')) === 1, 'both saw s4');
    expect((await readTopic(log, 'from_end')).map((r) => r.key)).toEqual(['s4']);
    expect(engine!.status().rules.map((r) => [r.name, r.state])).toEqual([
      ['from_end', 'running'],
      ['from_start', 'running'],
    ]);
  });

  it('a rule whose input topic does not exist yet waits for it', async () => {
    const rules = join(dir, 'rules');
    await mkdtempLike(rules);
    await writeFile(join(rules, 'g.sql'), "SET 'auto.offset.reset'='earliest';\nCREATE STREAM gadgets_copy AS SELECT * FROM gadgets;\n");
    await makeEngine(rules, { watch: false }).start();
    expect(engine!.status().rules.map((r) => [r.name, r.state])).toEqual([['gadgets_copy', 'idle']]);
    await log.createTopic('gadgets', { partitions: 1 });
    await log.appendBatch('gadgets', [{ key: 'g1', value: '{"x":1}', timestamp: 1 }]);
    await until(async () => (await count('gadgets_copy')) === 1, 'copied once the topic exists');
  });

  it('reloads an edited file without restarting; a broken edit is reported file:line:col and the old rule keeps running', async () => {
    const rules = join(dir, 'rules');
    await mkdtempLike(rules);
    const file = join(rules, 'sel.sql');
    const rule = (colour: string) => `SET 'auto.offset.reset'='earliest';\nCREATE STREAM widgets_sel AS\n  SELECT * FROM widgets WHERE colour = '${colour}';\n`;
    await writeFile(file, rule('RED'));
    const cap = capture();
    await makeEngine(rules, { logger: cap.logger }).start();
    await produce({ sensor_id: 'r1', colour: 'RED' }, { sensor_id: 'b1', colour: 'BLUE' });
    await until(async () => (await count('widgets_sel')) === 1, 'first red');

    await writeFile(file, rule('BLUE'));
    await until(() => cap.lines.some((l) => l.msg === 'rule definition changed: restarting it'), 'reloaded');
    await until(() => engine!.status().rules.some((r) => r.state === 'running'), 'running again');
    await produce({ sensor_id: 'r2', colour: 'RED' }, { sensor_id: 'b2', colour: 'BLUE' });
    await until(async () => (await count('widgets_sel')) === 2, 'blue after reload');
    expect((await readTopic(log, 'widgets_sel')).map((r) => r.key)).toEqual(['r1', 'b2']);

    await writeFile(file, `SET 'auto.offset.reset'='earliest';\nCREATE STREAM widgets_sel AS\n  SELECT * FROM widgets WHERE colour = 'BLUE' GROUP;\n`);
    await until(() => engine!.status().problems.length > 0, 'problem reported');
    expect(engine!.status().problems).toEqual([`${file}:3:52: expected BY but found ';'`]);
    expect(cap.lines.some((l) => l.level === 'error' && l.msg === `${file}:3:52: expected BY but found ';'`)).toBe(true);
    await produce({ sensor_id: 'r3', colour: 'RED' }, { sensor_id: 'b3', colour: 'BLUE' });
    await until(async () => (await count('widgets_sel')) === 3, 'old definition still running');
    expect((await readTopic(log, 'widgets_sel')).map((r) => r.key)).toEqual(['r1', 'b2', 'b3']);

    // fixing the file clears the problem
    await writeFile(file, rule('RED'));
    await until(() => engine!.status().problems.length === 0, 'problem cleared');
    // deleting the file stops its rule
    await unlink(file);
    await until(() => engine!.status().rules.length === 0, 'rule stopped with its file gone');
  });

  it('a rule moved to another file runs from there once the old file is gone', async () => {
    const rules = join(dir, 'rules');
    await mkdtempLike(rules);
    const stmt = "SET 'auto.offset.reset'='earliest';\nCREATE STREAM moved AS SELECT * FROM widgets;\n";
    await writeFile(join(rules, 'a.sql'), stmt);
    await makeEngine(rules).start();
    await writeFile(join(rules, 'b.sql'), stmt);
    await until(() => engine!.status().problems.some((p) => p.startsWith(`${join(rules, 'b.sql')}:2:15: `)), 'duplicate reported');
    await unlink(join(rules, 'a.sql'));
    await until(() => engine!.status().problems.length === 0 && engine!.status().rules.some((r) => r.file === join(rules, 'b.sql')), 'running from b.sql');
    await produce({ sensor_id: 'm1' });
    await until(async () => (await count('moved')) === 1, 'still copying');
  });

  it('an incompatible change (GROUP BY) starts fresh state and says so; a compatible one keeps the state', async () => {
    const rules = join(dir, 'rules');
    await mkdtempLike(rules);
    const file = join(rules, 't.sql');
    const table = (by: string, having: string) =>
      `SET 'auto.offset.reset'='earliest';\nCREATE TABLE counts AS SELECT ${by}, COUNT(*) AS n FROM widgets GROUP BY ${by} ${having};\n`;
    await writeFile(file, table('line', ''));
    const cap = capture();
    makeEngine(rules, { logger: cap.logger, watch: false });
    await engine!.start();
    await produce({ sensor_id: 'a', line: 'w01' }, { sensor_id: 'b', line: 'w01' });
    await until(async () => (await count('counts')) === 2, 'two changes');

    // compatible: HAVING only → state kept, counting continues at 3
    await writeFile(file, table('line', 'HAVING n > 0'));
    await engine!.reload(file);
    await produce({ sensor_id: 'c', line: 'w01' });
    await until(async () => (await count('counts')) === 3, 'third change');
    expect((await readTopic(log, 'counts')).map((r) => r.value)).toEqual([
      { line: 'w01', n: 1 },
      { line: 'w01', n: 2 },
      { line: 'w01', n: 3 },
    ]);
    expect(cap.lines.some((l) => l.msg.includes('starting fresh state'))).toBe(false);

    // incompatible: GROUP BY changed → fresh state, from the beginning (earliest)
    await writeFile(file, table('sensor_id', ''));
    await engine!.reload(file);
    await until(async () => (await count('counts')) === 6, 'recounted per sensor');
    expect(cap.lines.some((l) => l.level === 'warn' && l.msg.includes('starting fresh state'))).toBe(true);
    expect((await readTopic(log, 'counts')).slice(3).map((r) => r.value)).toEqual([
      { sensor_id: 'a', n: 1 },
      { sensor_id: 'b', n: 1 },
      { sensor_id: 'c', n: 1 },
    ]);
  });

  it('closes windows after idle time without input (fake wall clock), emitting EMIT FINAL rows', async () => {
    const rules = join(dir, 'rules');
    await mkdtempLike(rules);
    await writeFile(
      join(rules, 'w.sql'),
      "SET 'auto.offset.reset'='earliest';\nCREATE TABLE per_min AS SELECT sensor_id, COUNT(*) AS n FROM widgets WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY sensor_id EMIT FINAL;\n",
    );
    const fake = manualTimers();
    makeEngine(rules, { timers: fake.timers, idleCloseMs: 30_000, watch: false });
    await engine!.start();
    await produce({ sensor_id: 'a', ts: 1_000 }, { sensor_id: 'a', ts: 2_000 }, { sensor_id: 'b', ts: 3_000 });
    await until(() => engine!.status().rules[0]?.recordsIn === 3, 'records read');
    // the runner arms its idle timer after the batch: advancing before that would arm it later
    await until(() => fake.dueTimes().includes(30_000), 'idle timer armed');
    expect(await count('per_min')).toBe(0);
    fake.advance(29_999);
    // nothing due yet; the rule is idle-waiting, so a short real wait would show a premature close
    await new Promise((r) => setTimeout(r, 50));
    expect(await count('per_min')).toBe(0);
    fake.advance(1);
    await until(async () => (await count('per_min')) === 2, 'idle close emitted');
    expect((await readTopic(log, 'per_min')).map((r) => [r.key, r.value])).toEqual([
      ['a@0', { sensor_id: 'a', n: 2 }],
      ['b@0', { sensor_id: 'b', n: 1 }],
    ]);
    // a reading for the closed window afterwards is late, not a second final row
    await produce({ sensor_id: 'a', ts: 4_000 });
    await until(async () => (await count('per_min_late')) === 1, 'late after idle close');
    expect(await count('per_min')).toBe(2);
  });
});

async function mkdtempLike(path: string): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path, { recursive: true });
}

/** Timers that fire only when the test advances them. */
function manualTimers(): { timers: Timers; advance(ms: number): void; dueTimes(): number[] } {
  let now = 0;
  let id = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  return {
    timers: {
      setTimeout(fn, ms) {
        pending.set(++id, { at: now + ms, fn });
        return id;
      },
      clearTimeout(h) {
        pending.delete(h as number);
      },
    },
    dueTimes() {
      return [...pending.values()].map((t) => t.at);
    },
    advance(ms) {
      now += ms;
      for (const [k, t] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          pending.delete(k);
          t.fn();
        }
      }
    },
  };
}
