/**
 * Framing + decoding of a line-oriented byte stream (serial ports), shared
 * by the serial adapter and `millstream capture replay` so both decode a
 * byte stream identically: chunks in, decoded objects or errors (each with
 * its raw bytes) out.
 */
import { BridgeError, hexPreview } from './errors.ts';
import { createLineDecoder, type FramingConfig, type LineDecoder } from './line-decoders.ts';
import { LineFramer } from './line-framer.ts';
import { rawPayload } from './reading-pipeline.ts';

/**
 * One decoded frame. `valueJson`, when set, is a JSON text of `value` the
 * decoder already had at hand (see `Reading.valueJson` for its invariant).
 */
export type LineOutput = { ok: true; value: Record<string, unknown>; raw: string; valueJson?: string } | { ok: false; error: BridgeError; raw: string };

export interface LineProcessorOptions {
  framing: FramingConfig;
  /** Longest accepted line in bytes. Default 65536. */
  maxLineBytes?: number;
}

export class LineProcessor {
  private readonly framer: LineFramer;
  private readonly decoder: LineDecoder;

  constructor(options: LineProcessorOptions) {
    this.framer = new LineFramer({ maxLineBytes: options.maxLineBytes });
    this.decoder = createLineDecoder(options.framing);
  }

  /** Feeds one chunk as read from the device; returns what its complete lines decoded to (header lines yield nothing). */
  push(chunk: Buffer): LineOutput[] {
    const out: LineOutput[] = [];
    for (const framed of this.framer.push(chunk)) {
      if (framed.type === 'overflow') {
        out.push({
          ok: false,
          raw: rawPayload(framed.head),
          error: new BridgeError('BRIDGE_LINE_TOO_LONG', `line longer than ${this.framer.maxLineBytes} bytes (${framed.bytes} seen) starting ${hexPreview(framed.head, 32)}`),
        });
        continue;
      }
      const result = this.decoder.decode(framed.bytes);
      if (!result.ok) out.push({ ok: false, error: result.error, raw: result.text ?? rawPayload(framed.bytes) });
      else if (result.value !== null) out.push(result.valueJson === undefined ? { ok: true, value: result.value, raw: result.text } : { ok: true, value: result.value, raw: result.text, valueJson: result.valueJson });
    }
    return out;
  }

  /** The device went away: the partial line (if any) becomes a decode error, so it is dead-lettered, not lost silently. */
  disconnect(): LineOutput | null {
    const partial = this.framer.reset();
    if (partial.length === 0) return null;
    return {
      ok: false,
      raw: rawPayload(partial),
      error: new BridgeError('BRIDGE_DECODE', `incomplete line (${partial.length} bytes) when the device went away`),
    };
  }
}
