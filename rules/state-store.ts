/**
 * A rule's durable checkpoint in SQLite (the `sqlite3` package): its
 * aggregate state, the input offsets that state reflects and the output
 * topics' end offsets at that moment, all written in ONE transaction, so a
 * crash leaves either the old checkpoint or the new one, never a mix.
 *
 * File: `<stateDir>/<rule>.sqlite` (WAL journal, `synchronous=FULL`: a commit
 * that resolved survives power loss; `durable: false` → `synchronous=OFF`,
 * no fsync, for throw-away sandboxes). Tables:
 *   meta(k PRIMARY KEY, v)             'signature', 'streamTime', 'seq', 'batch' (JSON values)
 *   positions(partition PK, offset)    next input offset to read per input partition
 *   outputs(topic, partition, end_offset)  end offset of each output/late topic partition
 *   windows(id PK, v)                  one row per open window (or session group): JSON state
 *
 * Invariant the runner relies on: `outputs` holds the output end offsets as
 * they were right after the outputs of the checkpointed batches became
 * durable, so anything past them in an output topic was written by the one
 * batch that had not been checkpointed when the process died.
 */
import sqlite3 from 'sqlite3';
import { RulesError } from './errors.ts';

/** What `load` returns: the last committed checkpoint. */
export interface StoredCheckpoint {
  /** `TablePlan.stateSignature` (or a stream rule's identity) the state belongs to. */
  signature: string;
  /** Largest event time seen (ms); -Infinity before the first record. */
  streamTime: number;
  /** Processing sequence number of the next record (LATEST/EARLIEST_BY_OFFSET order). */
  seq: number;
  /** Number of batches checkpointed so far. */
  batch: number;
  /** Input partition → next offset to read. */
  positions: Map<number, number>;
  /** `topic` → partition → end offset at the checkpoint. */
  outputs: Map<string, Map<number, number>>;
  /** Window id → JSON state text. */
  windows: Map<string, string>;
}

/** One checkpoint's changes; applied atomically. */
export interface CheckpointDelta {
  signature: string;
  streamTime: number;
  seq: number;
  batch: number;
  positions: Iterable<readonly [number, number]>;
  outputs: Iterable<readonly [string, number, number]>;
  /** Window id → JSON state text, inserted or replaced. */
  upserts: Iterable<readonly [string, string]>;
  /** Window ids to delete (closed windows). */
  deletes: Iterable<string>;
}

