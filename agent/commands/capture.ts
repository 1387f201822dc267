/**
 * `millstream capture replay <file>`: feeds a raw capture file (see
 * firmware-bridge/capture.ts for the format) back through the bridge's
 * decoders and prints one JSON line per result on stdout:
 *
 *   {"type":"reading","line":2,"topic":"widgets","key":"aa-101","timestamp":1581682767000,"headers":{...},"value":{...}}
 *   {"type":"dead-letter","line":3,"topic":"dead-letters","intendedTopic":"widgets","device":"line-1","reason":"...","raw":"...","receivedAt":...}
 *   {"type":"dropped","line":9,"count":12}
 *
 * `line` is the capture file line of the frame. A summary goes to stderr.
 * A malformed capture exits non-zero naming file and line; `--strict` also
 * exits 2 when any dead letter was produced (for scripts).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { FramingConfig, ReplayOptions } from '../../firmware-bridge/index.ts';
// Only the light error module at load time: the decoders (and their device libraries) load when the command runs.
import { BridgeError } from '../../firmware-bridge/errors.ts';

export interface CaptureReplayFlags {
  topic: string;
  framing: string;
  csvHeader?: string;
  csvDelimiter?: string;
  maxLineBytes?: string;
  keyField?: string;
  timestampField?: string;
  maxClockSkewMs?: string;
  deadLetterTopic?: string;
  gatewayId: string;
  schema: string[];
  strict?: boolean;
  /** Agent config: Modbus register maps (decoders), gateway id, dead-letter topic and topic schemas come from it. */
  config?: string;
}

export interface ReplaySummary {
  readings: number;
  deadLetters: number;
  dropped: number;
}

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new BridgeError('BRIDGE_CONFIG', `--${name} must be a non-negative integer (got ${JSON.stringify(value)})`);
  return n;
}

function framingOf(flags: CaptureReplayFlags): FramingConfig {
  switch (flags.framing) {
    case 'json':
      return { format: 'json' };
    case 'kv':
      return { format: 'kv' };
    case 'csv':
      return { format: 'csv', header: flags.csvHeader?.split(',').map((h) => h.trim()), delimiter: flags.csvDelimiter };
    default:
      throw new BridgeError('BRIDGE_CONFIG', `--framing must be json, csv or kv (got ${JSON.stringify(flags.framing)})`);
  }
}

/** `--schema topic=file.json` → topic → schema object; errors name the file. */
async function loadSchemas(specs: readonly string[]): Promise<Record<string, object>> {
  const schemas: Record<string, object> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new BridgeError('BRIDGE_CONFIG', `--schema takes topic=file.json (got ${JSON.stringify(spec)})`);
    const file = spec.slice(eq + 1);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new BridgeError('BRIDGE_CONFIG', `--schema ${file}: ${(err as Error).message}`, { path: file }, err);
    }
    try {
      schemas[spec.slice(0, eq)] = JSON.parse(text) as object;
    } catch (err) {
      throw new BridgeError('BRIDGE_CONFIG', `--schema ${file}: not JSON (${(err as Error).message})`, { path: file }, err);
    }
  }
  return schemas;
}

/** The command's work, with output injected (tests call it directly). */
export async function captureReplay(file: string, flags: CaptureReplayFlags, write: (line: string) => void): Promise<ReplaySummary> {
  const [{ replayCapture, SchemaCheck }, { modbusReplayDecoders }] = await Promise.all([
    import('../../firmware-bridge/index.ts'),
    import('../../firmware-bridge/modbus-replay.ts'),
  ]);
  let fromConfig: Partial<ReplayOptions> = {};
  if (flags.config) {
    const [{ loadConfig }, { adapterConfig }] = await Promise.all([import('../config.ts'), import('../source-config.ts')]);
    const cfg = await loadConfig(flags.config);
    const modbus = cfg.sources.filter((s) => s.modbus).map((s) => adapterConfig(s, cfg) as Parameters<typeof modbusReplayDecoders>[0][number]);
    const schemas: Record<string, object> = {};
    for (const [topic, t] of Object.entries(cfg.topics)) {
      if (t.schema) schemas[topic] = JSON.parse(await readFile(t.schema, 'utf8')) as object;
    }
    fromConfig = {
      gatewayId: cfg.gateway.id,
      deadLetterTopic: cfg.deadLetterTopic,
      decoders: modbusReplayDecoders(modbus),
      ...(Object.keys(schemas).length ? { schemaCheck: new SchemaCheck({ schemas }) } : {}),
    };
  }
  const options: ReplayOptions = {
    ...fromConfig,
    topic: flags.topic,
    gatewayId: fromConfig.gatewayId ?? flags.gatewayId,
    framing: framingOf(flags),
    maxLineBytes: intFlag('max-line-bytes', flags.maxLineBytes),
    keyField: flags.keyField,
    timestampField: flags.timestampField,
    maxClockSkewMs: intFlag('max-clock-skew-ms', flags.maxClockSkewMs),
    deadLetterTopic: flags.deadLetterTopic ?? fromConfig.deadLetterTopic,
    ...(flags.schema.length ? { schemaCheck: new SchemaCheck({ schemas: await loadSchemas(flags.schema) }) } : {}),
  };
  const summary: ReplaySummary = { readings: 0, deadLetters: 0, dropped: 0 };
  for await (const out of replayCapture(file, options)) {
    if (out.type === 'reading') {
      summary.readings++;
      write(JSON.stringify({ type: 'reading', line: out.line, ...out.reading }));
    } else if (out.type === 'dead-letter') {
      summary.deadLetters++;
      write(JSON.stringify({ type: 'dead-letter', line: out.line, ...out.letter }));
    } else {
      summary.dropped += out.count;
      write(JSON.stringify(out));
    }
  }
  return summary;
}

export function register(program: Command): void {
  const capture = program.command('capture').description('raw device captures: replay a recorded session through the decoders');
  capture
    .command('replay <file>')
    .description('feed a capture file through the same decoders as the live adapters; prints readings and dead letters as JSON lines')
    .option('--topic <topic>', 'target topic of the readings', 'widgets')
    .option('--framing <format>', 'serial line format: json, csv or kv', 'json')
    .option('--csv-header <fields>', 'CSV field names, comma-separated (default: the first line is the header)')
    .option('--csv-delimiter <char>', 'CSV field separator (default ,)')
    .option('--max-line-bytes <n>', 'longest accepted serial line (default 65536)')
    .option('--key-field <field>', 'field holding the key (default sensor_id)')
    .option('--timestamp-field <field>', 'field holding the device time (default reading_ts)')
    .option('--max-clock-skew-ms <ms>', 'flag device clocks off by more than this (default 300000, 0 disables)')
    .option('--dead-letter-topic <topic>', 'dead-letter topic (default dead-letters)')
    .option('--gateway-id <id>', 'gateway id header', 'replay')
    .option('--schema <topic=file.json>', 'JSON Schema for a topic (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--strict', 'exit with status 2 when any frame became a dead letter')
    .option('-c, --config <file>', 'agent config: decode Modbus captures with its register maps; take gateway id, dead-letter topic and topic schemas from it')
    .action(async (file: string, flags: CaptureReplayFlags) => {
      const summary = await captureReplay(file, flags, (line) => process.stdout.write(`${line}\n`));
      process.stderr.write(`replayed ${file}: ${summary.readings} readings, ${summary.deadLetters} dead letters${summary.dropped ? `, ${summary.dropped} frames skipped at capture` : ''}\n`);
      if (flags.strict && summary.deadLetters > 0) process.exitCode = 2;
    });
}
