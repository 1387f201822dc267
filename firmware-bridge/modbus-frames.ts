/**
 * Modbus RTU frames (ADUs): the bytes a capture file holds and replay reads.
 *
 * Format (Modbus over Serial Line v1.02 §2.5.1):
 * `unit id (1) | function code (1) | PDU data (n) | CRC-16/MODBUS (2, little-endian)`.
 * A read request's data is `address (2, BE) | quantity (2, BE)`; a read
 * response's is `byte count (1) | data bytes`; an exception response has the
 * function code's high bit set and one exception code byte. Frames of Modbus
 * TCP sessions are captured in this same RTU form (unit id from the MBAP
 * header, CRC computed), so one decoder serves both transports.
 */

/** CRC-16/MODBUS byte table (poly 0xA001 reflected); computed once, never written. */
const CRC_TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let crc = n;
    for (let b = 0; b < 8; b++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
    table[n] = crc;
  }
  return table;
})();

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF) of `bytes[0..end)`. */
export function crc16(bytes: Uint8Array, end = bytes.length): number {
  let crc = 0xffff;
  for (let i = 0; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ bytes[i]!) & 0xff]!;
  return crc;
}

/** A read request frame (FC 1–4) with its CRC. */
export function buildReadRequest(unitId: number, functionCode: number, address: number, count: number): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf[0] = unitId;
  buf[1] = functionCode;
  buf.writeUInt16BE(address, 2);
  buf.writeUInt16BE(count, 4);
  buf.writeUInt16LE(crc16(buf, 6), 6);
  return buf;
}

/** A read response frame (FC 1–4) carrying `data`, with its CRC. */
export function buildReadResponse(unitId: number, functionCode: number, data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(5 + data.length);
  buf[0] = unitId;
  buf[1] = functionCode;
  buf[2] = data.length;
  buf.set(data, 3);
  buf.writeUInt16LE(crc16(buf, 3 + data.length), 3 + data.length);
  return buf;
}

/** An exception response frame, with its CRC. */
export function buildExceptionResponse(unitId: number, functionCode: number, exceptionCode: number): Buffer {
  const buf = Buffer.allocUnsafe(5);
  buf[0] = unitId;
  buf[1] = functionCode | 0x80;
  buf[2] = exceptionCode;
  buf.writeUInt16LE(crc16(buf, 3), 3);
  return buf;
}

export interface ReadRequestFrame {
  unitId: number;
  functionCode: number;
  address: number;
  count: number;
}

export type ReadResponseFrame =
  | { unitId: number; functionCode: number; exceptionCode: null; data: Buffer }
  | { unitId: number; functionCode: number; exceptionCode: number; data: null };

function checkCrc(frame: Uint8Array, what: string): void {
  if (frame.length < 4) throw new Error(`${what}: ${frame.length} bytes is too short for a Modbus RTU frame`);
  const want = crc16(frame, frame.length - 2);
  const got = frame[frame.length - 2]! | (frame[frame.length - 1]! << 8);
  if (want !== got) throw new Error(`${what}: CRC ${got.toString(16).padStart(4, '0')} does not match ${want.toString(16).padStart(4, '0')}`);
}

/** Parses a read request frame; throws (naming the problem) on a bad CRC, length or function code. */
export function parseReadRequest(frame: Uint8Array): ReadRequestFrame {
  checkCrc(frame, 'request');
  if (frame.length !== 8) throw new Error(`request: a read request is 8 bytes, got ${frame.length}`);
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  const functionCode = buf[1]!;
  if (functionCode < 1 || functionCode > 4) throw new Error(`request: function code ${functionCode} is not a read (1-4)`);
  return { unitId: buf[0]!, functionCode, address: buf.readUInt16BE(2), count: buf.readUInt16BE(4) };
}

/** Parses a read response (or exception) frame; throws on a bad CRC or a byte count that disagrees with the length. */
export function parseReadResponse(frame: Uint8Array): ReadResponseFrame {
  checkCrc(frame, 'response');
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  const unitId = buf[0]!;
  const fc = buf[1]!;
  if (fc & 0x80) {
    if (buf.length !== 5) throw new Error(`response: an exception response is 5 bytes, got ${buf.length}`);
    return { unitId, functionCode: fc & 0x7f, exceptionCode: buf[2]!, data: null };
  }
  const byteCount = buf[2]!;
  if (buf.length !== 5 + byteCount) throw new Error(`response: byte count ${byteCount} but ${buf.length - 5} data bytes`);
  return { unitId, functionCode: fc, exceptionCode: null, data: buf.subarray(3, 3 + byteCount) };
}

/** A poll's raw payload for dead letters: its response frames (RTU form) in hex, space-separated, after `hex:`. */
export function framesRaw(frames: readonly Uint8Array[]): string {
  return `hex:${frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('hex')).join(' ')}`;
}
