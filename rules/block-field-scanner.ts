/**
 * The rules' hot path: validates a whole block of record values and finds
 * the top-level fields a plan reads, in one WebAssembly call per block
 * (rules/json-scan.wat, sixteen bytes at a time with SIMD), instead of a
 * JavaScript scan per record.
 *
 * Contract (field-extractor.ts's): when `fill(i, values)` returns true,
 * `values[k]` holds exactly what `getField(JSON.parse(text), name,
 * caseSensitive)` returns for field k, `text` being record i's value
 * decoded as UTF-8, and the whole value has been validated as JSON. When
 * it returns false, the scanner declined (invalid JSON, not an object, a key
 * with escapes or non-ASCII bytes, a key filling two fields, a field's key
 * twice, nesting deeper than 64): the caller asks `FieldExtractor` (the
 * JavaScript scanner, same contract), which then decides.
 *
 * Each scanner owns a WebAssembly memory holding a string cache per field
 * (256 KiB each: readings repeat their ids, colours and timestamp texts, and
 * a string found there costs no bytes compared in JavaScript), a copy of the
 * last block's values and the per-record results; it grows to the largest
 * block scanned (about the bytes of `batchRecords` values) and is kept.
 * A closed scanner's memory goes to the next scanner of as many fields
 * (a rule restarted or reloaded; see IDLE_MEMORIES): fresh memory is paid
 * in page faults as the first blocks fill it.
 *
 * Two threads. The memory is shared: a block of more than one slice
 * (`sliceRecords`) is handed to the scan worker (scan-worker.ts, one per
 * process), which scans its slices in order while this thread fills rows
 * (and runs the rule) from the slices already scanned. A slice this thread
 * needs before the worker has taken it, it scans itself, so neither thread
 * waits for the other unless the worker is inside the very slice needed.
 * Each slice's state word moves FREE -> WORKER | MAIN -> DONE with
 * compare-and-swap, so a slice is scanned once; the results are the same
 * whichever thread scans it (the caches are only written between blocks).
 */
import { JSON_SCAN_WASM } from './json-scan-wasm.ts';
import { StringCache, type ValueField } from './field-extractor.ts';
import { JOB_WORDS, MAX_SLICES, SCRATCH, SCRATCH_BYTES, SLICE_DONE, SLICE_FAILED, SLICE_FREE, SLICE_MAIN, SLICE_WORKER, type ScanWorker, scanWorker } from './scan-worker.ts';

/** The parts of the WebAssembly API used here (the project's TypeScript libraries do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface JsonScanExports {
  init(): void;
  bind(scratch: number): void;
  scan(n: number, starts: number, ends: number, out: number, nf: number, base: number): number;
}

/** Layout of the module's memory (see json-scan.wat). */
const FIELD_TABLE = 256;
const NAMES = 512;
const NAME_SLOT = 128;
/** The fields' string caches: per field, CACHE_ENTRIES entries of 64 bytes (i32 length, then the bytes). */
const CACHES = 16_384;
const CACHE_ENTRIES = 4096;
const CACHE_BYTES = CACHE_ENTRIES * 64;
/** Longest string a cache entry holds. */
const CACHE_STRING = 48;
/** Kind-word flag: a plain string whose bytes are in its field's cache entry (see json-scan.wat). */
const CACHED = 0x10000;
/** Kind-word flag: a plain string equal to the field's in an earlier record of the block, whose index is in the f64's low word. */
const SAME_RUN = 0x20000;
/** Bytes the scanner may read past a value's end. */
const SLACK = 16;
const MAX_FIELDS = 16;
/** Longest field name the table holds (its slot, less the bytes compared past the end). */
const MAX_NAME_BYTES = NAME_SLOT - SLACK;
const PAGE = 65_536;
/** The memory's largest size (1 GiB): a shared memory reserves it up front (address space, not RAM). */
const MAX_PAGES = 16_384;
/** Records per slice, by default: big enough that handing slices over costs little, small enough that the threads share a block. */
const SLICE_RECORDS = 2048;
/** How long to wait for the worker inside one slice before scanning it here (it hung or died). */
const WORKER_WAIT_MS = 5000;

