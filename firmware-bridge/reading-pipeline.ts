/**
 * The path every decoded frame takes, shared by the live adapters and
 * `millstream capture replay`: build the reading (key, event time, headers),
 * check its topic's schema, and turn any failure into a `DeadLetter` with the
 * raw payload, the device and the reason. Nothing is dropped: each input
 * yields exactly one reading or one dead letter.
 */
import { BridgeError, isBridgeError } from './errors.ts';
import type { ReadingBuilder } from './reading-builder.ts';
import type { SchemaCheck } from './schema-check.ts';
import type { DeadLetter, Reading } from './types.ts';

/** Default dead-letter topic. */
export const DEFAULT_DEAD_LETTER_TOPIC = 'dead-letters';

export type PipelineResult =
  | { ok: true; reading: Reading }
  | { ok: false; letter: DeadLetter; error: BridgeError };

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The raw payload as a dead letter keeps it: the text when it is valid UTF-8, else `hex:` and the bytes in hex. */
export function rawPayload(bytes: Uint8Array): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return `hex:${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
  }
}

export interface ReadingPipelineOptions {
  builder: ReadingBuilder;
  /** Default: no schema checks. */
  schemaCheck?: SchemaCheck;
  /** Default 'dead-letters'. */
  deadLetterTopic?: string;
}

export class ReadingPipeline {
  readonly builder: ReadingBuilder;
  readonly deadLetterTopic: string;
  private readonly schemaCheck: SchemaCheck | undefined;

  constructor(options: ReadingPipelineOptions) {
    this.builder = options.builder;
    this.schemaCheck = options.schemaCheck;
    this.deadLetterTopic = options.deadLetterTopic ?? DEFAULT_DEAD_LETTER_TOPIC;
  }

  /** True when readings of `topic` are checked against a JSON Schema (the check needs their parsed value). */
  checksSchema(topic: string): boolean {
    return this.schemaCheck?.hasSchema(topic) ?? false;
  }

  /**
   * A decoded value → a reading, or a dead letter when it has a bad
   * timestamp, is not an object, or fails the schema. `valueJson` (optional)
   * is carried onto the reading (see `Reading.valueJson`).
   */
  fromValue(value: unknown, raw: string, receivedAt: number, topic?: string, valueJson?: string): PipelineResult {
    let reading: Reading;
    try {
      reading = this.builder.build(value, receivedAt, topic, valueJson);
    } catch (err) {
      const error = isBridgeError(err) ? err : new BridgeError('BRIDGE_DECODE', String(err), { device: this.builder.device }, err);
      return { ok: false, error, letter: this.letter(error.message, raw, receivedAt, topic) };
    }
    const failure = this.schemaCheck?.check(reading);
    if (failure) {
      const error = new BridgeError('BRIDGE_SCHEMA', failure.reason, { device: this.builder.device, topic: reading.topic, schemaPath: failure.path });
      return { ok: false, error, letter: this.letter(failure.reason, raw, receivedAt, reading.topic) };
    }
    return { ok: true, reading };
  }

  /** A frame that could not be decoded → its dead letter (reason: the error's code and message). */
  fromError(error: BridgeError, raw: string, receivedAt: number, topic?: string): DeadLetter {
    return this.letter(`${error.code}: ${error.message}`, raw, receivedAt, topic);
  }

  private letter(reason: string, raw: string, receivedAt: number, topic?: string): DeadLetter {
    return {
      topic: this.deadLetterTopic,
      intendedTopic: topic ?? this.builder.topic,
      device: this.builder.device,
      reason,
      raw,
      receivedAt,
    };
  }
}
