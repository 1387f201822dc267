/**
 * Modbus RTU over a real tty: a socat pty pair with modbus-serial's
 * ServerSerial on one end and the adapter (serialport, RTU framing, CRC) on
 * the other. Several slaves share the line.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusAdapter } from '../firmware-bridge/modbus-adapter.ts';
import { openPtyPair, socatAvailable } from './support/pty.ts';
import { CollectingSink, SimulatedSlaves, startSerialServer, until } from './support/modbus-sim.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe.skipIf(!socatAvailable())('Modbus RTU adapter over a pty pair', () => {
  it('polls live slaves, names exceptions and opens the breaker of a dead one, all on one line', async () => {
    const pty = await openPtyPair();
    cleanups.push(() => pty.close());
    const sim = new SimulatedSlaves();
    const weight = Buffer.alloc(4);
    weight.writeUInt32LE(100_250); // DCBA: little-endian on the wire
    sim.setRegisters(1, 'input', 10, weight);
    sim.setRegisters(1, 'holding', 0, Buffer.from('RED\0', 'latin1'));
    sim.slave(1).discrete.set(3, true);
    sim.setRegisters(2, 'holding', 0, Buffer.from([0x00, 0xe6])); // 230 → 23.0 °C
    sim.slave(3).mode = 'dead';
    sim.slave(4).mode = { exception: 0x0b };
    const server = await startSerialServer(sim, pty.writerPath, 38400);
    cleanups.push(() => server.close());

    const sink = new CollectingSink();
    const a = new ModbusAdapter(
      {
        device: 'rs485-1',
        topic: 'widgets',
        transport: { kind: 'rtu', path: pty.devicePath, baudRate: 38400 },
        slaves: [
          {
            name: 'scale-1',
            unitId: 1,
            sensorId: 'aa-101',
            pollIntervalMs: 20,
            timeoutMs: 1000,
            fields: { widget_type: 'acme94' },
            registers: [
              { field: 'widget_weight_g', function: 'input', address: 10, type: 'uint32', byteOrder: 'DCBA', scale: 0.001, unit: 'g' },
              { field: 'colour', function: 'holding', address: 0, type: 'string', length: 4 },
              { field: 'door_open', function: 'discrete', address: 3 },
            ],
          },
          {
            name: 'thermo-2',
            unitId: 2,
            sensorId: 'aa-102',
            pollIntervalMs: 20,
            timeoutMs: 1000,
            registers: [{ field: 'temp_celcius', function: 'holding', address: 0, type: 'int16', scale: 0.1 }],
          },
          {
            name: 'gone-3',
            unitId: 3,
            sensorId: 'aa-103',
            pollIntervalMs: 20,
            timeoutMs: 300,
            retries: 0,
            registers: [{ field: 'x', function: 'holding', address: 0 }],
            breaker: { failureThreshold: 2, backoff: { initialMs: 600_000, maxMs: 600_000 } },
          },
          {
            name: 'behind-gateway-4',
            unitId: 4,
            sensorId: 'aa-104',
            pollIntervalMs: 20,
            timeoutMs: 1000,
            retries: 0,
            registers: [{ field: 'x', function: 'holding', address: 0 }],
            breaker: { failureThreshold: 2, backoff: { initialMs: 600_000, maxMs: 600_000 } },
          },
        ],
      },
      { sink, gatewayId: 'gw-rtu' },
    );
    cleanups.push(() => a.stop());
    await a.start();
    await until(() => a.modbusStatus()[2]!.breaker === 'open' && a.modbusStatus()[3]!.breaker === 'open');
    const scaleAtOpen = sink.from('scale-1').length;
    await until(() => sink.from('scale-1').length >= scaleAtOpen + 5 && sink.from('thermo-2').length >= 5);
    const [, , gone, gw] = a.modbusStatus();
    await a.stop();
    expect(a.modbusStatus().every((s) => s.state === 'stopped')).toBe(true);

    const scale = sink.from('scale-1')[0]!;
    expect(scale.key).toBe('aa-101');
    expect(scale.headers.source).toBe('modbus-rtu');
    expect(scale.value).toEqual({ sensor_id: 'aa-101', widget_type: 'acme94', widget_weight_g: 100.25, colour: 'RED', door_open: true });
    expect(sink.from('thermo-2')[0]!.value.temp_celcius).toBeCloseTo(23.0, 10);
    expect(gone!.timeouts).toBe(2);
    expect(gone!.state).toBe('backoff');
    expect(gw!.exceptions).toEqual({ 'GATEWAY TARGET DEVICE FAILED TO RESPOND': 2 });
    expect(gw!.lastError).toMatch(/GATEWAY TARGET DEVICE FAILED TO RESPOND/);
    expect(sim.requestsFor(3)).toHaveLength(2);
    expect(sim.requestsFor(4)).toHaveLength(2);
  });

  it('survives unplug and replug of the serial adapter: the line reconnects and polling resumes', async () => {
    const pty = await openPtyPair();
    cleanups.push(() => pty.close());
    const sim = new SimulatedSlaves();
    sim.setRegisters(9, 'holding', 0, Buffer.from([0x00, 0x01]));
    let server = await startSerialServer(sim, pty.writerPath, 19200);
    cleanups.push(() => server.close());
    const sink = new CollectingSink();
    const a = new ModbusAdapter(
      {
        device: 'usb-rs485',
        topic: 'widgets',
        transport: { kind: 'rtu', path: pty.devicePath, baudRate: 19200 },
        reconnect: { initialMs: 50, maxMs: 200 },
        slaves: [{ name: 'counter', unitId: 9, sensorId: 'c-9', pollIntervalMs: 10, timeoutMs: 1000, registers: [{ field: 'n', function: 'holding', address: 0 }] }],
      },
      { sink, gatewayId: 'gw-rtu' },
    );
    cleanups.push(() => a.stop());
    await a.start();
    await until(() => sink.readings.length >= 3);
    await server.close();
    await pty.unplug();
    await until(() => !a.status()[0]!.connected && a.lineStatus().errors >= 1);
    expect(['backoff', 'connecting']).toContain(a.status()[0]!.state);
    sim.setRegisters(9, 'holding', 0, Buffer.from([0x00, 0x02]));
    await pty.replug();
    server = await startSerialServer(sim, pty.writerPath, 19200);
    await until(() => sink.readings.some((r) => r.value.n === 2));
    expect(a.status()[0]!.state).toBe('connected');
    // Old values before the unplug, new ones after: nothing out of order, nothing but 1s and 2s.
    const ns = sink.readings.map((r) => r.value.n);
    const firstNew = ns.indexOf(2);
    expect(firstNew).toBeGreaterThanOrEqual(3);
    expect(ns.slice(0, firstNew).every((n) => n === 1)).toBe(true);
    expect(ns.slice(firstNew).every((n) => n === 2)).toBe(true);
  });
});
