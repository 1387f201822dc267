import { describe, expect, it } from 'vitest';
import { isBridgeError } from './errors.ts';
import { decodeSlaveValue, resolveSlave, resolveSlaves, type ModbusSlaveConfig } from './modbus-slave.ts';

const base: ModbusSlaveConfig = {
  name: 'oven',
  unitId: 7,
  sensorId: 'aa-101',
  fields: { production_line: 'w01' },
  registers: [
    { field: 'temp_celcius', function: 'holding', address: 10, type: 'float32' },
    { field: 'count', function: 'holding', address: 12, type: 'uint16' },
    { field: 'door', function: 'discrete', address: 0 },
  ],
};

describe('resolveSlave', () => {
  it('fills defaults and plans the requests', () => {
    const s = resolveSlave(base, 0, 'widgets', 247);
    expect(s).toMatchObject({ topic: 'widgets', pollIntervalMs: 1000, timeoutMs: 1000, retries: 1, keyField: 'sensor_id' });
    expect(s.requests.map((r) => [r.functionCode, r.address, r.count])).toEqual([
      [2, 0, 1],
      [3, 10, 3],
    ]);
    expect(Object.isFrozen(s)).toBe(true);
  });

  it('names the slave and key of each problem', () => {
    const bad: Array<[Partial<ModbusSlaveConfig>, RegExp]> = [
      [{ unitId: 248 }, /slaves\[2\] \(oven\): unitId: must be an integer 0..247/],
      [{ sensorId: '' }, /sensorId/],
      [{ pollIntervalMs: 0 }, /pollIntervalMs/],
      [{ retries: 11 }, /retries/],
      [{ registers: [] }, /registers: needs at least one entry/],
      [{ fields: { count: 1 } }, /fields: "count" is both a constant field and a register/],
      [{ plan: { maxRegisters: 1 } }, /registers: temp_celcius: spans 2 registers/],
    ];
    for (const [patch, message] of bad) {
      let caught: unknown;
      try {
        resolveSlave({ ...base, ...patch }, 2, 'widgets', 247);
      } catch (err) {
        caught = err;
      }
      expect(isBridgeError(caught, 'BRIDGE_CONFIG'), String(message)).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });
});

describe('resolveSlaves', () => {
  const line = { device: 'plc-1', topic: 'widgets', transport: { kind: 'tcp' as const } };
  it('names unnamed slaves after the line and unit id', () => {
    const [a, b] = resolveSlaves({ ...line, slaves: [{ ...base, name: undefined }, { ...base, unitId: 8 }] });
    expect(a!.name).toBe('plc-1/unit-7');
    expect(b!.name).toBe('oven');
  });
  it('refuses duplicate names and unit ids, and unit ids above 247 on RTU', () => {
    expect(() => resolveSlaves({ ...line, slaves: [base, { ...base, name: 'y', unitId: 8 }, { ...base, name: 'x' }] })).toThrow(/slaves\[2\]\.unitId: unit id 7 is used twice/);
    expect(() => resolveSlaves({ ...line, slaves: [base, { ...base, unitId: 8 }] })).toThrow(/duplicate slave name "oven"/);
    expect(() => resolveSlaves({ ...line, transport: { kind: 'rtu' }, slaves: [{ ...base, unitId: 250 }] })).toThrow(/0..247/);
    expect(resolveSlaves({ ...line, slaves: [{ ...base, unitId: 250 }] })[0]!.unitId).toBe(250);
  });
});

describe('decodeSlaveValue', () => {
  const slave = resolveSlave(base, 0, 'widgets', 247);
  const holding = (temp: number, count: number): Buffer => {
    const b = Buffer.alloc(6);
    b.writeFloatBE(temp, 0);
    b.writeUInt16BE(count, 4);
    return b;
  };

  it('builds the key field, constants and every register into one value', () => {
    expect(decodeSlaveValue(slave, [Buffer.from([1]), holding(23.5, 9)])).toEqual({
      sensor_id: 'aa-101',
      production_line: 'w01',
      temp_celcius: 23.5,
      count: 9,
      door: true,
    });
  });

  it('a NaN or infinite float (a "no value" marker) becomes null', () => {
    expect(decodeSlaveValue(slave, [Buffer.from([0]), holding(Number.NaN, 1)]).temp_celcius).toBeNull();
    expect(decodeSlaveValue(slave, [Buffer.from([0]), holding(Number.POSITIVE_INFINITY, 1)]).temp_celcius).toBeNull();
  });

  it('a short response or a missing one is BRIDGE_DECODE naming the request', () => {
    expect(() => decodeSlaveValue(slave, [Buffer.from([0]), Buffer.alloc(4)])).toThrow(/FC 3 @10 x3 has 4 data bytes, expected 6/);
    expect(() => decodeSlaveValue(slave, [Buffer.from([0])])).toThrow(/1 responses for 2 requests/);
  });

  it('uses the configured key field; a register of that name (the device id) wins', () => {
    const custom = resolveSlave({ ...base, registers: [{ field: 'device_id', function: 'holding', address: 0, type: 'string', length: 4 }] }, 0, 'w', 247, 'device_id');
    expect(decodeSlaveValue(custom, [Buffer.from('ab-7', 'latin1')])).toEqual({ device_id: 'ab-7', production_line: 'w01' });
    const byName = resolveSlave({ ...base, registers: [{ field: 'sensor_id', function: 'input', address: 0, type: 'string', length: 2 }] }, 0, 'w', 247);
    expect(decodeSlaveValue(byName, [Buffer.from('zz', 'latin1')]).sensor_id).toBe('zz');
  });
});
