/**
 * Capture and replay end to end: a live serial session on a real pty is
 * captured by the adapter, then `millstream capture replay` feeds the file
 * through the same decoders. The replay must reproduce exactly what the live
 * adapter produced: the same readings (value, key, event time, headers with
 * the original receive time) and the same dead letters.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { captureReplay, type CaptureReplayFlags } from '../agent/commands/capture.ts';
import { openCaptureWriter } from '../firmware-bridge/capture.ts';
import { replayCapture } from '../firmware-bridge/capture-replay.ts';
import { SchemaCheck } from '../firmware-bridge/schema-check.ts';
import { SerialAdapter } from '../firmware-bridge/serial-adapter.ts';
import { ContractSink, until } from './support/adapter-contract.ts';
import { openPtyPair, type PtyPair } from './support/pty.ts';

const run = promisify(execFile);
const flags = (extra: Partial<CaptureReplayFlags> = {}): CaptureReplayFlags => ({ topic: 'widgets', framing: 'json', gatewayId: 'gw-live', schema: [], ...extra });

describe('capture replay', () => {
  let dir: string;
  let pty: PtyPair;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ms-replay-'));
    pty = await openPtyPair();
  });
  afterEach(async () => {
    await pty.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reproduces a live serial session (partial lines, bad bytes, unplug mid-line) reading for reading', async () => {
    const capturePath = join(dir, 'line-1.capture');
    const schemaPath = join(dir, 'widgets.schema.json');
    await writeFile(schemaPath, JSON.stringify({ type: 'object', properties: { temp_celcius: { type: 'number' } } }));
    const schemaCheck = new SchemaCheck({ schemas: { widgets: { type: 'object', properties: { temp_celcius: { type: 'number' } } } } });
    const sink = new ContractSink();
    const capture = openCaptureWriter(capturePath);
    const adapter = new SerialAdapter(
      { kind: 'serial', device: 'line-1', topic: 'widgets', path: pty.devicePath, maxLineBytes: 200, reconnect: { initialMs: 20, maxMs: 50 } },
      { sink, gatewayId: 'gw-live', capture, schemaCheck },
    );
    await adapter.start();
    await until(() => adapter.status()[0]!.connected);
    await pty.write('{"reading_ts":"2020-02-14T12:19:27Z","sensor_id":"aa-101","colour":"RED","temp_celcius":23}\n{"sensor_id":"aa-');
    await pty.write('102","temp_celcius":24}\n');
    await pty.write(Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]));
    await pty.write(`{"pad":"${'x'.repeat(300)}"}\n{"sensor_id":"aa-103","temp_celcius":"warm"}\n{"sensor_id":"aa-104","te`);
    await until(() => sink.readings.length === 2 && sink.letters.length === 3);
    await pty.unplug();
    await until(() => sink.letters.length === 4);
    await pty.replug();
    await until(() => adapter.status()[0]!.connected);
    await pty.write('mp":1}\n{"sensor_id":"aa-105","temp_celcius":25}\n');
    await until(() => sink.readings.length === 3 && sink.letters.length === 5);
    await adapter.stop();
    await capture.close();

    // Library replay: identical readings and dead letters.
    const replayed = { readings: [] as unknown[], letters: [] as unknown[] };
    for await (const out of replayCapture(capturePath, { topic: 'widgets', gatewayId: 'gw-live', maxLineBytes: 200, schemaCheck })) {
      if (out.type === 'reading') replayed.readings.push(out.reading);
      if (out.type === 'dead-letter') replayed.letters.push(out.letter);
    }
    // Live JSON-line readings also carry the line as valueJson (what the log stores); replay leaves it off and re-serialises `value`.
    const live = sink.readings.map(({ valueJson: _json, ...r }) => r);
    expect(replayed.readings).toEqual(live);
    expect(sink.readings.map((r) => JSON.parse(r.valueJson!))).toEqual(live.map((r) => r.value));
    expect(replayed.letters).toEqual(sink.letters);
    expect(sink.readings.map((r) => r.key)).toEqual(['aa-101', 'aa-102', 'aa-105']);
    expect(sink.letters.map((l) => l.reason.split(':')[0])).toEqual(['BRIDGE_INVALID_UTF8', 'BRIDGE_LINE_TOO_LONG', 'schema', 'BRIDGE_DECODE', 'BRIDGE_DECODE']);

    // The command's output: the same, as JSON lines.
    const lines: string[] = [];
    const summary = await captureReplay(capturePath, flags({ maxLineBytes: '200', schema: [`widgets=${schemaPath}`] }), (l) => lines.push(l));
    expect(summary).toEqual({ readings: 3, deadLetters: 5, dropped: 0 });
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.filter((p) => p.type === 'reading').map(({ type: _t, line: _l, ...r }) => r)).toEqual(live);
    expect(parsed.filter((p) => p.type === 'dead-letter').map(({ type: _t, line: _l, ...r }) => r)).toEqual(sink.letters);
  });

  it('replays CSV and key=value captures with the framing given on the command line, and MQTT payloads', async () => {
    const path = join(dir, 'mixed.capture');
    const w = openCaptureWriter(path);
    w.write({ receivedAt: 1000, kind: 'serial', device: 'csv-1', data: Buffer.from('sensor_id,temp_celcius\nc-1,20\nc-2') });
    w.write({ receivedAt: 1001, kind: 'serial', device: 'csv-1', data: Buffer.from(',21\nbroken\n') });
    w.write({ receivedAt: 1002, kind: 'mqtt', device: 'broker', topic: 'factory/w01/m-1/reading', data: Buffer.from('{"sensor_id":"m-1"}') });
    w.write({ receivedAt: 1003, kind: 'mqtt', device: 'broker', topic: 'factory/w01/m-2/reading', data: Buffer.from('not json') });
    await w.close();
    const lines: string[] = [];
    const summary = await captureReplay(path, flags({ framing: 'csv' }), (l) => lines.push(l));
    expect(summary).toEqual({ readings: 3, deadLetters: 2, dropped: 0 });
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.map((p) => [p.type, p.key ?? p.reason])).toEqual([
      ['reading', 'c-1'],
      ['reading', 'c-2'],
      ['dead-letter', 'BRIDGE_DECODE: csv: 1 fields, the header has 2 (sensor_id,temp_celcius)'],
      ['reading', 'm-1'],
      ['dead-letter', expect.stringContaining('BRIDGE_DECODE: payload is not JSON')],
    ]);
    expect(parsed[1]).toMatchObject({ value: { sensor_id: 'c-2', temp_celcius: 21 }, timestamp: 1001, headers: { received_at: '1001', device: 'csv-1' } });
    expect(parsed[3].headers.source).toBe('mqtt');
  });

  it('the CLI prints JSON lines and names file and line of a malformed capture', async () => {
    const good = join(dir, 'good.capture');
    const w = openCaptureWriter(good);
    w.write({ receivedAt: 5, kind: 'serial', device: 'kv-1', data: Buffer.from('sensor_id=k-1 temp_celcius=3\n') });
    await w.close();
    const bin = join(import.meta.dirname, '../bin/millstream.js');
    const { stdout, stderr } = await run(process.execPath, [bin, 'capture', 'replay', good, '--framing', 'kv']);
    expect(JSON.parse(stdout.trim())).toMatchObject({ type: 'reading', key: 'k-1', value: { temp_celcius: 3 } });
    expect(stderr).toContain('1 readings, 0 dead letters');
    const bad = join(dir, 'bad.capture');
    await writeFile(bad, '{"format":"millstream-capture","version":1}\n{"t":1,"kind":"serial"}\n');
    const failed = await run(process.execPath, [bin, 'capture', 'replay', bad]).catch((e: { code: number; stderr: string }) => e);
    expect((failed as { code: number }).code).toBe(1);
    expect((failed as { stderr: string }).stderr).toContain(`${bad}:2: "device" must be a non-empty string`);
  });
});
