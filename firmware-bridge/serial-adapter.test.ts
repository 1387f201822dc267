/**
 * The serial adapter against real ptys (socat): the contract suite, then the
 * serial-specific behaviour — framing formats, bad bytes, overlong lines,
 * the writer end closing and reopening mid-line, unplug/replug mid-line,
 * capture.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adapterContract, ContractSink, TrackingTimers, until } from '../test/support/adapter-contract.ts';
import { openPtyPair, type PtyPair } from '../test/support/pty.ts';
import { openCaptureWriter, readCapture } from './capture.ts';
import { SchemaCheck } from './schema-check.ts';
import { SerialAdapter, type SerialAdapterConfig } from './serial-adapter.ts';

adapterContract('serial', async () => {
  const pty = await openPtyPair();
  return {
    kind: 'serial',
    // A pty read returns at most ~4 KiB; the contract's readings are ~50 bytes.
    maxReadingsPerRead: 100,
    create: (deps, common) => new SerialAdapter({ kind: 'serial', device: 'line-1', topic: 'widgets', path: pty.devicePath, baudRate: 115200, ...common }, deps),
    sendReading: (sensorId, seq) => pty.write(`${JSON.stringify({ sensor_id: sensorId, seq, temp_celcius: 21 })}\n`),
    sendGarbage: () => pty.write('{"sensor_id": oops\n'),
    takeDown: () => pty.unplug(),
    bringUp: () => pty.replug(),
    teardown: () => pty.close(),
  };
});

describe('serial adapter on a real pty', () => {
  let pty: PtyPair;
  let sink: ContractSink;
  let adapter: SerialAdapter | null;
  let dir: string;

  beforeEach(async () => {
    pty = await openPtyPair();
    sink = new ContractSink();
    adapter = null;
    dir = await mkdtemp(join(tmpdir(), 'ms-serial-'));
  });
  afterEach(async () => {
    await adapter?.stop();
    await pty.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(config: Partial<SerialAdapterConfig> = {}, extra: { capturePath?: string; schemaCheck?: SchemaCheck } = {}): Promise<SerialAdapter> {
    const capture = extra.capturePath ? openCaptureWriter(extra.capturePath) : undefined;
    adapter = new SerialAdapter(
      { kind: 'serial', device: 'line-1', topic: 'widgets', path: pty.devicePath, baudRate: 19200, parity: 'even', dataBits: 7, stopBits: 2, reconnect: { initialMs: 50, maxMs: 200 }, ...config },
      { sink, gatewayId: 'gw-1', timers: new TrackingTimers(), capture, schemaCheck: extra.schemaCheck },
    );
    const a = adapter;
    const stop = a.stop.bind(a);
    a.stop = async () => {
      await stop();
      await capture?.close();
    };
    await a.start();
    await until(() => a.status()[0]!.connected, 'connected');
    return a;
  }

  it('decodes the field example from JSON lines split across writes', async () => {
    await start();
    await pty.write('{"reading_ts":"2020-02-14T12:19:27Z","sensor_id":"aa-101","production_line":"w01",');
    await pty.write('"widget_type":"acme94","colour":"RED","temp_celcius":23,"widget_weight_g":100}\r\n');
    await until(() => sink.readings.length === 1);
    expect(sink.readings[0]).toMatchObject({
      topic: 'widgets',
      key: 'aa-101',
      timestamp: Date.UTC(2020, 1, 14, 12, 19, 27),
      value: { colour: 'RED', temp_celcius: 23, widget_weight_g: 100 },
      headers: { source: 'serial', device: 'line-1', gateway_id: 'gw-1', clock_skew_ms: expect.stringMatching(/^-\d+$/) },
    });
    // The line (its CR LF off) is the value's JSON text, stored as is.
    expect(sink.readings[0]!.valueJson).toBe(
      '{"reading_ts":"2020-02-14T12:19:27Z","sensor_id":"aa-101","production_line":"w01","widget_type":"acme94","colour":"RED","temp_celcius":23,"widget_weight_g":100}',
    );
    expect(adapter!.status()[0]!.clockSkewMs).toBeLessThan(0);
  });

  it('reads CSV with a header line, and key=value', async () => {
    await start({ framing: { format: 'csv' } });
    await pty.write('sensor_id,temp_celcius,colour\naa-1,20.5,RED\nsensor_id,temp_celcius,colour\naa-2,19,GREEN\n');
    await until(() => sink.readings.length === 2);
    expect(sink.readings.map((r) => r.value)).toEqual([
      { sensor_id: 'aa-1', temp_celcius: 20.5, colour: 'RED' },
      { sensor_id: 'aa-2', temp_celcius: 19, colour: 'GREEN' },
    ]);
    await adapter!.stop();
    await start({ framing: { format: 'kv' }, rtscts: true, baudRate: 115200, parity: 'none', dataBits: 8, stopBits: 1 });
    await pty.write('sensor_id=kv-1 temp_celcius=7 colour="DARK RED"\n');
    await until(() => sink.readings.length === 3);
    expect(sink.readings[2]!.value).toEqual({ sensor_id: 'kv-1', temp_celcius: 7, colour: 'DARK RED' });
  });

  it('dead-letters invalid UTF-8 with the hex, overlong lines, and schema failures; nothing else is lost', async () => {
    const schemaCheck = new SchemaCheck({ schemas: { widgets: { type: 'object', properties: { temp_celcius: { type: 'number' } } } } });
    await start({ maxLineBytes: 100 }, { schemaCheck });
    await pty.write(Buffer.concat([Buffer.from('{"sensor_id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]));
    await pty.write(`{"sensor_id":"long","pad":"${'x'.repeat(5000)}"}\n`);
    await pty.write('{"sensor_id":"cold","temp_celcius":"very"}\n');
    await pty.write('{"sensor_id":"ok","temp_celcius":3}\n');
    await until(() => sink.letters.length === 3 && sink.readings.length === 1);
    expect(sink.letters[0]!.reason).toContain('BRIDGE_INVALID_UTF8');
    expect(sink.letters[0]!.reason).toContain('7b2273656e736f725f6964223a22c328227d');
    expect(sink.letters[0]!.raw).toBe('hex:7b2273656e736f725f6964223a22c328227d');
    expect(sink.letters[1]!.reason).toContain('BRIDGE_LINE_TOO_LONG');
    expect(sink.letters[2]!.reason).toBe('schema: /temp_celcius must be number');
    expect(sink.readings[0]!.key).toBe('ok');
    expect(adapter!.status()[0]).toMatchObject({ decodeErrors: 2, deadLetters: 3, readings: 1 });
  });

  it('the writer end closes and reopens mid-line: the line completes, nothing is lost', async () => {
    await start();
    await pty.write('{"sensor_id":"a1","seq":1}\n{"sensor_id":"a2",');
    await until(() => sink.readings.length === 1);
    await pty.closeWriter();
    await pty.openWriter();
    await pty.write('"seq":2}\n');
    await until(() => sink.readings.length === 2);
    expect(sink.readings.map((r) => r.value)).toEqual([
      { sensor_id: 'a1', seq: 1 },
      { sensor_id: 'a2', seq: 2 },
    ]);
    expect(sink.letters).toHaveLength(0);
    expect(adapter!.status()[0]!.connected).toBe(true);
  });

  it('unplugged mid-line and replugged with the device mid-line: the fragments are dead letters, then readings flow', async () => {
    const capturePath = join(dir, 'session.capture');
    const a = await start({}, { capturePath });
    await pty.write('{"sensor_id":"b1","seq":1}\n{"sensor_id":"b2","se');
    await until(() => sink.readings.length === 1);
    await pty.unplug();
    await until(() => a.status()[0]!.state === 'backoff' || a.status()[0]!.state === 'connecting');
    await until(() => sink.letters.length === 1);
    expect(sink.letters[0]).toMatchObject({ raw: '{"sensor_id":"b2","se', reason: expect.stringContaining('incomplete line') });
    // Stays away for a few reconnect attempts.
    await until(() => a.status()[0]!.errors >= 3);
    await pty.replug();
    await until(() => a.status()[0]!.connected);
    await pty.write('q":2}\n{"sensor_id":"b3","seq":3}\n');
    await until(() => sink.readings.length === 2 && sink.letters.length === 2);
    expect(sink.letters[1]!.raw).toBe('q":2}');
    expect(sink.readings.map((r) => r.value.seq)).toEqual([1, 3]);
    await a.stop();
    // The capture holds the same session: chunks and the disconnect event, in order.
    const kinds: string[] = [];
    let bytes = '';
    for await (const e of readCapture(capturePath)) {
      if (e.type !== 'frame') continue;
      kinds.push(e.frame.event ?? 'data');
      if (e.frame.data) bytes += Buffer.from(e.frame.data).toString();
    }
    if (process.env.CAPTURE_DEBUG) console.log(JSON.stringify({ kinds, bytes }));
    expect(kinds).toContain('disconnect');
    expect(bytes).toBe('{"sensor_id":"b1","seq":1}\n{"sensor_id":"b2","se' + 'q":2}\n{"sensor_id":"b3","seq":3}\n');
    expect(kinds.indexOf('disconnect')).toBeGreaterThan(0);
    expect(kinds.indexOf('disconnect')).toBeLessThan(kinds.length - 1);
  });

  it('starts while the port is absent and connects when it appears', async () => {
    await pty.unplug();
    adapter = new SerialAdapter(
      { kind: 'serial', device: 'late', topic: 'widgets', path: pty.devicePath, reconnect: { initialMs: 50, maxMs: 100 } },
      { sink, gatewayId: 'gw-1' },
    );
    await adapter.start();
    expect(adapter.status()[0]).toMatchObject({ state: 'backoff', connected: false, errors: 1 });
    expect(adapter.status()[0]!.lastError).toMatch(/^opening late: /);
    await pty.replug();
    await until(() => adapter!.status()[0]!.connected);
    await pty.write('{"sensor_id":"z"}\n');
    await until(() => sink.readings.length === 1);
  });

  it.runIf(process.env.MILLSTREAM_LONG === '1')('soak: 25 unplug/replug cycles, every complete line is stored once, no listener or timer leaks', async () => {
    const timers = new TrackingTimers();
    adapter = new SerialAdapter(
      { kind: 'serial', device: 'soak', topic: 'widgets', path: pty.devicePath, reconnect: { initialMs: 10, maxMs: 40 } },
      { sink, gatewayId: 'gw-1', timers },
    );
    await adapter.start();
    let seq = 0;
    for (let cycle = 0; cycle < 25; cycle++) {
      await until(() => adapter!.status()[0]!.connected);
      for (let i = 0; i < 20; i++) await pty.write(`{"sensor_id":"s","seq":${seq++}}\n`);
      await until(() => sink.readings.length === seq);
      await pty.unplug();
      await until(() => !adapter!.status()[0]!.connected);
      await pty.replug();
    }
    expect(sink.readings.map((r) => r.value.seq)).toEqual(Array.from({ length: seq }, (_, i) => i));
    expect(sink.letters).toHaveLength(0);
    await adapter.stop();
    expect(timers.liveCount).toBe(0);
  });

  it('refuses bad port settings at construction, naming the key', () => {
    const base = { kind: 'serial' as const, device: 'd', topic: 't', path: '/dev/null' };
    const deps = { sink, gatewayId: 'g' };
    expect(() => new SerialAdapter({ ...base, path: '' }, deps)).toThrow('serial device d: path must be a non-empty string');
    expect(() => new SerialAdapter({ ...base, parity: 'sometimes' as never }, deps)).toThrow(/parity must be one of/);
    expect(() => new SerialAdapter({ ...base, baudRate: -1 }, deps)).toThrow(/baudRate/);
    expect(() => new SerialAdapter({ ...base, dataBits: 9 as never }, deps)).toThrow(/dataBits/);
    expect(() => new SerialAdapter({ ...base, framing: { format: 'xml' } as never }, deps)).toThrow(/framing.format/);
  });
});
