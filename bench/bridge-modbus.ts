/**
 * Modbus decoders: readings/s from a Modbus capture file through the same
 * path `millstream capture replay` uses (capture parse, RTU frame parse and
 * CRC, register decode for every type and byte order, reading builder, JSON
 * Schema check), one reading per poll of a 20-field slave (3 requests).
 * Baseline, in the same run: the same file read with no Modbus logic (parse
 * each capture line and its base64). Also the register decoder alone, in
 * memory (polls/s of `decodeSlaveValue`). Part of the `bridge` suite.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CAPTURE_FORMAT, CAPTURE_VERSION, encodeCaptureFrame } from '../firmware-bridge/capture.ts';
import { replayCapture } from '../firmware-bridge/capture-replay.ts';
import type { ModbusAdapterConfig } from '../firmware-bridge/modbus-adapter.ts';
import { buildReadRequest, buildReadResponse } from '../firmware-bridge/modbus-frames.ts';
import type { RegisterEntry } from '../firmware-bridge/modbus-registers.ts';
import { modbusReplayDecoders } from '../firmware-bridge/modbus-replay.ts';
import { decodeSlaveValue, resolveSlave } from '../firmware-bridge/modbus-slave.ts';
import { SchemaCheck } from '../firmware-bridge/schema-check.ts';
import type { BenchContext, BenchReporter } from './harness.ts';

function registerMap(): RegisterEntry[] {
  const map: RegisterEntry[] = [];
  for (let i = 0; i < 10; i++) map.push({ field: `temp_${i}`, function: 'holding', address: 2 * i, type: 'float32', byteOrder: 'CDAB' });
  for (let i = 0; i < 6; i++) map.push({ field: `weight_${i}`, function: 'input', address: i, type: 'int16', scale: 0.1 });
  for (let i = 0; i < 4; i++) map.push({ field: `run_${i}`, function: 'coil', address: i });
  return map;
}

const CONFIG: ModbusAdapterConfig = {
  device: 'plc-bench',
  topic: 'widgets',
  transport: { kind: 'tcp', host: '127.0.0.1' },
  slaves: [{ name: 'oven', unitId: 1, sensorId: 'aa-101', fields: { production_line: 'w01', widget_type: 'acme94' }, registers: registerMap() }],
};

/** Response data of each plan request for poll `i`: values vary per poll so nothing is constant-folded. */
function responses(i: number): Buffer[] {
  const holding = Buffer.alloc(40);
  for (let k = 0; k < 10; k++) {
    const be = Buffer.alloc(4);
    be.writeFloatBE(20 + ((i + k) % 100) * 0.25);
    be.copy(holding, 4 * k, 2, 4);
    be.copy(holding, 4 * k + 2, 0, 2);
  }
  const input = Buffer.alloc(12);
  for (let k = 0; k < 6; k++) input.writeInt16BE(900 + ((i * 7 + k) % 400), 2 * k);
  const coils = Buffer.from([i & 0x0f]);
  return [coils, holding, input]; // plan order: coil, holding, input
}

async function writeCapture(path: string, polls: number): Promise<void> {
  const slave = resolveSlave(CONFIG.slaves[0]!, 0, CONFIG.topic, 255);
  const out = createWriteStream(path);
  const put = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await put(`${JSON.stringify({ format: CAPTURE_FORMAT, version: CAPTURE_VERSION })}\n`);
  const t0 = Date.UTC(2020, 1, 14, 12, 0, 0);
  for (let i = 0; i < polls; i++) {
    const data = responses(i);
    for (let r = 0; r < slave.requests.length; r++) {
      const req = slave.requests[r]!;
      const meta = { line: CONFIG.device, unitId: 1, poll: i + 1, request: r };
      const t = t0 + i * 100 + r;
      await put(`${encodeCaptureFrame({ receivedAt: t, kind: 'modbus-tcp', device: 'oven', direction: 'tx', data: buildReadRequest(1, req.functionCode, req.address, req.count), meta })}\n`);
      await put(`${encodeCaptureFrame({ receivedAt: t, kind: 'modbus-tcp', device: 'oven', data: buildReadResponse(1, req.functionCode, data[r]!), meta })}\n`);
    }
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

async function bareBaseline(path: string, requestsPerPoll: number): Promise<number> {
  let responsesSeen = 0;
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const text of rl) {
    const frame = JSON.parse(text) as { data?: string; dir?: string };
    if (!frame.data || frame.dir === 'tx') continue;
    Buffer.from(frame.data, 'base64');
    responsesSeen++;
  }
  return responsesSeen / requestsPerPoll;
}

const schema = {
  type: 'object',
  required: ['sensor_id', 'temp_0'],
  properties: { sensor_id: { type: 'string' }, temp_0: { type: 'number' }, weight_0: { type: 'number' }, run_0: { type: 'boolean' } },
};

export async function modbusDecoderBench(report: BenchReporter, ctx: BenchContext): Promise<void> {
  const polls = Math.max(1000, Math.round(100_000 * ctx.scale));
  const path = join(ctx.tmpDir, 'modbus.capture');
  await writeCapture(path, polls);
  const schemaCheck = new SchemaCheck({ schemas: { widgets: schema } });
  let readings = 0;
  let letters = 0;
  const t0 = process.hrtime.bigint();
  for await (const out of replayCapture(path, { schemaCheck, maxClockSkewMs: 0, decoders: modbusReplayDecoders([CONFIG]) })) {
    if (out.type === 'reading') readings++;
    else if (out.type === 'dead-letter') letters++;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (readings !== polls || letters !== 0) throw new Error(`modbus: expected ${polls} readings, got ${readings} and ${letters} dead letters`);
  const slave = resolveSlave(CONFIG.slaves[0]!, 0, CONFIG.topic, 255);
  const b0 = process.hrtime.bigint();
  const bare = await bareBaseline(path, slave.requests.length);
  const bareSeconds = Number(process.hrtime.bigint() - b0) / 1e9;
  if (bare !== polls) throw new Error(`modbus baseline read ${bare} of ${polls} polls`);
  report.compare('modbus readings/s (capture → RTU frames → registers → schema)', readings / seconds, bare / bareSeconds, 'readings/s');

  // The register decoder alone: 20 fields of mixed types and byte orders per poll.
  const inputs = Array.from({ length: 256 }, (_, i) => responses(i));
  const scratch = Buffer.allocUnsafe(8);
  const decodes = polls * 5;
  let sink = 0;
  const d0 = process.hrtime.bigint();
  for (let i = 0; i < decodes; i++) sink += (decodeSlaveValue(slave, inputs[i & 255]!, scratch).temp_0 as number) > 0 ? 1 : 0;
  const decodeSeconds = Number(process.hrtime.bigint() - d0) / 1e9;
  if (sink !== decodes) throw new Error('modbus decode produced a non-positive temperature');
  report.figure('modbus register decode polls/s (20 fields, decoder only)', decodes / decodeSeconds, 'polls/s');
  report.note(`modbus: ${polls} polls of a 20-field slave (3 requests each) in the capture`);
}
