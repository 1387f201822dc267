/**
 * The decode worker: one thread per process that runs `decodeChunk`
 * (chunk-decode.ts) on the big chunks `readBatches` reads, so their CRC
 * checks and record positions cost the reading thread nothing but a
 * message each way. The chunk's memory moves to the worker and back
 * (transferred, not copied); the reader waits for it, so nothing touches
 * it meanwhile.
 *
 * The thread's program is `decodeChunk`'s and `pickCrc32`'s own source text
 * with a message loop around it (run with `eval`: no file is needed next to
 * the compiled code, so the TypeScript sources and the built ones run it
 * alike); it loads the CRC addon by the path crc32.ts found. The
 * worker keeps the process alive only while a decode is in flight. If it dies, or its
 * answer does not come back whole, `decode` resolves to null and the
 * reader checks and decodes the chunk itself (it reads the chunk again
 * when the worker took it down with it); later reads do not try the worker.
 */
import { Worker } from 'node:worker_threads';
import { type DecodedChunk, decodeChunk } from './chunk-decode.ts';
import { SIMD_CRC32_MODULE, pickCrc32 } from './crc32.ts';

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const pickCrc32 = ${pickCrc32.toString()};
let big = null;
try {
  if (workerData.simdCrc32 !== null) big = require(workerData.simdCrc32).crc32;
} catch {}
const crc32 = pickCrc32(require('node:zlib').crc32, big);
const decodeChunk = ${decodeChunk.toString()};
parentPort.on('message', (m) => {
  const r = decodeChunk(new Uint8Array(m.buffer, 0, m.length), crc32);
  const arrays = [r.meta, r.timestamps, r.keyStarts, r.keyEnds, r.valueStarts, r.valueEnds, r.headerStarts];
  parentPort.postMessage({ id: m.id, buffer: m.buffer, length: m.length, decoded: r, simd: big !== null }, [m.buffer, ...arrays.map((a) => a.buffer)]);
});
`;

/** A chunk back from the worker: its bytes (a new Buffer over the same bytes of the same memory) and what `decodeChunk` found. */
export interface WorkerDecoded {
  chunk: Buffer;
  decoded: DecodedChunk;
}

export interface DecodeWorker {
  /** False once the worker died or could not start. */
  readonly usable: boolean;
  /**
   * Hands `chunk`'s memory to the worker (`chunk` is unusable from the call
   * on) and resolves with it back and decoded; null when the worker failed
   * (the bytes are then gone: read them again). `chunk` must own its whole
   * ArrayBuffer (see `canDecode`, and `owned` there; RangeError otherwise).
   */
  decode(chunk: Buffer, owned?: boolean): Promise<WorkerDecoded | null>;
}

/**
 * Whether `decode` can take `chunk`: its memory is its own (transferable),
 * not a slice of a shared pool. That is so when it spans its whole memory,
 * or when the caller says so (`owned`: the memory is one chunk's alone, as
 * ChunkPool's are, and `chunk` views its start).
 */
export function canDecode(chunk: Buffer, owned = false): boolean {
  const buffer = chunk.buffer;
  return buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.length > 0 && (owned || buffer.byteLength === chunk.length);
}

class ThreadDecoder implements DecodeWorker {
  usable = true;
  #worker: Worker | null;
  #next = 1;
  readonly #waiting = new Map<number, (r: WorkerDecoded | null) => void>();

  constructor() {
    let worker: Worker | null = null;
    try {
      // the CRC addon as this thread found it (crc32.ts): loaded there by its path, so no resolution from the eval'd code
      worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { simdCrc32: SIMD_CRC32_MODULE } });
      worker.on('message', (m: { id: number; buffer: ArrayBuffer; length: number; decoded: DecodedChunk; simd: boolean }) => {
        chunksDecoded++;
        workerSimd = m.simd;
        const resolve = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        if (this.#waiting.size === 0) worker?.unref();
        resolve?.({ chunk: Buffer.from(m.buffer, 0, m.length), decoded: m.decoded });
      });
      worker.on('error', () => this.#fail());
      worker.on('exit', () => this.#fail());
      // idle, it keeps nothing alive (after the listeners: adding a 'message' listener refs it again)
      worker.unref();
    } catch {
      this.usable = false;
    }
    this.#worker = worker;
  }

  #fail(): void {
    this.usable = false;
    this.#worker = null;
    for (const resolve of this.#waiting.values()) resolve(null);
    this.#waiting.clear();
  }

  decode(chunk: Buffer, owned = false): Promise<WorkerDecoded | null> {
    // transferring a pooled Buffer's memory would take its neighbours' bytes too
    if (!canDecode(chunk, owned)) throw new RangeError('the decode worker takes only a Buffer that owns its whole memory');
    const worker = this.#worker;
    if (worker === null || !this.usable) return Promise.resolve(null);
    const id = this.#next++;
    const buffer = chunk.buffer as ArrayBuffer;
    // a decode in flight keeps the process alive, as a file read does
    worker.ref();
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      try {
        worker.postMessage({ id, buffer, length: chunk.length }, [buffer]);
      } catch {
        this.#waiting.delete(id);
        resolve(null);
      }
    });
  }

  /** Tests: the worker dies (as if it crashed). */
  async kill(): Promise<void> {
    await this.#worker?.terminate();
    this.#fail();
  }
}

let shared: ThreadDecoder | null = null;
let chunksDecoded = 0;
let workerSimd: boolean | null = null;

/** Whether the decode worker checks CRCs with the addon (see crc32.ts), as its last answer said; null before any. */
export function decodeWorkerSimdCrc32(): boolean | null {
  return workerSimd;
}

/** Chunks the decode worker has decoded in this process (tests, metrics). */
export function decodeWorkerChunks(): number {
  return chunksDecoded;
}

/** The process's decode worker, started on first use; null once it failed. */
export function decodeWorker(): DecodeWorker | null {
  if (shared === null) shared = new ThreadDecoder();
  return shared.usable ? shared : null;
}

/** Tests: kills the process's decode worker (the next `decodeWorker()` starts none). */
export async function killDecodeWorker(): Promise<void> {
  await (shared ??= new ThreadDecoder()).kill();
}
