import { describe, expect, it } from 'vitest';
import { createAdapter, SerialAdapter, type ReadingSink } from './index.ts';

const sink: ReadingSink = { write: async () => {}, deadLetter: async () => {} };

describe('createAdapter', () => {
  it('builds a serial adapter from its config, stopped until started', () => {
    const a = createAdapter({ kind: 'serial', device: 'line-1', topic: 'widgets', path: '/dev/ttyUSB0', baudRate: 9600, framing: { format: 'csv' } }, { sink, gatewayId: 'gw' });
    expect(a).toBeInstanceOf(SerialAdapter);
    expect(a.device).toBe('line-1');
    expect(a.status()).toEqual([expect.objectContaining({ device: 'line-1', kind: 'serial', state: 'stopped', connected: false })]);
  });

  it('refuses an unknown kind and invalid options with BRIDGE_CONFIG naming the device', () => {
    expect(() => createAdapter({ kind: 'zigbee', device: 'z1', topic: 't' } as never, { sink, gatewayId: 'gw' })).toThrow(
      expect.objectContaining({ code: 'BRIDGE_CONFIG', message: expect.stringContaining('source z1: kind must be one of serial, modbus') }),
    );
    expect(() => createAdapter({ kind: 'serial', device: 's1', topic: 't', path: '/dev/x', stopBits: 3 as never }, { sink, gatewayId: 'gw' })).toThrow(/serial device s1: stopBits/);
  });
});
