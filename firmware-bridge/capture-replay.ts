/**
 * Feeds a capture file back through the same decoders the live adapters use
 * (`LineProcessor` for serial bytes, JSON payloads for MQTT, then the
 * `ReadingPipeline`), so a field problem reproduces on a laptop. Each
 * reading keeps the capture's receive time, so replayed readings equal the
 * live ones (event time, `received_at`, clock-skew verdicts).
 *
 * Per device state is kept as live: a serial device's partial line waits for
 * its next chunk, and a captured 'disconnect' dead-letters it. Kinds without
 * a built-in decoder (Modbus: its register map lives in the adapter config)
 * take one through `decoders`; without one each of their frames becomes a
 * dead letter saying so, never a silent skip. Modbus requests (`dir: tx`) are
 * not readings and are passed over.
 */
import { readCaptureBatches, type CaptureFrame } from './capture.ts';
import { BridgeError } from './errors.ts';
import type { FramingConfig } from './line-decoders.ts';
import { LineProcessor, type LineOutput } from './line-processor.ts';
import { ReadingBuilder } from './reading-builder.ts';
import { rawPayload, ReadingPipeline } from './reading-pipeline.ts';
import type { SchemaCheck } from './schema-check.ts';
import type { DeadLetter, Reading, SourceKind } from './types.ts';

/** What a decoder makes of one captured frame. `topic` overrides the target topic (MQTT topic maps). */
export type FrameOutput = LineOutput & { topic?: string };

/** Decodes the frames of one device; stateful decoders (line framing) keep their state per device. */
export interface FrameDecoder {
  decode(frame: CaptureFrame): FrameOutput[];
}

export interface ReplayOptions {
  /** Target topic of the readings. Default 'widgets'. */
  topic?: string;
  /** Gateway id header. Default 'replay'. */
  gatewayId?: string;
  /** Serial line format. Default { format: 'json' }. */
  framing?: FramingConfig;
  /** Default 65536. */
  maxLineBytes?: number;
  /** Default 'sensor_id'. */
  keyField?: string;
  /** Default 'reading_ts'. */
  timestampField?: string;
  /** Default 300000; 0 disables. */
  maxClockSkewMs?: number;
  /** Default 'dead-letters'. */
  deadLetterTopic?: string;
  /** Default: no schema checks. */
  schemaCheck?: SchemaCheck;
  /** Decoders by source kind, made per device; override or add to the built-in serial and mqtt ones. */
  decoders?: Partial<Record<SourceKind, (device: string) => FrameDecoder>>;
}

export type ReplayOutput =
  | { type: 'reading'; reading: Reading; line: number }
  | { type: 'dead-letter'; letter: DeadLetter; line: number }
  /** The capture writer skipped frames here (it fell behind). */
  | { type: 'dropped'; count: number; line: number };

function serialDecoder(framing: FramingConfig, maxLineBytes: number | undefined): FrameDecoder {
  const processor = new LineProcessor({ framing, maxLineBytes });
  return {
    decode(frame) {
      if (frame.event === 'disconnect') {
        const partial = processor.disconnect();
        return partial ? [partial] : [];
      }
      // A view, not a copy: the framer copies what it keeps.
      return frame.data ? processor.push(Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength)) : [];
    },
  };
}

const jsonPayloadDecoder: FrameDecoder = {
  decode(frame) {
    if (!frame.data) return [];
    const raw = rawPayload(frame.data);
    if (raw.startsWith('hex:')) return [{ ok: false, raw, error: new BridgeError('BRIDGE_INVALID_UTF8', `payload is not valid UTF-8: ${raw.slice(4, 132)}`) }];
    try {
      const value: unknown = JSON.parse(raw);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return [{ ok: false, raw, error: new BridgeError('BRIDGE_DECODE', 'payload must be a JSON object') }];
      }
      return [{ ok: true, raw, value: value as Record<string, unknown> }];
    } catch (err) {
      return [{ ok: false, raw, error: new BridgeError('BRIDGE_DECODE', `payload is not JSON: ${(err as Error).message}`) }];
    }
  },
};

function noDecoder(kind: SourceKind): FrameDecoder {
  return {
    decode(frame) {
      if (frame.direction === 'tx' || !frame.data) return [];
      return [{ ok: false, raw: rawPayload(frame.data), error: new BridgeError('BRIDGE_DECODE', `no replay decoder for ${kind} frames (pass one in ReplayOptions.decoders)`) }];
    },
  };
}

/** Replays a capture file, yielding each reading and dead letter in capture order. Throws BRIDGE_CAPTURE_FORMAT at a malformed line. */
export async function* replayCapture(path: string, options: ReplayOptions = {}): AsyncGenerator<ReplayOutput> {
  const devices = new Map<string, { decoder: FrameDecoder; pipeline: ReadingPipeline }>();
  const deviceState = (frame: CaptureFrame) => {
    const id = `${frame.kind}\u0000${frame.device}`;
    let state = devices.get(id);
    if (!state) {
      const custom = options.decoders?.[frame.kind];
      const decoder = custom
        ? custom(frame.device)
        : frame.kind === 'serial'
          ? serialDecoder(options.framing ?? { format: 'json' }, options.maxLineBytes)
          : frame.kind === 'mqtt'
            ? jsonPayloadDecoder
            : noDecoder(frame.kind);
      const builder = new ReadingBuilder({
        topic: options.topic ?? 'widgets',
        device: frame.device,
        kind: frame.kind,
        gatewayId: options.gatewayId ?? 'replay',
        keyField: options.keyField,
        timestampField: options.timestampField,
        maxClockSkewMs: options.maxClockSkewMs,
      });
      state = { decoder, pipeline: new ReadingPipeline({ builder, schemaCheck: options.schemaCheck, deadLetterTopic: options.deadLetterTopic }) };
      devices.set(id, state);
    }
    return state;
  };

  for await (const entries of readCaptureBatches(path)) {
    for (const entry of entries) {
      if (entry.type === 'dropped') {
        yield { type: 'dropped', count: entry.count, line: entry.line };
        continue;
      }
      const { frame, line } = entry;
      const { decoder, pipeline } = deviceState(frame);
      for (const out of decoder.decode(frame)) {
        if (out.ok) {
          // `out.valueJson` is left off: replayed readings print and re-serialise from `value` (same keys and values as live).
          const result = pipeline.fromValue(out.value, out.raw, frame.receivedAt, out.topic);
          yield result.ok ? { type: 'reading', reading: result.reading, line } : { type: 'dead-letter', letter: result.letter, line };
        } else {
          yield { type: 'dead-letter', letter: pipeline.fromError(out.error, out.raw, frame.receivedAt, out.topic), line };
        }
      }
    }
  }
}
