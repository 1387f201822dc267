/**
 * Line decoders: one line of bytes → one JSON object, or a BridgeError
 * (BRIDGE_INVALID_UTF8 with the bytes in hex, BRIDGE_DECODE with the reason).
 * Bytes are checked as strict UTF-8 before any parsing.
 *
 * Formats (`FramingConfig.format`):
 * - `json`: one JSON object per line (newline-delimited JSON).
 * - `csv`: comma-separated fields (RFC 4180 quoting within the line: "a,b",
 *   "say ""hi"""). Field names come from `header` when configured, else the
 *   first line received is the header line; a later line equal to the header
 *   is skipped (devices repeat it after a reset). A row with a different field
 *   count is a decode error. Values: decimal numbers become numbers, empty
 *   fields null, anything else stays a string.
 * - `kv`: `key=value` pairs separated by whitespace, ',' or ';'
 *   (`sensor_id=aa-101 temp_celcius=23 colour="DARK RED"`); values converted
 *   as for CSV. A pair without '=' or an empty key is a decode error.
 */
import { isUtf8 } from 'node:buffer';
import { BridgeError, hexPreview } from './errors.ts';

export type FramingConfig =
  | { format: 'json' }
  | {
      format: 'csv';
      /** Field names. Default: none, the first line is the header line. */
      header?: readonly string[];
      /** Field separator, one character. Default ','. */
      delimiter?: string;
    }
  | { format: 'kv' };

/** What a decoder returns for one line: a value, nothing (a header line), or an error. `text` is the line as decoded (UTF-8), when it was valid. */
export type DecodeResult = { ok: true; value: Record<string, unknown> | null; text: string; valueJson?: string } | { ok: false; error: BridgeError; text?: string };

export interface LineDecoder {
  decode(line: Buffer): DecodeResult;
}

const NUMBER = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** CSV/kv value conversion: decimal numbers → number, '' → null, else the string. */
export function convertScalar(s: string): string | number | null {
  if (s === '') return null;
  if (NUMBER.test(s)) {
    const n = Number(s);
    if (Number.isFinite(n)) return n;
  }
  return s;
}

/** Strict UTF-8 decode; a bad byte sequence → BRIDGE_INVALID_UTF8 showing the line in hex. */
export function decodeUtf8(line: Buffer): string | BridgeError {
  if (isUtf8(line)) return line.toString('utf8');
  return new BridgeError('BRIDGE_INVALID_UTF8', `line is not valid UTF-8: ${hexPreview(line, 128)}`, { hex: line.toString('hex') });
}

function decodeError(message: string, text: string): DecodeResult {
  return { ok: false, error: new BridgeError('BRIDGE_DECODE', message), text };
}

class JsonLineDecoder implements LineDecoder {
  decode(line: Buffer): DecodeResult {
    const text = decodeUtf8(line);
    if (typeof text !== 'string') return { ok: false, error: text };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return decodeError(`not JSON: ${(err as Error).message}`, text);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return decodeError(`a JSON line must hold an object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`, text);
    }
    // The line is the JSON text of the value (see Reading.valueJson): the log stores it without serialising it again.
    return { ok: true, value: value as Record<string, unknown>, text, valueJson: text };
  }
}

/** Splits one CSV line (RFC 4180 quoting inside the line). Returns null when a quote is left open. */
export function splitCsv(text: string, delimiter: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) return null;
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      if (i < text.length && text[i] !== delimiter) return null;
      fields.push(value);
    } else {
      const next = text.indexOf(delimiter, i);
      const end = next === -1 ? text.length : next;
      fields.push(text.slice(i, end).trim());
      i = end;
    }
    if (i >= text.length) return fields;
    i++; // skip the delimiter
  }
}

class CsvLineDecoder implements LineDecoder {
  private header: readonly string[] | null;
  private headerText: string | null = null;
  private readonly delimiter: string;

  constructor(config: { header?: readonly string[]; delimiter?: string }) {
    this.delimiter = config.delimiter ?? ',';
    if (this.delimiter.length !== 1 || this.delimiter === '"') throw new BridgeError('BRIDGE_CONFIG', `csv delimiter must be one character other than '"', got ${JSON.stringify(this.delimiter)}`);
    if (config.header !== undefined && (config.header.length === 0 || config.header.some((h) => typeof h !== 'string' || h === ''))) {
      throw new BridgeError('BRIDGE_CONFIG', 'csv header must be a non-empty list of non-empty field names');
    }
    this.header = config.header ?? null;
    if (this.header) this.headerText = this.header.join(this.delimiter);
  }

  decode(line: Buffer): DecodeResult {
    const text = decodeUtf8(line);
    if (typeof text !== 'string') return { ok: false, error: text };
    const fields = splitCsv(text, this.delimiter);
    if (!fields) return decodeError('csv: unterminated or misplaced quote', text);
    if (this.header === null) {
      if (fields.some((f) => f === '')) return decodeError('csv header line has an empty field name', text);
      this.header = fields;
      this.headerText = fields.join(this.delimiter);
      return { ok: true, value: null, text };
    }
    if (fields.join(this.delimiter) === this.headerText) return { ok: true, value: null, text };
    if (fields.length !== this.header.length) {
      return decodeError(`csv: ${fields.length} fields, the header has ${this.header.length} (${this.header.join(this.delimiter)})`, text);
    }
    const value: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) value[this.header[i]!] = convertScalar(fields[i]!);
    return { ok: true, value, text };
  }
}

/** One pair: key, '=', a quoted (backslash escapes) or bare value, then a separator or the end. Sticky, compiled per decoder. */
const KV_PAIR_SOURCE = String.raw`\s*([^\s=,;"]+)=("((?:[^"\\]|\\.)*)"|[^\s,;"]*)\s*(?:[,;]|\s|$)`;

class KvLineDecoder implements LineDecoder {
  private readonly re = new RegExp(KV_PAIR_SOURCE, 'y');
  decode(line: Buffer): DecodeResult {
    const text = decodeUtf8(line);
    if (typeof text !== 'string') return { ok: false, error: text };
    const value: Record<string, unknown> = {};
    const re = this.re;
    let pos = 0;
    const end = text.trimEnd().length;
    while (pos < end) {
      re.lastIndex = pos;
      const m = re.exec(text);
      if (!m) return decodeError(`key=value: cannot parse at column ${pos + 1}: ${JSON.stringify(text.slice(pos, pos + 32))}`, text);
      value[m[1]!] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : convertScalar(m[2]!);
      pos = re.lastIndex;
    }
    if (Object.keys(value).length === 0) return decodeError('key=value: no pairs', text);
    return { ok: true, value, text };
  }
}

/** Makes a decoder. CSV decoders hold the header line, so make one per device. */
export function createLineDecoder(config: FramingConfig): LineDecoder {
  switch (config?.format) {
    case 'json':
      return new JsonLineDecoder();
    case 'csv':
      return new CsvLineDecoder(config);
    case 'kv':
      return new KvLineDecoder();
    default:
      throw new BridgeError('BRIDGE_CONFIG', `framing.format must be json, csv or kv, got ${JSON.stringify((config as { format?: unknown })?.format)}`);
  }
}
