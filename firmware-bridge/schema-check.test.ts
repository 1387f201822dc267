import { describe, expect, it } from 'vitest';
import { ReadingBuilder } from './reading-builder.ts';
import { ReadingPipeline, rawPayload } from './reading-pipeline.ts';
import { SchemaCheck } from './schema-check.ts';

const widgetSchema = {
  type: 'object',
  required: ['sensor_id', 'temp_celcius'],
  properties: { sensor_id: { type: 'string' }, temp_celcius: { type: 'number' }, colour: { enum: ['RED', 'GREEN', 'BLUE'] } },
};

const builder = new ReadingBuilder({ topic: 'widgets', device: 'line-1', kind: 'serial', gatewayId: 'gw' });

describe('SchemaCheck', () => {
  const check = new SchemaCheck({ schemas: { widgets: widgetSchema } });

  it('passes a valid reading and a topic without a schema', () => {
    expect(check.check(builder.build({ sensor_id: 'a', temp_celcius: 1, colour: 'RED' }, 1))).toBeNull();
    expect(check.check(builder.build({ anything: true }, 1, 'other'))).toBeNull();
  });

  it('names the failing path in the reason', () => {
    const failure = check.check(builder.build({ sensor_id: 'a', temp_celcius: 'hot', colour: 'PINK' }, 1));
    expect(failure?.path).toBe('/temp_celcius');
    expect(failure?.reason).toBe('schema: /temp_celcius must be number; /colour must be equal to one of the allowed values');
    const missing = check.check(builder.build({ temp_celcius: 3 }, 1));
    expect(missing?.reason).toBe("schema: / must have required property 'sensor_id'");
  });

  it('refuses a schema that does not compile, naming the topic', () => {
    expect(() => new SchemaCheck({ schemas: { widgets: { type: 'no-such-type' } } })).toThrow(
      expect.objectContaining({ code: 'BRIDGE_CONFIG', message: expect.stringContaining('topic widgets') }),
    );
  });
});

describe('ReadingPipeline', () => {
  const pipeline = new ReadingPipeline({ builder, schemaCheck: new SchemaCheck({ schemas: { widgets: widgetSchema } }), deadLetterTopic: 'dlq' });

  it('turns a failing reading into a dead letter with raw payload, device and the ajv path', () => {
    const raw = '{"sensor_id":"a","temp_celcius":"hot"}';
    const result = pipeline.fromValue(JSON.parse(raw), raw, 99);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('BRIDGE_SCHEMA');
    expect(result.letter).toEqual({ topic: 'dlq', intendedTopic: 'widgets', device: 'line-1', reason: 'schema: /temp_celcius must be number', raw, receivedAt: 99 });
  });

  it('turns a bad timestamp into a dead letter, and a good reading into a reading', () => {
    const bad = pipeline.fromValue({ sensor_id: 'a', temp_celcius: 1, reading_ts: 'soon' }, 'x', 5);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.letter.reason).toContain('reading_ts "soon"');
    const good = pipeline.fromValue({ sensor_id: 'a', temp_celcius: 1 }, 'x', 5);
    expect(good.ok && good.reading.key).toBe('a');
  });

  it('keeps raw bytes as text when UTF-8, else as hex', () => {
    expect(rawPayload(Buffer.from('héllo'))).toBe('héllo');
    expect(rawPayload(Buffer.from([0x41, 0xff, 0xfe]))).toBe('hex:41fffe');
  });
});