let compiled: object | null = null;

/**
 * Memories of closed scanners kept for the next ones (see `close`): at most
 * IDLE_MEMORIES, each for a scanner of the same number of fields (the same
 * layout, so a scan message the worker still holds for the closed one meets
 * job words, as scan-worker.ts requires), dropped after IDLE_MEMORY_MS
 * unused. Measured on the bench's filter rule (one scanner per run, runs in
 * one process, alternating with and without): medians 2.42M/2.40M against
 * 2.53M/2.67M records/s, means +7%.
 */
const IDLE_MEMORIES = 2;
const IDLE_MEMORY_MS = 10_000;
const idleMemories: Array<{ memory: WasmMemory; fields: number }> = [];
let idleTimer: ReturnType<typeof setTimeout> | null = null;

/** The module, compiled once per process (the worker gets it from here). */
export function jsonScanModule(): object {
  compiled ??= new wasmApi.Module(Buffer.from(JSON_SCAN_WASM, 'base64'));
  return compiled;
}

const KIND_ABSENT = 0;
const KIND_ASCII = 1;
const KIND_STRING = 2;
const KIND_NUMBER = 3;
const KIND_NUMBER_TEXT = 4;
const KIND_TRUE = 5;
const KIND_FALSE = 6;
const KIND_NULL = 7;

export interface BlockScannerOptions {
  /** Scan blocks of more than one slice on the scan worker too. Default: when the machine has more than one CPU. */
  worker?: boolean;
  /** Records per slice (default 2048). */
  sliceRecords?: number;
}

export class BlockFieldScanner {
  readonly fields: readonly ValueField[];
  readonly #wasm: JsonScanExports;
  readonly #memory: WasmMemory;
  /** The worker scanning with this thread, while it works (null: scan here only; undefined: not asked for yet, see `scan`). */
  #worker: ScanWorker | null | undefined;
  /** `options.worker`. */
  readonly #force: boolean;
  /** This scanner's id at the worker (0: not registered yet). */
  #workerId = 0;
  /** Records per slice, at least (`sliceRecords`), and of the last block's slices. */
  readonly #sliceRecords: number;
  #slice = 1;
  /** Per slice of the last block: 1 when its results are in place for `fill`. */
  #ready = new Uint8Array(0);
  /** Slices of the last block, and where their job words start (32-bit words). */
  #slices = 0;
  /** The job table (see scan-worker.ts), at a fixed place before the data: its first word is the block number. */
  readonly #jobsAt: number;
  #blocks = 0;
  /** Slices scanned by the worker and by this thread (of blocks handed to the worker). */
  #byWorker = 0;
  #byHere = 0;
  /** This thread found the worker inside a slice it needed, past the block's first: in the block handed over before this one, and in this one. */
  #caughtUp = false;
  #caughtUpNow = false;
  /** Per field, created on its first plain string not in the module's cache (about 240 KB each; numeric fields never need one). */
  readonly #caches: Array<StringCache | null>;
  /** Per field, the string of each entry of its cache in the module's memory ('' for an entry never filled, as the module's length 0 says). */
  readonly #cached: string[][];
  /** Strings made since the last scan, to enter in the caches before the next: field, entry, string, ... (an entry once per scan). */
  #pending: Array<number | string> = [];
  /** Per field, the scan number at which each cache entry was last put in `#pending`. */
  readonly #marks: Array<Int32Array | null>;
  /** Scans so far. */
  #scans = 0;
  /** Per field, the record (of this block) whose plain string `fill` returned last, and that string. */
  readonly #runIndex: Int32Array;
  readonly #runValue: string[];
  readonly #names: string[];
  /** Where the data starts: after the string caches. */
  readonly #dataAt: number;
  /** Views of the memory (renewed when it grows). */
  #bytes: Buffer;
  #ints: Int32Array;
  #floats: Float64Array;
  /** Where the last block's results start, and each record's stride, in 32-bit words. */
  #outWord = 0;
  readonly #strideWords: number;
  #count = 0;
  #closed = false;

