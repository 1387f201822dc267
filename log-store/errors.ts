/**
 * The log store's error catalogue. Every error the module throws is a
 * `LogError` with a stable `code`; callers branch on `code` or `retriable`,
 * never on message text. Errors from `node:fs` are translated at the edge
 * (see `fromFsError`).
 */

export type LogErrorCode =
  /** A batch failed its CRC or framing check in a closed segment (or a read hit one). */
  | 'LOG_CORRUPT'
  /** The store (or a partition after a failed fsync) is closed; reopen to recover. */
  | 'LOG_CLOSED'
  /** The requested offset is below the earliest retained or above the end offset. */
  | 'LOG_OUT_OF_RANGE'
  /** Free disk space is below `minFreeBytes`, or the file system said ENOSPC. Retriable. */
  | 'LOG_DISK_FULL'
  /** The file system failed (EIO and the like). */
  | 'LOG_IO'
  /** Another process owns the data directory. */
  | 'LOG_LOCKED'
  /** `createTopic` on a topic that exists with another partition count. */
  | 'LOG_TOPIC_EXISTS'
  | 'LOG_TOPIC_NOT_FOUND'
  /** Bad argument from the caller: topic name, partition number, record shape. */
  | 'LOG_INVALID_ARGUMENT'
  /** A partition hit an unrecoverable write error; every call on it is refused until the store is reopened. */
  | 'LOG_FAILED';

const RETRIABLE: Readonly<Record<LogErrorCode, boolean>> = Object.freeze({
  LOG_CORRUPT: false,
  LOG_CLOSED: false,
  LOG_OUT_OF_RANGE: false,
  LOG_DISK_FULL: true,
  LOG_IO: false,
  LOG_LOCKED: true,
  LOG_TOPIC_EXISTS: false,
  LOG_TOPIC_NOT_FOUND: false,
  LOG_INVALID_ARGUMENT: false,
  LOG_FAILED: false,
});

/** Context fields that make an error actionable: which file, topic, offset. */
export interface LogErrorContext {
  topic?: string;
  partition?: number;
  offset?: number;
  file?: string;
  position?: number;
  /** For LOG_OUT_OF_RANGE: the earliest offset still retained. */
  earliestOffset?: number;
  /** For LOG_OUT_OF_RANGE: the end offset (next offset to be written). */
  endOffset?: number;
  /** For LOG_CORRUPT on read: the first offset a reader may resume from past the damage. */
  nextValidOffset?: number;
  [extra: string]: unknown;
}

export class LogError extends Error {
  readonly code: LogErrorCode;
  readonly retriable: boolean;
  readonly context: LogErrorContext;

  constructor(code: LogErrorCode, message: string, context: LogErrorContext = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'LogError';
    this.code = code;
    this.retriable = RETRIABLE[code];
    this.context = context;
  }
}

export function isLogError(err: unknown, code?: LogErrorCode): err is LogError {
  return err instanceof LogError && (code === undefined || err.code === code);
}

/** errno codes of node:fs mapped to our codes; anything unlisted is LOG_IO. */
const FS_CODES: Readonly<Record<string, LogErrorCode>> = Object.freeze({
  ENOSPC: 'LOG_DISK_FULL',
  EDQUOT: 'LOG_DISK_FULL',
  EIO: 'LOG_IO',
  EROFS: 'LOG_IO',
  EACCES: 'LOG_IO',
  EPERM: 'LOG_IO',
});

/** Translates a node:fs error into a LogError that names the file and keeps the original as `cause`. */
export function fromFsError(err: unknown, action: string, context: LogErrorContext): LogError {
  if (err instanceof LogError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
  const code = FS_CODES[errno] ?? 'LOG_IO';
  const what = context.file ?? context.topic ?? 'log';
  return new LogError(code, `${action} ${what}: ${errno} ${(err as Error)?.message ?? String(err)}`, { ...context, errno }, err);
}
