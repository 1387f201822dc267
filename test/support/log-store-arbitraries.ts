/**
 * fast-check arbitraries of log records for the codec's property tests:
 * a timestamp, a key (or null), a value as text or bytes, and headers (or
 * none), each up to the sizes given.
 */
import fc from 'fast-check';

export interface RecordSizes {
  /** Longest key, value text and header value (graphemes). */
  text: number;
  /** Longest value as bytes. */
  bytes: number;
  /** Longest header name. */
  headerName: number;
  /** Most headers on one record. */
  headers: number;
}

export function recordArbitrary(size: RecordSizes) {
  const text = fc.string({ unit: 'grapheme', maxLength: size.text });
  return fc.record({
    timestamp: fc.integer({ min: -1e12, max: 1e13 }),
    key: fc.option(text, { nil: null }),
    value: fc.oneof(text, fc.uint8Array({ maxLength: size.bytes })),
    headers: fc.option(fc.dictionary(fc.string({ maxLength: size.headerName }), text, { maxKeys: size.headers }), { nil: undefined }),
  });
}
