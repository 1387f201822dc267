import { describe, expect, it } from 'vitest';
import { createAdapter, ModbusAdapter, MqttAdapter, SerialAdapter, type ReadingSink } from './index.ts';

const sink: ReadingSink = { write: async () => {}, deadLetter: async () => {} };

describe('createAdapter', () => {
  it('builds a serial adapter from its config, stopped until started', () => {
    const a = createAdapter({ kind: 'serial', device: 'line-1', topic: 'widgets', path: '/dev/ttyUSB0', baudRate: 9600, framing: { format: 'csv' } }, { sink, gatewayId: 'gw' });
    expect(a).toBeInstanceOf(SerialAdapter);
    expect(a.device).toBe('line-1');
    expect(a.status()).toEqual([expect.objectContaining({ device: 'line-1', kind: 'serial', state: 'stopped', connected: false })]);
  });

  it('builds a Modbus adapter', () => {
    const a = createAdapter(
      {
        kind: 'modbus',
        device: 'plc-line',
        topic: 'widgets',
        transport: { kind: 'tcp', host: '127.0.0.1', port: 1 },
        slaves: [{ name: 'plc-1', unitId: 1, sensorId: 'aa-101', registers: [{ field: 'temp_celcius', function: 'holding', address: 0 }] }],
      },
      { sink, gatewayId: 'gw' },
    );
    expect(a).toBeInstanceOf(ModbusAdapter);
  });

  it('builds an MQTT adapter (not connected until started)', () => {
    const a = createAdapter(
      { kind: 'mqtt', device: 'broker', topic: 'widgets', url: 'mqtt://127.0.0.1:1', clientId: 'gw-1', subscriptions: [{ topic: 'factory/+line/+sensor_id/reading' }] },
      { sink, gatewayId: 'gw' },
    );
    expect(a).toBeInstanceOf(MqttAdapter);
    expect(a.status()[0]).toMatchObject({ kind: 'mqtt', state: 'stopped' });
  });

  it('refuses an unknown kind and invalid options with BRIDGE_CONFIG naming the device', () => {
    expect(() => createAdapter({ kind: 'zigbee', device: 'z1', topic: 't' } as never, { sink, gatewayId: 'gw' })).toThrow(
      expect.objectContaining({ code: 'BRIDGE_CONFIG', message: expect.stringContaining('source z1: kind must be one of serial, modbus, mqtt') }),
    );
    expect(() => createAdapter({ kind: 'serial', device: 's1', topic: 't', path: '/dev/x', stopBits: 3 as never }, { sink, gatewayId: 'gw' })).toThrow(/serial device s1: stopBits/);
  });
});
