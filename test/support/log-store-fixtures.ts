/** Shared fixtures for log-store tests: temp data dirs, widget readings, read-everything helpers, a capturing logger. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLogError, openLogStore, type LogRecord, type LogStoreApi, type LogStoreOptions, type Logger, type RecordInput, type Timers } from '../../log-store/index.ts';

export class Fixtures {
  private dirs: string[] = [];
  private stores: LogStoreApi[] = [];

  tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'millstream-log-'));
    this.dirs.push(d);
    return d;
  }

  /** Opens a store with no disk floor and no retention timer unless asked; closed in cleanup(). */
  async open(options: Partial<LogStoreOptions> & { dataDir: string }): Promise<LogStoreApi> {
    const s = await openLogStore({ minFreeBytes: 0, retentionCheckIntervalMs: 0, ...options });
    this.stores.push(s);
    return s;
  }

  async cleanup(): Promise<void> {
    for (const s of this.stores.splice(0)) await s.close().catch(() => {});
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** A widget reading as DESIGN.md shows it, about 150 bytes of JSON. */
export function reading(i: number, ts = 1_581_682_767_000 + i * 1000): RecordInput & { key: string; value: string; timestamp: number } {
  const sensor = `aa-${100 + (i % 7)}`;
  return {
    key: sensor,
    value: JSON.stringify({ reading_ts: new Date(ts).toISOString(), sensor_id: sensor, production_line: 'w01', widget_type: 'acme94', colour: 'RED', temp_celcius: 20 + (i % 9), widget_weight_g: 100 + i }),
    timestamp: ts,
    headers: { source: 'mqtt', gateway: 'gw-1' },
  };
}

/** Reads a whole partition (copying values); throws whatever read throws. */
export async function readAll(log: LogStoreApi, topic: string, partition: number, from = log.earliestOffset(topic, partition)): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let offset = from;
  while (offset < log.endOffset(topic, partition)) {
    const r = await log.read(topic, partition, offset, { maxRecords: 37 });
    out.push(...r.records.map((rec) => ({ ...rec, value: Buffer.from(rec.value) })));
    offset = r.nextOffset;
  }
  return out;
}

/**
 * Reads a whole partition, stepping over damaged ranges: on LOG_CORRUPT it
 * records the error and resumes at its nextValidOffset (which must move forward).
 */
export async function readAround(log: LogStoreApi, topic: string, partition: number): Promise<{ records: LogRecord[]; corrupt: Array<{ offset: number; nextValidOffset: number }> }> {
  const records: LogRecord[] = [];
  const corrupt: Array<{ offset: number; nextValidOffset: number }> = [];
  let offset = log.earliestOffset(topic, partition);
  while (offset < log.endOffset(topic, partition)) {
    try {
      // Mix one-record reads (the chunk cache and record cursor) with larger ones.
      const r = await log.read(topic, partition, offset, { maxRecords: offset % 3 === 0 ? 1 : 50 });
      records.push(...r.records.map((rec) => ({ ...rec, value: Buffer.from(rec.value) })));
      offset = r.nextOffset;
    } catch (err) {
      if (!isLogError(err, 'LOG_CORRUPT')) throw err;
      const next = err.context.nextValidOffset!;
      if (!(next > offset)) throw new Error(`nextValidOffset ${next} does not move past ${offset}`);
      corrupt.push({ offset, nextValidOffset: next });
      offset = next;
    }
  }
  return { records, corrupt };
}

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

export function capturingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Timers fired by hand (retention, flush intervals). */
export class ManualTimers implements Timers {
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { fn, ms });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fireAll(): void {
    const fns = [...this.pending.values()];
    this.pending.clear();
    for (const t of fns) t.fn();
  }
}

/** Polls until `cond` holds (the global test timeout catches a hang). */
export async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 5));
}
