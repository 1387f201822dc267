/**
 * The scan worker: one thread per process that scans slices of record
 * blocks for BlockFieldScanner (see there), so a rule's JSON scanning runs
 * beside the thread that runs the rule.
 *
 * Each scanner registers its shared WebAssembly memory once (`open`), with
 * the place of its job table there; the worker makes its own instance of
 * the module on it, bound to the second scratch area. The job table is
 * JOB_WORDS i32 words of header (word 0: the block number), then up to
 * MAX_SLICES jobs of JOB_WORDS words (state, records, starts, ends, out,
 * fields, first record index). `scan` says a block's number and its slice
 * count; the worker takes each slice still FREE (compare-and-swap to WORKER)
 * while the table still holds that block, scans it, stores DONE (FAILED if
 * the module trapped) and wakes a waiter. Slices the scanner took meanwhile
 * are skipped, and so are whole messages that come after their block: the
 * table is at a fixed place, so a late message can only meet job words, and
 * a job it takes is one the table describes now (its words are read after
 * the compare-and-swap).
 *
 * The thread's program is the fixed text below (run with `eval`: it needs no
 * file next to the compiled code, so the TypeScript sources and the built
 * ones run it alike); nothing from rule text is ever in it. The worker is
 * unref'd: it never keeps the process alive. If it dies or hangs, scanners
 * scan alone (`usable` turns false).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** A slice's state word (0: a job word never used). */
export const SLICE_FREE = 1;
export const SLICE_WORKER = 2;
export const SLICE_MAIN = 3;
export const SLICE_DONE = 4;
export const SLICE_FAILED = 5;
/** 32-bit words per slice job (and of the table's header). */
export const JOB_WORDS = 8;
/** Slices a block is cut into at most (bigger slices past it). */
export const MAX_SLICES = 1024;
/** Scratch areas in the module's memory (json-scan.wat): the scanner's thread binds the first, the worker the second. */
export const SCRATCH = 8192;
export const SCRATCH_BYTES = 4096;

const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const FREE = ${SLICE_FREE}, WORKER = ${SLICE_WORKER}, DONE = ${SLICE_DONE}, FAILED = ${SLICE_FAILED}, JOB_WORDS = ${JOB_WORDS};
const scanners = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'open') {
    const exports = new WebAssembly.Instance(m.module, { env: { memory: m.memory } }).exports;
    exports.bind(m.scratch);
    scanners.set(m.id, { exports, memory: m.memory, jobs: m.jobs });
  } else if (m.type === 'close') {
    scanners.delete(m.id);
  } else if (m.type === 'scan') {
    const s = scanners.get(m.id);
    if (s === undefined) return;
    // the memory may have grown since the last block: a view of its current size
    const ints = new Int32Array(s.memory.buffer);
    for (let k = 0, j = s.jobs + JOB_WORDS; k < m.slices; k++, j += JOB_WORDS) {
      // a message for a block the scanner has moved on from
      if (Atomics.load(ints, s.jobs) !== m.block) return;
      if (Atomics.compareExchange(ints, j, FREE, WORKER) !== FREE) continue;
      let state = DONE;
      try {
        s.exports.scan(ints[j + 1], ints[j + 2], ints[j + 3], ints[j + 4], ints[j + 5], ints[j + 6]);
      } catch {
        state = FAILED;
      }
      Atomics.store(ints, j, state);
      Atomics.notify(ints, j);
    }
  }
});
`;

export interface ScanWorker {
  /** False once the worker died, hung or could not start: scanners then scan alone. */
  readonly usable: boolean;
  /** Registers a scanner's memory and where its job table is (32-bit word); returns its id. */
  open(memory: object, module: object, jobWord: number): number;
  /** Hands over the first `slices` jobs of scanner `id`'s table, which holds block number `block`. */
  scan(id: number, block: number, slices: number): void;
  /** Drops scanner `id`'s instance. */
  close(id: number): void;
  /** Stops using the worker (a scanner saw it hang). */
  fail(reason: string): void;
  /** Why the worker is not usable, if it is not. */
  readonly failure: string | null;
}

class ThreadScanWorker implements ScanWorker {
  usable = true;
  failure: string | null = null;
  #worker: Worker;
  #ids = 0;

  constructor() {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true });
    this.#worker.unref();
    this.#worker.on('error', (err) => this.fail(`the scan worker failed: ${err.message}`));
    this.#worker.on('exit', (code) => this.fail(`the scan worker exited (${code})`));
  }

  open(memory: object, module: object, jobWord: number): number {
    const id = ++this.#ids;
    this.#worker.postMessage({ type: 'open', id, memory, module, jobs: jobWord, scratch: SCRATCH + SCRATCH_BYTES });
    return id;
  }

  scan(id: number, block: number, slices: number): void {
    if (this.usable) this.#worker.postMessage({ type: 'scan', id, block, slices });
  }

  close(id: number): void {
    if (this.usable) this.#worker.postMessage({ type: 'close', id });
  }

  fail(reason: string): void {
    if (!this.usable) return;
    this.usable = false;
    this.failure = reason;
    void this.#worker.terminate().catch(() => undefined);
  }
}

let shared: ScanWorker | null = null;
let tried = false;

/**
 * The process's scan worker, started on first use; null on a one-CPU
 * machine (two threads would only take turns) unless `force`, or when it
 * cannot start.
 */
export function scanWorker(force = false): ScanWorker | null {
  if (shared !== null) return shared.usable ? shared : null;
  if (tried) return null;
  if (!force && availableParallelism() < 2) return null;
  tried = true;
  try {
    shared = new ThreadScanWorker();
  } catch {
    shared = null;
  }
  return shared;
}
