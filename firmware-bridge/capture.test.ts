import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCaptureWriter, parseCaptureLine, readCapture, type CaptureEntry } from './capture.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ms-capture-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function all(path: string): Promise<CaptureEntry[]> {
  const out: CaptureEntry[] = [];
  for await (const e of readCapture(path)) out.push(e);
  return out;
}

describe('capture files', () => {
  it('round-trips serial chunks (any bytes), MQTT topic+payload, Modbus tx with meta, and disconnect events', async () => {
    const path = join(dir, 'session.capture');
    const w = openCaptureWriter(path);
    const bad = Buffer.from([0x7b, 0xff, 0x0a, 0x00]);
    w.write({ receivedAt: 1000, kind: 'serial', device: 'line-1', data: Buffer.from('{"sensor_id":"a"}\n{"half') });
    w.write({ receivedAt: 1001, kind: 'serial', device: 'line-1', data: bad });
    w.write({ receivedAt: 1002, kind: 'serial', device: 'line-1', event: 'disconnect' });
    w.write({ receivedAt: 1003, kind: 'mqtt', device: 'broker', topic: 'factory/w01/aa-101/reading', data: Buffer.from('{"t":1}') });
    w.write({ receivedAt: 1004, kind: 'modbus-tcp', device: 'plc', direction: 'tx', data: Buffer.from([0, 1, 0, 0]), meta: { unitId: 3 } });
    await w.close();
    await w.close();
    const text = await readFile(path, 'utf8');
    expect(text.split('\n')[0]).toBe('{"format":"millstream-capture","version":1}');
    expect(text.split('\n')[1]).toBe(`{"t":1000,"kind":"serial","device":"line-1","data":"${Buffer.from('{"sensor_id":"a"}\n{"half').toString('base64')}"}`);
    const entries = await all(path);
    expect(entries.map((e) => e.type)).toEqual(['frame', 'frame', 'frame', 'frame', 'frame']);
    const frames = entries.map((e) => (e.type === 'frame' ? e.frame : null));
    expect(Buffer.from(frames[1]!.data!)).toEqual(bad);
    expect(frames[2]).toEqual({ receivedAt: 1002, kind: 'serial', device: 'line-1', event: 'disconnect' });
    expect(frames[3]).toMatchObject({ kind: 'mqtt', topic: 'factory/w01/aa-101/reading' });
    expect(Buffer.from(frames[3]!.data!).toString()).toBe('{"t":1}');
    expect(frames[4]).toMatchObject({ direction: 'tx', meta: { unitId: 3 } });
    expect(entries[4]!.line).toBe(6);
  });

  it('appends to an existing file without a second format line', async () => {
    const path = join(dir, 'c');
    const a = openCaptureWriter(path);
    a.write({ receivedAt: 1, kind: 'serial', device: 'd', data: Buffer.from('x') });
    await a.close();
    const b = openCaptureWriter(path);
    b.write({ receivedAt: 2, kind: 'serial', device: 'd', data: Buffer.from('y') });
    await b.close();
    expect((await readFile(path, 'utf8')).match(/format/g)).toHaveLength(1);
    expect(await all(path)).toHaveLength(2);
  });

  it('skips frames while the disk lags past maxBufferedBytes and records how many', async () => {
    const path = join(dir, 'lag');
    const w = openCaptureWriter(path, { maxBufferedBytes: 1 });
    for (let i = 0; i < 50; i++) w.write({ receivedAt: i, kind: 'serial', device: 'd', data: Buffer.alloc(100, 0x41) });
    await w.close();
    const entries = await all(path);
    const frames = entries.filter((e) => e.type === 'frame').length;
    const dropped = entries.reduce((n, e) => n + (e.type === 'dropped' ? e.count : 0), 0);
    expect(w.dropped).toBeGreaterThan(0);
    expect(dropped).toBe(w.dropped);
    expect(frames + dropped).toBe(50);
  });

  it('names file and line of a malformed entry', async () => {
    const path = join(dir, 'broken');
    await writeFile(path, '{"format":"millstream-capture","version":1}\n{"t":1,"kind":"serial","device":"d","data":"eA=="}\n{"t":"soon"}\n');
    await expect(all(path)).rejects.toMatchObject({ code: 'BRIDGE_CAPTURE_FORMAT', message: `${path}:3: "t" (receive time, ms) must be a number` });
    expect(() => parseCaptureLine('{"format":"other","version":1}', 1)).toThrow(/unsupported capture format/);
    expect(() => parseCaptureLine('{"t":1,"kind":"telnet","device":"d","data":""}', 4, 'f')).toThrow('f:4: "kind" must be one of');
    expect(() => parseCaptureLine('not json', 2)).toThrow(/capture:2: not JSON/);
    expect(() => parseCaptureLine('{"t":1,"kind":"serial","device":"d","data":"@@"}', 2)).toThrow(/base64/);
  });

  it('reads lines ended by LF, CR LF or a lone CR, lines longer than a read chunk, and a last line without an end, numbering them as readline does', async () => {
    const path = join(dir, 'ends');
    const frame = (t: number, data: Buffer) => JSON.stringify({ t, kind: 'serial', device: 'd', data: data.toString('base64') });
    const big = Buffer.alloc(300_000, 0x61);
    await writeFile(path, `{"format":"millstream-capture","version":1}\r\n${frame(1, Buffer.from('é'))}\r${frame(2, big)}\n\n${frame(3, Buffer.from('x'))}\r\n${frame(4, Buffer.from('y'))}`);
    const entries = await all(path);
    expect(entries.map((e) => [e.line, e.type === 'frame' ? e.frame.receivedAt : -1])).toEqual([
      [2, 1],
      [3, 2],
      [5, 3],
      [6, 4],
    ]);
    const frames = entries.map((e) => (e.type === 'frame' ? Buffer.from(e.frame.data!) : null));
    expect(frames[0]!.toString()).toBe('é');
    expect(frames[1]!.equals(big)).toBe(true);
  });

  it('hands out the good entries before a bad line throws', async () => {
    const path = join(dir, 'half-bad');
    await writeFile(path, '{"format":"millstream-capture","version":1}\n{"t":1,"kind":"serial","device":"d","data":"eA=="}\n{"t":2,"kind":"serial","device":"d","data":"!!"}\n');
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const e of readCapture(path)) seen.push(e.line);
      })(),
    ).rejects.toMatchObject({ code: 'BRIDGE_CAPTURE_FORMAT', message: `${path}:3: "data" must be base64` });
    expect(seen).toEqual([2]);
  });

  it('takes base64 with or without padding; refuses other characters and padding in the middle', () => {
    const data = (text: string) => {
      const entry = parseCaptureLine(JSON.stringify({ t: 1, kind: 'serial', device: 'd', data: text }), 1);
      return entry?.type === 'frame' ? Buffer.from(entry.frame.data!).toString() : null;
    };
    expect(data('eA==')).toBe('x');
    expect(data('eA')).toBe('x');
    expect(data('eHk=')).toBe('xy');
    expect(data('')).toBe('');
    for (const bad of ['eA=x', 'e A=', 'eA===', 'eA-_', 'ü']) expect(() => data(bad)).toThrow(/"data" must be base64/);
  });
});
