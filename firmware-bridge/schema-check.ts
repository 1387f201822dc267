/**
 * Per-topic JSON Schema checks (ajv, draft-07 and 2019-style keywords ajv 8
 * supports by default). Schemas are compiled once, at construction: a broken
 * schema is a BRIDGE_CONFIG error naming the topic, found at start and not
 * at the first reading. A topic without a schema accepts every object.
 *
 * The reason of a failure names each failing value by JSON pointer, e.g.
 * `schema: /temp_celcius must be number; / must have required property 'sensor_id'`
 * (at most `maxErrors` entries), so an operator reading the dead-letter topic
 * sees which field was wrong.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { BridgeError } from './errors.ts';
import type { Reading } from './types.ts';

export interface SchemaCheckOptions {
  /** Topic → JSON Schema (an object). Default: none (everything passes). */
  schemas?: Readonly<Record<string, object>>;
  /** At most this many ajv errors are listed in a reason. Default 5. */
  maxErrors?: number;
}

export interface SchemaFailure {
  /** Human-readable reason for the dead letter, starting with `schema:`. */
  reason: string;
  /** JSON pointer of the first failing value ('' is the whole reading). */
  path: string;
}

function describe(err: ErrorObject): string {
  const where = err.instancePath === '' ? '/' : err.instancePath;
  if (err.keyword === 'additionalProperties') {
    return `${where} must not have property '${(err.params as { additionalProperty: string }).additionalProperty}'`;
  }
  return `${where} ${err.message ?? err.keyword}`;
}

export class SchemaCheck {
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly maxErrors: number;

  constructor(options: SchemaCheckOptions = {}) {
    this.maxErrors = options.maxErrors ?? 5;
    // One ajv instance per checker: no module-level cache shared between adapters or tests.
    const ajv = new Ajv({ allErrors: true, strict: false });
    for (const [topic, schema] of Object.entries(options.schemas ?? {})) {
      try {
        this.validators.set(topic, ajv.compile(schema));
      } catch (err) {
        throw new BridgeError('BRIDGE_CONFIG', `JSON Schema of topic ${topic} does not compile: ${(err as Error).message}`, { topic }, err);
      }
    }
  }

  hasSchema(topic: string): boolean {
    return this.validators.has(topic);
  }

  /** Null when the reading's value passes its topic's schema (or the topic has none). */
  check(reading: Reading): SchemaFailure | null {
    const validate = this.validators.get(reading.topic);
    if (!validate || validate(reading.value)) return null;
    const errors = validate.errors ?? [];
    const listed = errors.slice(0, this.maxErrors).map(describe);
    const more = errors.length > this.maxErrors ? ` (+${errors.length - this.maxErrors} more)` : '';
    return { reason: `schema: ${listed.join('; ')}${more}`, path: errors[0]?.instancePath ?? '' };
  }
}