export interface StateStore {
  readonly file: string;
  /** The last committed checkpoint, or null when the file holds none. */
  load(): Promise<StoredCheckpoint | null>;
  /** Writes `delta` in one transaction; resolves once it is durable. */
  commit(delta: CheckpointDelta): Promise<void>;
  /** Deletes every row (fresh state) in one transaction. */
  clear(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface StateStoreOptions {
  /**
   * true (default): `synchronous=FULL`, a resolved commit survives power loss.
   * false: `synchronous=OFF`, nothing is fsynced; only for scratch state
   * (replays, `rules test`) that is thrown away after the run.
   */
  durable?: boolean;
}

const SCHEMA = [
  'PRAGMA journal_mode=WAL',
  'BEGIN',
  'CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS positions (partition INTEGER PRIMARY KEY, offset INTEGER NOT NULL)',
  'CREATE TABLE IF NOT EXISTS outputs (topic TEXT NOT NULL, partition INTEGER NOT NULL, end_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition))',
  'CREATE TABLE IF NOT EXISTS windows (id TEXT PRIMARY KEY, v TEXT NOT NULL)',
  'COMMIT',
];

function stateError(message: string, file: string, cause: unknown): RulesError {
  return new RulesError('RULES_STATE', `${message}: ${(cause as Error)?.message ?? String(cause)}`, { file }, cause);
}

/** Rows per bulk statement: bounds the JSON text and SQLite's parse of it (a batch may open 50,000 windows). */
const CHUNK_ROWS = 2000;
/** Statement text sent to SQLite at once, about (see `transaction`). */
const EXEC_BYTES = 1 << 20;

/**
 * `sql` with each `?` replaced by the next of `params` as an SQL text
 * literal: quoted with quotes doubled, or, for a text holding NUL (which
 * ends a quoted literal; group keys may hold one, JSON texts never do), its
 * UTF-8 bytes as a blob cast to text.
 */
function bindText(sql: string, params: readonly string[]): string {
  let i = 0;
  return sql.replace(/\?/g, () => literal(params[i++]!));
}

/** `text` as an SQL text literal (see bindText). */
function literal(text: string): string {
  if (text.indexOf("'") < 0 && text.indexOf('\0') < 0) return `'${text}'`;
  return text.includes('\0') ? `CAST(X'${Buffer.from(text, 'utf8').toString('hex')}' AS TEXT)` : `'${text.replaceAll("'", "''")}'`;
}

/** `items` in arrays of at most CHUNK_ROWS, in order. */
function* chunks<T>(items: Iterable<T>): Generator<T[]> {
  let chunk: T[] = [];
  for (const item of items) {
    chunk.push(item);
    if (chunk.length === CHUNK_ROWS) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

/** Opens (creating if missing) the checkpoint file. */
export async function openStateStore(file: string, options: StateStoreOptions = {}): Promise<StateStore> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const d = new sqlite3.Database(file, (err) => (err ? reject(stateError('cannot open state file', file, err)) : resolve(d)));
  });
  const run = (sql: string, params: unknown[] = []) =>
    new Promise<void>((resolve, reject) => db.run(sql, params, (err) => (err ? reject(stateError('state write failed', file, err)) : resolve())));
  const all = <T>(sql: string) =>
    new Promise<T[]>((resolve, reject) => db.all(sql, (err, rows) => (err ? reject(stateError('state read failed', file, err)) : resolve(rows as T[]))));
  const exec = (sql: string, failed = 'state write failed') =>
    new Promise<void>((resolve, reject) => db.exec(sql, (err) => (err ? reject(stateError(failed, file, err)) : resolve())));
  // the schema in one round trip and one commit (a statement at a time, each its own commit: 6-11 ms to open, measured)
  const synchronous = options.durable === false ? 'PRAGMA synchronous=OFF' : 'PRAGMA synchronous=FULL';
  try {
    await exec([synchronous, ...SCHEMA].join(';\n'), 'cannot open state file');
  } catch (err) {
    await new Promise<void>((resolve) => db.close(() => resolve()));
    throw err;
  }
  let closed = false;
  // One transaction at a time: sqlite3 queues statements, but a BEGIN while another transaction is open fails.
  let tail: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = tail.then(fn, fn);
    tail = p.catch(() => undefined);
    return p;
  };
  /**
   * Runs the statements `body` yields in one transaction (SQL text, or a
   * template and its parameters for bindText). They go to SQLite
   * as few `exec` texts of about EXEC_BYTES each (with BEGIN in the first and
   * COMMIT in the last), so a checkpoint is one or a few round trips to
   * SQLite's thread instead of one per statement: each round trip waits for
   * this thread, which is busy with the next batch meanwhile. A text is built
   * only when the previous one ran, so about EXEC_BYTES of rows are in memory
   * at a time.
   */
  const transaction = (body: () => Iterable<[string, string[]] | string>) =>
    serial(async () => {
      if (closed) throw new RulesError('RULES_STATE', 'state store is closed', { file });
      let text = 'BEGIN IMMEDIATE;';
      let begun = false;
      try {
        for (const statement of body()) {
          text += `${typeof statement === 'string' ? statement : bindText(statement[0], statement[1])};`;
          if (text.length >= EXEC_BYTES) {
            begun = true;
            await exec(text);
            text = '';
          }
        }
        begun = true;
        await exec(`${text}COMMIT;`);
      } catch (err) {
        if (begun) await run('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });

  return {
    file,
    async load() {
      const meta = new Map((await all<{ k: string; v: string }>('SELECT k, v FROM meta')).map((r) => [r.k, JSON.parse(r.v) as unknown]));
      if (!meta.has('signature')) return null;
      const positions = new Map((await all<{ partition: number; offset: number }>('SELECT partition, offset FROM positions')).map((r) => [r.partition, r.offset]));
      const outputs = new Map<string, Map<number, number>>();
      for (const r of await all<{ topic: string; partition: number; end_offset: number }>('SELECT topic, partition, end_offset FROM outputs')) {
        let m = outputs.get(r.topic);
        if (!m) outputs.set(r.topic, (m = new Map()));
        m.set(r.partition, r.end_offset);
      }
      const windows = new Map((await all<{ id: string; v: string }>('SELECT id, v FROM windows')).map((r) => [r.id, r.v]));
      const streamTime = meta.get('streamTime');
      return {
        signature: String(meta.get('signature')),
        streamTime: typeof streamTime === 'number' ? streamTime : -Infinity,
        seq: Number(meta.get('seq') ?? 0),
        batch: Number(meta.get('batch') ?? 0),
        positions,
        outputs,
        windows,
      };
    },
    commit(delta) {
      return transaction(function* () {
        const metaRows: Record<string, unknown> = {
          signature: delta.signature,
          streamTime: Number.isFinite(delta.streamTime) ? delta.streamTime : null,
          seq: delta.seq,
          batch: delta.batch,
        };
        // Bulk writes pass one JSON argument each: one statement per chunk of rows instead of one per row.
        yield ["INSERT INTO meta (k, v) SELECT key, json_quote(value) FROM json_each(?) WHERE true ON CONFLICT (k) DO UPDATE SET v = excluded.v", [JSON.stringify(metaRows)]];
        for (const rows of chunks(delta.positions))
          yield [
            "INSERT INTO positions (partition, offset) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true ON CONFLICT (partition) DO UPDATE SET offset = excluded.offset",
            [JSON.stringify(rows)],
          ];
        for (const rows of chunks(delta.outputs))
          yield [
            "INSERT INTO outputs (topic, partition, end_offset) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?) WHERE true ON CONFLICT (topic, partition) DO UPDATE SET end_offset = excluded.end_offset",
            [JSON.stringify(rows)],
          ];
        for (const ids of chunks(delta.deletes)) yield ['DELETE FROM windows WHERE id IN (SELECT value FROM json_each(?))', [JSON.stringify(ids)]];
        // rows in order: a later row for the same id replaces an earlier one (upsert row by row). The rows
        // are literals, not one JSON argument: their values are JSON texts already, which a JSON array
        // would escape again and SQLite take apart again (measured alone, a checkpoint of 1,000 windows:
        // 6.3-7.9 against 7.5-8.5 ms of CPU, the SQL text built here in 1.1-1.3 against 2.0-2.4 ms)
        for (const rows of chunks(delta.upserts)) {
          let values = '';
          for (const [id, v] of rows) values += `${values === '' ? '' : ','}(${literal(id)},${literal(v)})`;
          yield `INSERT INTO windows (id, v) VALUES ${values} ON CONFLICT (id) DO UPDATE SET v = excluded.v`;
        }
      });
    },
    clear() {
      return transaction(() => [
        ['DELETE FROM meta', []],
        ['DELETE FROM positions', []],
        ['DELETE FROM outputs', []],
        ['DELETE FROM windows', []],
      ]);
    },
    async close() {
      if (closed) return;
      await serial(async () => undefined);
      closed = true;
      await new Promise<void>((resolve, reject) => db.close((err) => (err ? reject(stateError('cannot close state file', file, err)) : resolve())));
    },
  };
}
