/**
 * `millstream log ...`: operator commands over the durable log.
 *
 *   create <topic>    create a topic (partition count fixed from then on)
 *   produce <topic>   append JSON lines read from stdin
 *   topics            list topics
 *   describe <topic>  partitions with earliest/end offsets, bytes, segments
 *   tail <topic>      print records as JSON lines, optionally following the end
 *   verify            check every batch's CRC and every index; non-zero exit on damage
 *
 * Every command takes `--data-dir` (default: the dataDir of the agent config
 * named by `--config`, else `./data`). `create` and `produce`
 * own the data directory while they run (the store's lock file); `topics`,
 * `describe`, `tail` and `verify` open it read-only, so they work while the
 * agent or a producer owns it.
 *
 * Exit codes: 0 success; 1 an error (one line on stderr, `millstream: CODE:
 * message`, naming the topic or file), damage found by `verify`, or lines
 * skipped by `produce`.
 */
import { once } from 'node:events';
import { existsSync, watch } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { LogError, isLogError, openLogStore } from '../../log-store/index.ts';
import { recordValue } from '../record-value.ts';
import type { BatchAck, LogRecord, LogStoreApi, RecordInput, TopicConfig } from '../../log-store/index.ts';

/** Default data directory, relative to the working directory. */
export const DEFAULT_DATA_DIR = './data';

/** `produce`: batches waiting for their fsync before stdin reading pauses (back-pressure). */
const PRODUCE_MAX_BATCHES_IN_FLIGHT = 32;
/** `produce`: malformed lines reported one by one; past this only the total is reported. */
const PRODUCE_MAX_LINE_REPORTS = 20;
/** A longer input line is reported as malformed and skipped, not held in memory. */
export const PRODUCE_MAX_LINE_CHARS = 1_048_576;
/** `tail`: records fetched per read call. */
const TAIL_READ_RECORDS = 1000;

// ---------------------------------------------------------------- option parsing

function integerOption(min: number, what: string): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected ${what}`);
    }
    return n;
  };
}

const positiveInt = integerOption(1, 'an integer ≥ 1');
const nonNegativeInt = integerOption(0, 'an integer ≥ 0');

/** Retention settings take -1 for "no limit". */
function retentionOption(raw: string): number {
  const n = integerOption(-1, 'an integer ≥ 0, or -1 for no limit')(raw);
  return n;
}

function isoTimeOption(raw: string): number {
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('expected an ISO-8601 time such as 2020-02-14T12:19:27Z');
  return ms;
}

function dataDirOption(): Option {
  return new Option('-d, --data-dir <dir>', 'data directory of the log (default: the config\'s dataDir with --config, else ./data)').default(DEFAULT_DATA_DIR);
}

function configOption(): Option {
  return new Option('-c, --config <file>', 'take the data directory from this agent config (millstream.yaml)');
}

/**
 * Before any `log` command runs: an explicit --data-dir wins; else --config
 * names the agent config whose dataDir the agent's log lives in; else ./data.
 */
async function resolveDataDir(command: Command): Promise<void> {
  const opts = command.opts<{ config?: string }>();
  if (!opts.config || command.getOptionValueSource('dataDir') === 'cli') return;
  const { loadConfig } = await import('../config.ts');
  command.setOptionValueWithSource('dataDir', (await loadConfig(opts.config)).dataDir, 'config');
}

// ---------------------------------------------------------------- store opening

/**
 * Opens the store for a read-only command. A missing directory is an error
 * here (a read-only open must not create it), named in the message.
 */
async function openReadOnly(dataDir: string): Promise<LogStoreApi> {
  if (!existsSync(dataDir)) {
    throw new LogError('LOG_INVALID_ARGUMENT', `no data directory at ${dataDir} (create a topic first, or pass --data-dir)`, {
      file: dataDir,
    });
  }
  return openLogStore({ dataDir, readOnly: true, retentionCheckIntervalMs: 0 });
}

async function withStore<T>(store: LogStoreApi, fn: (store: LogStoreApi) => Promise<T>): Promise<T> {
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function requireTopic(store: LogStoreApi, topic: string): void {
  if (!store.hasTopic(topic)) {
    throw new LogError('LOG_TOPIC_NOT_FOUND', `topic ${topic} does not exist in ${store.dataDir} (create it with \`millstream log create ${topic} --partitions N\`)`, {
      topic,
    });
  }
}

