/**
 * End to end: Modbus slaves behind modbus-serial's ServerTCP → the Modbus
 * adapter → the real log store. Each slave's readings land durably in its
 * topic, keyed by sensor id to the partition Kafka's partitioner picks, with
 * the standard headers; a poll whose string registers are not UTF-8 lands in
 * the dead-letter topic with the raw response frames; a slave answering
 * exceptions stores nothing and does not hold up the others.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModbusAdapter } from '../firmware-bridge/modbus-adapter.ts';
import { kafkaPartition, openLogStore, type LogStoreApi } from '../log-store/index.ts';
import { LogStoreSink } from './support/bridge-log-sink.ts';
import { SimulatedSlaves, startTcpServer, until, type RunningServer } from './support/modbus-sim.ts';
import { readAllRecords } from './support/log-read.ts';

describe('Modbus → log store', () => {
  let dir: string;
  let log: LogStoreApi;
  let server: RunningServer;
  let adapter: ModbusAdapter | null;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ms-modbus-log-'));
    log = await openLogStore({ dataDir: join(dir, 'data'), minFreeBytes: 0, retentionCheckIntervalMs: 0 });
    adapter = null;
  });
  afterEach(async () => {
    await adapter?.stop();
    await server?.close();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores each poll as a keyed reading, dead-letters an undecodable poll, skips a failing slave', async () => {
    const sim = new SimulatedSlaves();
    for (const unit of [1, 2, 3]) {
      sim.setRegisters(unit, 'holding', 0, Buffer.from([0x00, 200 + unit]));
      sim.setRegisters(unit, 'holding', 1, Buffer.from('RED\0', 'latin1'));
    }
    sim.slave(4).mode = { exception: 2 };
    server = await startTcpServer(sim);
    const registers = [
      { field: 'temp_celcius', function: 'holding' as const, address: 0, type: 'int16' as const, scale: 0.1 },
      { field: 'colour', function: 'holding' as const, address: 1, type: 'string' as const, length: 4 },
    ];
    adapter = new ModbusAdapter(
      {
        device: 'plc-e2e',
        topic: 'widgets',
        transport: { kind: 'tcp', host: '127.0.0.1', port: server.port },
        slaves: [
          { name: 'oven-1', unitId: 1, sensorId: 'aa-101', pollIntervalMs: 5, registers, fields: { production_line: 'w01' } },
          { name: 'oven-2', unitId: 2, sensorId: 'aa-102', pollIntervalMs: 5, registers, fields: { production_line: 'w01' } },
          { name: 'oven-3', unitId: 3, sensorId: 'aa-103', pollIntervalMs: 5, registers, fields: { production_line: 'w02' } },
          { name: 'misconfigured', unitId: 4, sensorId: 'aa-104', pollIntervalMs: 5, registers, breaker: { failureThreshold: 2 } },
        ],
      },
      { sink: new LogStoreSink(log), gatewayId: 'gw-e2e' },
    );
    await adapter.start();
    await until(() => adapter!.status()[2]!.readings >= 3);
    // oven-3's colour register turns into bytes that are not UTF-8: its next poll is a dead letter.
    sim.setRegisters(3, 'holding', 1, Buffer.from([0xff, 0xfe, 0x41, 0x00]));
    await until(() => adapter!.status()[2]!.deadLetters >= 1);
    sim.setRegisters(3, 'holding', 1, Buffer.from('RED\0', 'latin1'));
    await until(() => adapter!.status().slice(0, 3).every((s) => s.readings >= 10));
    const running = adapter.status();
    await adapter.stop();
    const status = adapter.status();

    const stored = await readAllRecords(log, 'widgets');
    const counted = status.slice(0, 3).reduce((n, s) => n + s.readings, 0);
    expect(stored).toHaveLength(counted);
    for (const r of stored) {
      expect(r.partition).toBe(kafkaPartition(r.key!, 3));
      const value = JSON.parse(r.value.toString()) as Record<string, unknown>;
      expect(r.key).toBe(value.sensor_id);
      expect(value.colour).toBe('RED');
      expect(r.headers).toMatchObject({ source: 'modbus-tcp', gateway_id: 'gw-e2e', received_at: String(r.timestamp) });
      expect(r.headers.device).toBe(`oven-${String(r.key).slice(-1)}`);
      expect(value.temp_celcius).toBeCloseTo((200 + Number(String(r.key).slice(-1))) / 10, 10);
    }
    expect(new Set(stored.map((r) => r.key))).toEqual(new Set(['aa-101', 'aa-102', 'aa-103']));

    const letters = await readAllRecords(log, 'dead-letters');
    expect(letters).toHaveLength(status[2]!.deadLetters);
    expect(letters.length).toBeGreaterThanOrEqual(1);
    const letter = JSON.parse(letters[0]!.value.toString()) as { device: string; reason: string; raw: string; intendedTopic: string };
    expect(letter).toMatchObject({ device: 'oven-3', intendedTopic: 'widgets' });
    expect(letter.reason).toMatch(/BRIDGE_INVALID_UTF8: colour: .*not UTF-8: fffe4100/);
    // The raw payload is the poll's one response frame (temperature and colour coalesced): unit 3, FC 3, 6 data bytes, CRC.
    expect(letter.raw).toMatch(/^hex:030306[0-9a-f]{4}fffe4100[0-9a-f]{4}$/);
    expect(running[3]).toMatchObject({ readings: 0, state: 'backoff' });
    expect(status[3]!.lastError).toMatch(/ILLEGAL DATA ADDRESS/);
  });
});
