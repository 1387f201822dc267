/**
 * The aggregate operator of `CREATE TABLE ... AS SELECT ... GROUP BY`:
 * WHERE → group key → window(s) → aggregate state, emitting rows under
 * `EMIT CHANGES` (one row per window updated by a record, in window-start
 * order) or `EMIT FINAL` (one row per window when it closes).
 *
 * Determinism (the runner's exactly-once output depends on it): the rows
 * emitted are a function of the records in processing order and the state
 * restored from a checkpoint; never of wall-clock time, map iteration order
 * after a restore, or batch boundaries. Windows closing together are emitted
 * ordered by window start, then group key text.
 *
 * Stream time advances with records that pass WHERE (the operator sees only
 * those, as in Kafka Streams). Records whose windows are all closed go to
 * the emitter's `late` with reason WINDOW_CLOSED. HAVING false: no row (no
 * tombstone). Output timestamps: window start for windowed tables, the
 * record's event time otherwise.
 *
 * Checkpoint rows (ids and JSON values, see `takeDelta`):
 *   `g:<group>`          → [keys, states]                       (no window)
 *   `t:<start>:<group>`  → [keys, start, end, states]           (tumbling, hopping)
 *   `s:<group>`          → [keys, [[start, end, states], ...]]  (session; start/end = first/last event time)
 */
import { type AggregateFunction, type AggState, aggregateFunction } from '../aggregates.ts';
import type { GroupRow, SourceRow, TablePlan } from '../plan.ts';
import { RulesError } from '../errors.ts';
import { assignTimeWindows, closeTime, sessionSpan } from '../windows.ts';
import { type Emitter, type Operator, type RawValue, rawBytes } from './emitter.ts';

interface Win {
  /**
   * Checkpoint row id as restored from a checkpoint; null: the usual one,
   * built when needed (`#idOf`), so open windows do not each hold a string.
   */
  id: string | null;
  text: string;
  keys: unknown[];
  start: number;
  end: number;
  states: AggState[];
  /** In the `#dirty` list (changed since the last checkpoint delta). A flag, not a Set: checked per record. */
  dirty: boolean;
  /** Closed and deleted: a dirty entry for it is skipped. */
  closed: boolean;
}

/**
 * A one-string group key's text, and the window its last record fell in
 * (`start`, `win`; NaN and null before one): the next record of the key
 * mostly falls in the same window, found then without a map lookup.
 */
interface KeyGroup {
  readonly text: string;
  start: number;
  win: Win | null;
}

/** Bound of the key-group cache: about as many groups as a gateway's sensors, a few MB at most. */
const KEY_CACHE_ENTRIES = 65_536;

function compareWins(a: Win, b: Win): number {
  return a.start - b.start || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0);
}

export class AggregateOperator implements Operator {
  streamTime = -Infinity;
  seq = 0;
  readonly #plan: TablePlan;
  readonly #emitter: Emitter;
  readonly #fns: AggregateFunction[];
  readonly #args: Array<((row: SourceRow) => unknown) | null>;
  readonly #final: boolean;
  readonly #mode: 'none' | 'time' | 'session';
  readonly #sizeMs: number;
  readonly #advanceMs: number;
  readonly #gapMs: number;
  readonly #graceMs: number;
  readonly #timeWindow: { sizeMs: number; advanceMs: number };
  // unwindowed groups / session groups by group text
  readonly #groups = new Map<string, Win>();
  readonly #sessions = new Map<string, Win[]>();
  // time windows: start → group text → window, and the open starts ascending
  readonly #byStart = new Map<number, Map<string, Win>>();
  readonly #starts: number[] = [];
  /** The window start the last record fell in and its groups (NaN: none; reset when that window closes). */
  #lastStart = NaN;
  #lastByGroup: Map<string, Win> | undefined = undefined;
  #nextCloseAt = Infinity;
  // checkpoint tracking
  #dirty: Win[] = [];
  readonly #dirtySessions = new Set<string>();
  #deletes: string[] = [];
  // scratch, reused per record
  readonly #keys: unknown[] = [];
  readonly #argValues: unknown[] = [];
  readonly #windowStarts: number[] = [];
  /** One-string group key → its KeyGroup (see #groupOf); cleared when it holds KEY_CACHE_ENTRIES. */
  readonly #keyGroups = new Map<string, KeyGroup>();

