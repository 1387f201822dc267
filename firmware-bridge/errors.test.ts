import { describe, expect, it } from 'vitest';
import { BridgeError, fromDeviceError, hexPreview, isBridgeError } from './errors.ts';

describe('BridgeError', () => {
  it('carries code, retriable flag, context and cause', () => {
    const cause = new Error('boom');
    const e = new BridgeError('BRIDGE_SINK_REFUSED', 'no', { device: 'd1' }, cause);
    expect(e.code).toBe('BRIDGE_SINK_REFUSED');
    expect(e.retriable).toBe(true);
    expect(e.context.device).toBe('d1');
    expect(e.cause).toBe(cause);
    expect(isBridgeError(e, 'BRIDGE_SINK_REFUSED')).toBe(true);
    expect(isBridgeError(e, 'BRIDGE_DECODE')).toBe(false);
    expect(new BridgeError('BRIDGE_DECODE', 'x').retriable).toBe(false);
  });

  it('translates device errno codes by table and names the device', () => {
    const enoent = Object.assign(new Error('No such file or directory, cannot open /dev/ttyUSB0'), { code: 'ENOENT' });
    const e = fromDeviceError(enoent, 'opening', { device: 'line-1', path: '/dev/ttyUSB0' });
    expect(e.code).toBe('BRIDGE_DEVICE_UNAVAILABLE');
    expect(e.retriable).toBe(true);
    expect(e.message).toContain('line-1');
    expect(e.message).toContain('ENOENT');
    expect(e.cause).toBe(enoent);
    const timeout = fromDeviceError(Object.assign(new Error('t'), { code: 'ETIMEDOUT' }), 'reading', { device: 'plc' });
    expect(timeout.code).toBe('BRIDGE_TIMEOUT');
  });

  it('shows bytes in hex, cut with the total length', () => {
    expect(hexPreview(Buffer.from([0xff, 0x00, 0x41]))).toBe('ff0041');
    expect(hexPreview(Buffer.alloc(10, 0xab), 4)).toBe('abababab… (10 bytes)');
  });
});
