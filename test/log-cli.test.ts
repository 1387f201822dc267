/**
 * `millstream log ...` driven as an operator would: the real command in
 * child processes, over a real data directory.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseReadingLine, PRODUCE_MAX_LINE_CHARS, recordToJson } from '../agent/commands/log.ts';
import { kafkaPartition } from '../log-store/index.ts';
import type { TopicDescription } from '../log-store/index.ts';
import { collectLines, createCliRunner, parseJsonLines } from './support/cli.ts';

interface TailedRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: unknown;
  headers: Record<string, string>;
}

const cli = createCliRunner();
let dir: string;
let dataDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-log-cli-'));
  dataDir = join(dir, 'data');
});

afterEach(async () => {
  await cli.killAll();
  await rm(dir, { recursive: true, force: true });
});

const log = (...args: string[]) => cli.run(['log', ...args, '--data-dir', dataDir]);

function reading(i: number): Record<string, unknown> {
  return {
    reading_ts: new Date(Date.UTC(2020, 1, 14, 12, 0, 0) + i * 1000).toISOString(),
    sensor_id: `aa-${100 + (i % 7)}`,
    production_line: `w0${1 + (i % 3)}`,
    widget_type: 'acme94',
    colour: i % 2 ? 'RED' : 'BLUE',
    temp_celcius: 20 + (i % 5),
    widget_weight_g: 100 + i,
    seq: i,
  };
}

describe('parseReadingLine', () => {
  const opts = { keyField: 'sensor_id', timestampField: 'reading_ts' };
  it.each([
    ['{"sensor_id":"aa-101","reading_ts":"2020-02-14T12:19:27Z"}', { key: 'aa-101', timestamp: Date.UTC(2020, 1, 14, 12, 19, 27) }],
    ['{"sensor_id":"aa-101","reading_ts":1581682767000}', { key: 'aa-101', timestamp: 1581682767000 }],
    ['{"sensor_id":"aa-101","reading_ts":"1581682767000"}', { key: 'aa-101', timestamp: 1581682767000 }],
    ['{"sensor_id":42}', { key: '42', timestamp: undefined }],
    ['{"colour":"RED"}', { key: null, timestamp: undefined }],
    ['  {"sensor_id":"x"}\r', { key: 'x', timestamp: undefined }],
  ])('%s → record', (line, want) => {
    const r = parseReadingLine(line, opts);
    expect(typeof r).toBe('object');
    if (typeof r === 'string') return;
    expect(r.key).toBe(want.key);
    expect(r.timestamp).toBe(want.timestamp);
    expect(r.value).toBe(line.trim());
  });
  it.each([
    ['{"sensor_id":"aa-101"', /not valid JSON/],
    ['[1,2]', /not a JSON object/],
    ['42', /not a JSON object/],
    ['{"reading_ts":"yesterday"}', /reading_ts is neither/],
    ['{"reading_ts":-5}', /reading_ts is neither/],
    ['{"sensor_id":{"a":1}}', /key field sensor_id/],
  ])('%s → reason', (line, reason) => {
    const r = parseReadingLine(line, opts);
    expect(r).toMatch(reason);
  });
});

describe('recordToJson (tail output)', () => {
  const base = { topic: 't', partition: 2, offset: 7, timestamp: 1581682767000, key: 'k', headers: { source: 'mqtt' } };
  it.each([
    ['{"colour":"RED","n":1}', { colour: 'RED', n: 1 }],
    ['42', 42],
    ['plain text, not JSON', 'plain text, not JSON'],
    ['{"broken":', '{"broken":'],
  ])('value %s', (stored, printed) => {
    const line = recordToJson({ ...base, value: Buffer.from(stored) });
    expect(JSON.parse(line)).toEqual({ ...base, value: printed });
    expect(Object.keys(JSON.parse(line) as object)).toEqual(['topic', 'partition', 'offset', 'timestamp', 'key', 'value', 'headers']);
  });
});

describe('millstream log (child processes)', () => {
  it('creates a topic, produces JSON lines with keys and timestamps, tails and describes them', async () => {
    let r = await log('create', 'widgets', '--partitions', '3');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/created topic widgets: partitions=3/);

    r = await log('create', 'widgets', '--partitions', '5');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^millstream: LOG_TOPIC_EXISTS: .*widgets/);

    // 3000 readings (several stdin chunks, so several batches) with three bad lines and a blank one.
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify(reading(i)));
    lines.splice(10, 0, '{"sensor_id":"aa-1", broken');
    lines.splice(1500, 0, '');
    lines.splice(2000, 0, '{"sensor_id":"aa-2","reading_ts":"not a time"}');
    lines.splice(2500, 0, '"just a string"');
    r = await cli.run(['log', 'produce', 'widgets', '--key-field', 'sensor_id', '--report-acks', '--data-dir', dataDir], {
      input: lines.join('\n') + '\n',
    });
    expect(r.code).toBe(1);
    const skippedLines = [...r.stderr.matchAll(/line (\d+) skipped/g)].map((m) => Number(m[1]));
    expect(skippedLines).toEqual([11, 2001, 2501]);
    expect(r.stderr).toMatch(/line 2001 skipped: reading_ts is neither/);
    const acks = [...r.stdout.matchAll(/^acked (\d+)$/gm)].map((m) => Number(m[1]));
    expect(acks.length).toBeGreaterThan(1);
    expect(acks).toEqual([...acks].sort((a, b) => a - b));
    expect(acks.at(-1)).toBe(3000);

    r = await log('tail', 'widgets', '--from-beginning');
    expect(r.code).toBe(0);
    const tailed = parseJsonLines<TailedRecord>(r.stdout);
    expect(tailed).toHaveLength(3000);
    const bySeq = new Map(tailed.map((t) => [(t.value as { seq: number }).seq, t]));
    expect(bySeq.size).toBe(3000);
    const nextOffset = [0, 0, 0];
    for (let i = 0; i < 3000; i++) {
      const t = bySeq.get(i)!;
      const want = reading(i);
      expect(t.topic).toBe('widgets');
      expect(t.value).toEqual(want);
      expect(t.key).toBe(want.sensor_id);
      expect(t.partition).toBe(kafkaPartition(want.sensor_id as string, 3));
      expect(t.timestamp).toBe(Date.parse(want.reading_ts as string));
      expect(t.headers).toEqual({});
      // Per partition, input order is offset order, dense from 0.
      expect(t.offset).toBe(nextOffset[t.partition]!++);
    }

    r = await log('describe', 'widgets', '--json');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as TopicDescription;
    expect(d.config.partitions).toBe(3);
    expect(d.partitionsInfo.map((p) => [p.earliestOffset, p.endOffset])).toEqual(nextOffset.map((n) => [0, n]));
    for (const p of d.partitionsInfo) {
      expect(p.segments).toBeGreaterThanOrEqual(1);
      expect(p.bytes).toBeGreaterThan(p.endOffset * 100);
    }

    // A window of one partition, and a time lookup.
    const p1 = tailed.filter((t) => t.partition === 1);
    r = await log('tail', 'widgets', '--partition', '1', '--offset', '5', '--max', '3');
    expect(r.code).toBe(0);
    expect(parseJsonLines<TailedRecord>(r.stdout)).toEqual(p1.slice(5, 8));

    const since = reading(2900).reading_ts as string;
    r = await log('tail', 'widgets', '--since', since);
    expect(r.code).toBe(0);
    const recent = parseJsonLines<TailedRecord>(r.stdout);
    expect(recent.map((t) => (t.value as { seq: number }).seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => 2900 + i));

    r = await log('topics');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^widgets\s+partitions=3 /);
  });

  it('reads (describe, verify, tail --follow) while a producer owns the data directory, and refuses a second writer', async () => {
    expect((await log('create', 'lines', '--partitions', '2')).code).toBe(0);
    const producer = cli.spawn(['log', 'produce', 'lines', '--key-field', 'sensor_id', '--report-acks', '--data-dir', dataDir]);
    const acks = collectLines(producer.stdout);
    const send = (from: number, to: number): void => {
      producer.stdin.write(Array.from({ length: to - from }, (_, i) => `${JSON.stringify(reading(from + i))}\n`).join(''));
    };
    send(0, 10);
    await acks.until((l) => l.includes('acked 10'));

    const tail = cli.spawn(['log', 'tail', 'lines', '--from-beginning', '--follow', '--max', '15', '--data-dir', dataDir]);
    const tailed = collectLines(tail.stdout);
    const tailExit = new Promise<number | null>((resolve) => tail.once('close', (code) => resolve(code)));
    await tailed.until((l) => l.length >= 10);

    let r = await log('describe', 'lines', '--json');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as TopicDescription;
    expect(d.partitionsInfo.reduce((s, p) => s + p.endOffset, 0)).toBe(10);

    r = await log('verify');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/10 records: no damage/);

    r = await log('create', 'other', '--partitions', '1');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^millstream: LOG_LOCKED: .*in use by process \d+/);

    // Records produced now reach the follower in the other process.
    send(10, 15);
    await acks.until((l) => l.includes('acked 15'));
    expect(await tailExit).toBe(0);
    const seqs = tailed.lines.filter((l) => l.trim()).map((l) => ((JSON.parse(l) as TailedRecord).value as { seq: number }).seq);
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 15 }, (_, i) => i));

    producer.stdin.end();
    const code = await new Promise<number | null>((resolve) => producer.once('close', (c) => resolve(c)));
    expect(code).toBe(0);
  });

  it('verify passes on a sound log and exits non-zero naming the file when a closed segment is damaged', async () => {
    // ~200 KB of input reaches produce in several stdin chunks, so several batches and segments.
    expect((await log('create', 'small', '--partitions', '1', '--segment-bytes', '16384')).code).toBe(0);
    const input = Array.from({ length: 1000 }, (_, i) => JSON.stringify(reading(i))).join('\n');
    expect((await cli.run(['log', 'produce', 'small', '--data-dir', dataDir], { input })).code).toBe(0);

    let r = await log('verify');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/1000 records: no damage/);

    const partDir = join(dataDir, 'small-0');
    const logs = (await readdir(partDir)).filter((f) => f.endsWith('.log')).sort();
    expect(logs.length).toBeGreaterThanOrEqual(2);
    const victim = join(partDir, logs[0]!);
    const bytes = await readFile(victim);
    const at = Math.floor((await stat(victim)).size / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    await writeFile(victim, bytes);

    r = await log('verify');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(logs[0]);
    expect(r.stdout).toMatch(/[1-9]\d* problem/);
  });

  it('produce skips an overlong line (no newline in sight) with its line number instead of holding it in memory', async () => {
    expect((await log('create', 'long')).code).toBe(0);
    const input = `${JSON.stringify({ sensor_id: 'a1', n: 1 })}\n{"x":"${'y'.repeat(3 * PRODUCE_MAX_LINE_CHARS)}"}\n${JSON.stringify({ sensor_id: 'b2', n: 2 })}\n`;
    const r = await cli.run(['log', 'produce', 'long', '--key-field', 'sensor_id', '--data-dir', dataDir], { input });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`line 2 skipped: longer than ${PRODUCE_MAX_LINE_CHARS} characters`);
    const tail = parseJsonLines<{ key: string }>((await log('tail', 'long', '--from-beginning')).stdout);
    expect(tail.map((t) => t.key)).toEqual(['a1', 'b2']);
  });

  it('takes the data directory from the agent config with --config, unless --data-dir is given', async () => {
    const cfgDir = join(dir, 'cfg');
    mkdirSync(cfgDir, { recursive: true });
    writeFileSync(join(cfgDir, 'millstream.yaml'), 'gateway: { id: g }\ndataDir: agent-data\n');
    const created = await cli.run(['log', 'create', 'fromcfg', '--config', join(cfgDir, 'millstream.yaml')]);
    expect(created.code).toBe(0);
    expect(existsSync(join(cfgDir, 'agent-data', 'fromcfg-0'))).toBe(true);
    const listed = await cli.run(['log', 'topics', '-c', join(cfgDir, 'millstream.yaml')]);
    expect(listed.stdout).toMatch(/^fromcfg /m);
    const explicit = await cli.run(['log', 'topics', '-c', join(cfgDir, 'millstream.yaml'), '--data-dir', dataDir]);
    expect(explicit.stdout).not.toMatch(/^fromcfg /m);
  });

  it('names the topic or directory when it cannot do what was asked', async () => {
    let r = await log('tail', 'nope', '--from-beginning');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^millstream: .*no data directory at .*data/);

    expect((await log('create', 'widgets')).code).toBe(0);
    r = await cli.run(['log', 'produce', 'nope', '--data-dir', dataDir], { input: '{"a":1}\n' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^millstream: LOG_TOPIC_NOT_FOUND: topic nope /);

    // Below the free-space floor nothing is appended and the error says why.
    r = await cli.run(['log', 'produce', 'widgets', '--min-free-bytes', String(2 ** 52), '--report-acks', '--data-dir', dataDir], {
      input: '{"a":1}\n{"a":2}\n',
    });
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toMatch(/acked/);
    expect(r.stderr).toMatch(/^millstream: LOG_DISK_FULL: .*free disk space/m);
    r = await log('describe', 'widgets', '--json');
    expect((JSON.parse(r.stdout) as TopicDescription).partitionsInfo[0]!.endOffset).toBe(0);
  });
});
