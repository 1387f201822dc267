/**
 * The Modbus adapter against modbus-serial's own TCP server: decoding a
 * 40-field map in few real round trips, exceptions by name, a dead slave
 * beside a live one, and the breaker's back-off on injected time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openCaptureWriter, readCapture } from '../firmware-bridge/capture.ts';
import { replayCapture } from '../firmware-bridge/capture-replay.ts';
import { modbusReplayDecoders } from '../firmware-bridge/modbus-replay.ts';
import type { BridgeError } from '../firmware-bridge/errors.ts';
import { ModbusAdapter, type ModbusAdapterConfig } from '../firmware-bridge/modbus-adapter.ts';
import type { ModbusSlaveConfig } from '../firmware-bridge/modbus-slave.ts';
import type { RegisterEntry } from '../firmware-bridge/modbus-registers.ts';
import { ManualTime } from './support/modbus-manual-time.ts';
import { CollectingSink, SimulatedSlaves, startTcpServer, until, type RunningServer } from './support/modbus-sim.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function serve(sim: SimulatedSlaves): Promise<RunningServer> {
  const server = await startTcpServer(sim);
  cleanups.push(() => server.close());
  return server;
}

function adapter(port: number, slaves: ModbusSlaveConfig[], sink: CollectingSink, extra: Partial<ModbusAdapterConfig> = {}, deps = {}): ModbusAdapter {
  const a = new ModbusAdapter(
    { device: 'plc-1', topic: 'widgets', transport: { kind: 'tcp', host: '127.0.0.1', port }, slaves, ...extra },
    { sink, gatewayId: 'gw-test', ...deps },
  );
  cleanups.push(() => a.stop());
  return a;
}

const f32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeFloatBE(v);
  return b;
};
const i16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(v);
  return b;
};

describe('Modbus TCP adapter', () => {
  it('decodes a 40-field map into one reading per poll with 2 register requests per poll, not 40', async () => {
    const sim = new SimulatedSlaves();
    const registers: RegisterEntry[] = [];
    const expected: Record<string, unknown> = {};
    // 20 float32 holding registers at 100.., word-swapped (CDAB) as many PLCs store them.
    for (let i = 0; i < 20; i++) {
      const v = 20 + i * 0.5;
      const be = f32(v);
      sim.setRegisters(1, 'holding', 100 + 2 * i, Buffer.from([be[2]!, be[3]!, be[0]!, be[1]!]));
      registers.push({ field: `t${i}`, function: 'holding', address: 100 + 2 * i, type: 'float32', byteOrder: 'CDAB' });
      expected[`t${i}`] = v;
    }
    // 15 int16 input registers scaled by 0.1, with a 3-register hole in the middle.
    for (let i = 0; i < 15; i++) {
      const address = i < 8 ? i : i + 3;
      sim.setRegisters(1, 'input', address, i16(-50 + i * 7));
      registers.push({ field: `w${i}`, function: 'input', address, type: 'int16', scale: 0.1 });
      expected[`w${i}`] = (-50 + i * 7) * 0.1;
    }
    // 5 coils.
    for (let i = 0; i < 5; i++) {
      sim.slave(1).coils.set(i, i % 2 === 0);
      registers.push({ field: `c${i}`, function: 'coil', address: i });
      expected[`c${i}`] = i % 2 === 0;
    }
    const server = await serve(sim);
    const sink = new CollectingSink();
    const a = adapter(
      server.port,
      [{ name: 'oven-7', unitId: 1, sensorId: 'aa-101', pollIntervalMs: 10, registers, fields: { production_line: 'w01' } }],
      sink,
    );
    await a.start();
    await until(() => sink.readings.length >= 5);
    await a.stop();

    const r = sink.readings[0]!;
    expect(r.key).toBe('aa-101');
    expect(r.topic).toBe('widgets');
    expect(r.headers).toMatchObject({ source: 'modbus-tcp', device: 'oven-7', gateway_id: 'gw-test' });
    expect(r.value.sensor_id).toBe('aa-101');
    expect(r.value.production_line).toBe('w01');
    for (const [field, want] of Object.entries(expected)) {
      if (typeof want === 'number') expect(r.value[field], field).toBeCloseTo(want, 5);
      else expect(r.value[field], field).toBe(want);
    }
    // Real round trips: every completed poll sent exactly one FC3 and one FC4 request (an aborted poll may add its first).
    const status = a.modbusStatus()[0]!;
    const regRequests = sim.requestsFor(1);
    expect(status.polls).toBeGreaterThanOrEqual(5);
    expect(regRequests.length).toBeGreaterThanOrEqual(2 * status.polls);
    expect(regRequests.length).toBeLessThanOrEqual(2 * status.polls + 2);
    expect(regRequests.slice(0, 2)).toEqual([
      { unitId: 1, functionCode: 3, address: 100, count: 40 },
      { unitId: 1, functionCode: 4, address: 0, count: 18 },
    ]);
    // 3 requests per poll on the client side (FC1, FC3, FC4).
    expect(status.requests).toBeLessThanOrEqual(3 * status.polls + 3);
  });

  it('surfaces exception codes by name, retries only retriable ones, and keeps going', async () => {
    const sim = new SimulatedSlaves();
    sim.slave(3).mode = { exception: 2 };
    sim.slave(4).mode = { exception: 6 };
    const server = await serve(sim);
    const sink = new CollectingSink();
    const errors: BridgeError[] = [];
    const regs: RegisterEntry[] = [{ field: 'v', function: 'holding', address: 0 }];
    const a = adapter(
      server.port,
      [
        { name: 'bad-map', unitId: 3, sensorId: 's3', pollIntervalMs: 5, retries: 2, registers: regs, breaker: { failureThreshold: 1000 } },
        { name: 'busy', unitId: 4, sensorId: 's4', pollIntervalMs: 5, retries: 2, registers: regs, breaker: { failureThreshold: 1000 } },
      ],
      sink,
    );
    a.on('error', (err) => errors.push(err as BridgeError));
    await a.start();
    await until(() => a.modbusStatus().every((s) => s.errors >= 3));
    await a.stop();

    const [bad, busy] = a.modbusStatus();
    expect(bad!.exceptions['ILLEGAL DATA ADDRESS']).toBe(bad!.errors);
    expect(bad!.lastError).toMatch(/Modbus exception 2 ILLEGAL DATA ADDRESS/);
    expect(busy!.exceptions['SERVER DEVICE BUSY']).toBe(busy!.errors);
    expect(busy!.lastError).toMatch(/SERVER DEVICE BUSY/);
    const e = errors.find((x) => x.context.unitId === 3)!;
    expect(e.code).toBe('BRIDGE_PROTOCOL');
    expect(e.context.protocolCode).toBe(2);
    expect(e.context.exception).toBe('ILLEGAL DATA ADDRESS');
    // ILLEGAL DATA ADDRESS is not retriable: one request per failed poll (plus at most one in flight at stop).
    const badReqs = sim.requestsFor(3).length;
    expect(badReqs).toBeGreaterThanOrEqual(bad!.errors);
    expect(badReqs).toBeLessThanOrEqual(bad!.errors + 1);
    // SERVER DEVICE BUSY is retriable: the first poll (healthy slave) tried 1 + 2 retries; later polls once each.
    const busyReqs = sim.requestsFor(4).length;
    expect(busyReqs).toBeGreaterThanOrEqual(busy!.errors + 2);
    expect(busyReqs).toBeLessThanOrEqual(busy!.errors + 3);
    expect(sink.readings).toHaveLength(0);
  });

  it('a dead slave beside a live one: requests interleave, its breaker opens, the live one keeps polling', async () => {
    const sim = new SimulatedSlaves();
    sim.setRegisters(1, 'holding', 0, i16(42));
    sim.slave(2).mode = 'dead';
    const server = await serve(sim);
    const sink = new CollectingSink();
    const regs: RegisterEntry[] = [{ field: 'temp_celcius', function: 'holding', address: 0, type: 'int16' }];
    const a = adapter(
      server.port,
      [
        { name: 'live', unitId: 1, sensorId: 'aa-1', pollIntervalMs: 10, timeoutMs: 2000, registers: regs },
        {
          name: 'dead',
          unitId: 2,
          sensorId: 'aa-2',
          pollIntervalMs: 10,
          timeoutMs: 150,
          retries: 1,
          registers: regs,
          breaker: { failureThreshold: 2, backoff: { initialMs: 600_000, maxMs: 600_000 } },
        },
      ],
      sink,
    );
    await a.start();
    await until(() => a.modbusStatus()[1]!.breaker === 'open');
    const liveAtOpen = sim.requestsFor(1).length;
    await until(() => sim.requestsFor(1).length >= liveAtOpen + 30);
    const [live, dead] = a.modbusStatus();
    await a.stop();

    // Dead: first poll 1 request + 1 retry, second poll (already failing) no retry → 3 requests, then open.
    expect(sim.requestsFor(2)).toHaveLength(3);
    expect(dead!.timeouts).toBe(2);
    expect(dead!.state).toBe('backoff');
    expect(dead!.connected).toBe(false);
    expect(dead!.lastError).toMatch(/no response within 150 ms/);
    // While a dead request was in flight the live slave queued its own: each dead request is followed by a live one.
    const order = sim.requests.map((r) => r.unitId);
    order.forEach((unit, i) => {
      if (unit === 2 && i + 1 < order.length) expect(order[i + 1], `request ${i + 1}`).toBe(1);
    });
    // The live slave kept polling after the breaker opened, without a single further dead request.
    expect(live!.breaker).toBe('closed');
    expect(live!.errors).toBe(0);
    expect(live!.state).toBe('connected');
    expect(sink.from('live').length).toBeGreaterThanOrEqual(30);
    expect(sink.from('dead')).toHaveLength(0);
    expect(sink.from('live')[0]!.value.temp_celcius).toBe(42);
  });

  it('backs off a dead slave on the injected clock: probes at 1 s, 2 s, then closes when it answers', async () => {
    const sim = new SimulatedSlaves();
    sim.slave(5).mode = 'dead';
    sim.setRegisters(5, 'holding', 0, i16(7));
    const server = await serve(sim);
    const sink = new CollectingSink();
    const time = new ManualTime(1_000_000);
    const t0 = time.now();
    const a = adapter(
      server.port,
      [
        {
          name: 'flaky',
          unitId: 5,
          sensorId: 'fl-5',
          pollIntervalMs: 100,
          // Real time (inside modbus-serial): generous, so the live probe answers in time on a loaded machine.
          timeoutMs: 500,
          retries: 0,
          registers: [{ field: 'v', function: 'holding', address: 0, type: 'int16' }],
          breaker: { failureThreshold: 2, backoff: { initialMs: 1000, maxMs: 8000, jitter: 0.5 } },
        },
      ],
      sink,
      {},
      { clock: time, timers: time, random: () => 1 },
    );
    const status = () => a.modbusStatus()[0]!;
    await a.start();
    // Poll 1 at t0 times out (real 500 ms timeout); the next is due at t0 + 100.
    await until(() => status().errors === 1 && status().nextPollAt === t0 + 100);
    expect(status().breaker).toBe('closed');
    time.advance(100);
    // Poll 2 fails: the breaker opens for 1000 ms.
    await until(() => status().breaker === 'open');
    expect(status().nextPollAt).toBe(t0 + 100 + 1000);
    expect(status().state).toBe('backoff');
    expect(sim.requestsFor(5)).toHaveLength(2);
    // Just before retryAt nothing is sent: the only pending timer is the probe's.
    time.advance(999);
    expect(time.dueTimes()).toEqual([t0 + 1100]);
    expect(sim.requestsFor(5)).toHaveLength(2);
    time.advance(1);
    // The probe fails: open again, for twice as long.
    await until(() => status().nextPollAt === t0 + 1100 + 2000);
    expect(sim.requestsFor(5)).toHaveLength(3);
    expect(status().breaker).toBe('open');
    // The slave comes back; the next probe succeeds and polling resumes at its interval.
    sim.slave(5).mode = 'live';
    time.advance(2000);
    await until(() => sink.readings.length === 1);
    await until(() => status().nextPollAt === t0 + 3100 + 100);
    expect(status().breaker).toBe('closed');
    expect(status().state).toBe('connected');
    expect(sink.readings[0]!.value.v).toBe(7);
    expect(sink.readings[0]!.timestamp).toBe(t0 + 3100);
    expect(sim.requestsFor(5)).toHaveLength(4);
  });

  it('reconnects when the server goes away and comes back on the same port', async () => {
    const sim = new SimulatedSlaves();
    sim.setRegisters(1, 'holding', 0, i16(1));
    const first = await startTcpServer(sim);
    const sink = new CollectingSink();
    const a = adapter(first.port, [{ name: 'p', unitId: 1, sensorId: 'p-1', pollIntervalMs: 10, registers: [{ field: 'v', function: 'holding', address: 0 }] }], sink, {
      reconnect: { initialMs: 20, maxMs: 100 },
    });
    await a.start();
    await until(() => sink.readings.length >= 2);
    await first.close();
    await until(() => a.modbusStatus()[0]!.state !== 'connected');
    const before = sink.readings.length;
    sim.setRegisters(1, 'holding', 0, i16(2));
    const { ServerTCP } = await import('modbus-serial');
    const again = new ServerTCP(sim.vector(), { host: '127.0.0.1', port: first.port, unitID: 255 });
    cleanups.push(() => new Promise<void>((resolve) => again.close(() => resolve())));
    await until(() => sink.readings.length >= before + 2 && sink.readings.at(-1)!.value.v === 2);
    expect(a.modbusStatus()[0]!.state).toBe('connected');
    expect(a.lineStatus().errors).toBeGreaterThanOrEqual(1);
  });

  it('captures request/response frames and replays them through the same decoders into the same readings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-modbus-capture-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'session.capture');
    const sim = new SimulatedSlaves();
    sim.setRegisters(1, 'holding', 0, f32(21.5));
    sim.setRegisters(1, 'input', 0, Buffer.from('aa-7\0\0', 'latin1'));
    sim.slave(1).coils.set(0, true);
    sim.slave(2).mode = { exception: 4 };
    const server = await serve(sim);
    const sink = new CollectingSink();
    const capture = openCaptureWriter(file);
    const config: ModbusAdapterConfig = {
      device: 'plc-cap',
      topic: 'widgets',
      transport: { kind: 'tcp', host: '127.0.0.1', port: server.port },
      slaves: [
        {
          name: 'oven',
          unitId: 1,
          sensorId: 'unset',
          topic: 'ovens',
          pollIntervalMs: 5,
          registers: [
            { field: 'temp_celcius', function: 'holding', address: 0, type: 'float32' },
            // The device reports its own id: a register named like the key field wins over sensorId.
            { field: 'sensor_id', function: 'input', address: 0, type: 'string', length: 6 },
            { field: 'running', function: 'coil', address: 0 },
          ],
        },
        { name: 'broken', unitId: 2, sensorId: 'b-2', pollIntervalMs: 5, registers: [{ field: 'v', function: 'holding', address: 0 }] },
      ],
    };
    const a = new ModbusAdapter(config, { sink, gatewayId: 'gw-test', capture });
    cleanups.push(() => a.stop());
    await a.start();
    let polls = 0;
    await until(() => {
      // Change the temperature between polls so each reading differs.
      const n = sink.readings.length;
      if (n > polls) {
        polls = n;
        sim.setRegisters(1, 'holding', 0, f32(21.5 + n));
      }
      return n >= 10;
    });
    await a.stop();
    await capture.close();
    expect(sink.readings[0]!.key).toBe('aa-7');
    expect(sink.readings[0]!.topic).toBe('ovens');

    const frames = [];
    for await (const e of readCapture(file)) if (e.type === 'frame') frames.push(e.frame);
    // Requests and responses of both slaves, as RTU frames under the slave names; exceptions included.
    expect(new Set(frames.map((f) => `${f.device}:${f.direction ?? 'rx'}`))).toEqual(new Set(['oven:tx', 'oven:rx', 'broken:tx', 'broken:rx']));
    expect(frames.find((f) => f.device === 'broken' && f.direction !== 'tx')!.data![1]).toBe(0x83);
    expect(frames.every((f) => f.kind === 'modbus-tcp' && f.meta?.line === 'plc-cap')).toBe(true);

    const replayed = [];
    const letters = [];
    for await (const out of replayCapture(file, { gatewayId: 'gw-test', decoders: modbusReplayDecoders([config]) })) {
      if (out.type === 'reading') replayed.push(out.reading);
      else letters.push(out);
    }
    expect(letters).toEqual([]);
    // A poll completing exactly as stop() began may be captured but not delivered: at most one extra.
    expect(replayed.length - sink.readings.length).toBeGreaterThanOrEqual(0);
    expect(replayed.length - sink.readings.length).toBeLessThanOrEqual(1);
    expect(replayed.slice(0, sink.readings.length)).toEqual(sink.readings);
  });

  it('a refusing sink pauses polling (no unbounded buffer) and every reading arrives once it accepts', async () => {
    const sim = new SimulatedSlaves();
    sim.setRegisters(1, 'holding', 0, i16(5));
    const server = await serve(sim);
    const sink = new CollectingSink();
    sink.refuseNext = 5;
    const a = adapter(server.port, [{ name: 'p', unitId: 1, sensorId: 'p-1', pollIntervalMs: 1, registers: [{ field: 'v', function: 'holding', address: 0 }] }], sink, {
      sinkRetry: { initialMs: 10, maxMs: 20 },
    });
    const states: string[] = [];
    a.on('state', (st) => states.push(st.state));
    await a.start();
    await until(() => sink.readings.length >= 3);
    await a.stop();
    expect(states).toContain('paused');
    // While the sink refused, the slave was not polled again: one poll's reading waited, nothing piled up.
    expect(sink.readings[0]!.value.v).toBe(5);
    expect(sim.requestsFor(1).length).toBeLessThanOrEqual(sink.readings.length + 2);
    expect(a.status()[0]!.lastError).toMatch(/refused/);
  });

  it('takes the event time from a device clock register and flags a skewed clock', async () => {
    const sim = new SimulatedSlaves();
    const deviceSeconds = Math.floor(Date.now() / 1000) - 3600; // an hour behind
    const ts = Buffer.alloc(4);
    ts.writeUInt32BE(deviceSeconds);
    sim.setRegisters(1, 'input', 0, ts);
    const server = await serve(sim);
    const sink = new CollectingSink();
    const a = adapter(
      server.port,
      [
        {
          name: 'clocked',
          unitId: 1,
          sensorId: 'ck-1',
          pollIntervalMs: 10,
          // Epoch seconds × 1000 = epoch ms: the reading builder's event time.
          registers: [{ field: 'reading_ts', function: 'input', address: 0, type: 'uint32', scale: 1000 }],
        },
      ],
      sink,
      { maxClockSkewMs: 60_000 },
    );
    await a.start();
    await until(() => sink.readings.length >= 1);
    const status = a.status()[0]!;
    await a.stop();
    const r = sink.readings[0]!;
    expect(r.timestamp).toBe(deviceSeconds * 1000);
    expect(Number(r.headers.received_at)).toBeGreaterThan(r.timestamp);
    expect(Number(r.headers.clock_skew_ms)).toBeLessThan(-3_000_000);
    expect(status.clockSkewMs).toBeLessThan(-3_000_000);
  });

  it('refuses bad configuration with the key named', () => {
    const sink = new CollectingSink();
    const base = { device: 'plc', topic: 't', transport: { kind: 'tcp' as const, host: 'h' } };
    const slave = { name: 's', unitId: 1, sensorId: 'x', registers: [{ field: 'v', function: 'holding' as const, address: 0 }] };
    expect(() => new ModbusAdapter({ ...base, slaves: [] }, { sink, gatewayId: 'g' })).toThrow(/slaves: needs at least one slave/);
    expect(() => new ModbusAdapter({ ...base, slaves: [slave, { ...slave, name: 's2' }] }, { sink, gatewayId: 'g' })).toThrow(/unit id 1 is used twice/);
    expect(() => new ModbusAdapter({ ...base, slaves: [{ ...slave, timeoutMs: 0 }] }, { sink, gatewayId: 'g' })).toThrow(/slaves\[0\] \(s\): timeoutMs/);
    expect(
      () => new ModbusAdapter({ ...base, slaves: [{ ...slave, registers: [{ field: 'v', function: 'coil', address: 0, type: 'int16' }] }] }, { sink, gatewayId: 'g' }),
    ).toThrow(/registers: register map entry 0 \(v\): type/);
    expect(
      () => new ModbusAdapter({ ...base, transport: { kind: 'rtu', path: '/dev/x' }, slaves: [{ ...slave, unitId: 250 }] }, { sink, gatewayId: 'g' }),
    ).toThrow(/unitId: must be an integer 0..247/);
  });
});
