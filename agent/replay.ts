/**
 * Replay: feed recorded readings through rules as if they were live, in a
 * sandbox, deterministically.
 *
 * - Input: a topic of a log (opened read-only: the live agent may own it)
 *   between two offsets or times, or a raw capture file decoded by the
 *   bridge's own decoders.
 * - The sandbox is a temporary log store and rule state: the live rules'
 *   state and positions are never touched.
 * - Order: each partition's records in event-time order (stable by offset).
 *   They enter the sandbox in steps of `stepMs` of event time across all
 *   partitions (a step is split after `maxStepRecords`), and every rule drains
 *   after each step: the rules see the data arrive as it did live. Steps
 *   depend only on the data, so the output is the same at every speed and on
 *   every run; speed only sets how long replay sleeps between steps
 *   (`1x`: real time, `10x`, `max`: no sleep).
 * - At the end every open window closes (as an idle close would), so EMIT
 *   FINAL rows appear.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replayCapture } from '../firmware-bridge/index.ts';
import { openLogStore, type LogRecord, type LogStoreApi, type Logger, type RecordInput } from '../log-store/index.ts';
import { formatDiagnostic, type DerivedPlan } from '../rules/plan.ts';
import { loadRuleFolder, loadRuleFile } from '../rules/rule-file.ts';
import { createRuleRunner, type RuleRunner } from '../rules/rule-runner.ts';
import { AgentError } from './errors.ts';
import { recordValue } from './record-value.ts';

/** A position in the input: an offset (per partition) or a time (ms since the epoch). */
export type ReplayBound = { offset: number } | { time: number };

export interface ReplayInputLog {
  kind: 'log';
  /** Data directory of the log store (opened read-only). */
  dataDir: string;
  topic: string;
  from?: ReplayBound;
  /** Exclusive. */
  to?: ReplayBound;
}

export interface ReplayInputCapture {
  kind: 'capture';
  file: string;
  /** Topic the decoded readings are replayed as (the rules' source topic). Default 'widgets'. */
  topic: string;
  /** Partitions of that topic in the sandbox (keys spread by Kafka's partitioner). Default 1. */
  partitions?: number;
  from?: { time: number };
  to?: { time: number };
  /** Extra decoders by source kind (Modbus register maps from the agent config). */
  decoders?: import('../firmware-bridge/index.ts').ReplayOptions['decoders'];
}

export interface ReplayOptions {
  input: ReplayInputLog | ReplayInputCapture;
  /** A rules folder or one .sql file. Without rules, the input itself is the output. */
  rules?: string;
  /** 'max' or a factor of real time (1 = 1x). Default 'max'. */
  speed: number | 'max';
  /** Event time per step, ms. Default 1000. */
  stepMs?: number;
  /** At most this many records per step. Default 50000. */
  maxStepRecords?: number;
  /** Called after each step. */
  onProgress?: (p: ReplayProgress) => void;
  logger?: Logger;
  /** Default: real sleep. */
  sleep?: (ms: number) => Promise<void>;
}

export interface ReplayProgress {
  done: number;
  total: number;
  /** Event time of the last record fed. */
  eventTime: number | null;
}

