/**
 * Raw capture files: every raw frame a device sent, with its receive time,
 * so a field session can be replayed on a laptop through the same decoders
 * (`millstream capture replay <file>`).
 *
 * Format (JSON Lines, UTF-8, one object per line, appended in receive order):
 *
 *   {"format":"millstream-capture","version":1}                          ← first line of the file
 *   {"t":1581682767000,"kind":"serial","device":"line-1","data":"eyJzZW5z..."}
 *   {"t":1581682767004,"kind":"serial","device":"line-1","event":"disconnect"}
 *   {"t":1581682767010,"kind":"mqtt","device":"broker","topic":"factory/w01/aa-101/reading","data":"eyJ..."}
 *   {"t":1581682767020,"kind":"modbus-tcp","device":"plc-1","dir":"tx","data":"AAEAAAAGAQMAAAAK","meta":{"unitId":1}}
 *   {"t":1581682768000,"event":"dropped","count":12}
 *
 * - `t`: receive time, ms since the epoch.
 * - `kind`: source kind; `device`: configured device name.
 * - `data`: the raw bytes, base64. For serial it is each chunk exactly as
 *   read from the port (not yet split into lines), so replay reproduces
 *   partial lines, overlong lines and bad bytes. For MQTT it is the payload.
 * - `topic`: the MQTT topic. `dir`: 'rx' (from the device, the default) or
 *   'tx' (a request we sent, Modbus). `meta`: free JSON for the adapter.
 * - `event`: a frame without data: 'disconnect' (the device went away; the
 *   live framer dropped its partial line and replay does the same) or
 *   'dropped' (the writer fell `maxBufferedBytes` behind and skipped `count`
 *   frames; capture never slows the adapters down).
 */
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { BridgeError } from './errors.ts';
import type { SourceKind } from './types.ts';

export const CAPTURE_FORMAT = 'millstream-capture';
export const CAPTURE_VERSION = 1;

export interface CaptureFrame {
  /** Receive time, ms since the epoch. */
  receivedAt: number;
  kind: SourceKind;
  device: string;
  /** Raw bytes (absent for events). */
  data?: Uint8Array;
  /** MQTT topic. */
  topic?: string;
  /** Direction; default 'rx'. */
  direction?: 'rx' | 'tx';
  /** 'disconnect' marks a device that went away (no data). */
  event?: 'disconnect';
  meta?: Record<string, unknown>;
}

/** A frame read back; `dropped` entries report frames the writer skipped. */
export type CaptureEntry = { type: 'frame'; frame: CaptureFrame; line: number } | { type: 'dropped'; count: number; receivedAt: number; line: number };

export interface CaptureWriter {
  /** Queues one frame; never blocks nor throws for I/O (errors are reported by `close()` and counted). */
  write(frame: CaptureFrame): void;
  /** Frames skipped because the file fell behind. */
  readonly dropped: number;
  /** Flushes and closes; rejects with the first write error, if any. Idempotent. */
  close(): Promise<void>;
}

export interface CaptureWriterOptions {
  /** Skip frames (counting them) while more than this many bytes wait for the disk. Default 8388608 (8 MiB). */
  maxBufferedBytes?: number;
}

export function encodeCaptureFrame(frame: CaptureFrame): string {
  const out: Record<string, unknown> = { t: frame.receivedAt, kind: frame.kind, device: frame.device };
  if (frame.topic !== undefined) out.topic = frame.topic;
  if (frame.direction === 'tx') out.dir = 'tx';
  if (frame.event) out.event = frame.event;
  if (frame.data) out.data = Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength).toString('base64');
  if (frame.meta) out.meta = frame.meta;
  return JSON.stringify(out);
}

/** Opens (appending) a capture file; writes the format line when the file is new or empty. */
export function openCaptureWriter(path: string, options: CaptureWriterOptions = {}): CaptureWriter {
  const maxBufferedBytes = options.maxBufferedBytes ?? 8 * 1024 * 1024;
  const isNew = !existsSync(path) || statSync(path).size === 0;
  const stream = createWriteStream(path, { flags: 'a' });
  let failure: Error | null = null;
  let dropped = 0;
  let droppedSinceMarker = 0;
  let closed: Promise<void> | null = null;
  stream.on('error', (err) => {
    failure ??= new BridgeError('BRIDGE_CAPTURE_FORMAT', `capture file ${path}: ${err.message}`, { path }, err);
  });
  if (isNew) stream.write(`${JSON.stringify({ format: CAPTURE_FORMAT, version: CAPTURE_VERSION })}\n`);
  return {
    get dropped() {
      return dropped;
    },
    write(frame) {
      if (closed || failure) return;
      if (stream.writableLength > maxBufferedBytes) {
        dropped++;
        droppedSinceMarker++;
        return;
      }
      if (droppedSinceMarker > 0) {
        stream.write(`${JSON.stringify({ t: frame.receivedAt, event: 'dropped', count: droppedSinceMarker })}\n`);
        droppedSinceMarker = 0;
      }
      stream.write(`${encodeCaptureFrame(frame)}\n`);
    },
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        if (droppedSinceMarker > 0) stream.write(`${JSON.stringify({ t: Date.now(), event: 'dropped', count: droppedSinceMarker })}\n`);
        stream.end(() => (failure ? reject(failure) : resolve()));
      });
      return closed;
    },
  };
}

