import { describe, expect, it } from 'vitest';
import { BridgeError } from './errors.ts';
import {
  BYTE_ORDERS,
  decodeBits,
  decodeRegisters,
  resolveRegisterMap,
  wordsToBytes,
  type ByteOrder,
  type RegisterEntry,
  type RegisterType,
} from './modbus-registers.ts';

/**
 * Golden vectors: the wire bytes of each value in each byte order, written
 * out by hand from the order table (A = most significant byte). Independent
 * checks below tie ABCD to Buffer.write*BE and DCBA to Buffer.write*LE, and
 * two vectors are the ones vendor manuals print (float32 123456.0 =
 * 47 F1 20 00, float64 pi = 40 09 21 FB 54 44 2D 18).
 */
interface Golden {
  type: Exclude<RegisterType, 'bool' | 'string'>;
  value: number;
  wire: Record<ByteOrder, string>;
  /** Independent big-endian / little-endian encoder of node:buffer. */
  be: (b: Buffer, v: number) => void;
  le: (b: Buffer, v: number) => void;
  bytes: number;
}

const GOLDEN: Golden[] = [
  {
    type: 'int16',
    value: -1234,
    wire: { ABCD: 'fb2e', CDAB: 'fb2e', BADC: '2efb', DCBA: '2efb' },
    be: (b, v) => b.writeInt16BE(v),
    le: (b, v) => b.writeInt16LE(v),
    bytes: 2,
  },
  {
    type: 'uint16',
    value: 51234,
    wire: { ABCD: 'c822', CDAB: 'c822', BADC: '22c8', DCBA: '22c8' },
    be: (b, v) => b.writeUInt16BE(v),
    le: (b, v) => b.writeUInt16LE(v),
    bytes: 2,
  },
  {
    type: 'int32',
    value: -123456789,
    wire: { ABCD: 'f8a432eb', CDAB: '32ebf8a4', BADC: 'a4f8eb32', DCBA: 'eb32a4f8' },
    be: (b, v) => b.writeInt32BE(v),
    le: (b, v) => b.writeInt32LE(v),
    bytes: 4,
  },
  {
    type: 'int32',
    value: 0x12345678,
    wire: { ABCD: '12345678', CDAB: '56781234', BADC: '34127856', DCBA: '78563412' },
    be: (b, v) => b.writeInt32BE(v),
    le: (b, v) => b.writeInt32LE(v),
    bytes: 4,
  },
  {
    type: 'uint32',
    value: 3_000_000_000,
    wire: { ABCD: 'b2d05e00', CDAB: '5e00b2d0', BADC: 'd0b2005e', DCBA: '005ed0b2' },
    be: (b, v) => b.writeUInt32BE(v),
    le: (b, v) => b.writeUInt32LE(v),
    bytes: 4,
  },
  {
    type: 'float32',
    value: 123456.0,
    wire: { ABCD: '47f12000', CDAB: '200047f1', BADC: 'f1470020', DCBA: '0020f147' },
    be: (b, v) => b.writeFloatBE(v),
    le: (b, v) => b.writeFloatLE(v),
    bytes: 4,
  },
  {
    type: 'float32',
    value: -1.5,
    wire: { ABCD: 'bfc00000', CDAB: '0000bfc0', BADC: 'c0bf0000', DCBA: '0000c0bf' },
    be: (b, v) => b.writeFloatBE(v),
    le: (b, v) => b.writeFloatLE(v),
    bytes: 4,
  },
  {
    type: 'float64',
    value: Math.PI,
    wire: {
      ABCD: '400921fb54442d18',
      CDAB: '2d18544421fb4009',
      BADC: '0940fb214454182d',
      DCBA: '182d4454fb210940',
    },
    be: (b, v) => b.writeDoubleBE(v),
    le: (b, v) => b.writeDoubleLE(v),
    bytes: 8,
  },
  {
    type: 'float64',
    value: 1.0,
    wire: {
      ABCD: '3ff0000000000000',
      CDAB: '0000000000003ff0',
      BADC: 'f03f000000000000',
      DCBA: '000000000000f03f',
    },
    be: (b, v) => b.writeDoubleBE(v),
    le: (b, v) => b.writeDoubleLE(v),
    bytes: 8,
  },
];

