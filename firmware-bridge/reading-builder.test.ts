import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBridgeError } from './errors.ts';
import { HEADERS, parseEventTime, ReadingBuilder } from './reading-builder.ts';

const FIELD = {
  reading_ts: '2020-02-14T12:19:27Z',
  sensor_id: 'aa-101',
  production_line: 'w01',
  widget_type: 'acme94',
  colour: 'RED',
  temp_celcius: 23,
  widget_weight_g: 100,
};
const TS = Date.UTC(2020, 1, 14, 12, 19, 27);

function builder(extra: Partial<ConstructorParameters<typeof ReadingBuilder>[0]> = {}) {
  return new ReadingBuilder({ topic: 'widgets', device: 'line-1', kind: 'serial', gatewayId: 'gw-7', ...extra });
}

describe('parseEventTime', () => {
  it.each([
    ['2020-02-14T12:19:27Z', TS],
    ['2020-02-14T12:19:27.250Z', TS + 250],
    ['2020-02-14T13:19:27+01:00', TS],
    ['2020-02-14 12:19:27', TS],
    ['2020-02-14T12:19:27', TS],
    [TS, TS],
    [String(TS), TS],
    // Shaped like toISOString output but no such date: NaN, as on the general path.
    ['2020-13-45T12:19:27.250Z', Number.NaN],
  ])('%j → %d', (input, expected) => {
    expect(parseEventTime(input)).toBe(expected);
  });

  it.each(['yesterday', '2020-02-14', '14/02/2020 12:19', '', -5, Number.NaN, true, {}])('%j is not a time', (input) => {
    expect(parseEventTime(input)).toBeNaN();
  });

  it('toISOString-shaped text, in range or not (any digits in any field), reads as Date.parse reads it', () => {
    const digits = (n: number) => fc.integer({ min: 0, max: 10 ** n - 1 }).map((v) => String(v).padStart(n, '0'));
    const near = (n: number, values: number[]) => fc.oneof(digits(n), fc.constantFrom(...values.map((v) => String(v).padStart(n, '0'))));
    const iso = fc
      .tuple(near(4, [0, 99, 100, 1970, 2020, 9999]), near(2, [0, 1, 2, 12, 13]), near(2, [0, 1, 28, 29, 30, 31, 32]), near(2, [0, 23, 24, 25]), near(2, [0, 59, 60]), near(2, [0, 59, 60]), near(3, [0, 1, 999]))
      .map(([y, mo, d, h, mi, sec, ms]) => `${y}-${mo}-${d}T${h}:${mi}:${sec}.${ms}Z`);
    fc.assert(
      fc.property(iso, (text) => {
        expect(parseEventTime(text)).toBe(Date.parse(text));
      }),
      { numRuns: 5000 },
    );
    for (const text of ['2020-02-30T00:00:00.000Z', '2020-01-01T24:00:00.000Z', '2020-01-01T24:00:00.001Z', '0099-12-31T23:59:59.999Z', '2020-02-14T12:19:27.250z', '2020-02-14T12:19:27,250Z', '2020-02-14T12:19:2a.250Z']) {
      expect(parseEventTime(text)).toBe(Date.parse(text));
    }
  });
});