/** One output row: the rule's topic and the record, without broker-local headers. */
export interface ReplayRow {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: string | null;
  value: unknown;
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

interface InputRecord {
  partition: number;
  /** Offset in the input log (for a capture: the reading's position in the capture). */
  offset: number;
  record: RecordInput & { timestamp: number };
}

async function readLogInput(input: ReplayInputLog): Promise<{ partitions: number; records: InputRecord[][] }> {
  const live = await openLogStore({ dataDir: input.dataDir, readOnly: true, retentionCheckIntervalMs: 0, minFreeBytes: 0 });
  try {
    if (!live.hasTopic(input.topic)) {
      throw new AgentError('USAGE', `replay: no topic ${input.topic} in ${input.dataDir} (topics: ${live.topics().map((t) => t.name).join(', ') || 'none'})`);
    }
    const partitions = live.describe(input.topic).partitionsInfo.length;
    const out: InputRecord[][] = [];
    for (let p = 0; p < partitions; p++) {
      const earliest = live.earliestOffset(input.topic, p);
      const end = live.endOffset(input.topic, p);
      const bound = async (b: ReplayBound | undefined, dflt: number) =>
        b === undefined ? dflt : 'offset' in b ? Math.min(end, Math.max(earliest, b.offset)) : await live.offsetForTimestamp(input.topic, p, b.time);
      let offset = await bound(input.from, earliest);
      const stop = await bound(input.to, end);
      const list: InputRecord[] = [];
      while (offset < stop) {
        const res = await live.read(input.topic, p, offset, { maxRecords: 10_000 });
        if (res.records.length === 0) break;
        for (const r of res.records) {
          if (r.offset >= stop) break;
          if (input.to && 'time' in input.to && r.timestamp >= input.to.time) continue;
          list.push({ partition: p, offset: r.offset, record: { key: r.key, value: Buffer.from(r.value), timestamp: r.timestamp, headers: r.headers, partition: p } });
        }
        offset = res.nextOffset;
      }
      // Event-time order within the partition; stable, so equal times keep their offsets' order.
      list.sort((a, b) => a.record.timestamp - b.record.timestamp);
      out.push(list);
    }
    return { partitions, records: out };
  } finally {
    await live.close();
  }
}

async function readCaptureInput(input: ReplayInputCapture, sandbox: LogStoreApi): Promise<{ partitions: number; records: InputRecord[][]; deadLetters: number }> {
  const partitions = input.partitions ?? 1;
  const out: InputRecord[][] = Array.from({ length: partitions }, () => []);
  let deadLetters = 0;
  await sandbox.ensureTopic(input.topic, { partitions });
  for await (const o of replayCapture(input.file, { topic: input.topic, ...(input.decoders ? { decoders: input.decoders } : {}) })) {
    if (o.type !== 'reading') {
      if (o.type === 'dead-letter') deadLetters++;
      continue;
    }
    const r = o.reading;
    if (input.from && r.timestamp < input.from.time) continue;
    if (input.to && r.timestamp >= input.to.time) continue;
    const p = sandbox.partitionFor(input.topic, r.key);
    out[p]!.push({ partition: p, offset: out[p]!.length, record: { key: r.key, value: JSON.stringify(r.value), timestamp: r.timestamp, headers: r.headers, partition: p } });
  }
  for (const list of out) list.sort((a, b) => a.record.timestamp - b.record.timestamp);
  return { partitions, records: out, deadLetters };
}

/** Merges the partitions' event-time-ordered lists into data-determined steps. */
function* steps(lists: InputRecord[][], stepMs: number, maxStepRecords: number): Generator<InputRecord[]> {
  const idx = lists.map(() => 0);
  const next = (): InputRecord | undefined => {
    let best = -1;
    for (let p = 0; p < lists.length; p++) {
      const r = lists[p]![idx[p]!];
      if (r && (best < 0 || r.record.timestamp < lists[best]![idx[best]!]!.record.timestamp)) best = p;
    }
    if (best < 0) return undefined;
    return lists[best]![idx[best]!++];
  };
  let pending = next();
  while (pending) {
    const stepEnd = Math.floor(pending.record.timestamp / stepMs) * stepMs + stepMs;
    const step: InputRecord[] = [];
    while (pending && pending.record.timestamp < stepEnd && step.length < maxStepRecords) {
      step.push(pending);
      pending = next();
    }
    yield step;
  }
}

async function readTopic(log: LogStoreApi, topic: string): Promise<ReplayRow[]> {
  if (!log.hasTopic(topic)) return [];
  const rows: ReplayRow[] = [];
  const partitions = log.describe(topic).partitionsInfo.length;
  for (let p = 0; p < partitions; p++) {
    let off = log.earliestOffset(topic, p);
    const end = log.endOffset(topic, p);
    while (off < end) {
      const res = await log.read(topic, p, off, { maxRecords: 10_000 });
      for (const r of res.records) rows.push(toRow(r));
      off = res.nextOffset;
    }
  }
  return rows;
}

function toRow(r: LogRecord): ReplayRow {
  return { topic: r.topic, partition: r.partition, offset: r.offset, timestamp: r.timestamp, key: r.key, value: recordValue(r.value) };
}

export interface ReplayResult {
  /** Records fed in. */
  records: number;
  /** Rules run, in order. */
  rules: string[];
  /** Output rows: each rule's output topic, then its _late topic, in rule order (or the input, without rules). */
  rows: ReplayRow[];
  /** Capture input only: frames that went to dead letters while decoding. */
  deadLetters: number;
}

export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const logger = options.logger ?? quiet;
  const stepMs = options.stepMs ?? 1000;
  const maxStepRecords = options.maxStepRecords ?? 50_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let plans: DerivedPlan[] = [];
  if (options.rules) {
    const files = options.rules.endsWith('.sql') ? [await loadRuleFile(options.rules)] : await loadRuleFolder(options.rules);
    const problems = files.flatMap((f) => f.diagnostics);
    if (problems.length) throw new AgentError('USAGE', `replay: the rules have problems:\n${problems.map(formatDiagnostic).join('\n')}`);
    plans = files.flatMap((f) => f.rules);
  }
  const dir = await mkdtemp(join(tmpdir(), 'millstream-replay-'));
  const sandbox = await openLogStore({ dataDir: join(dir, 'log'), minFreeBytes: 0, retentionCheckIntervalMs: 0, topicDefaults: { fsync: 'never' } });
  const runners: RuleRunner[] = [];
  let eventClock = 0;
  try {
    const input =
      options.input.kind === 'log'
        ? { ...(await readLogInput(options.input)), deadLetters: 0 }
        : await readCaptureInput(options.input, sandbox);
    const topic = options.input.topic;
    await sandbox.ensureTopic(topic, { partitions: input.partitions });
    for (const plan of plans) {
      if (!sandbox.hasTopic(plan.source.topic)) await sandbox.ensureTopic(plan.source.topic, { partitions: 1 });
      runners.push(
        createRuleRunner({
          plan: { ...plan, offsetReset: 'earliest' },
          log: sandbox,
          stateDir: join(dir, 'state'),
          // The sandbox's clock is the replayed event time, so nothing in the output depends on when replay runs.
          clock: { now: () => eventClock },
          timers: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
          logger,
          // Windows close by event time only: wall-clock idle closing would make the output depend on timing.
          idleCloseMs: 0,
          // A throw-away sandbox: no fsync for its checkpoints or topics.
          durable: false,
        }),
      );
    }
    const total = input.records.reduce((a, l) => a + l.length, 0);
    let done = 0;
    let firstTs: number | null = null;
    const started = Date.now();
    const drainAll = async () => {
      // Rules may read each other's outputs: drain until a pass moves nothing.
      for (let pass = 0; pass < 100; pass++) {
        const before = runners.map((r) => r.status().recordsIn).join(',');
        for (const r of runners) await r.drain();
        if (runners.map((r) => r.status().recordsIn).join(',') === before) break;
      }
    };
    for (const step of steps(input.records, stepMs, maxStepRecords)) {
      const ts = step[0]!.record.timestamp;
      firstTs ??= ts;
      eventClock = step[step.length - 1]!.record.timestamp;
      if (options.speed !== 'max') {
        const due = started + (ts - firstTs) / options.speed;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
      await sandbox.appendBatch(topic, step.map((s) => s.record));
      done += step.length;
      await drainAll();
      options.onProgress?.({ done, total, eventTime: step[step.length - 1]!.record.timestamp });
    }
    for (const r of runners) await r.closeAllWindows();
    await drainAll();
    const rows: ReplayRow[] = [];
    // Without rules the output is the input itself, with its own offsets, partition by partition in event-time order.
    if (plans.length === 0) {
      for (const list of input.records) {
        for (const r of list) {
          rows.push({ topic, partition: r.partition, offset: r.offset, timestamp: r.record.timestamp, key: r.record.key, value: recordValue(r.record.value) });
        }
      }
    }
    for (const plan of plans) rows.push(...(await readTopic(sandbox, plan.outputTopic)));
    for (const plan of plans) rows.push(...(await readTopic(sandbox, `${plan.outputTopic}_late`)));
    return { records: total, rules: plans.map((p) => p.name), rows, deadLetters: input.deadLetters };
  } finally {
    for (const r of runners) await r.stop().catch(() => undefined);
    await sandbox.close();
    await rm(dir, { recursive: true, force: true });
  }
}
