/**
 * The read plan of one slave: the register map coalesced into as few read
 * requests as the limits allow, so a 40-field map costs a handful of round
 * trips, not 40.
 *
 * Invariants of a plan:
 * - every request reads one data table (one function code);
 * - a request spans at most `maxRegisters` registers (FC 3/4) or `maxBits`
 *   bits (FC 1/2), which never exceed the protocol's 125 / 2000;
 * - two entries share a request only when the hole between them is at most
 *   `maxGapRegisters` / `maxGapBits` (unmapped addresses read and thrown
 *   away; devices that answer ILLEGAL DATA ADDRESS for holes need 0);
 * - every entry lies wholly inside exactly one request (overlapping entries
 *   share it); requests are ordered by function, then address.
 */

import { BridgeError } from './errors.ts';
import { FUNCTION_CODES, type ModbusFunction, type ResolvedEntry } from './modbus-registers.ts';

/** Protocol ceilings (Modbus Application Protocol §6.1–6.4). */
export const MAX_READ_REGISTERS = 125;
export const MAX_READ_BITS = 2000;

export interface PlanLimits {
  /** Registers per FC 3/4 request; default 125 (the protocol maximum), 1..125. */
  maxRegisters?: number;
  /** Bits per FC 1/2 request; default 2000 (the protocol maximum), 1..2000. */
  maxBits?: number;
  /** Largest run of unmapped registers read to join two entries; default 8. */
  maxGapRegisters?: number;
  /** Largest run of unmapped bits read to join two entries; default 64. */
  maxGapBits?: number;
}

export const DEFAULT_PLAN_LIMITS: Readonly<Required<PlanLimits>> = Object.freeze({
  maxRegisters: MAX_READ_REGISTERS,
  maxBits: MAX_READ_BITS,
  maxGapRegisters: 8,
  maxGapBits: 64,
});

/** Where one entry's data sits in a request's response. */
export interface PlannedField {
  readonly entry: ResolvedEntry;
  /** Registers (or bits) from the request's first address to the entry's. */
  readonly index: number;
}

export interface ReadRequest {
  readonly function: ModbusFunction;
  /** The read function code: 1, 2, 3 or 4. */
  readonly functionCode: number;
  /** First address read. */
  readonly address: number;
  /** Registers or bits read. */
  readonly count: number;
  readonly fields: readonly PlannedField[];
}

function limitsOf(limits: PlanLimits): Required<PlanLimits> {
  const l = { ...DEFAULT_PLAN_LIMITS, ...limits };
  const check = (key: keyof PlanLimits, min: number, max: number): void => {
    const v = l[key];
    if (!Number.isInteger(v) || v < min || v > max) throw new BridgeError('BRIDGE_CONFIG', `${key} must be an integer ${min}..${max}, got ${v}`);
  };
  check('maxRegisters', 1, MAX_READ_REGISTERS);
  check('maxBits', 1, MAX_READ_BITS);
  check('maxGapRegisters', 0, MAX_READ_REGISTERS);
  check('maxGapBits', 0, MAX_READ_BITS);
  return l;
}

/**
 * Plans the reads for a resolved register map. Greedy per data table over
 * entries sorted by address: extend the open request while the next entry
 * starts within the gap limit and the request stays within the size limit;
 * for a sorted single-table map this yields the fewest requests. Throws a
 * BRIDGE_CONFIG error when one entry alone exceeds the size limit (e.g. a 300-byte
 * string).
 */
export function planRequests(entries: readonly ResolvedEntry[], limits: PlanLimits = {}): ReadRequest[] {
  const l = limitsOf(limits);
  const plan: ReadRequest[] = [];
  for (const fn of ['coil', 'discrete', 'holding', 'input'] as const) {
    const bits = fn === 'coil' || fn === 'discrete';
    const maxCount = bits ? l.maxBits : l.maxRegisters;
    const maxGap = bits ? l.maxGapBits : l.maxGapRegisters;
    const sorted = entries
      .filter((e) => e.function === fn)
      .sort((a, b) => a.address - b.address || b.count - a.count);
    let start = -1;
    let end = -1; // exclusive
    let members: ResolvedEntry[] = [];
    const flush = (): void => {
      if (members.length === 0) return;
      const first = start;
      plan.push(
        Object.freeze({
          function: fn,
          functionCode: FUNCTION_CODES[fn],
          address: first,
          count: end - first,
          fields: Object.freeze(members.map((entry) => Object.freeze({ entry, index: entry.address - first }))),
        }),
      );
      members = [];
    };
    for (const e of sorted) {
      if (e.count > maxCount) {
        throw new BridgeError('BRIDGE_CONFIG', `${e.field}: spans ${e.count} ${bits ? 'bits' : 'registers'}, more than one request may read (${maxCount})`);
      }
      const eEnd = e.address + e.count;
      if (members.length > 0 && e.address - end <= maxGap && Math.max(end, eEnd) - start <= maxCount) {
        members.push(e);
        end = Math.max(end, eEnd);
        continue;
      }
      flush();
      start = e.address;
      end = eEnd;
      members.push(e);
    }
    flush();
  }
  return plan;
}