  constructor(plan: TablePlan, emitter: Emitter) {
    this.#plan = plan;
    this.#emitter = emitter;
    this.#fns = plan.aggregates.map((a) => {
      const f = aggregateFunction(a.fn === 'COUNT' && a.arg === null ? 'COUNT_STAR' : a.fn);
      if (!f) throw new RulesError('RULES_RUNTIME', `unknown aggregate ${a.fn}`, { rule: plan.name });
      return f;
    });
    this.#args = plan.aggregates.map((a) => a.arg);
    this.#final = plan.emit === 'final';
    const w = plan.window;
    this.#mode = w === null ? 'none' : w.kind === 'session' ? 'session' : 'time';
    this.#sizeMs = w && w.kind !== 'session' ? w.sizeMs : 0;
    this.#advanceMs = w && w.kind !== 'session' ? w.advanceMs : 0;
    this.#gapMs = w && w.kind === 'session' ? w.gapMs : 0;
    this.#graceMs = w ? w.graceMs : 0;
    this.#timeWindow = { sizeMs: this.#sizeMs, advanceMs: this.#advanceMs };
  }

  process(row: SourceRow, raw: RawValue): void {
    const plan = this.#plan;
    if (!plan.where(row)) return;
    const ts = row.timestamp;
    if (ts > this.streamTime) this.streamTime = ts;
    const seq = this.seq++;
    const keys = this.#keys;
    const groupBy = plan.groupBy;
    if (keys.length !== groupBy.length) keys.length = groupBy.length;
    for (let i = 0; i < groupBy.length; i++) keys[i] = groupBy[i]!(row);
    const k0 = keys[0];
    const group = keys.length === 1 && typeof k0 === 'string' ? (this.#keyGroups.get(k0) ?? this.#groupOf(k0)) : null;
    const text = group !== null ? group.text : plan.groupKeyText(keys);
    const args = this.#args;
    const values = this.#argValues;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      values[i] = a === null ? null : a(row);
    }
    if (this.#mode === 'time') this.#processTime(row, raw, text, group, seq);
    else if (this.#mode === 'session') this.#processSession(row, raw, text, seq);
    else {
      let win = this.#groups.get(text);
      if (!win) {
        win = this.#newWin(text, NaN, NaN);
        this.#groups.set(text, win);
      }
      this.#add(win, seq);
      this.#markDirty(win);
      if (!this.#final) this.#emitRow(win, ts, row.partition);
    }
  }

  /**
   * Takes the place of `process` for `count` records with event time
   * `timestamp`, when the plan has a keyRun (tumbling, EMIT FINAL, no WHERE,
   * one GROUP BY field): record k's group string is `keys[k]` and its
   * aggregate arguments `values[k * n .. k * n + n)`, n aggregates (NaN:
   * null). Returns false, changing nothing, when the records' window has
   * closed: `process` then routes each to the late topic.
   */
  processRun(timestamp: number, keys: readonly string[], values: Float64Array, count: number): boolean {
    const starts = this.#windowStarts;
    assignTimeWindows(this.#timeWindow, timestamp, starts);
    const start = starts[0]!;
    const end = start + this.#sizeMs;
    // late, as `process` finds for each record (the window closed: the records are older than stream time, which stays)
    if (end + this.#graceMs <= this.streamTime) return false;
    if (timestamp > this.streamTime) this.streamTime = timestamp;
    const fns = this.#fns;
    const nf = fns.length;
    const groupKeys = this.#keys;
    groupKeys.length = 1;
    for (let k = 0, v = 0; k < count; k++, v += nf) {
      const seq = this.seq++;
      const key = keys[k]!;
      groupKeys[0] = key;
      const group = this.#keyGroups.get(key) ?? this.#groupOf(key);
      let win = group.start === start ? group.win : null;
      if (win === null || win.closed) win = this.#windowOf(group, start, end);
      const states = win.states;
      for (let a = 0; a < nf; a++) {
        const x = values[v + a]!;
        fns[a]!.add(states[a]!, x === x ? x : null, seq);
      }
      this.#markDirty(win);
    }
    // windows that close now are older than this one (it is open): closing them after the run is closing them after its first record
    if (this.streamTime >= this.#nextCloseAt) this.#closeTimeWindows(this.streamTime);
    return true;
  }

  /** A record failing WHERE: nothing (the operator sees only records that pass, as `process` says). */
  skipped(_timestamp: number, _count: number): void {}

  /** The KeyGroup of a one-string key, remembered (a group text built per record would be hashed again on every map lookup). */
  #groupOf(key: string): KeyGroup {
    if (this.#keyGroups.size >= KEY_CACHE_ENTRIES) this.#keyGroups.clear();
    const group: KeyGroup = { text: this.#plan.groupKeyText(this.#keys), start: NaN, win: null };
    this.#keyGroups.set(key, group);
    return group;
  }

  /** Checkpoint row id of a time window or unwindowed group: `t:<start>:<group>` or `g:<group>` (see the module comment). */
  #idOf(w: Win): string {
    return w.id ?? (this.#mode === 'none' ? `g:${w.text}` : `t:${w.start}:${w.text}`);
  }

  #newWin(text: string, start: number, end: number): Win {
    return { id: null, text, keys: this.#keys.slice(), start, end, states: this.#fns.map((f) => f.init()), dirty: false, closed: false };
  }

  /** `win` changed since the last checkpoint delta (see takeDelta). */
  #markDirty(win: Win): void {
    if (win.dirty) return;
    win.dirty = true;
    this.#dirty.push(win);
  }

  #add(win: Win, seq: number): void {
    const fns = this.#fns;
    const values = this.#argValues;
    for (let i = 0; i < fns.length; i++) fns[i]!.add(win.states[i]!, values[i], seq);
  }

  #processTime(row: SourceRow, raw: RawValue, text: string, group: KeyGroup | null, seq: number): void {
    const ts = row.timestamp;
    const starts = this.#windowStarts;
    const n = assignTimeWindows(this.#timeWindow, ts, starts);
    let accepted = 0;
    for (let i = 0; i < n; i++) {
      const start = starts[i]!;
      const end = start + this.#sizeMs;
      if (end + this.#graceMs <= this.streamTime) continue;
      accepted++;
      // a key's readings mostly fall in the window its last one did (an open one: closed ones are gone from the maps)
      let win = group !== null && group.start === start ? group.win : null;
      if (win === null || win.closed) win = group !== null ? this.#windowOf(group, start, end) : this.#timeWindowOf(text, start, end);
      this.#add(win, seq);
      this.#markDirty(win);
      if (!this.#final) this.#emitRow(win, start, row.partition);
    }
    if (accepted === 0) {
      this.#emitter.late('WINDOW_CLOSED', 'every window of the record closed (event time beyond the grace period)', row, rawBytes(raw), this.streamTime);
    }
    if (this.streamTime >= this.#nextCloseAt) this.#closeTimeWindows(this.streamTime);
  }

  /** The open time window [start, end) of group text `text`, made (and its start opened) when missing. */
  #timeWindowOf(text: string, start: number, end: number): Win {
    // readings come in time order: most fall in the window the previous one did
    let byGroup = start === this.#lastStart ? this.#lastByGroup : this.#byStart.get(start);
    if (!byGroup) {
      byGroup = new Map();
      this.#byStart.set(start, byGroup);
      this.#insertStart(start);
      const at = end + this.#graceMs;
      if (at < this.#nextCloseAt) this.#nextCloseAt = at;
    }
    this.#lastStart = start;
    this.#lastByGroup = byGroup;
    let win = byGroup.get(text);
    if (win === undefined) {
      win = this.#newWin(text, start, end);
      byGroup.set(text, win);
    }
    return win;
  }

  /** `#timeWindowOf` for a one-string key's group, remembered as the window its last record fell in. */
  #windowOf(group: KeyGroup, start: number, end: number): Win {
    const win = this.#timeWindowOf(group.text, start, end);
    group.start = start;
    group.win = win;
    return win;
  }

  #insertStart(start: number): void {
    const starts = this.#starts;
    let i = starts.length;
    while (i > 0 && starts[i - 1]! > start) i--;
    starts.splice(i, 0, start);
  }

  #closeTimeWindows(streamTime: number): void {
    const starts = this.#starts;
    const closing: Win[] = [];
    while (starts.length && starts[0]! + this.#sizeMs + this.#graceMs <= streamTime) {
      const start = starts.shift()!;
      const byGroup = this.#byStart.get(start)!;
      this.#byStart.delete(start);
      if (start === this.#lastStart) this.#lastStart = NaN;
      const wins = [...byGroup.values()].sort(compareWins);
      for (const w of wins) closing.push(w);
    }
    this.#nextCloseAt = starts.length ? starts[0]! + this.#sizeMs + this.#graceMs : Infinity;
    this.#retire(closing);
  }

  /** Emits (EMIT FINAL) and forgets closed windows, in the order given. */
  #retire(closing: Win[]): void {
    for (const w of closing) {
      if (this.#final) this.#emitRow(w, w.start, 0);
      if (this.#mode !== 'session') {
        w.closed = true;
        this.#deletes.push(this.#idOf(w));
      }
    }
  }

  #processSession(row: SourceRow, raw: RawValue, text: string, seq: number): void {
    const ts = row.timestamp;
    if (ts + this.#graceMs < this.streamTime) {
      this.#emitter.late('WINDOW_CLOSED', 'the session window closed (event time beyond gap + grace period)', row, rawBytes(raw), this.streamTime);
      return;
    }
    let list = this.#sessions.get(text);
    if (!list) {
      list = [];
      this.#sessions.set(text, list);
    }
    const [from, to] = sessionSpan(list, ts, this.#gapMs);
    let win: Win;
    if (from === to) {
      win = this.#newWin(text, ts, ts);
      list.splice(from, 0, win);
    } else {
      win = list[from]!;
      for (let i = from + 1; i < to; i++) {
        const other = list[i]!;
        for (let k = 0; k < this.#fns.length; k++) this.#fns[k]!.merge(win.states[k]!, other.states[k]!);
        if (other.end > win.end) win.end = other.end;
      }
      if (to - from > 1) list.splice(from + 1, to - from - 1);
      if (ts < win.start) win.start = ts;
      if (ts > win.end) win.end = ts;
    }
    this.#add(win, seq);
    this.#dirtySessions.add(text);
    const at = closeTime(this.#plan.window!, win.end);
    if (at < this.#nextCloseAt) this.#nextCloseAt = at;
    if (!this.#final) this.#emitRow(win, win.start, row.partition);
    if (this.streamTime >= this.#nextCloseAt) this.#closeSessions(this.streamTime);
  }

  #closeSessions(streamTime: number): void {
    const closing: Win[] = [];
    let next = Infinity;
    for (const [text, list] of this.#sessions) {
      let kept = 0;
      for (const w of list) {
        const at = closeTime(this.#plan.window!, w.end);
        if (at <= streamTime) closing.push(w);
        else {
          list[kept++] = w;
          if (at < next) next = at;
        }
      }
      if (kept !== list.length) {
        list.length = kept;
        this.#dirtySessions.add(text);
        if (kept === 0) this.#sessions.delete(text);
      }
    }
    this.#nextCloseAt = next;
    closing.sort(compareWins);
    this.#retire(closing);
  }

  #emitRow(win: Win, timestamp: number, inputPartition: number): void {
    const plan = this.#plan;
    const fns = this.#fns;
    const results: unknown[] = new Array(fns.length);
    for (let i = 0; i < fns.length; i++) results[i] = fns[i]!.result(win.states[i]!);
    const windowed = this.#mode !== 'none';
    const group: GroupRow = {
      keys: win.keys,
      aggregates: results,
      windowStart: windowed ? win.start : null,
      windowEnd: windowed ? win.end : null,
    };
    if (!plan.having(group)) return;
    this.#emitter.emit(plan.outputKey(group), JSON.stringify(plan.project(group)), timestamp, inputPartition);
  }

  hasOpenWindows(): boolean {
    return this.#mode === 'time' ? this.#starts.length > 0 : this.#mode === 'session' ? this.#sessions.size > 0 : false;
  }

  closeAll(): boolean {
    if (!this.hasOpenWindows()) return false;
    if (this.#mode === 'time') {
      // As if stream time had passed the last open window's close time: later records for these windows are late.
      const lastEnd = this.#starts[this.#starts.length - 1]! + this.#sizeMs;
      this.streamTime = Math.max(this.streamTime, lastEnd + this.#graceMs);
      this.#closeTimeWindows(this.streamTime);
    } else {
      let lastEnd = -Infinity;
      for (const list of this.#sessions.values()) for (const w of list) if (w.end > lastEnd) lastEnd = w.end;
      this.streamTime = Math.max(this.streamTime, closeTime(this.#plan.window!, lastEnd));
      this.#closeSessions(this.streamTime);
    }
    return true;
  }

  takeDelta(): { upserts: Array<[string, string]>; deletes: string[] } {
    const upserts: Array<[string, string]> = [];
    for (const w of this.#dirty) {
      w.dirty = false;
      if (w.closed) continue;
      upserts.push([this.#idOf(w), JSON.stringify(this.#mode === 'none' ? [w.keys, w.states] : [w.keys, w.start, w.end, w.states])]);
    }
    this.#dirty = [];
    const deletes = this.#deletes;
    this.#deletes = [];
    for (const text of this.#dirtySessions) {
      const list = this.#sessions.get(text);
      if (list && list.length) upserts.push([`s:${text}`, JSON.stringify([list[0]!.keys, list.map((w) => [w.start, w.end, w.states])])]);
      else deletes.push(`s:${text}`);
    }
    this.#dirtySessions.clear();
    return { upserts, deletes };
  }

  restore(streamTime: number, seq: number, rows: ReadonlyMap<string, string>): void {
    this.streamTime = streamTime;
    this.seq = seq;
    const plan = this.#plan;
    for (const [id, json] of rows) {
      const v = JSON.parse(json) as unknown[];
      const keys = v[0] as unknown[];
      const text = plan.groupKeyText(keys);
      if (id.startsWith('g:')) {
        this.#groups.set(text, { id, text, keys, start: NaN, end: NaN, states: v[1] as AggState[], dirty: false, closed: false });
      } else if (id.startsWith('t:')) {
        const start = v[1] as number;
        let byGroup = this.#byStart.get(start);
        if (!byGroup) {
          byGroup = new Map();
          this.#byStart.set(start, byGroup);
          this.#insertStart(start);
        }
        byGroup.set(text, { id, text, keys, start, end: v[2] as number, states: v[3] as AggState[], dirty: false, closed: false });
      } else if (id.startsWith('s:')) {
        const list = (v[1] as Array<[number, number, AggState[]]>).map(([start, end, states]) => ({ id, text, keys, start, end, states, dirty: false, closed: false }));
        this.#sessions.set(text, list);
        for (const w of list) this.#nextCloseAt = Math.min(this.#nextCloseAt, closeTime(plan.window!, w.end));
      }
    }
    if (this.#starts.length) this.#nextCloseAt = this.#starts[0]! + this.#sizeMs + this.#graceMs;
  }
}
