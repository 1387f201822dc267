/**
 * The firmware bridge's error catalogue. Every error the bridge raises is a
 * `BridgeError` with a stable `code`; callers branch on `code` or
 * `retriable`, never on message text. Errors of serialport, modbus-serial and
 * mqtt are translated at the adapter's edge (`fromDeviceError`) and kept as
 * `cause`.
 */

export type BridgeErrorCode =
  /** A frame could not be decoded (bad JSON, CSV field count, key=value syntax, payload not an object). */
  | 'BRIDGE_DECODE'
  /** A line grew past `maxLineBytes` before its newline; the bytes up to the next newline are dropped. */
  | 'BRIDGE_LINE_TOO_LONG'
  /** A frame held bytes that are not valid UTF-8 (the message shows them in hex). */
  | 'BRIDGE_INVALID_UTF8'
  /** A reading failed its topic's JSON Schema (the message names the failing path). */
  | 'BRIDGE_SCHEMA'
  /** `reading_ts` (or the configured timestamp field) is neither ISO-8601 nor epoch ms. */
  | 'BRIDGE_BAD_TIMESTAMP'
  /** Invalid adapter options or schema, reported at construction. */
  | 'BRIDGE_CONFIG'
  /** The device could not be opened or went away (unplugged port, refused connection). Retriable. */
  | 'BRIDGE_DEVICE_UNAVAILABLE'
  /** The device did not answer within its timeout. Retriable. */
  | 'BRIDGE_TIMEOUT'
  /** The device answered with a protocol error (Modbus exception, MQTT reason code). Context holds the code. */
  | 'BRIDGE_PROTOCOL'
  /** The sink refused readings (log disk floor, I/O); the adapter backs off and retries. Retriable. */
  | 'BRIDGE_SINK_REFUSED'
  /** A capture file line is malformed (the message names file and line). */
  | 'BRIDGE_CAPTURE_FORMAT'
  /** The adapter is stopped; the operation was abandoned. */
  | 'BRIDGE_STOPPED';

const RETRIABLE: Readonly<Record<BridgeErrorCode, boolean>> = Object.freeze({
  BRIDGE_DECODE: false,
  BRIDGE_LINE_TOO_LONG: false,
  BRIDGE_INVALID_UTF8: false,
  BRIDGE_SCHEMA: false,
  BRIDGE_BAD_TIMESTAMP: false,
  BRIDGE_CONFIG: false,
  BRIDGE_DEVICE_UNAVAILABLE: true,
  BRIDGE_TIMEOUT: true,
  BRIDGE_PROTOCOL: false,
  BRIDGE_SINK_REFUSED: true,
  BRIDGE_CAPTURE_FORMAT: false,
  BRIDGE_STOPPED: false,
});

/** Codes that mean "this frame is unusable": the frame goes to the dead-letter topic and `decodeErrors` counts it. */
export const DECODE_CODES: ReadonlySet<BridgeErrorCode> = new Set<BridgeErrorCode>([
  'BRIDGE_DECODE',
  'BRIDGE_LINE_TOO_LONG',
  'BRIDGE_INVALID_UTF8',
  'BRIDGE_BAD_TIMESTAMP',
]);

/** Context fields that make an error actionable: which device, port, topic, line, path. */
export interface BridgeErrorContext {
  device?: string;
  path?: string;
  topic?: string;
  /** 1-based line number (capture files, CSV). */
  line?: number;
  /** JSON pointer of the failing value (schema errors). */
  schemaPath?: string;
  /** Protocol code (Modbus exception code, MQTT reason code). */
  protocolCode?: number;
  [extra: string]: unknown;
}

export class BridgeError extends Error {
  readonly code: BridgeErrorCode;
  readonly retriable: boolean;
  readonly context: BridgeErrorContext;

  constructor(code: BridgeErrorCode, message: string, context: BridgeErrorContext = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'BridgeError';
    this.code = code;
    this.retriable = RETRIABLE[code];
    this.context = context;
  }
}

export function isBridgeError(err: unknown, code?: BridgeErrorCode): err is BridgeError {
  return err instanceof BridgeError && (code === undefined || err.code === code);
}

/** errno codes from opening/reading a device (serial port, socket) mapped to our codes; unlisted ones are BRIDGE_DEVICE_UNAVAILABLE. */
const DEVICE_ERRNO: Readonly<Record<string, BridgeErrorCode>> = Object.freeze({
  ETIMEDOUT: 'BRIDGE_TIMEOUT',
  ENOENT: 'BRIDGE_DEVICE_UNAVAILABLE',
  EIO: 'BRIDGE_DEVICE_UNAVAILABLE',
  ENXIO: 'BRIDGE_DEVICE_UNAVAILABLE',
  EBADF: 'BRIDGE_DEVICE_UNAVAILABLE',
  EACCES: 'BRIDGE_DEVICE_UNAVAILABLE',
  EBUSY: 'BRIDGE_DEVICE_UNAVAILABLE',
  ECONNREFUSED: 'BRIDGE_DEVICE_UNAVAILABLE',
  ECONNRESET: 'BRIDGE_DEVICE_UNAVAILABLE',
  EHOSTUNREACH: 'BRIDGE_DEVICE_UNAVAILABLE',
});

/** Translates a third-party device error into a BridgeError naming the device; the original stays as `cause`. */
export function fromDeviceError(err: unknown, action: string, context: BridgeErrorContext): BridgeError {
  if (err instanceof BridgeError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const code = (errno && DEVICE_ERRNO[errno]) || 'BRIDGE_DEVICE_UNAVAILABLE';
  const what = context.device ?? context.path ?? 'device';
  const detail = err instanceof Error ? err.message : String(err);
  return new BridgeError(code, `${action} ${what}: ${errno ? `${errno} ` : ''}${detail}`, { ...context, errno }, err);
}

/** Shows bytes as hex for messages (at most `maxBytes`, default 64, with the total when cut). */
export function hexPreview(bytes: Uint8Array, maxBytes = 64): string {
  const shown = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, maxBytes)).toString('hex');
  return bytes.length > maxBytes ? `${shown}… (${bytes.length} bytes)` : shown;
}
