/**
 * Replay decoders for captured Modbus sessions, plugged into
 * `replayCapture(path, { decoders: modbusReplayDecoders(configs) })`.
 *
 * The adapter captures each request (`dir: tx`) and response (`rx`) as an
 * RTU frame under the slave's name, with `meta.poll` (the slave's poll
 * number) and `meta.request` (index in its read plan). Replay collects the
 * responses of one poll and, once every request of the plan has its answer,
 * decodes them with the same `decodeSlaveValue` as the live adapter: the
 * same value, the same topic, one reading per complete poll. Polls that
 * failed live (an exception, a timeout) are incomplete and yield nothing,
 * as they did live. A frame that does not parse (CRC, length) or does not
 * match the configured register map yields a dead letter saying why.
 */
import type { FrameDecoder, FrameOutput } from './capture-replay.ts';
import type { CaptureFrame } from './capture.ts';
import { BridgeError, isBridgeError } from './errors.ts';
import type { ModbusAdapterConfig } from './modbus-adapter.ts';
import { framesRaw, parseReadRequest, parseReadResponse } from './modbus-frames.ts';
import { decodeSlaveValue, resolveSlaves, type ResolvedSlave } from './modbus-slave.ts';
import type { SourceKind } from './types.ts';

function hex(data: Uint8Array | undefined): string {
  return data ? `hex:${Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex')}` : '';
}

/** A decoder for one slave's frames. */
export function modbusSlaveDecoder(slave: ResolvedSlave): FrameDecoder {
  let poll: unknown = undefined;
  let responses: Array<Buffer | undefined> = [];
  let frames: Buffer[] = [];
  const scratch = Buffer.allocUnsafe(8);
  const fail = (frame: CaptureFrame, message: string): FrameOutput[] => [
    { ok: false, raw: hex(frame.data), topic: slave.topic, error: new BridgeError('BRIDGE_DECODE', `${slave.name}: ${message}`, { device: slave.name }) },
  ];
  return {
    decode(frame) {
      if (!frame.data) return [];
      const meta = frame.meta ?? {};
      const index = meta.request;
      if (typeof index !== 'number' || index < 0 || index >= slave.requests.length) {
        return frame.direction === 'tx' ? [] : fail(frame, `capture frame without a valid meta.request (plan has ${slave.requests.length} requests)`);
      }
      if (meta.poll !== poll) {
        poll = meta.poll;
        responses = Array.from({ length: slave.requests.length }, () => undefined);
        frames = [];
      }
      const want = slave.requests[index]!;
      try {
        if (frame.direction === 'tx') {
          const req = parseReadRequest(frame.data);
          if (req.unitId !== slave.unitId || req.functionCode !== want.functionCode || req.address !== want.address || req.count !== want.count) {
            return fail(frame, `captured request FC ${req.functionCode} @${req.address} x${req.count} (unit ${req.unitId}) is not request ${index} of the register map`);
          }
          return [];
        }
        const res = parseReadResponse(frame.data);
        if (res.exceptionCode !== null) return []; // a failed poll: no reading live either
        if (res.unitId !== slave.unitId || res.functionCode !== want.functionCode) {
          return fail(frame, `captured response (unit ${res.unitId}, FC ${res.functionCode}) does not answer request ${index}`);
        }
        responses[index] = res.data;
        frames.push(Buffer.from(frame.data));
      } catch (err) {
        return fail(frame, (err as Error).message);
      }
      if (responses.length !== slave.requests.length || responses.includes(undefined)) return [];
      const data = responses as Buffer[];
      const polled = frames;
      responses = Array.from({ length: slave.requests.length }, () => undefined);
      frames = [];
      try {
        const value = decodeSlaveValue(slave, data, scratch);
        return [{ ok: true, value, raw: framesRaw(polled), topic: slave.topic }];
      } catch (err) {
        const error = isBridgeError(err) ? err : new BridgeError('BRIDGE_DECODE', (err as Error).message, { device: slave.name }, err);
        return [{ ok: false, error, raw: framesRaw(polled), topic: slave.topic }];
      }
    },
  };
}

/**
 * Replay decoders for every slave of the given Modbus line configs (the
 * same configs the agent runs with). A captured device name that no config
 * knows yields dead letters saying so.
 */
export function modbusReplayDecoders(configs: readonly ModbusAdapterConfig[]): Partial<Record<SourceKind, (device: string) => FrameDecoder>> {
  const slaves = new Map<string, ResolvedSlave>();
  for (const config of configs) {
    for (const slave of resolveSlaves(config)) slaves.set(slave.name, slave);
  }
  const make = (device: string): FrameDecoder => {
    const known = slaves.get(device);
    if (known) return modbusSlaveDecoder(known);
    return {
      decode(frame) {
        if (frame.direction === 'tx' || !frame.data) return [];
        return [{ ok: false, raw: hex(frame.data), error: new BridgeError('BRIDGE_DECODE', `no Modbus slave named ${device} in the configuration`, { device }) }];
      },
    };
  };
  return { 'modbus-tcp': make, 'modbus-rtu': make };
}
