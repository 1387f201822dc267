import { describe, expect, it } from 'vitest';
import {
  buildExceptionResponse,
  buildReadRequest,
  buildReadResponse,
  crc16,
  parseReadRequest,
  parseReadResponse,
} from './modbus-frames.ts';

describe('Modbus RTU frames', () => {
  it('CRC-16/MODBUS matches the specification examples', () => {
    // Modbus over Serial Line v1.02 §6.2.2 / the widely printed "read holding 40108" example:
    // 11 03 00 6B 00 03 -> CRC 76 87 on the wire (0x8776).
    expect(crc16(Buffer.from('11 03 00 6b 00 03'.replace(/ /g, ''), 'hex'))).toBe(0x8776);
    // The CRC check value of CRC-16/MODBUS over ASCII "123456789" is 0x4B37.
    expect(crc16(Buffer.from('123456789', 'latin1'))).toBe(0x4b37);
  });

  it('builds the exact bytes of a read request', () => {
    expect(buildReadRequest(0x11, 3, 0x6b, 3).toString('hex')).toBe('1103006b00037687');
    expect(parseReadRequest(Buffer.from('1103006b00037687', 'hex'))).toEqual({ unitId: 0x11, functionCode: 3, address: 0x6b, count: 3 });
  });

  it('round-trips responses and exceptions', () => {
    const data = Buffer.from('022b00000064', 'hex');
    const frame = buildReadResponse(0x11, 3, data);
    expect(frame.subarray(0, 3).toString('hex')).toBe('110306');
    const parsed = parseReadResponse(frame);
    expect(parsed.exceptionCode).toBeNull();
    expect(parsed.data!.toString('hex')).toBe('022b00000064');
    const ex = parseReadResponse(buildExceptionResponse(7, 4, 2));
    expect(ex).toEqual({ unitId: 7, functionCode: 4, exceptionCode: 2, data: null });
  });

  it('refuses a flipped bit, a short frame and an inconsistent byte count', () => {
    const frame = buildReadResponse(1, 3, Buffer.from('00010002', 'hex'));
    frame[4]! ^= 0x10;
    expect(() => parseReadResponse(frame)).toThrow(/CRC/);
    expect(() => parseReadResponse(Buffer.from('0103', 'hex'))).toThrow(/too short/);
    const lying = Buffer.from([1, 3, 9, 0, 1, 0, 0]);
    lying.writeUInt16LE(crc16(lying, 5), 5);
    expect(() => parseReadResponse(lying)).toThrow(/byte count 9/);
    expect(() => parseReadRequest(buildReadRequest(1, 6, 0, 1))).toThrow(/not a read/);
  });
});
