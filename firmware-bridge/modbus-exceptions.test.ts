import { describe, expect, it } from 'vitest';
import { MODBUS_EXCEPTIONS, modbusException } from './modbus-exceptions.ts';

describe('Modbus exception table', () => {
  it('holds every code the specification defines, with its name', () => {
    expect(MODBUS_EXCEPTIONS.map((e) => [e.code, e.name])).toEqual([
      [0x01, 'ILLEGAL FUNCTION'],
      [0x02, 'ILLEGAL DATA ADDRESS'],
      [0x03, 'ILLEGAL DATA VALUE'],
      [0x04, 'SERVER DEVICE FAILURE'],
      [0x05, 'ACKNOWLEDGE'],
      [0x06, 'SERVER DEVICE BUSY'],
      [0x07, 'NEGATIVE ACKNOWLEDGE'],
      [0x08, 'MEMORY PARITY ERROR'],
      [0x0a, 'GATEWAY PATH UNAVAILABLE'],
      [0x0b, 'GATEWAY TARGET DEVICE FAILED TO RESPOND'],
    ]);
  });

  it('marks configuration faults as not retriable and device conditions as retriable', () => {
    const retriable = Object.fromEntries(MODBUS_EXCEPTIONS.map((e) => [e.code, e.retriable]));
    expect(retriable[0x01]).toBe(false);
    expect(retriable[0x02]).toBe(false);
    expect(retriable[0x03]).toBe(false);
    expect(retriable[0x06]).toBe(true);
    expect(retriable[0x0b]).toBe(true);
  });

  it('looks codes up and names unknown ones instead of failing', () => {
    expect(modbusException(2).name).toBe('ILLEGAL DATA ADDRESS');
    expect(modbusException(0x0b).retriable).toBe(true);
    const unknown = modbusException(0x42);
    expect(unknown.name).toBe('UNKNOWN EXCEPTION 0x42');
    expect(unknown.retriable).toBe(false);
  });

  it('entries are frozen data', () => {
    expect(Object.isFrozen(MODBUS_EXCEPTIONS)).toBe(true);
    expect(Object.isFrozen(MODBUS_EXCEPTIONS[0])).toBe(true);
  });
});
