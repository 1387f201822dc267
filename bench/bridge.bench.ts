/**
 * Bridge decoders: readings/s from a serial capture file through the same
 * path `millstream capture replay` and the live serial adapter use (capture
 * parse, line framing, strict UTF-8, JSON/CSV/key=value decode, reading
 * builder, JSON Schema check). Baseline, in the same run: the same file read
 * with no bridge logic at all (parse the capture line, base64, split on
 * newlines, JSON.parse).
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CAPTURE_FORMAT, CAPTURE_VERSION, encodeCaptureFrame } from '../firmware-bridge/capture.ts';
import { replayCapture } from '../firmware-bridge/capture-replay.ts';
import type { FramingConfig } from '../firmware-bridge/line-decoders.ts';
import { SchemaCheck } from '../firmware-bridge/schema-check.ts';
import { modbusDecoderBench } from './bridge-modbus.ts';
import type { BenchSuite } from './harness.ts';

const COLOURS = ['RED', 'GREEN', 'BLUE'];

function line(format: FramingConfig['format'], i: number): string {
  const ts = new Date(Date.UTC(2020, 1, 14, 12, 0, 0) + i * 100).toISOString();
  const sensor = `aa-${100 + (i % 50)}`;
  const colour = COLOURS[i % 3];
  const temp = 15 + (i % 20);
  const weight = 90 + (i % 40);
  switch (format) {
    case 'json':
      return `{"reading_ts":"${ts}","sensor_id":"${sensor}","production_line":"w0${i % 4}","widget_type":"acme94","colour":"${colour}","temp_celcius":${temp},"widget_weight_g":${weight}}\n`;
    case 'csv':
      return `${ts},${sensor},w0${i % 4},acme94,${colour},${temp},${weight}\n`;
    case 'kv':
      return `reading_ts=${ts} sensor_id=${sensor} production_line=w0${i % 4} widget_type=acme94 colour=${colour} temp_celcius=${temp} widget_weight_g=${weight}\n`;
  }
}

/** Writes `count` readings as serial chunks of ~1 KiB (what a 115200-baud port hands over per read, roughly), split mid-line. */
async function writeCapture(path: string, format: FramingConfig['format'], count: number): Promise<void> {
  const out = createWriteStream(path);
  const put = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await put(`${JSON.stringify({ format: CAPTURE_FORMAT, version: CAPTURE_VERSION })}\n`);
  let pending = '';
  for (let i = 0; i < count; i++) {
    pending += line(format, i);
    while (pending.length >= 1024) {
      await put(`${encodeCaptureFrame({ receivedAt: Date.UTC(2020, 1, 14, 12, 0, 0) + i * 100, kind: 'serial', device: 'line-1', data: Buffer.from(pending.slice(0, 1024)) })}\n`);
      pending = pending.slice(1024);
    }
  }
  if (pending) await put(`${encodeCaptureFrame({ receivedAt: Date.UTC(2020, 1, 14, 13, 0, 0), kind: 'serial', device: 'line-1', data: Buffer.from(pending) })}\n`);
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

async function bareBaseline(path: string): Promise<number> {
  let n = 0;
  let partial = '';
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const text of rl) {
    const frame = JSON.parse(text) as { data?: string };
    if (!frame.data) continue;
    const parts = (partial + Buffer.from(frame.data, 'base64').toString('utf8')).split('\n');
    partial = parts.pop()!;
    for (const p of parts) {
      JSON.parse(p);
      n++;
    }
  }
  return n;
}

const schema = {
  type: 'object',
  required: ['sensor_id'],
  properties: { sensor_id: { type: 'string' }, temp_celcius: { type: 'number' }, widget_weight_g: { type: 'number' }, colour: { enum: COLOURS } },
};

const suite: BenchSuite = {
  name: 'bridge',
  description: 'serial and Modbus readings/s through the bridge decoders from capture files (JSON, CSV, key=value; Modbus RTU frames) vs bare parse baselines',
  async run(report, ctx) {
    const count = Math.max(1000, Math.round(200_000 * ctx.scale));
    const schemaCheck = new SchemaCheck({ schemas: { widgets: schema } });
    // Warm-up (JIT) of both paths on a small file, so neither measured run pays for compilation.
    const warm = join(ctx.tmpDir, 'warm.capture');
    await writeCapture(warm, 'json', 20_000);
    for await (const _ of replayCapture(warm, { topic: 'widgets', schemaCheck, maxClockSkewMs: 0 })) void _;
    await bareBaseline(warm);
    for (const format of ['json', 'csv', 'kv'] as const) {
      const path = join(ctx.tmpDir, `${format}.capture`);
      await writeCapture(path, format, count);
      const framing: FramingConfig =
        format === 'csv' ? { format, header: ['reading_ts', 'sensor_id', 'production_line', 'widget_type', 'colour', 'temp_celcius', 'widget_weight_g'] } : { format };
      let readings = 0;
      let letters = 0;
      const t0 = process.hrtime.bigint();
      for await (const out of replayCapture(path, { topic: 'widgets', framing, schemaCheck, maxClockSkewMs: 0 })) {
        if (out.type === 'reading') readings++;
        else if (out.type === 'dead-letter') letters++;
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (readings !== count || letters !== 0) throw new Error(`${format}: expected ${count} readings, got ${readings} and ${letters} dead letters`);
      const rate = readings / seconds;
      if (format === 'json') {
        const b0 = process.hrtime.bigint();
        const bare = await bareBaseline(path);
        const bareSeconds = Number(process.hrtime.bigint() - b0) / 1e9;
        if (bare !== count) throw new Error(`baseline read ${bare} of ${count}`);
        report.compare('serial json readings/s (capture → decoders → schema)', rate, bare / bareSeconds, 'readings/s');
      } else {
        report.figure(`serial ${format} readings/s (capture → decoders → schema)`, rate, 'readings/s');
      }
    }
    report.note(`${count} readings per format, ~1 KiB serial chunks split mid-line`);
    await modbusDecoderBench(report, ctx);
  },
};

export default suite;