// ---------------------------------------------------------------- output

/** Writes to stdout and waits when the pipe is full, so a slow reader throttles us instead of our memory growing. */
async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}

/** A reader that closed the pipe (`| head`) ends the command quietly. */
function exitQuietlyOnBrokenPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

/** The record as `tail` prints it; `value` is parsed when it is JSON, else the UTF-8 string. */
export function recordToJson(record: LogRecord): string {
  return JSON.stringify({
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key,
    value: recordValue(record.value),
    headers: record.headers,
  });
}

// ---------------------------------------------------------------- produce: line parsing

/** What `produce` reads from each line. */
export interface ReadingLineOptions {
  /** Field whose value becomes the record key (strings and numbers; missing or null: no key). Default: no key. */
  keyField?: string;
  /** Field holding the event time: an ISO-8601 string or epoch ms. Default `reading_ts`. */
  timestampField: string;
}

/**
 * Parses one input line into a record. The stored value is the line itself
 * (trimmed), so nothing is re-serialised. Returns the reason when the line is
 * malformed: not JSON, not a JSON object, or an unreadable timestamp.
 */
export function parseReadingLine(line: string, options: ReadingLineOptions): RecordInput | string {
  const text = line.trim();
  let reading: unknown;
  try {
    reading = JSON.parse(text);
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  if (reading === null || typeof reading !== 'object' || Array.isArray(reading)) return 'not a JSON object';
  const fields = reading as Record<string, unknown>;
  const record: RecordInput = { key: null, value: text };
  if (options.keyField !== undefined) {
    const key = fields[options.keyField];
    if (typeof key === 'string') record.key = key;
    else if (typeof key === 'number' && Number.isFinite(key)) record.key = String(key);
    else if (key !== undefined && key !== null) return `key field ${options.keyField} is neither a string nor a number`;
  }
  const ts = fields[options.timestampField];
  if (ts !== undefined && ts !== null) {
    const ms = typeof ts === 'number' ? ts : typeof ts === 'string' ? (/^\d+$/.test(ts) ? Number(ts) : Date.parse(ts)) : Number.NaN;
    if (!Number.isSafeInteger(ms) || ms < 0) {
      return `${options.timestampField} is neither an ISO-8601 time nor epoch milliseconds: ${JSON.stringify(ts)}`;
    }
    record.timestamp = ms;
  }
  return record;
}

// ---------------------------------------------------------------- produce

interface ProduceOptions extends ReadingLineOptions {
  dataDir: string;
  reportAcks: boolean;
  /** Appends are refused (LOG_DISK_FULL) below this much free space. Default: the store's (64 MiB). */
  minFreeBytes?: number;
}

/**
 * Streams stdin into the log: each chunk of complete lines becomes one
 * `appendBatch`, up to PRODUCE_MAX_BATCHES_IN_FLIGHT batches wait for their
 * fsync at once (the store's group commit joins them), and acknowledgements
 * are counted strictly in input order, so `acked n` means: the first n
 * well-formed lines are durable.
 */
async function produce(topic: string, options: ProduceOptions): Promise<void> {
  const store = await openLogStore(
    options.minFreeBytes === undefined ? { dataDir: options.dataDir } : { dataDir: options.dataDir, minFreeBytes: options.minFreeBytes },
  );
  let acked = 0;
  let skipped = 0;
  let lineNo = 0;
  try {
    requireTopic(store, topic);
    // Each link resolves once its batch and every batch before it are durable.
    const links: Array<Promise<void>> = [];
    let last: Promise<void> = Promise.resolve();
    const submit = (batch: RecordInput[]): void => {
      if (batch.length === 0) return;
      const appended = store.appendBatch(topic, batch);
      const link = last.then(() => appended).then((ack: BatchAck) => {
        acked += ack.count;
        if (options.reportAcks) process.stdout.write(`acked ${acked}\n`);
      });
      link.catch(() => {}); // awaited below; this only keeps a failure from being "unhandled" meanwhile
      // A failed append ends the input at once (the loop then surfaces the error through `last`).
      appended.catch(() => process.stdin.destroy());
      links.push(link);
      last = link;
    };
    const take = (line: string, batch: RecordInput[]): void => {
      lineNo++;
      if (line.trim() === '') return;
      const parsed = line.length > PRODUCE_MAX_LINE_CHARS ? `longer than ${PRODUCE_MAX_LINE_CHARS} characters` : parseReadingLine(line, options);
      if (typeof parsed === 'string') {
        skipped++;
        if (skipped <= PRODUCE_MAX_LINE_REPORTS) process.stderr.write(`millstream: produce ${topic}: line ${lineNo} skipped: ${parsed}\n`);
        return;
      }
      batch.push(parsed);
    };

    const decoder = new StringDecoder('utf8');
    let rest = '';
    // Set while skipping the remainder of an overlong line (up to its newline).
    let discarding = false;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      let text = rest + decoder.write(chunk);
      if (discarding) {
        const nl = text.indexOf('\n');
        if (nl === -1) {
          rest = '';
          continue;
        }
        text = text.slice(nl + 1);
        discarding = false;
      }
      const batch: RecordInput[] = [];
      let start = 0;
      for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
        take(text.slice(start, nl), batch);
        start = nl + 1;
      }
      rest = text.slice(start);
      if (rest.length > PRODUCE_MAX_LINE_CHARS) {
        lineNo++;
        skipped++;
        if (skipped <= PRODUCE_MAX_LINE_REPORTS) {
          process.stderr.write(`millstream: produce ${topic}: line ${lineNo} skipped: longer than ${PRODUCE_MAX_LINE_CHARS} characters\n`);
        }
        rest = '';
        discarding = true;
      }
      submit(batch);
      while (links.length >= PRODUCE_MAX_BATCHES_IN_FLIGHT) await links.shift();
    }
    rest += decoder.end();
    const batch: RecordInput[] = [];
    if (rest !== '' && !discarding) take(rest, batch);
    submit(batch);
    await last;
  } finally {
    await store.close();
  }
  if (skipped > PRODUCE_MAX_LINE_REPORTS) {
    process.stderr.write(`millstream: produce ${topic}: ${skipped - PRODUCE_MAX_LINE_REPORTS} more malformed lines skipped\n`);
  }
  process.stderr.write(`produced ${acked} records to ${topic}${skipped ? `, skipped ${skipped} malformed lines` : ''}\n`);
  if (skipped > 0) process.exitCode = 1;
}

