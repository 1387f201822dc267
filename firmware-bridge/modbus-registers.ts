/**
 * The Modbus register map: which field lives where on a slave, and how its
 * bits and bytes turn into a JSON value.
 *
 * Data tables (the `function` of an entry) and their read function codes:
 * coil (FC 1, bits), discrete (FC 2, bits), holding (FC 3, 16-bit registers),
 * input (FC 4, 16-bit registers). Addresses are 0-based protocol addresses
 * (what goes on the wire), not the 1-based "40001" notation.
 *
 * Byte order names the order on the wire of the value's bytes, A being the
 * most significant:
 *
 * | order | 16-bit | 32-bit (2 registers) | 64-bit (4 registers)     |
 * |-------|--------|----------------------|--------------------------|
 * | ABCD  | [AB]   | [AB][CD]             | [AB][CD][EF][GH] (big-endian) |
 * | CDAB  | [AB]   | [CD][AB]             | [GH][EF][CD][AB] (words swapped) |
 * | BADC  | [BA]   | [BA][DC]             | [BA][DC][FE][HG] (bytes swapped in each word) |
 * | DCBA  | [BA]   | [DC][BA]             | [HG][FE][DC][BA] (little-endian) |
 *
 * Strings are UTF-8 (ASCII in practice), two bytes per register, first byte
 * in the high byte (ABCD, CDAB) or the low byte (BADC, DCBA); trailing NUL
 * and space padding is trimmed; bytes that are not UTF-8 are a
 * BRIDGE_INVALID_UTF8 error showing them in hex (the poll is dead-lettered).
 *
 * The decoded value is `raw * scale + offset` for numeric types (scale
 * default 1, offset default 0); bools and strings ignore both.
 */

import { BridgeError } from './errors.ts';

export type ModbusFunction = 'coil' | 'discrete' | 'holding' | 'input';
export type RegisterType = 'bool' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64' | 'string';
export type ByteOrder = 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';

export const MODBUS_FUNCTIONS: readonly ModbusFunction[] = ['coil', 'discrete', 'holding', 'input'];
export const REGISTER_TYPES: readonly RegisterType[] = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'string'];
export const BYTE_ORDERS: readonly ByteOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];

/** Read function code per data table. */
export const FUNCTION_CODES: Readonly<Record<ModbusFunction, number>> = Object.freeze({
  coil: 1,
  discrete: 2,
  holding: 3,
  input: 4,
});

/** One field of the register map, as configured. */
export interface RegisterEntry {
  /** Name of the field in the reading's value (e.g. `temp_celcius`). */
  field: string;
  function: ModbusFunction;
  /** 0-based protocol address of the first register (or bit), 0..65535. */
  address: number;
  /** Default: `bool` for coil/discrete, `uint16` for holding/input. Coils and discrete inputs are always `bool`. */
  type?: RegisterType;
  /** Byte and word order of multi-byte values; default ABCD (big-endian, the Modbus norm). */
  byteOrder?: ByteOrder;
  /** For `string`: length in bytes (characters); occupies ceil(length / 2) registers. */
  length?: number;
  /** For `bool` read from a register: which bit, 0 (least significant) .. 15; default: any non-zero value is true. */
  bit?: number;
  /** Multiplier applied to numeric values; default 1. */
  scale?: number;
  /** Added after scaling; default 0. */
  offset?: number;
  /** Engineering unit, documentation only (e.g. `°C`); default none. */
  unit?: string;
}

