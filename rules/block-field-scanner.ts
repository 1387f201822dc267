/**
 * The rules' hot path: validates a whole block of record values and finds
 * the top-level fields a plan reads, in one WebAssembly call per block
 * (rules/json-scan.wat, sixteen bytes at a time with SIMD), instead of a
 * JavaScript scan per record.
 *
 * Contract (field-extractor.ts's): when `fill(i, row)` returns true,
 * `row[name]` holds exactly what `getField(JSON.parse(text), name,
 * caseSensitive)` returns for each field, `text` being record i's value
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
 */
import { JSON_SCAN_WASM } from './json-scan-wasm.ts';
import { StringCache, type ValueField } from './field-extractor.ts';
import type { Row } from './plan.ts';

/** The parts of the WebAssembly API used here (the project's TypeScript libraries do not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: object };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface JsonScanExports {
  memory: WasmMemory;
  init(): void;
  scan(n: number, starts: number, ends: number, out: number, nf: number): number;
}

/** Layout of the module's memory (see json-scan.wat). */
const FIELD_TABLE = 256;
const NAMES = 512;
const NAME_SLOT = 128;
/** The fields' string caches: per field, CACHE_ENTRIES entries of 64 bytes (i32 length, then the bytes). */
const CACHES = 8192;
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

let compiled: object | null = null;

/** The module, compiled once per process. */
function jsonScanModule(): object {
  compiled ??= new wasmApi.Module(Buffer.from(JSON_SCAN_WASM, 'base64'));
  return compiled;
}

const KIND_ABSENT = 0;
const KIND_ASCII = 1;
const KIND_NUMBER = 3;
const KIND_NUMBER_TEXT = 4;
const KIND_TRUE = 5;
const KIND_FALSE = 6;
const KIND_NULL = 7;

export class BlockFieldScanner {
  readonly fields: readonly ValueField[];
  readonly #wasm: JsonScanExports;
  /** Per field, created on its first plain string not in the module's cache (about 240 KB each; numeric fields never need one). */
  readonly #caches: Array<StringCache | null>;
  /** Per field, the string of each entry of its cache in the module's memory. */
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

  /** Whether a scanner can take these fields (else use FieldExtractor alone). */
  static supports(fields: readonly ValueField[]): boolean {
    return fields.length > 0 && fields.length <= MAX_FIELDS && fields.every((f) => Buffer.byteLength(f.name, 'utf8') <= MAX_NAME_BYTES);
  }

  /** `fields`: as FieldExtractor's; `supports(fields)` must hold. */
  constructor(fields: readonly ValueField[]) {
    if (!BlockFieldScanner.supports(fields)) throw new RangeError(`a block scanner takes 1 to ${MAX_FIELDS} fields of at most ${MAX_NAME_BYTES} bytes`);
    this.fields = fields;
    this.#names = fields.map((f) => f.name);
    this.#caches = fields.map(() => null);
    this.#marks = fields.map(() => null);
    this.#runIndex = new Int32Array(fields.length).fill(-1);
    this.#runValue = fields.map(() => '');
    this.#cached = fields.map(() => new Array<string>(CACHE_ENTRIES).fill(''));
    this.#dataAt = CACHES + fields.length * CACHE_BYTES;
    this.#wasm = new wasmApi.Instance(jsonScanModule()).exports as unknown as JsonScanExports;
    const memory = this.#wasm.memory;
    memory.grow(Math.ceil((this.#dataAt + SLACK - memory.buffer.byteLength) / PAGE));
    this.#wasm.init();
    this.#bytes = Buffer.alloc(0);
    this.#ints = new Int32Array(0);
    this.#floats = new Float64Array(0);
    this.#views();
    // the field table: each name, and its upper-case form when matched ignoring case and ASCII
    const table = new DataView(this.#wasm.memory.buffer);
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
    // empty cache entries
    for (let f = 0; f < fields.length; f++) for (let e = 0; e < CACHE_ENTRIES; e++) table.setInt32(CACHES + f * CACHE_BYTES + e * 64, -1, true);
    this.#strideWords = 2 + fields.length * 6;
  }

  #views(): void {
    const buffer = this.#wasm.memory.buffer;
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
    const DATA = this.#dataAt;
    const startsAt = align(DATA + (hi - lo) + SLACK, 16);
    const endsAt = startsAt + count * 4;
    const outAt = align(endsAt + count * 4, 8);
    const need = outAt + count * this.#strideWords * 4 + SLACK;
    const memory = this.#wasm.memory;
    if (need > memory.buffer.byteLength) {
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
      this.#views();
    }
    buf.copy(this.#bytes, DATA, lo, hi);
    const ints = this.#ints;
    const delta = DATA - lo;
    const s = startsAt >> 2;
    const e = endsAt >> 2;
    for (let i = 0; i < count; i++) {
      ints[s + i] = starts[i]! + delta;
      ints[e + i] = ends[i]! + delta;
    }
    this.#wasm.scan(count, startsAt, endsAt, outAt, this.fields.length);
    this.#outWord = outAt >> 2;
    this.#count = count;
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

  /** Fills `row` with record i's fields (see the module comment); false: FieldExtractor decides. */
  fill(i: number, row: Row): boolean {
    if (i >= this.#count) return false;
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
          const entry = ints[w + 3]! & (CACHE_ENTRIES - 1);
          // the same bytes as this field's string in the record the module names, if that is the one filled last
          if ((word & SAME_RUN) !== 0 && ints[w + 4] === this.#runIndex[f]) value = this.#runValue[f];
          else if ((word & CACHED) !== 0) value = this.#cached[f]![entry];
          else {
            const start = ints[w + 1]! + 1;
            const end = ints[w + 2]! - 1;
            const text = (this.#caches[f] ??= new StringCache()).get(this.#bytes, start, end, ints[w + 3]!);
            // once per entry and block
            const marks = (this.#marks[f] ??= new Int32Array(CACHE_ENTRIES));
            if (end - start <= CACHE_STRING && marks[entry] !== this.#scans) {
              marks[entry] = this.#scans;
              this.#pending.push(f, entry, text);
            }
            value = text;
          }
          this.#runIndex[f] = i;
          this.#runValue[f] = value as string;
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
      row[names[f]!] = value;
    }
    return true;
  }
}

function align(n: number, to: number): number {
  return (n + to - 1) & ~(to - 1);
}