// ---------------------------------------------------------------- tail

interface TailOptions {
  dataDir: string;
  partition?: number;
  fromBeginning?: boolean;
  offset?: number;
  since?: number;
  follow?: boolean;
  max?: number;
}

/** `tail --follow`: after a change event, wait this long for more before re-reading (one reopen per burst of fsyncs). */
const FOLLOW_DEBOUNCE_MS = 20;
/** `tail --follow`: re-read at least this often even without a change event (a missed inotify event must not stall the tail). */
const FOLLOW_SAFETY_MS = 1000;

async function startOffset(store: LogStoreApi, topic: string, partition: number, options: TailOptions): Promise<number> {
  if (options.fromBeginning) return store.earliestOffset(topic, partition);
  if (options.offset !== undefined) {
    const earliest = store.earliestOffset(topic, partition);
    const end = store.endOffset(topic, partition);
    if (options.offset < earliest || options.offset > end) {
      throw new LogError('LOG_OUT_OF_RANGE', `offset ${options.offset} is outside ${topic}-${partition}, which holds offsets ${earliest}..${end - 1}`, {
        topic,
        partition,
        offset: options.offset,
        earliestOffset: earliest,
        endOffset: end,
      });
    }
    return options.offset;
  }
  if (options.since !== undefined) return store.offsetForTimestamp(topic, partition, options.since);
  return store.endOffset(topic, partition);
}