/** A validated, defaulted entry: what the planner and decoder work on. */
export interface ResolvedEntry {
  readonly field: string;
  readonly function: ModbusFunction;
  readonly address: number;
  readonly type: RegisterType;
  readonly byteOrder: ByteOrder;
  /** Registers (holding/input) or bits (coil/discrete) the entry spans. */
  readonly count: number;
  readonly length: number;
  readonly bit: number | null;
  readonly scale: number;
  readonly offset: number;
  readonly unit: string | null;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

const REGISTERS_PER_TYPE: Readonly<Record<Exclude<RegisterType, 'string' | 'bool'>, number>> = Object.freeze({
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  float64: 4,
});

function isInt(n: unknown, min: number, max: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;
}

/**
 * Validates and fills defaults of a register map. Throws a BRIDGE_CONFIG error
 * naming the entry (index, field, key) for the first problem: unknown
 * function/type/order, address out of 0..65535 or running past it, string
 * without length, bit outside 0..15, non-finite scale/offset, duplicate field.
 */
export function resolveRegisterMap(entries: readonly RegisterEntry[]): ResolvedEntry[] {
  const seen = new Set<string>();
  return entries.map((e, index) => {
    const fail = (key: string, message: string): never => {
      throw new BridgeError('BRIDGE_CONFIG', `register map entry ${index} (${e?.field ?? '?'}): ${key}: ${message}`, {
        index,
        field: e?.field,
        key,
      });
    };
    if (typeof e?.field !== 'string' || e.field === '') fail('field', 'must be a non-empty string');
    if (seen.has(e.field)) fail('field', `duplicate field name "${e.field}"`);
    seen.add(e.field);
    if (!MODBUS_FUNCTIONS.includes(e.function)) fail('function', `must be one of ${MODBUS_FUNCTIONS.join(', ')}`);
    if (!isInt(e.address, 0, 0xffff)) fail('address', 'must be an integer 0..65535');
    const bits = e.function === 'coil' || e.function === 'discrete';
    const type: RegisterType = e.type ?? (bits ? 'bool' : 'uint16');
    if (!REGISTER_TYPES.includes(type)) fail('type', `must be one of ${REGISTER_TYPES.join(', ')}`);
    if (bits && type !== 'bool') fail('type', `${e.function} holds single bits: type must be bool`);
    const byteOrder: ByteOrder = e.byteOrder ?? 'ABCD';
    if (!BYTE_ORDERS.includes(byteOrder)) fail('byteOrder', `must be one of ${BYTE_ORDERS.join(', ')}`);
    let length = 0;
    if (type === 'string') {
      if (!isInt(e.length, 1, 250)) fail('length', 'a string needs a length in bytes, 1..250');
      length = e.length as number;
    }
    let bit: number | null = null;
    if (e.bit !== undefined) {
      if (bits || type !== 'bool') fail('bit', 'only for type bool read from a holding or input register');
      if (!isInt(e.bit, 0, 15)) fail('bit', 'must be an integer 0..15');
      bit = e.bit;
    }
    const scale = e.scale ?? 1;
    const offset = e.offset ?? 0;
    if (typeof scale !== 'number' || !Number.isFinite(scale)) fail('scale', 'must be a finite number');
    if (typeof offset !== 'number' || !Number.isFinite(offset)) fail('offset', 'must be a finite number');
    const count = bits || type === 'bool' ? 1 : type === 'string' ? Math.ceil(length / 2) : REGISTERS_PER_TYPE[type];
    if (e.address + count - 1 > 0xffff) fail('address', `the ${count} registers from ${e.address} run past 65535`);
    return Object.freeze({
      field: e.field,
      function: e.function,
      address: e.address,
      type,
      byteOrder,
      count,
      length,
      bit,
      scale,
      offset,
      unit: e.unit ?? null,
    });
  });
}

/**
 * Copies the `count` registers at byte `pos` of `data` (big-endian words, as
 * on the wire) into `out` in ABCD order, undoing the entry's byte order.
 */
function normalise(data: Uint8Array, pos: number, count: number, order: ByteOrder, out: Buffer): void {
  const swapBytes = order === 'BADC' || order === 'DCBA';
  const swapWords = order === 'CDAB' || order === 'DCBA';
  for (let w = 0; w < count; w++) {
    const src = pos + 2 * (swapWords ? count - 1 - w : w);
    const hi = data[src]!;
    const lo = data[src + 1]!;
    out[2 * w] = swapBytes ? lo : hi;
    out[2 * w + 1] = swapBytes ? hi : lo;
  }
}

/**
 * Decodes one register entry from register bytes: `data` holds big-endian
 * 16-bit words as they came off the wire (a response's data bytes), and
 * `registerIndex` is the entry's first register relative to `data[0]`.
 * Numeric results are scaled; `scratch` (8+ bytes) avoids an allocation per
 * field on the hot path.
 */
export function decodeRegisters(
  entry: ResolvedEntry,
  data: Uint8Array,
  registerIndex: number,
  scratch: Buffer = Buffer.allocUnsafe(8),
): number | boolean | string {
  const pos = registerIndex * 2;
  if (pos + entry.count * 2 > data.length) {
    throw new RangeError(`${entry.field}: needs registers ${registerIndex}..${registerIndex + entry.count - 1}, response has ${data.length >> 1}`);
  }
  if (entry.type === 'string') {
    const buf = Buffer.allocUnsafe(entry.count * 2);
    const swapBytes = entry.byteOrder === 'BADC' || entry.byteOrder === 'DCBA';
    for (let w = 0; w < entry.count; w++) {
      buf[2 * w] = swapBytes ? data[pos + 2 * w + 1]! : data[pos + 2 * w]!;
      buf[2 * w + 1] = swapBytes ? data[pos + 2 * w]! : data[pos + 2 * w + 1]!;
    }
    let text: string;
    try {
      text = STRICT_UTF8.decode(buf.subarray(0, entry.length));
    } catch {
      throw new BridgeError('BRIDGE_INVALID_UTF8', `${entry.field}: string registers hold bytes that are not UTF-8: ${buf.subarray(0, entry.length).toString('hex')}`, {
        field: entry.field,
      });
    }
    return text.replace(/[\0 ]+$/, '');
  }
  normalise(data, pos, entry.count, entry.byteOrder, scratch);
  let raw: number;
  switch (entry.type) {
    case 'bool': {
      const word = scratch.readUInt16BE(0);
      return entry.bit === null ? word !== 0 : ((word >> entry.bit) & 1) === 1;
    }
    case 'int16':
      raw = scratch.readInt16BE(0);
      break;
    case 'uint16':
      raw = scratch.readUInt16BE(0);
      break;
    case 'int32':
      raw = scratch.readInt32BE(0);
      break;
    case 'uint32':
      raw = scratch.readUInt32BE(0);
      break;
    case 'float32':
      raw = scratch.readFloatBE(0);
      break;
    case 'float64':
      raw = scratch.readDoubleBE(0);
      break;
  }
  return entry.scale === 1 && entry.offset === 0 ? raw : raw * entry.scale + entry.offset;
}

/**
 * Decodes one bit entry (coil or discrete input) from a read-bits response's
 * data bytes: bit `bitIndex` (relative to the request's first address) is bit
 * `bitIndex % 8` (LSB first) of byte `bitIndex >> 3`.
 */
export function decodeBits(entry: ResolvedEntry, data: Uint8Array, bitIndex: number): boolean {
  const byte = bitIndex >> 3;
  if (byte >= data.length) throw new RangeError(`${entry.field}: needs bit ${bitIndex}, response has ${data.length * 8}`);
  return ((data[byte]! >> (bitIndex & 7)) & 1) === 1;
}

/** Encodes 16-bit register values (as modbus-serial's `data` array gives them) into wire bytes. */
export function wordsToBytes(words: readonly number[]): Buffer {
  const buf = Buffer.allocUnsafe(words.length * 2);
  for (let i = 0; i < words.length; i++) buf.writeUInt16BE(words[i]! & 0xffff, i * 2);
  return buf;
}