const KINDS: ReadonlySet<string> = new Set(['serial', 'modbus-rtu', 'modbus-tcp', 'mqtt']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * `text` decoded when it is base64 (the characters of BASE64, padding at
 * most at the end), else null. Canonical base64, what the writer writes,
 * re-encodes to itself: that check costs a third of the regular
 * expression's scan; anything else gets the scan.
 */
function decodeBase64(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text || BASE64.test(text) ? bytes : null;
}

/** Parses one line (1-based `line` for messages). Throws BRIDGE_CAPTURE_FORMAT naming file and line. */
export function parseCaptureLine(text: string, line: number, file = 'capture'): CaptureEntry | null {
  if (text.trim() === '') return null;
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    return formatError(file, line, `not JSON (${(err as Error).message})`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return formatError(file, line, 'not a JSON object');
  if (obj.format !== undefined) {
    if (obj.format !== CAPTURE_FORMAT || obj.version !== CAPTURE_VERSION) formatError(file, line, `unsupported capture format ${JSON.stringify(obj.format)} version ${JSON.stringify(obj.version)}`);
    return null;
  }
  if (typeof obj.t !== 'number' || !Number.isFinite(obj.t)) formatError(file, line, '"t" (receive time, ms) must be a number');
  if (obj.event === 'dropped') return { type: 'dropped', count: Number(obj.count) || 0, receivedAt: obj.t as number, line };
  if (typeof obj.kind !== 'string' || !KINDS.has(obj.kind)) formatError(file, line, `"kind" must be one of ${[...KINDS].join(', ')}`);
  if (typeof obj.device !== 'string' || obj.device === '') formatError(file, line, '"device" must be a non-empty string');
  const frame: CaptureFrame = { receivedAt: obj.t as number, kind: obj.kind as SourceKind, device: obj.device as string };
  if (obj.event !== undefined) {
    if (obj.event !== 'disconnect') formatError(file, line, `unknown event ${JSON.stringify(obj.event)}`);
    frame.event = 'disconnect';
  } else {
    const data = typeof obj.data === 'string' ? decodeBase64(obj.data) : null;
    if (data === null) return formatError(file, line, '"data" must be base64');
    frame.data = data;
  }
  if (obj.topic !== undefined) {
    if (typeof obj.topic !== 'string') formatError(file, line, '"topic" must be a string');
    frame.topic = obj.topic as string;
  }
  if (obj.dir !== undefined) {
    if (obj.dir !== 'rx' && obj.dir !== 'tx') formatError(file, line, '"dir" must be "rx" or "tx"');
    frame.direction = obj.dir as 'rx' | 'tx';
  }
  if (obj.meta !== undefined) frame.meta = obj.meta as Record<string, unknown>;
  return { type: 'frame', frame, line };
}

function formatError(file: string, line: number, why: string): never {
  throw new BridgeError('BRIDGE_CAPTURE_FORMAT', `${file}:${line}: ${why}`, { path: file, line });
}

/**
 * Reads a capture file in order, streaming (constant memory: one read
 * chunk and one partial line). Throws BRIDGE_CAPTURE_FORMAT at the first
 * bad line, after handing out the entries before it. Lines end at LF,
 * CR LF or a lone CR (as node:readline splits them); they are cut from the
 * bytes at LF, which never occurs inside a UTF-8 sequence, and decoded
 * whole (bytes that are not UTF-8 become U+FFFD, as a string decoder makes
 * them).
 */
export async function* readCapture(path: string): AsyncGenerator<CaptureEntry> {
  for await (const entries of readCaptureBatches(path)) yield* entries;
}

/**
 * `readCapture`, the entries of one read chunk at a time (what replay
 * reads: one asynchronous step per chunk instead of per entry).
 */
export async function* readCaptureBatches(path: string): AsyncGenerator<CaptureEntry[]> {
  const input = createReadStream(path);
  let n = 0;
  /** The line begun at the end of the last chunk(s). */
  let partial: Buffer[] = [];
  /** Lines cut from the current chunk. */
  let lines: string[] = [];
  const cut = (bytes: Buffer): void => {
    const text = bytes.toString('utf8');
    if (!text.includes('\r')) {
      lines.push(text);
      return;
    }
    // CR LF, or a lone CR: readline's line ends too.
    for (const piece of (text.endsWith('\r') ? text.slice(0, -1) : text).split('\r')) lines.push(piece);
  };
  /** Parses the cut lines; a bad one throws after the entries before it are handed out. */
  async function* parsed(): AsyncGenerator<CaptureEntry[]> {
    const entries: CaptureEntry[] = [];
    const cutLines = lines;
    lines = [];
    try {
      for (const text of cutLines) {
        const entry = parseCaptureLine(text, ++n, path);
        if (entry) entries.push(entry);
      }
    } catch (err) {
      if (entries.length > 0) yield entries;
      throw err;
    }
    if (entries.length > 0) yield entries;
  }
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        cut(partial.length === 0 ? piece : Buffer.concat([...partial, piece]));
        partial = [];
        start = nl + 1;
      }
      if (start < chunk.length) partial.push(chunk.subarray(start));
      yield* parsed();
    }
    if (partial.length > 0) cut(Buffer.concat(partial));
    yield* parsed();
  } finally {
    input.destroy();
  }
}