/**
 * Prints records from each chosen partition, partition by partition, up to
 * the end offsets seen when the store was opened.
 *
 * `--follow` runs in another process than the writer (the writer owns the
 * data directory), and a read-only store only sees the files as they were
 * when it opened. So following watches the partition folders (inotify via
 * fs.watch) and, after each burst of changes, reopens the store read-only
 * and prints what was appended since: no busy polling, and it works whoever
 * the writer is. It may print records whose fsync is still in flight.
 */
async function tail(topic: string, options: TailOptions): Promise<void> {
  let remaining = options.max ?? Number.POSITIVE_INFINITY;
  const print = async (records: readonly LogRecord[]): Promise<void> => {
    const take = records.length > remaining ? records.slice(0, remaining) : records;
    remaining -= take.length;
    if (take.length) await writeOut(take.map((r) => `${recordToJson(r)}\n`).join(''));
  };
  const next = new Map<number, number>();
  const drain = async (store: LogStoreApi): Promise<void> => {
    for (const [partition, from] of next) {
      let offset = from;
      const end = store.endOffset(topic, partition);
      while (offset < end && remaining > 0) {
        try {
          const { records, nextOffset } = await store.read(topic, partition, offset, {
            maxRecords: Math.min(TAIL_READ_RECORDS, remaining, end - offset),
          });
          if (records.length === 0) break;
          await print(records);
          offset = nextOffset;
        } catch (err) {
          offset = skipUnreadable(err, store, topic, partition, offset);
        }
      }
      next.set(partition, offset);
    }
  };

  await withStore(await openReadOnly(options.dataDir), async (store) => {
    requireTopic(store, topic);
    const { partitions } = store.describe(topic).config;
    if (options.partition !== undefined && options.partition >= partitions) {
      throw new LogError('LOG_INVALID_ARGUMENT', `topic ${topic} has no partition ${options.partition} (it has ${partitions})`, {
        topic,
        partition: options.partition,
      });
    }
    const chosen = options.partition !== undefined ? [options.partition] : Array.from({ length: partitions }, (_, p) => p);
    for (const partition of chosen) next.set(partition, await startOffset(store, topic, partition, options));
    await drain(store);
  });
  if (!options.follow || remaining <= 0) return;

  const stop = new AbortController();
  let wake: (() => void) | null = null;
  const changed = (): void => wake?.();
  const onSignal = (): void => {
    stop.abort();
    changed();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const watchers = [...next.keys()].map((p) => watch(join(options.dataDir, `${topic}-${p}`), { persistent: true }, changed));
  try {
    while (!stop.signal.aborted && remaining > 0) {
      await new Promise<void>((resolve) => {
        const safety = setTimeout(resolve, FOLLOW_SAFETY_MS);
        wake = () => {
          clearTimeout(safety);
          wake = null;
          setTimeout(resolve, FOLLOW_DEBOUNCE_MS);
        };
      });
      if (stop.signal.aborted) break;
      try {
        await withStore(await openReadOnly(options.dataDir), drain);
      } catch (err) {
        // The writer rolled or deleted a segment between our listing and opening it: read again on the next change.
        if (!(isLogError(err) && err.context.errno === 'ENOENT')) throw err;
      }
    }
  } finally {
    for (const w of watchers) w.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * A corrupt range is reported and stepped over; a position that retention
 * deleted meanwhile jumps to the earliest offset. Any other error ends the
 * command. Both set exit code 1.
 */
function skipUnreadable(err: unknown, store: LogStoreApi, topic: string, partition: number, offset: number): number {
  if (isLogError(err, 'LOG_CORRUPT')) {
    const resume = err.context.nextValidOffset;
    if (resume !== undefined && resume > offset) {
      process.stderr.write(`millstream: LOG_CORRUPT: ${topic}-${partition}: offsets ${offset}..${resume - 1} skipped: ${err.message}\n`);
      process.exitCode = 1;
      return resume;
    }
  }
  if (isLogError(err, 'LOG_OUT_OF_RANGE')) {
    const earliest = store.earliestOffset(topic, partition);
    if (earliest > offset) {
      process.stderr.write(`millstream: LOG_OUT_OF_RANGE: ${topic}-${partition}: offsets ${offset}..${earliest - 1} were deleted by retention\n`);
      process.exitCode = 1;
      return earliest;
    }
  }
  throw err;
}

// ---------------------------------------------------------------- describe, topics, verify

function pad(cells: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => String(row[i]).length)));
  return cells.map((row) => row.map((c, i) => String(c).padStart(widths[i]!)).join('  ')).join('\n') + '\n';
}

