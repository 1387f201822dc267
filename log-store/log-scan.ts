/**
 * Sequential scanning and reading of a `.log` file: the one place that
 * walks batches byte by byte (recovery, index rebuilds, verify). It checks
 * framing, CRC and base-offset continuity and stops at the first problem;
 * it never throws for bad data, only for I/O errors (as LogError).
 */
import type { LogFileHandle } from './file-system.ts';
import { fromFsError } from './errors.ts';
import { BATCH_HEADER_BYTES, type BatchHeader, batchCrcOk, readBatchHeader } from './record-batch.ts';

const SCAN_CHUNK_BYTES = 1024 * 1024;

/** A problem found while scanning a `.log`: the first byte position that is not a valid batch. */
export interface ScanProblem {
  position: number;
  message: string;
  /** True when the file simply ends inside a batch (a torn write), false for a checksum or framing failure. */
  torn: boolean;
}

export interface ScanResult {
  validBytes: number;
  nextOffset: number;
  maxTimestamp: number;
  batches: number;
  records: number;
  problem: ScanProblem | null;
}

export interface BatchVisit {
  position: number;
  header: BatchHeader;
  /** The buffer holding the batch, which starts at `at`. */
  buf: Buffer;
  at: number;
}

/**
 * Reads batches from `startPos` to `fileSize`, checking framing, CRC and
 * offset continuity, and stops at the first problem. Never throws for bad
 * data; rejects only on I/O errors.
 */
export async function scanLog(
  fh: LogFileHandle,
  file: string,
  fileSize: number,
  startPos: number,
  startOffset: number,
  startMaxTs: number,
  onBatch?: (visit: BatchVisit) => void,
): Promise<ScanResult> {
  const result: ScanResult = { validBytes: startPos, nextOffset: startOffset, maxTimestamp: startMaxTs, batches: 0, records: 0, problem: null };
  let chunk = Buffer.alloc(0);
  let chunkPos = startPos;
  let pos = startPos;
  const load = async (need: number): Promise<void> => {
    const len = Math.min(Math.max(need, SCAN_CHUNK_BYTES), fileSize - pos);
    if (chunk.length < len) chunk = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = await readAt(fh, file, chunk, got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    chunk = chunk.subarray(0, got);
    chunkPos = pos;
  };
  await load(BATCH_HEADER_BYTES);
  while (pos < fileSize) {
    const remaining = fileSize - pos;
    if (remaining < BATCH_HEADER_BYTES) {
      result.problem = { position: pos, message: `torn batch header: ${remaining} bytes at end of file`, torn: true };
      break;
    }
    if (pos + BATCH_HEADER_BYTES > chunkPos + chunk.length) await load(BATCH_HEADER_BYTES);
    let header: BatchHeader;
    try {
      header = readBatchHeader(chunk, pos - chunkPos);
    } catch (err) {
      result.problem = { position: pos, message: (err as Error).message, torn: false };
      break;
    }
    if (header.totalBytes > remaining) {
      result.problem = { position: pos, message: `torn batch: ${header.totalBytes} bytes announced, ${remaining} present`, torn: true };
      break;
    }
    if (pos + header.totalBytes > chunkPos + chunk.length) await load(header.totalBytes);
    const at = pos - chunkPos;
    if (!batchCrcOk(chunk, at, header)) {
      result.problem = { position: pos, message: `batch CRC mismatch at offset ${result.nextOffset}`, torn: false };
      break;
    }
    if (header.baseOffset !== result.nextOffset) {
      result.problem = { position: pos, message: `batch base offset ${header.baseOffset}, expected ${result.nextOffset}`, torn: false };
      break;
    }
    onBatch?.({ position: pos, header, buf: chunk, at });
    result.batches++;
    result.records += header.recordCount;
    result.nextOffset += header.recordCount;
    if (header.maxTimestamp > result.maxTimestamp) result.maxTimestamp = header.maxTimestamp;
    pos += header.totalBytes;
    result.validBytes = pos;
  }
  return result;
}

export async function readAt(fh: LogFileHandle, file: string, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  try {
    return await fh.read(buf, offset, length, position);
  } catch (err) {
    throw fromFsError(err, 'read', { file, position });
  }
}

/** Reads exactly `length` bytes at `position` (into a buffer from `alloc`), or fewer at end of file. */
export async function readFully(fh: LogFileHandle, file: string, length: number, position: number, alloc: (length: number) => Buffer = Buffer.allocUnsafe): Promise<Buffer> {
  const buf = alloc(length);
  let got = 0;
  while (got < length) {
    const n = await readAt(fh, file, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}
