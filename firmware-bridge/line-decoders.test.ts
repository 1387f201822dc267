import { describe, expect, it } from 'vitest';
import { createLineDecoder, splitCsv, type DecodeResult } from './line-decoders.ts';

const ok = (r: DecodeResult) => {
  if (!r.ok) throw r.error;
  return r.value;
};
const err = (r: DecodeResult) => {
  if (r.ok) throw new Error(`expected an error, got ${JSON.stringify(r.value)}`);
  return r.error;
};

describe('json lines', () => {
  const d = createLineDecoder({ format: 'json' });
  it('decodes an object', () => {
    expect(ok(d.decode(Buffer.from('{"sensor_id":"aa-101","temp_celcius":23}')))).toEqual({ sensor_id: 'aa-101', temp_celcius: 23 });
  });
  it('hands on the line itself as the value\'s JSON text; other formats have none', () => {
    const line = ' {"sensor_id":"aa-101", "temp_celcius":23.0} ';
    const result = d.decode(Buffer.from(line));
    expect(result).toMatchObject({ ok: true, valueJson: line });
    expect(JSON.parse((result as { valueJson: string }).valueJson)).toEqual((result as { value: object }).value);
    expect(createLineDecoder({ format: 'kv' }).decode(Buffer.from('a=1'))).not.toHaveProperty('valueJson');
  });
  it.each([
    ['{"a":', 'not JSON'],
    ['[1,2]', 'an array'],
    ['42', 'number'],
    ['null', 'null'],
  ])('%s is a decode error (%s)', (line, why) => {
    const e = err(d.decode(Buffer.from(line)));
    expect(e.code).toBe('BRIDGE_DECODE');
    expect(e.message).toContain(why);
  });
  it('invalid UTF-8 is an error with the hex shown', () => {
    const e = err(d.decode(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d])));
    expect(e.code).toBe('BRIDGE_INVALID_UTF8');
    expect(e.message).toContain('7b22c328227d');
  });
});

describe('csv', () => {
  it('uses a configured header and converts numbers and empty fields', () => {
    const d = createLineDecoder({ format: 'csv', header: ['sensor_id', 'temp_celcius', 'colour', 'note'] });
    expect(ok(d.decode(Buffer.from('aa-101,23.5,RED,')))).toEqual({ sensor_id: 'aa-101', temp_celcius: 23.5, colour: 'RED', note: null });
    expect(ok(d.decode(Buffer.from('007,-1e3,"DARK, RED","say ""hi"""')))).toEqual({ sensor_id: 7, temp_celcius: -1000, colour: 'DARK, RED', note: 'say "hi"' });
  });

  it('takes the first line as header, skips it when repeated, refuses rows of the wrong width', () => {
    const d = createLineDecoder({ format: 'csv' });
    expect(d.decode(Buffer.from('sensor_id;temp_celcius'))).toMatchObject({ ok: true, value: null });
    const semi = createLineDecoder({ format: 'csv', delimiter: ';' });
    expect(semi.decode(Buffer.from('sensor_id;temp_celcius'))).toMatchObject({ ok: true, value: null });
    expect(ok(semi.decode(Buffer.from('aa-1;20')))).toEqual({ sensor_id: 'aa-1', temp_celcius: 20 });
    expect(semi.decode(Buffer.from('sensor_id;temp_celcius'))).toMatchObject({ ok: true, value: null });
    const e = err(semi.decode(Buffer.from('ius;20;x')));
    expect(e.code).toBe('BRIDGE_DECODE');
    expect(e.message).toBe('csv: 3 fields, the header has 2 (sensor_id;temp_celcius)');
  });

  it('refuses an open quote and invalid UTF-8', () => {
    const d = createLineDecoder({ format: 'csv', header: ['a', 'b'] });
    expect(err(d.decode(Buffer.from('"x,1'))).message).toContain('quote');
    expect(err(d.decode(Buffer.from([0x61, 0x2c, 0xff]))).message).toContain('612cff');
  });

  it('splitCsv keeps empty fields', () => {
    expect(splitCsv(',a,,', ',')).toEqual(['', 'a', '', '']);
  });

  it('refuses a bad header or delimiter at construction', () => {
    expect(() => createLineDecoder({ format: 'csv', header: [] })).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
    expect(() => createLineDecoder({ format: 'csv', delimiter: '::' })).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
  });
});

describe('key=value', () => {
  const d = createLineDecoder({ format: 'kv' });
  it('decodes pairs separated by spaces, commas or semicolons, with quoted values', () => {
    expect(ok(d.decode(Buffer.from('sensor_id=aa-101 temp_celcius=23, colour="DARK RED";reading_ts=2020-02-14T12:19:27Z')))).toEqual({
      sensor_id: 'aa-101',
      temp_celcius: 23,
      colour: 'DARK RED',
      reading_ts: '2020-02-14T12:19:27Z',
    });
    expect(ok(d.decode(Buffer.from('a= b="q\\"x"')))).toEqual({ a: null, b: 'q"x' });
  });
  it.each(['justtext', '=5', 'a=1 junk', '   '])('%j is a decode error', (line) => {
    expect(err(d.decode(Buffer.from(line))).code).toBe('BRIDGE_DECODE');
  });
});

it('an unknown format is a config error', () => {
  expect(() => createLineDecoder({ format: 'xml' } as never)).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
});
