/**
 * A field session reproduced on a laptop: the agent polls a real Modbus TCP
 * server (modbus-serial's ServerTCP) with raw capture on; `capture replay
 * --config` then decodes the capture with the same register map and gives
 * back exactly the readings the agent stored.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ModbusRTU from 'modbus-serial';
import { afterAll, expect, it } from 'vitest';
import { createAgent } from '../agent/agent.ts';
import { captureReplay } from '../agent/commands/capture.ts';
import { loadConfig } from '../agent/config.ts';
import { freePort } from './support/mqtt-broker.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {}, trace() {} };
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('capture replay --config decodes a captured Modbus session into the readings the agent stored', async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-capture-'));
  const port = await freePort();
  let n = 0;
  const server = new ModbusRTU.ServerTCP(
    {
      // Values change on every poll, so each reading is distinguishable.
      getMultipleHoldingRegisters: (addr: number, length: number, unit: number) => {
        n++;
        const regs = [(200 + n + unit * 1000) & 0xffff, n & 0xffff, 0, 0, 0, 0, 0, 0];
        return regs.slice(addr, addr + length);
      },
      getHoldingRegister: () => 0,
      getCoil: () => false,
    },
    { host: '127.0.0.1', port, unitID: 255 },
  );
  await new Promise<void>((r) => server.once('initialized', () => r()));
  const file = join(dir, 'millstream.yaml');
  const captureFile = join(dir, 'plc.capture');
  await writeFile(
    file,
    `gateway: { id: gw-cap }
dataDir: data
store: { minFreeBytes: 0 }
sources:
  - name: plc
    topic: widgets
    capture: plc.capture
    modbus:
      host: 127.0.0.1
      port: ${port}
      pollIntervalMs: 50
      timeoutMs: 500
      registers:
        - { field: temp_celcius, address: 0, type: int16, scale: 0.1 }
        - { field: count, address: 1, type: uint16 }
      devices:
        - { unitId: 1, sensorId: plc-1, fields: { production_line: w01 } }
        - { unitId: 2, sensorId: plc-2, fields: { production_line: w02 } }
http: { enabled: false }
`,
  );
  const config = await loadConfig(file);
  const agent = createAgent(config, { logger: quiet });
  await agent.start();
  try {
    for (;;) {
      const s = agent.status().sources;
      if (s.length === 2 && s.every((d) => d.readings >= 5)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await agent.stop();
    await new Promise<void>((r) => server.close(() => r()));
  }
  const stored = agent.summary().storedByTopic.widgets ?? 0;
  expect(stored).toBeGreaterThanOrEqual(10);

  // What the log holds, by key, in order.
  const { openLogStore } = await import('../log-store/index.ts');
  const log = await openLogStore({ dataDir: join(dir, 'data'), readOnly: true, minFreeBytes: 0 });
  const live: string[] = [];
  for (let p = 0; p < log.describe('widgets').partitionsInfo.length; p++) {
    for (const r of (await log.read('widgets', p, 0, { maxRecords: 10_000 })).records) live.push(`${r.key} ${r.value.toString()}`);
  }
  await log.close();

  const replayed: string[] = [];
  const summary = await captureReplay(captureFile, { topic: 'widgets', framing: 'json', gatewayId: 'x', schema: [], config: file }, (line) => {
    const o = JSON.parse(line) as { type: string; key: string; value: unknown };
    if (o.type === 'reading') replayed.push(`${o.key} ${JSON.stringify(o.value)}`);
  });
  expect(summary.deadLetters).toBe(0);
  // The capture may hold a last poll the agent stopped before storing; everything stored is reproduced exactly.
  expect(replayed.length).toBeGreaterThanOrEqual(live.length);
  for (const r of live) expect(replayed).toContain(r);
  expect(replayed.length - live.length).toBeLessThanOrEqual(2);
});