function entry(e: Partial<RegisterEntry>): ReturnType<typeof resolveRegisterMap>[number] {
  return resolveRegisterMap([{ field: 'x', function: 'holding', address: 0, ...e }])[0]!;
}

describe('golden vectors', () => {
  it('ABCD is big-endian and DCBA little-endian, as node:buffer encodes them', () => {
    for (const g of GOLDEN) {
      const be = Buffer.alloc(g.bytes);
      g.be(be, g.value);
      expect(be.toString('hex'), `${g.type} ${g.value} ABCD`).toBe(g.wire.ABCD);
      const le = Buffer.alloc(g.bytes);
      g.le(le, g.value);
      expect(le.toString('hex'), `${g.type} ${g.value} DCBA`).toBe(g.wire.DCBA);
    }
  });

  for (const g of GOLDEN) {
    for (const order of BYTE_ORDERS) {
      it(`${g.type} ${g.value} in ${order}`, () => {
        const wire = Buffer.from(g.wire[order], 'hex');
        expect(decodeRegisters(entry({ type: g.type, byteOrder: order }), wire, 0)).toBe(g.value);
        // The same bytes in the middle of a longer response (a coalesced read).
        const padded = Buffer.concat([Buffer.from('dead', 'hex'), wire, Buffer.from('beef', 'hex')]);
        expect(decodeRegisters(entry({ type: g.type, byteOrder: order }), padded, 1)).toBe(g.value);
      });
    }
  }

  it('strings, first character in the high byte unless bytes are swapped; padding trimmed', () => {
    const abcd = Buffer.from('WIDGET-7', 'latin1');
    const badc = Buffer.from('IWGDTE7-', 'latin1');
    for (const order of ['ABCD', 'CDAB'] as const) {
      expect(decodeRegisters(entry({ type: 'string', length: 8, byteOrder: order }), abcd, 0)).toBe('WIDGET-7');
    }
    for (const order of ['BADC', 'DCBA'] as const) {
      expect(decodeRegisters(entry({ type: 'string', length: 8, byteOrder: order }), badc, 0)).toBe('WIDGET-7');
    }
    // Odd length: 5 bytes in 3 registers, NUL pad in the last low byte.
    expect(decodeRegisters(entry({ type: 'string', length: 5 }), Buffer.from('41412d313000', 'hex'), 0)).toBe('AA-10');
    expect(decodeRegisters(entry({ type: 'string', length: 6 }), Buffer.from('726564200000', 'hex'), 0)).toBe('red');
    expect(entry({ type: 'string', length: 5 }).count).toBe(3);
    // UTF-8 beyond ASCII decodes; bytes that are not UTF-8 are an error naming them in hex.
    expect(decodeRegisters(entry({ type: 'string', length: 4 }), Buffer.from('c2b04300', 'hex'), 0)).toBe('°C');
    expect(() => decodeRegisters(entry({ type: 'string', length: 4 }), Buffer.from('41ff4200', 'hex'), 0)).toThrow(/not UTF-8: 41ff4200/);
  });

  it('bool from a register: non-zero, or one bit, after undoing the byte order', () => {
    expect(decodeRegisters(entry({ type: 'bool' }), Buffer.from('0000', 'hex'), 0)).toBe(false);
    expect(decodeRegisters(entry({ type: 'bool' }), Buffer.from('0100', 'hex'), 0)).toBe(true);
    expect(decodeRegisters(entry({ type: 'bool', bit: 3 }), Buffer.from('0008', 'hex'), 0)).toBe(true);
    expect(decodeRegisters(entry({ type: 'bool', bit: 2 }), Buffer.from('0008', 'hex'), 0)).toBe(false);
    expect(decodeRegisters(entry({ type: 'bool', bit: 8 }), Buffer.from('0100', 'hex'), 0)).toBe(true);
    expect(decodeRegisters(entry({ type: 'bool', bit: 0, byteOrder: 'BADC' }), Buffer.from('0100', 'hex'), 0)).toBe(true);
  });

  it('coil and discrete bits are LSB first within each byte', () => {
    const data = Buffer.from([0b1010_0101, 0b0000_0001]);
    const coil = resolveRegisterMap([{ field: 'c', function: 'coil', address: 0 }])[0]!;
    const got = Array.from({ length: 16 }, (_, i) => decodeBits(coil, data, i));
    expect(got.flatMap((b, i) => (b ? [i] : []))).toEqual([0, 2, 5, 7, 8]);
    expect(() => decodeBits(coil, data, 16)).toThrow(RangeError);
  });
});