  /** Whether a scanner can take these fields (else use FieldExtractor alone). */
  static supports(fields: readonly ValueField[]): boolean {
    return fields.length > 0 && fields.length <= MAX_FIELDS && fields.every((f) => Buffer.byteLength(f.name, 'utf8') <= MAX_NAME_BYTES);
  }

  /** `fields`: as FieldExtractor's; `supports(fields)` must hold. */
  constructor(fields: readonly ValueField[], options: BlockScannerOptions = {}) {
    if (!BlockFieldScanner.supports(fields)) throw new RangeError(`a block scanner takes 1 to ${MAX_FIELDS} fields of at most ${MAX_NAME_BYTES} bytes`);
    this.fields = fields;
    this.#names = fields.map((f) => f.name);
    this.#caches = fields.map(() => null);
    this.#marks = fields.map(() => null);
    this.#runIndex = new Int32Array(fields.length).fill(-1);
    this.#runValue = fields.map(() => '');
    this.#cached = fields.map(() => new Array<string>(CACHE_ENTRIES).fill(''));
    this.#jobsAt = CACHES + fields.length * CACHE_BYTES;
    this.#dataAt = this.#jobsAt + (1 + MAX_SLICES) * JOB_WORDS * 4;
    const idle = idleMemories.findIndex((m) => m.fields === fields.length);
    const memory = idle >= 0 ? idleMemories.splice(idle, 1)[0]!.memory : new wasmApi.Memory({ initial: Math.ceil((this.#dataAt + SLACK) / PAGE), maximum: MAX_PAGES, shared: true });
    this.#memory = memory;
    this.#wasm = new wasmApi.Instance(jsonScanModule(), { env: { memory } }).exports as unknown as JsonScanExports;
    this.#wasm.init();
    this.#wasm.bind(SCRATCH);
    this.#sliceRecords = Math.max(1, options.sliceRecords ?? SLICE_RECORDS);
    // the worker thread (an isolate: about 17 MB) starts with the first block worth sharing, not here
    this.#worker = options.worker === false ? null : undefined;
    this.#force = options.worker === true;
    this.#bytes = Buffer.alloc(0);
    this.#ints = new Int32Array(0);
    this.#floats = new Float64Array(0);
    this.#views();
    // the field table: each name, and its upper-case form when matched ignoring case and ASCII
    const table = new DataView(memory.buffer);
    fields.forEach((f, i) => {
      const exactAt = NAMES + i * 2 * NAME_SLOT;
      const upperAt = exactAt + NAME_SLOT;
      const exact = this.#bytes.write(f.name, exactAt, 'utf8');
      const upper = f.name.toUpperCase();
      const upperAscii = !f.caseSensitive && /^[\x00-\x7f]*$/.test(upper);
      if (upperAscii) this.#bytes.write(upper, upperAt, 'latin1');
      table.setInt32(FIELD_TABLE + i * 16, exactAt, true);
      table.setInt32(FIELD_TABLE + i * 16 + 4, exact, true);
      table.setInt32(FIELD_TABLE + i * 16 + 8, upperAt, true);
      table.setInt32(FIELD_TABLE + i * 16 + 12, upperAscii ? upper.length : -1, true);
    });
    // The cache entries start as zeros, length 0: each holds the empty string, as `#cached` does. A new
    // memory is left untouched (a cache's pages take RAM only once strings are entered there); a closed
    // scanner's is cleared, and its block numbers go on (a late scan message for its last block is then
    // for no block of this one's).
    if (idle >= 0) {
      this.#bytes.fill(0, CACHES, CACHES + fields.length * CACHE_BYTES);
      this.#blocks = Atomics.load(this.#ints, this.#jobsAt >> 2);
      // and the worker's key template cleared, as its `bind` does: a scan message for the closed scanner that the worker
      // takes a slice of this one's first block with (see scan-worker.ts) then matches keys to these fields, not to those
      this.#bytes.fill(0xff, SCRATCH + SCRATCH_BYTES, SCRATCH + 2 * SCRATCH_BYTES);
    }
    this.#strideWords = 2 + fields.length * 6;
  }

  #views(): void {
    const buffer = this.#memory.buffer;
    this.#bytes = Buffer.from(buffer);
    this.#ints = new Int32Array(buffer);
    this.#floats = new Float64Array(buffer);
  }

  /**
   * Scans values `[starts[i], ends[i])` of `buf` for i in [0, count): the
   * block's values, in any order (`readBatches` gives them ascending, but
   * RecordBlock does not promise it): the bytes from the lowest start to
   * the highest end are copied.
   */
  scan(buf: Buffer, starts: Int32Array, ends: Int32Array, count: number): void {
    // its memory may be another scanner's now
    if (this.#closed) throw new Error('the block scanner is closed');
    // the worker must be out of the memory before it is rewritten (or grown)
    this.#settleAll();
    // no results until this scan has put them in place (a throw below leaves none)
    this.#count = 0;
    this.#runIndex.fill(-1);
    this.#scans++;
    if (count === 0) return;
    this.#enterPending();
    let lo = starts[0]!;
    let hi = ends[0]!;
    for (let i = 1; i < count; i++) {
      if (starts[i]! < lo) lo = starts[i]!;
      if (ends[i]! > hi) hi = ends[i]!;
    }
    // the copy keeps the bytes' alignment to 8: V8 copies into shared memory a byte at a time when
    // source and target are aligned differently (3x slower, measured), a word at a time otherwise
    const DATA = this.#dataAt + ((buf.byteOffset + lo) & 7);
    const startsAt = align(DATA + (hi - lo) + SLACK, 16);
    const endsAt = startsAt + count * 4;
    const outAt = align(endsAt + count * 4, 8);
    const size = Math.max(this.#sliceRecords, Math.ceil(count / MAX_SLICES));
    const slices = Math.ceil(count / size);
    const need = outAt + count * this.#strideWords * 4 + SLACK;
    const memory = this.#memory;
    if (need > memory.buffer.byteLength) {
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
      this.#views();
    }
    // Buffer#fill with a Buffer of the very length is one native memcpy; `copy` (TypedArray#set) into shared memory is
    // V8's relaxed copy, a word at a time (fill takes 20% less time over a 9 MB block, measured)
    this.#bytes.fill(buf.subarray(lo, hi), DATA, DATA + (hi - lo));
    const ints = this.#ints;
    const delta = DATA - lo;
    const s = startsAt >> 2;
    const e = endsAt >> 2;
    for (let i = 0; i < count; i++) {
      ints[s + i] = starts[i]! + delta;
      ints[e + i] = ends[i]! + delta;
    }
    this.#outWord = outAt >> 2;
    const nf = this.fields.length;
    if (slices >= 2 && this.#worker === undefined) this.#worker = scanWorker(this.#force);
    const worker = this.#worker !== null && this.#worker !== undefined && this.#worker.usable ? this.#worker : null;
    if (slices < 2 || worker === null) {
      this.#wasm.scan(count, startsAt, endsAt, outAt, nf, 0);
      this.#slices = 0;
      this.#count = count;
      return;
    }
    // the slices' jobs, then the worker is told; fill scans here any slice the worker has not taken
    const stride = this.#strideWords * 4;
    const block = (this.#blocks = (this.#blocks + 1) | 0);
    Atomics.store(ints, this.#jobsAt >> 2, block);
    for (let k = 0; k < slices; k++) {
      const j = this.#job(k);
      const first = k * size;
      ints[j + 1] = Math.min(size, count - first);
      ints[j + 2] = startsAt + first * 4;
      ints[j + 3] = endsAt + first * 4;
      ints[j + 4] = outAt + first * stride;
      ints[j + 5] = nf;
      ints[j + 6] = first;
      Atomics.store(ints, j, SLICE_FREE);
    }
    if (this.#ready.length < slices) this.#ready = new Uint8Array(slices);
    else this.#ready.fill(0, 0, slices);
    this.#slices = slices;
    this.#slice = size;
    this.#caughtUp = this.#caughtUpNow;
    this.#caughtUpNow = false;
    if (this.#workerId === 0) this.#workerId = worker.open(this.#memory, jsonScanModule(), this.#jobsAt >> 2);
    worker.scan(this.#workerId, block, slices);
    this.#count = count;
  }

  /** The first 32-bit word of slice k's job (see scan-worker.ts). */
  #job(k: number): number {
    return (this.#jobsAt >> 2) + (k + 1) * JOB_WORDS;
  }

  /**
   * Takes slice k from the worker: FREE when this thread now holds it (it was
   * not started), DONE when the worker scanned it (waiting while it was inside
   * it), FAILED when the worker trapped there or hung (then it is given up:
   * this thread scans alone from now on; the results are the same if it ever
   * finishes).
   */
  #claim(k: number, steal = false): number {
    const ints = this.#ints;
    const j = this.#job(k);
    const state = Atomics.compareExchange(ints, j, SLICE_FREE, SLICE_MAIN);
    if (state !== SLICE_WORKER) return state;
    // While the worker is inside slice k, this thread scans the block's last free slices (the worker takes them first to
    // last), when it is the faster of the two: it caught up with the worker past a block's first slice (both start there).
    if (steal) {
      if (k > 0) this.#caughtUpNow = true;
      while ((this.#caughtUpNow || this.#caughtUp) && this.#stealLast(k)) {
        const now = Atomics.load(ints, j);
        if (now !== SLICE_WORKER) return now;
      }
    }
    if (this.#worker && Atomics.wait(ints, j, SLICE_WORKER, WORKER_WAIT_MS) !== 'timed-out') return Atomics.load(ints, j);
    const now = Atomics.load(ints, j);
    if (now !== SLICE_WORKER) return now;
    this.#worker?.fail(`the scan worker took more than ${WORKER_WAIT_MS} ms over one slice`);
    this.#worker = null;
    return SLICE_FAILED;
  }

  /** Scans here the last slice after slice k that the worker has not taken; false when there is none. */
  #stealLast(k: number): boolean {
    const ints = this.#ints;
    for (let m = this.#slices - 1; m > k; m--) {
      if (this.#ready[m] !== 0) continue;
      if (Atomics.compareExchange(ints, this.#job(m), SLICE_FREE, SLICE_MAIN) !== SLICE_FREE) return false;
      this.#scanHere(m);
      return true;
    }
    return false;
  }

  /** Scans slice k (held here: taken back, or the worker failed) and marks it done. */
  #scanHere(k: number): void {
    const ints = this.#ints;
    const j = this.#job(k);
    this.#wasm.scan(ints[j + 1]!, ints[j + 2]!, ints[j + 3]!, ints[j + 4]!, ints[j + 5]!, ints[j + 6]!);
    Atomics.store(ints, j, SLICE_DONE);
    this.#byHere++;
    this.#ready[k] = 1;
  }

  /** Makes record i's results ready (its slice: see `#settle`). */
  #ensure(i: number): void {
    const k = (i / this.#slice) | 0;
    if (this.#ready[k] === 0) this.#settle(k);
  }

  /** Makes slice k's results ready: scanned by the worker, or here. */
  #settle(k: number): void {
    const state = this.#claim(k, true);
    if (state === SLICE_FREE || state === SLICE_FAILED) this.#scanHere(k);
    else {
      this.#byWorker++;
      this.#ready[k] = 1;
    }
  }

  /** Takes back every slice of the last block the worker has not started, and waits for the one it is in. */
  #settleAll(): void {
    for (let k = 0; k < this.#slices; k++) if (this.#ready[k] === 0) this.#claim(k);
    this.#slices = 0;
  }

  /** Slices of blocks handed to the worker: scanned there, and here (taken back, or the worker failed). */
  slices(): { byWorker: number; here: number } {
    return { byWorker: this.#byWorker, here: this.#byHere };
  }

  /** Slices of the last block the worker may still take or is in (0 once it is done with them, or scanned alone). */
  workerPending(): number {
    let n = 0;
    for (let k = 0; k < this.#slices; k++) {
      const state = Atomics.load(this.#ints, this.#job(k));
      if (state === SLICE_FREE || state === SLICE_WORKER) n++;
    }
    return n;
  }

  /**
   * Lets the worker drop its instance of this scanner's memory, and keeps
   * the memory for the next scanner (see IDLE_MEMORIES) when no thread can
   * still write it: the worker is out of it, or never had it, or is not
   * known to hang. The scanner is not used after.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#settleAll();
    this.#count = 0;
    const reusable = this.#workerId === 0 || (this.#worker !== null && this.#worker !== undefined && this.#worker.usable);
    if (this.#workerId !== 0) this.#worker?.close(this.#workerId);
    this.#workerId = 0;
    this.#worker = null;
    if (!reusable || idleMemories.length >= IDLE_MEMORIES) return;
    idleMemories.push({ memory: this.#memory, fields: this.fields.length });
    if (idleTimer !== null) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => BlockFieldScanner.dropIdleMemories(), IDLE_MEMORY_MS);
    idleTimer.unref();
  }

  /** Memories of closed scanners waiting for the next ones. */
  static idleMemories(): number {
    return idleMemories.length;
  }

  /** Drops them now (they go after IDLE_MEMORY_MS anyway). */
  static dropIdleMemories(): void {
    idleMemories.length = 0;
    if (idleTimer !== null) clearTimeout(idleTimer);
    idleTimer = null;
  }

  /**
   * Enters the strings `fill` made since the last scan in the module's
   * caches. Not during `fill`: a record found in an entry must get the
   * string the entry held when the block was scanned.
   */
  #enterPending(): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    const bytes = this.#bytes;
    const ints = this.#ints;
    for (let k = 0; k < pending.length; k += 3) {
      const f = pending[k] as number;
      const entry = pending[k + 1] as number;
      const text = pending[k + 2] as string;
      const at = CACHES + f * CACHE_BYTES + entry * 64;
      bytes.write(text, at + 4, 'latin1');
      ints[at >> 2] = text.length;
      this.#cached[f]![entry] = text;
    }
    this.#pending = [];
  }

  /**
   * How many records from i on (up to `end`, exclusive), one after another,
   * were read here (valid JSON, found) with field `t` holding exactly the
   * string `time` and field `f` holding anything but the string `text`:
   * records a `<f> = '<text>'` filter drops, whose event-time text is the
   * one the caller parsed last, so a filter rule skips the run in one step.
   * With `passed`, the run also takes records whose field `f` is exactly
   * the plain string `text` (those the filter passes): their indices go to
   * `passed[1..]` and their number to `passed[0]` (the run ends when it is
   * full). Decided from the scan's results, without making strings; a
   * record it is unsure of ends the run (the caller then fills it).
   */
  decideRun(i: number, end: number, f: number, text: string, t: number, time: string, passed: Int32Array | null = null): number {
    const last = Math.min(end, this.#count);
    const ints = this.#ints;
    const stride = this.#strideWords;
    const tw = 2 + t * 6;
    const fw = 2 + f * 6;
    const room = passed === null ? 0 : passed.length - 1;
    // #holds for fields t and f, with their run values in locals (written back at the end): this loop takes every record of a filter rule.
    // When f is t (WHERE on the event-time field) each pair of locals stays a record's index and its string, so either is right.
    const cachedT = this.#cached[t]!;
    const cachedF = this.#cached[f]!;
    let runT = this.#runIndex[t]!;
    let valueT = this.#runValue[t]!;
    let runF = this.#runIndex[f]!;
    let valueF = this.#runValue[f]!;
    // records before `ready` have their results in place (#ensure once a slice, not once a record)
    let ready = this.#slices === 0 ? last : i;
    let n = 0;
    let r = i;
    for (; r < last; r++) {
      if (r >= ready) {
        this.#ensure(r);
        ready = ((r / this.#slice) | 0) * this.#slice + this.#slice;
      }
      const w = this.#outWord + r * stride;
      if (ints[w] !== 1) break;
      const tWord = ints[w + tw]!;
      if ((tWord & 0xff) !== KIND_ASCII) break;
      const tv = (tWord & SAME_RUN) !== 0 && ints[w + tw + 4] === runT ? valueT : (tWord & CACHED) !== 0 ? cachedT[ints[w + tw + 3]! & (CACHE_ENTRIES - 1)]! : this.#bytesAre(w + tw, time) ? time : null;
      if (tv !== time) break;
      runT = r;
      valueT = time;
      const fWord = ints[w + fw]!;
      const kind = fWord & 0xff;
      // a string to decode may still equal `text`; anything but a string never does
      if (kind === KIND_STRING) break;
      if (kind !== KIND_ASCII) continue;
      const fv = (fWord & SAME_RUN) !== 0 && ints[w + fw + 4] === runF ? valueF : (fWord & CACHED) !== 0 ? cachedF[ints[w + fw + 3]! & (CACHE_ENTRIES - 1)]! : this.#bytesAre(w + fw, text) ? text : null;
      if (fv !== text) continue;
      runF = r;
      valueF = text;
      if (n === room) break;
      passed![++n] = r;
    }
    this.#runIndex[t] = runT;
    this.#runValue[t] = valueT;
    this.#runIndex[f] = runF;
    this.#runValue[f] = valueF;
    if (passed !== null) passed[0] = n;
    return r - i;
  }

  /** Whether the plain string of the field whose result words are at w has exactly the bytes of `text` (ASCII). */
  #bytesAre(w: number, text: string): boolean {
    const ints = this.#ints;
    const start = ints[w + 1]! + 1;
    const end = ints[w + 2]! - 1;
    if (end - start !== text.length) return false;
    const bytes = this.#bytes;
    for (let k = 0; k < text.length; k++) if (bytes[start + k] !== text.charCodeAt(k)) return false;
    return true;
  }

  /**
   * How many records from i on (up to `end`, exclusive, and at most
   * `keys.length`), one after another, were read here (valid JSON, found)
   * with field `t` holding exactly the string `time`, field `g` a plain
   * string (found or made as `fill` finds or makes it), and each field of `args` (-1:
   * none) a number, null or absent: what an aggregation over those fields
   * needs of them. Record i+k's `g` string goes to `keys[k]`, its argument
   * a's number to `values[k * args.length + a]` (NaN for null or absent:
   * JSON has no NaN, so the scan never finds one). A record it is unsure of
   * ends the run (the caller then fills it). Decided from the scan's
   * results, as `fill` would decide them.
   */
  keyRun(i: number, end: number, t: number, time: string, g: number, args: Int32Array, keys: string[], values: Float64Array): number {
    const last = Math.min(end, this.#count, i + keys.length);
    const ints = this.#ints;
    const floats = this.#floats;
    const stride = this.#strideWords;
    const tw = 2 + t * 6;
    const gw = 2 + g * 6;
    const na = args.length;
    let r = i;
    let v = 0;
    for (; r < last; r++) {
      if (this.#slices !== 0) this.#ensure(r);
      const w = this.#outWord + r * stride;
      if (ints[w] !== 1 || !this.#holds(r, w + tw, t, time)) break;
      const word = ints[w + gw]!;
      if ((word & 0xff) !== KIND_ASCII) break;
      const key = this.#plainString(g, w + gw);
      let a = 0;
      for (; a < na; a++) {
        const f = args[a]!;
        if (f < 0) {
          values[v + a] = NaN;
          continue;
        }
        const aw = w + 2 + f * 6;
        const kind = ints[aw]! & 0xff;
        if (kind === KIND_NUMBER) values[v + a] = floats[(aw + 4) >> 1]!;
        else if (kind === KIND_ABSENT || kind === KIND_NULL) values[v + a] = NaN;
        else break;
      }
      if (a !== na) break;
      // as fill: the record's string is the field's run value from now on
      this.#runIndex[g] = r;
      this.#runValue[g] = key;
      keys[r - i] = key;
      v += na;
    }
    return r - i;
  }

  /** Whether field f of record i (its result words at w) is the plain string `text`; a match becomes the field's run value. */
  #holds(i: number, w: number, f: number, text: string): boolean {
    const ints = this.#ints;
    const word = ints[w]!;
    if ((word & 0xff) !== KIND_ASCII) return false;
    let value: string;
    if ((word & SAME_RUN) !== 0 && ints[w + 4] === this.#runIndex[f]) value = this.#runValue[f]!;
    else if ((word & CACHED) !== 0) value = this.#cached[f]![ints[w + 3]! & (CACHE_ENTRIES - 1)]!;
    else if (this.#bytesAre(w, text)) value = text;
    else return false;
    if (value !== text) return false;
    this.#runIndex[f] = i;
    this.#runValue[f] = text;
    return true;
  }

  /**
   * Field f's plain string (its result words at w; kind KIND_ASCII), without
   * making a string when it can: the same bytes as this field's string in the
   * record the module names, if that is the one read last; else the module's
   * cache entry; else made (`#made`). The caller makes it the run value.
   */
  #plainString(f: number, w: number): string {
    const ints = this.#ints;
    const word = ints[w]!;
    if ((word & SAME_RUN) !== 0 && ints[w + 4] === this.#runIndex[f]) return this.#runValue[f]!;
    if ((word & CACHED) !== 0) return this.#cached[f]![ints[w + 3]! & (CACHE_ENTRIES - 1)]!;
    return this.#made(f, w);
  }

  /** Field f's plain string not in the module's cache (its result words at w), made (or found in this thread's cache) and queued for the module's. */
  #made(f: number, w: number): string {
    const ints = this.#ints;
    const start = ints[w + 1]! + 1;
    const end = ints[w + 2]! - 1;
    const text = (this.#caches[f] ??= new StringCache()).get(this.#bytes, start, end, ints[w + 3]!);
    // once per entry and block
    const entry = ints[w + 3]! & (CACHE_ENTRIES - 1);
    const marks = (this.#marks[f] ??= new Int32Array(CACHE_ENTRIES));
    if (end - start <= CACHE_STRING && marks[entry] !== this.#scans) {
      marks[entry] = this.#scans;
      this.#pending.push(f, entry, text);
    }
    return text;
  }

  /** Fills `values` with record i's fields (field k's at k, see the module comment); false: FieldExtractor decides. */
  fill(i: number, values: unknown[]): boolean {
    if (i >= this.#count) return false;
    if (this.#slices !== 0) this.#ensure(i);
    const ints = this.#ints;
    let w = this.#outWord + i * this.#strideWords;
    if (ints[w] !== 1) return false;
    w += 2;
    const names = this.#names;
    for (let f = 0; f < names.length; f++, w += 6) {
      const word = ints[w]!;
      let value: unknown;
      switch (word & 0xff) {
        case KIND_ASCII: {
          const text = this.#plainString(f, w);
          this.#runIndex[f] = i;
          this.#runValue[f] = text;
          value = text;
          break;
        }
        case KIND_NUMBER:
          value = this.#floats[(w + 4) >> 1];
          break;
        case KIND_ABSENT:
        case KIND_NULL:
          value = null;
          break;
        case KIND_TRUE:
          value = true;
          break;
        case KIND_FALSE:
          value = false;
          break;
        case KIND_NUMBER_TEXT:
          value = Number(this.#bytes.toString('latin1', ints[w + 1]!, ints[w + 2]!));
          break;
        default:
          // strings with escapes or non-ASCII bytes (kind 2), objects and arrays (8): JSON.parse of the value's text
          value = JSON.parse(this.#bytes.toString('utf8', ints[w + 1]!, ints[w + 2]!));
      }
      values[f] = value;
    }
    return true;
  }
}

function align(n: number, to: number): number {
  return (n + to - 1) & ~(to - 1);
}
