/** A record's value as the CLI prints it: the parsed JSON when the bytes are JSON, else the UTF-8 text. */
export function recordValue(value: Uint8Array | string): unknown {
  const text = typeof value === 'string' ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