describe('ReadingBuilder', () => {
  it('builds the field example: key, device event time, headers with receive time', () => {
    const receivedAt = TS + 1500;
    const r = builder().build(FIELD, receivedAt);
    expect(r).toEqual({
      topic: 'widgets',
      key: 'aa-101',
      value: FIELD,
      timestamp: TS,
      headers: { source: 'serial', device: 'line-1', gateway_id: 'gw-7', received_at: String(receivedAt) },
    });
  });

  it('uses receive time when the reading has no timestamp, and a configured key field', () => {
    const r = builder({ keyField: 'production_line' }).build({ production_line: 'w01', temp_celcius: 20 }, 1234);
    expect(r.timestamp).toBe(1234);
    expect(r.key).toBe('w01');
  });

  it('gives a null key when the key field is missing and stringifies numeric keys', () => {
    expect(builder().build({ temp_celcius: 1 }, 1).key).toBeNull();
    expect(builder().build({ sensor_id: 42 }, 1).key).toBe('42');
  });

  it('flags a device clock beyond maxClockSkewMs in a header and in clockSkewMs, and clears it when the clock is right again', () => {
    const b = builder({ maxClockSkewMs: 60_000 });
    const late = b.build(FIELD, TS + 120_000);
    expect(late.headers[HEADERS.clockSkewMs]).toBe('-120000');
    expect(late.headers).toEqual({ source: 'serial', device: 'line-1', gateway_id: 'gw-7', received_at: String(TS + 120_000), clock_skew_ms: '-120000' });
    expect(Object.keys(late.headers)).toEqual(Object.values(HEADERS));
    expect(late.timestamp).toBe(TS);
    expect(b.clockSkewMs).toBe(-120_000);
    const ahead = b.build(FIELD, TS - 61_000);
    expect(ahead.headers[HEADERS.clockSkewMs]).toBe('61000');
    const fine = b.build(FIELD, TS + 59_000);
    expect(fine.headers[HEADERS.clockSkewMs]).toBeUndefined();
    expect(b.clockSkewMs).toBeNull();
  });

  it('writes any skew, however large, as String() would', () => {
    const b = builder({ maxClockSkewMs: 1 });
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: -(2 ** 45), max: 2 ** 45 }), fc.constantFrom(-(2 ** 31) - 1, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, 1e9, -1e9, 999_999_999_999, -213_979_556_274)), (skew) => {
        fc.pre(Math.abs(skew) > 1);
        const receivedAt = 2 ** 46;
        expect(b.build({ reading_ts: receivedAt + skew }, receivedAt).headers[HEADERS.clockSkewMs]).toBe(String(skew));
      }),
      { numRuns: 2000 },
    );
  });

  it('does not flag skew when the check is disabled', () => {
    const b = builder({ maxClockSkewMs: 0 });
    expect(b.build(FIELD, TS + 10 * 86_400_000).headers[HEADERS.clockSkewMs]).toBeUndefined();
    expect(b.clockSkewMs).toBeNull();
  });

  it('refuses a value that is not an object, and an unreadable timestamp', () => {
    for (const v of [null, [1, 2], 'text', 5]) {
      expect(() => builder().build(v, 1)).toThrow(expect.objectContaining({ code: 'BRIDGE_DECODE' }));
    }
    let err: unknown;
    try {
      builder().build({ ...FIELD, reading_ts: 'yesterday' }, 1);
    } catch (e) {
      err = e;
    }
    expect(isBridgeError(err, 'BRIDGE_BAD_TIMESTAMP')).toBe(true);
    expect((err as Error).message).toContain('reading_ts "yesterday"');
  });

  it('refuses missing required options at construction', () => {
    expect(() => builder({ gatewayId: '' })).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
    expect(() => builder({ maxClockSkewMs: -1 })).toThrow(expect.objectContaining({ code: 'BRIDGE_CONFIG' }));
  });

  it('readings received in the same ms share one frozen headers object; a skewed one gets its own', () => {
    const b = builder({ maxClockSkewMs: 1000 });
    const r1 = b.build({ ...FIELD }, TS);
    const r2 = b.build({ ...FIELD, reading_ts: TS + 5 }, TS);
    const skewed = b.build({ ...FIELD, reading_ts: TS + 5000 }, TS);
    const later = b.build({ ...FIELD }, TS + 1);
    expect(r2.headers).toBe(r1.headers);
    expect(Object.isFrozen(r1.headers)).toBe(true);
    expect(skewed.headers).toEqual({ ...r1.headers, [HEADERS.clockSkewMs]: '5000' });
    expect(r1.headers).not.toHaveProperty(HEADERS.clockSkewMs);
    expect(later.headers[HEADERS.receivedAt]).toBe(String(TS + 1));
    expect(r1.headers[HEADERS.receivedAt]).toBe(String(TS));
  });

  it('carries a given valueJson onto the reading, and none when not given', () => {
    expect(builder().build({ ...FIELD }, TS, 'widgets', '{"x":1}').valueJson).toBe('{"x":1}');
    expect(builder().build({ ...FIELD }, TS)).not.toHaveProperty('valueJson');
  });
});
