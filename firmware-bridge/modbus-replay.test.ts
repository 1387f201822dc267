import { describe, expect, it } from 'vitest';
import type { CaptureFrame } from './capture.ts';
import { buildExceptionResponse, buildReadRequest, buildReadResponse } from './modbus-frames.ts';
import { modbusReplayDecoders } from './modbus-replay.ts';
import type { ModbusAdapterConfig } from './modbus-adapter.ts';

const config: ModbusAdapterConfig = {
  device: 'line',
  topic: 'widgets',
  transport: { kind: 'rtu', path: '/dev/null' },
  slaves: [
    {
      name: 'scale',
      unitId: 3,
      sensorId: 'aa-3',
      topic: 'scales',
      registers: [
        { field: 'w', function: 'input', address: 0, type: 'int16' },
        { field: 'on', function: 'coil', address: 5 },
      ],
    },
  ],
};

function frames(poll: number, coil: Buffer | null, input: Buffer | null, exception = false): CaptureFrame[] {
  const f = (direction: 'tx' | 'rx', request: number, data: Buffer): CaptureFrame => ({
    receivedAt: 1000 + poll,
    kind: 'modbus-rtu',
    device: 'scale',
    direction,
    data,
    meta: { line: 'line', unitId: 3, poll, request },
  });
  const out = [f('tx', 0, buildReadRequest(3, 1, 5, 1))];
  if (coil) out.push(f('rx', 0, buildReadResponse(3, 1, coil)));
  if (exception) {
    out.push(f('rx', 0, buildExceptionResponse(3, 1, 2)));
    return out;
  }
  out.push(f('tx', 1, buildReadRequest(3, 4, 0, 1)));
  if (input) out.push(f('rx', 1, buildReadResponse(3, 4, input)));
  return out;
}

describe('Modbus replay decoder', () => {
  const decoder = () => modbusReplayDecoders([config])['modbus-rtu']!('scale');

  it('yields one value per complete poll, with the slave topic; failed and partial polls yield nothing', () => {
    const d = decoder();
    const outs = [
      ...frames(1, Buffer.from([1]), Buffer.from([0xff, 0x9c])),
      ...frames(2, null, null, true), // exception: failed live, nothing here
      ...frames(3, Buffer.from([0]), null), // timed out on the second request
      ...frames(4, Buffer.from([0]), Buffer.from([0x00, 0x07])),
    ].flatMap((fr) => d.decode(fr));
    expect(outs).toEqual([
      { ok: true, value: { sensor_id: 'aa-3', w: -100, on: true }, raw: expect.any(String), topic: 'scales' },
      { ok: true, value: { sensor_id: 'aa-3', w: 7, on: false }, raw: expect.any(String), topic: 'scales' },
    ]);
  });

  it('a corrupt frame or one that does not match the register map is a dead letter saying why', () => {
    const d = decoder();
    const [tx, rx] = frames(1, Buffer.from([1]), null);
    const bad = Buffer.from(rx!.data!);
    bad[3]! ^= 0xff;
    const out = [...d.decode(tx!), ...d.decode({ ...rx!, data: bad })];
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ ok: false, raw: expect.stringMatching(/^hex:/) });
    expect((out[0] as { error: Error }).error.message).toMatch(/CRC/);
    const wrong = d.decode({ ...tx!, data: buildReadRequest(3, 1, 6, 1) });
    expect((wrong[0] as { error: Error }).error.message).toMatch(/is not request 0 of the register map/);
  });

  it('an unknown slave name yields dead letters, not silence', () => {
    const d = modbusReplayDecoders([config])['modbus-tcp']!('nobody');
    const [, rx] = frames(1, Buffer.from([1]), null);
    expect((d.decode(rx!)[0] as { error: Error }).error.message).toMatch(/no Modbus slave named nobody/);
  });
});