function configLine(config: Readonly<TopicConfig>): string {
  return (
    `partitions=${config.partitions} retention.ms=${config.retentionMs} retention.bytes=${config.retentionBytes} ` +
    `segment.bytes=${config.segmentBytes} segment.ms=${config.segmentMs} flush.ms=${config.flushIntervalMs} ` +
    `flush.bytes=${config.flushBytes} fsync=${config.fsync}`
  );
}

// ---------------------------------------------------------------- registration

export function register(program: Command): void {
  const log = program.command('log').description('the durable partitioned log: topics, produce, tail, verify');
  log.hook('preAction', (_log, action) => resolveDataDir(action));

  log
    .command('create')
    .description('create a topic (its partition count is fixed from then on)')
    .argument('<topic>', 'topic name')
    .addOption(dataDirOption())
    .addOption(configOption())
    .option('-p, --partitions <n>', 'number of partitions', positiveInt, 1)
    .option('--retention-ms <ms>', 'delete closed segments older than this (-1: keep forever; default 7 days)', retentionOption)
    .option('--retention-bytes <bytes>', 'keep at most this many bytes per partition (-1: no limit, the default)', retentionOption)
    .option('--segment-bytes <bytes>', 'roll segments at this size (default 64 MiB)', positiveInt)
    .option('--segment-ms <ms>', 'roll segments at this age (default 7 days)', positiveInt)
    .option('--flush-interval-ms <ms>', 'group commit: longest wait to gather appends into one fsync (default 0)', nonNegativeInt)
    .option('--flush-bytes <bytes>', 'group commit: flush at once when this many bytes wait (default 1 MiB)', positiveInt)
    .action(async (topic: string, opts: Record<string, unknown> & { dataDir: string; partitions: number }) => {
      const config: Partial<TopicConfig> = { partitions: opts.partitions };
      const map: Array<[string, keyof TopicConfig]> = [
        ['retentionMs', 'retentionMs'],
        ['retentionBytes', 'retentionBytes'],
        ['segmentBytes', 'segmentBytes'],
        ['segmentMs', 'segmentMs'],
        ['flushIntervalMs', 'flushIntervalMs'],
        ['flushBytes', 'flushBytes'],
      ];
      for (const [opt, key] of map) if (opts[opt] !== undefined) (config as Record<string, unknown>)[key] = opts[opt];
      const store = await openLogStore({ dataDir: opts.dataDir, retentionCheckIntervalMs: 0 });
      await withStore(store, async () => {
        const existed = store.hasTopic(topic);
        const info = await store.createTopic(topic, config);
        process.stdout.write(`${existed ? 'topic exists' : 'created topic'} ${info.name}: ${configLine(info.config)}\n`);
      });
    });

  log
    .command('produce')
    .description('append JSON lines from stdin (one record per line, the line is the value)')
    .argument('<topic>', 'topic name')
    .addOption(dataDirOption())
    .addOption(configOption())
    .option('-k, --key-field <field>', 'use this field of each line as the record key (e.g. sensor_id); default: no key, round-robin')
    .option('--timestamp-field <field>', 'event time field: ISO-8601 or epoch ms; missing: time of append', 'reading_ts')
    .option('--report-acks', 'print `acked <n>` (records durably stored so far) after each fsync group')
    .option('--min-free-bytes <bytes>', 'refuse appends (LOG_DISK_FULL) while the disk has less free space than this (default 64 MiB)', nonNegativeInt)
    .action(async (topic: string, opts: { dataDir: string; keyField?: string; timestampField: string; reportAcks?: boolean; minFreeBytes?: number }) => {
      const lineOptions: ProduceOptions = { dataDir: opts.dataDir, timestampField: opts.timestampField, reportAcks: !!opts.reportAcks };
      if (opts.keyField !== undefined) lineOptions.keyField = opts.keyField;
      if (opts.minFreeBytes !== undefined) lineOptions.minFreeBytes = opts.minFreeBytes;
      await produce(topic, lineOptions);
    });

  log
    .command('topics')
    .description('list topics (read-only)')
    .addOption(dataDirOption())
    .addOption(configOption())
    .option('--json', 'one JSON object per topic')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      await withStore(await openReadOnly(opts.dataDir), async (store) => {
        const topics = store.topics();
        const out = topics.map((t) => (opts.json ? JSON.stringify(t) : `${t.name}  ${configLine(t.config)}`)).join('\n');
        process.stdout.write(out ? `${out}\n` : '');
      });
    });

  log
    .command('describe')
    .description('partitions of a topic: earliest and end offsets, bytes, segments (read-only)')
    .argument('<topic>', 'topic name')
    .addOption(dataDirOption())
    .addOption(configOption())
    .option('--json', 'print the description as JSON')
    .action(async (topic: string, opts: { dataDir: string; json?: boolean }) => {
      await withStore(await openReadOnly(opts.dataDir), async (store) => {
        requireTopic(store, topic);
        const d = store.describe(topic);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(d)}\n`);
          return;
        }
        const rows: Array<Array<string | number>> = [['partition', 'earliest', 'end', 'records', 'bytes', 'segments']];
        for (const p of d.partitionsInfo) rows.push([p.partition, p.earliestOffset, p.endOffset, p.endOffset - p.earliestOffset, p.bytes, p.segments]);
        process.stdout.write(`topic ${d.name}: ${configLine(d.config)}\n${pad(rows)}`);
      });
    });

  log
    .command('tail')
    .description('print records as JSON lines {"topic","partition","offset","timestamp","key","value","headers"} (read-only)')
    .argument('<topic>', 'topic name')
    .addOption(dataDirOption())
    .addOption(configOption())
    .option('-p, --partition <n>', 'only this partition (default: all)', nonNegativeInt)
    .addOption(new Option('--from-beginning', 'start at the earliest retained offset').conflicts(['offset', 'since']))
    .addOption(new Option('--offset <n>', 'start at this offset (needs --partition)').argParser(nonNegativeInt).conflicts(['since']))
    .addOption(new Option('--since <iso-time>', 'start at the first record with a timestamp at or after this time').argParser(isoTimeOption))
    .option('-f, --follow', 'keep printing new records as they are appended (Ctrl-C to stop)')
    .option('-n, --max <n>', 'stop after this many records', nonNegativeInt)
    .action(async (topic: string, opts: TailOptions, cmd: Command) => {
      if (opts.offset !== undefined && opts.partition === undefined) cmd.error('millstream: log tail: --offset needs --partition');
      exitQuietlyOnBrokenPipe();
      await tail(topic, opts);
    });

  log
    .command('verify')
    .description("check every batch's CRC and every index entry; exits 1 on damage (read-only)")
    .addOption(dataDirOption())
    .addOption(configOption())
    .action(async (opts: { dataDir: string }) => {
      await withStore(await openReadOnly(opts.dataDir), async (store) => {
        const report = await store.verify();
        const lines = report.problems.map((p) => `${p.file} at byte ${p.position} (${p.topic}-${p.partition}): ${p.message}`);
        lines.push(
          `verified ${store.topics().length} topics, ${report.segments} segments, ${report.batches} batches, ${report.records} records: ` +
            (report.problems.length ? `${report.problems.length} problem(s)` : 'no damage'),
        );
        process.stdout.write(`${lines.join('\n')}\n`);
        if (report.problems.length) process.exitCode = 1;
      });
    });
}