describe('scale and offset', () => {
  it('value = raw * scale + offset for numeric types', () => {
    // 0x00e6 = 230 tenths of a degree.
    expect(decodeRegisters(entry({ type: 'int16', scale: 0.1 }), Buffer.from('00e6', 'hex'), 0)).toBeCloseTo(23.0, 10);
    expect(decodeRegisters(entry({ type: 'uint16', scale: 2, offset: -40 }), Buffer.from('0032', 'hex'), 0)).toBe(60);
    expect(decodeRegisters(entry({ type: 'int16', scale: 0.5 }), Buffer.from('fffe', 'hex'), 0)).toBe(-1);
    // Bools and strings ignore scale.
    expect(decodeRegisters(entry({ type: 'bool', scale: 10 }), Buffer.from('0001', 'hex'), 0)).toBe(true);
  });

  it('modbus-serial data words convert back to wire bytes', () => {
    expect(wordsToBytes([0x47f1, 0x2000]).toString('hex')).toBe('47f12000');
    expect(decodeRegisters(entry({ type: 'float32' }), wordsToBytes([0x47f1, 0x2000]), 0)).toBe(123456);
  });

  it('a response too short for the entry is a RangeError, not garbage', () => {
    expect(() => decodeRegisters(entry({ type: 'float64' }), Buffer.alloc(6), 0)).toThrow(/needs registers 0..3/);
  });
});

describe('resolveRegisterMap', () => {
  it('fills defaults and counts registers per type', () => {
    const map = resolveRegisterMap([
      { field: 'a', function: 'holding', address: 1 },
      { field: 'b', function: 'coil', address: 2 },
      { field: 'c', function: 'input', address: 3, type: 'float64' },
      { field: 'd', function: 'input', address: 10, type: 'int32', unit: 'g' },
    ]);
    expect(map.map((e) => [e.type, e.count, e.byteOrder, e.scale, e.offset])).toEqual([
      ['uint16', 1, 'ABCD', 1, 0],
      ['bool', 1, 'ABCD', 1, 0],
      ['float64', 4, 'ABCD', 1, 0],
      ['int32', 2, 'ABCD', 1, 0],
    ]);
    expect(map[3]!.unit).toBe('g');
  });

  const bad: Array<[string, RegisterEntry[], RegisterErrorKey: string, RegExp]> = [
    ['coil as float', [{ field: 'a', function: 'coil', address: 0, type: 'float32' }], 'type', /must be bool/],
    ['unknown function', [{ field: 'a', function: 'fifo' as never, address: 0 }], 'function', /one of coil/],
    ['negative address', [{ field: 'a', function: 'holding', address: -1 }], 'address', /0..65535/],
    ['past the end', [{ field: 'a', function: 'holding', address: 65534, type: 'float64' }], 'address', /run past 65535/],
    ['string without length', [{ field: 'a', function: 'holding', address: 0, type: 'string' }], 'length', /length in bytes/],
    ['bad order', [{ field: 'a', function: 'holding', address: 0, byteOrder: 'ADBC' as never }], 'byteOrder', /one of ABCD/],
    ['bit on uint16', [{ field: 'a', function: 'holding', address: 0, bit: 2 }], 'bit', /only for type bool/],
    ['bit 16', [{ field: 'a', function: 'holding', address: 0, type: 'bool', bit: 16 }], 'bit', /0..15/],
    ['NaN scale', [{ field: 'a', function: 'holding', address: 0, scale: Number.NaN }], 'scale', /finite/],
    [
      'duplicate field',
      [
        { field: 'a', function: 'holding', address: 0 },
        { field: 'a', function: 'holding', address: 1 },
      ],
      'field',
      /duplicate/,
    ],
  ];
  for (const [name, map, key, message] of bad) {
    it(`refuses ${name}, naming the entry and key`, () => {
      let caught: unknown;
      try {
        resolveRegisterMap(map);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(BridgeError);
      const err = caught as BridgeError;
      expect(err.code).toBe('BRIDGE_CONFIG');
      expect(err.context.key).toBe(key);
      expect(err.message).toMatch(message);
      expect(err.message).toMatch(/register map entry \d \(a\)/);
    });
  }
});
