/**
 * The built-in simulated widget line behind `npm start` (`millstream run
 * --demo`): real devices' protocols, simulated. It starts
 *
 *  - an in-process MQTT broker (aedes) on loopback with simulated sensors
 *    publishing widget readings (QoS 1) to factory/<line>/<sensor>/reading;
 *  - a Modbus TCP server (modbus-serial's ServerTCP) with two slaves whose
 *    holding registers and coils move like a PLC's;
 *  - where `socat` is installed, a pty pair with a simulated scale writing
 *    JSON lines to one end;
 *
 * and returns the agent config that reads them through the same adapters as
 * real hardware. Nothing here is used outside the demo.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import ModbusRTU from 'modbus-serial';

export interface DemoLineOptions {
  /** Folder for the pty links. */
  runDir: string;
  /** Publish interval per MQTT sensor in ms. Default 200. */
  mqttIntervalMs?: number;
  /** In [0, 1). Default Math.random. */
  random?: () => number;
  logger: { info(o: object, m?: string): void; warn(o: object, m?: string): void };
}

export interface DemoLine {
  readonly mqttUrl: string;
  readonly modbusPort: number;
  /** The pty the agent reads, or null without socat. */
  readonly serialPath: string | null;
  /** Readings published so far over MQTT. */
  published(): number;
  /** Stops the simulated sensors (publishers, scale); the broker and PLC keep answering. */
  stopDevices(): Promise<void>;
  stop(): Promise<void>;
}

const COLOURS = ['RED', 'BLUE', 'GREEN', 'YELLOW', 'RED'];
const MQTT_SENSORS = [
  { sensor: 'aa-101', line: 'w01', type: 'acme94' },
  { sensor: 'aa-102', line: 'w01', type: 'acme94' },
  { sensor: 'aa-103', line: 'w01', type: 'acme95' },
  { sensor: 'bb-201', line: 'w02', type: 'acme94' },
  { sensor: 'bb-202', line: 'w02', type: 'acme96' },
  { sensor: 'bb-203', line: 'w02', type: 'acme96' },
];

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function hasSocat(): boolean {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function startDemoLine(options: DemoLineOptions): Promise<DemoLine> {
  const random = options.random ?? Math.random;
  const stops: Array<() => Promise<void>> = [];
  const temps = new Map<string, number>();
  const drift = (key: string, base: number) => {
    const t = (temps.get(key) ?? base + random() * 4) + (random() - 0.5) * 0.6;
    const bounded = Math.min(base + 12, Math.max(base - 6, t));
    temps.set(key, bounded);
    return Math.round(bounded * 10) / 10;
  };

  try {
    // 1. MQTT broker and sensors.
    const broker = await Aedes.createBroker();
    const mqttServer: Server = createServer(broker.handle);
    await new Promise<void>((r) => mqttServer.listen(0, '127.0.0.1', r));
    const mqttPort = (mqttServer.address() as { port: number }).port;
    stops.push(async () => {
      await new Promise<void>((r) => mqttServer.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    });
    const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    const publisher = await mqtt.connectAsync(mqttUrl, { clientId: 'demo-sensors', clean: true, reconnectPeriod: 500 });
    let published = 0;
    const tick = setInterval(() => {
      for (const s of MQTT_SENSORS) {
        const reading = {
          reading_ts: new Date().toISOString(),
          sensor_id: s.sensor,
          production_line: s.line,
          widget_type: s.type,
          colour: COLOURS[Math.floor(random() * COLOURS.length)],
          temp_celcius: drift(s.sensor, s.line === 'w01' ? 19 : 22),
          widget_weight_g: Math.round(100 + random() * 40),
        };
        // The topic carries line and sensor (the agent's subscription turns them into fields); the payload repeats them as devices do.
        publisher.publish(`factory/${s.line}/${s.sensor}/reading`, JSON.stringify(reading), { qos: 1 }, (err) => {
          if (!err) published++;
        });
      }
    }, options.mqttIntervalMs ?? 200);
    let publisherStopped = false;
    const stopPublisher = async () => {
      clearInterval(tick);
      if (publisherStopped) return;
      publisherStopped = true;
      await publisher.endAsync();
    };
    stops.push(stopPublisher);
    const deviceStops: Array<() => Promise<void>> = [stopPublisher];

    // 2. Modbus TCP: two slaves. Holding 0: temperature ×10 (int16); 1-2: weight (float32, ABCD); coil 0: running.
    const modbusPort = await freePort();
    const regs = (unit: number): number[] => {
      const temp = Math.round(drift(`plc-${unit}`, 21) * 10);
      const buf = Buffer.alloc(4);
      buf.writeFloatBE(110 + random() * 30);
      return [temp & 0xffff, buf.readUInt16BE(0), buf.readUInt16BE(2)];
    };
    const modbus = new ModbusRTU.ServerTCP(
      {
        getHoldingRegister: (addr: number, unit: number) => regs(unit)[addr] ?? 0,
        getMultipleHoldingRegisters: (addr: number, length: number, unit: number) => regs(unit).concat(new Array(Math.max(0, addr + length - 3)).fill(0)).slice(addr, addr + length),
        getCoil: () => true,
        getInputRegister: () => 0,
        getDiscreteInput: () => false,
      },
      { host: '127.0.0.1', port: modbusPort, unitID: 255 },
    );
    await new Promise<void>((resolve, reject) => {
      modbus.once('initialized', () => resolve());
      modbus.once('serverError', reject);
    });
    stops.push(() => new Promise<void>((r) => modbus.close(() => r())));

    // 3. Serial: a simulated scale on a pty pair, where socat is present.
    let serialPath: string | null = null;
    if (hasSocat()) {
      const device = join(options.runDir, 'demo-scale-device');
      const agentEnd = join(options.runDir, 'demo-scale');
      // socat under a shell that ends it once its stdin closes: when the line stops (stop, below), or when this
      // process dies (socat alone outlived a SIGKILLed agent). In its own process group: a signal to the agent's
      // group (Ctrl-C in a terminal, a group kill) is the agent's to handle, and the pty pair goes only after the
      // agent stopped reading it (it used to see its serial device lost while it shut down).
      const socat: ChildProcess = spawn(
        'sh',
        ['-c', 'socat "$1" "$2" & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid"', 'demo-scale', `pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${agentEnd}`],
        { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
      );
      socat.stdin?.on('error', () => undefined);
      for (let i = 0; i < 200 && !(existsSync(device) && existsSync(agentEnd)); i++) await new Promise((r) => setTimeout(r, 25));
      if (existsSync(device) && existsSync(agentEnd)) {
        serialPath = agentEnd;
        const out: WriteStream = createWriteStream(device);
        out.on('error', () => undefined);
        const scale = setInterval(() => {
          const reading = {
            reading_ts: new Date().toISOString(),
            sensor_id: 'sc-301',
            production_line: 'w03',
            widget_type: 'acme94',
            colour: COLOURS[Math.floor(random() * COLOURS.length)],
            temp_celcius: drift('sc-301', 20),
            widget_weight_g: Math.round(95 + random() * 50),
          };
          out.write(`${JSON.stringify(reading)}\n`);
        }, 500);
        // The scale stops sending first (stopDevices) and its pty closes only with the line (stop), after the agent
        // stopped reading: closing it first made the agent see its serial device lost while it shut down.
        const stopSending = async () => {
          clearInterval(scale);
          if (!out.destroyed) await new Promise<void>((resolve) => out.write('', () => resolve()));
        };
        stops.push(async () => {
          clearInterval(scale);
          out.destroy();
        });
        deviceStops.push(stopSending);
      } else {
        options.logger.warn({}, 'demo: socat did not create the pty pair; no serial device in this demo');
      }
      stops.push(async () => {
        if (socat.exitCode === null && socat.signalCode === null) {
          const exited = new Promise((r) => socat.once('exit', r));
          socat.stdin?.end();
          await exited;
        }
      });
    } else {
      options.logger.info({}, 'demo: socat not installed; the demo runs without its serial device');
    }

    return {
      mqttUrl,
      modbusPort,
      serialPath,
      published: () => published,
      async stopDevices() {
        for (const s of deviceStops) await s().catch(() => undefined);
      },
      async stop() {
        for (const s of stops.reverse()) await s().catch(() => undefined);
        stops.length = 0;
      },
    };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    throw err;
  }
}

/** The agent config (YAML) that reads the demo line through the ordinary adapters. */
export function demoConfigYaml(line: DemoLine, opts: { dataDir: string; rulesDir: string; schemaFile: string; httpPort: number }): string {
  const q = (s: string) => JSON.stringify(s);
  return `# Built-in demo line (millstream run --demo)
gateway: { id: demo-gateway }
dataDir: ${q(opts.dataDir)}
log: { level: info }
store: { minFreeBytes: 16777216 }
topics:
  widgets: { partitions: 3, retentionMs: 86400000, schema: ${q(opts.schemaFile)} }
sources:
  - name: demo-mqtt
    topic: widgets
    mqtt:
      url: ${q(line.mqttUrl)}
      clientId: millstream-demo
      subscriptions: [{ topic: "factory/+production_line/+sensor_id/reading", qos: 1 }]
  - name: demo-plc
    topic: widgets
    modbus:
      transport: tcp
      host: 127.0.0.1
      port: ${line.modbusPort}
      pollIntervalMs: 1000
      timeoutMs: 500
      registers:
        - { field: temp_celcius, function: holding, address: 0, type: int16, scale: 0.1 }
        - { field: widget_weight_g, function: holding, address: 1, type: float32, byteOrder: ABCD }
        - { field: running, function: coil, address: 0, type: bool }
      devices:
        - { unitId: 1, sensorId: plc-1, fields: { production_line: w01, widget_type: acme94, colour: BLUE } }
        - { unitId: 2, sensorId: plc-2, fields: { production_line: w02, widget_type: acme96, colour: RED } }
${line.serialPath ? `  - name: demo-scale
    topic: widgets
    serial: { path: ${q(line.serialPath)}, baudRate: 115200, framing: json }
` : ''}rules:
  dir: ${q(opts.rulesDir)}
  idleCloseMs: 10000
replication: { enabled: false }
http: { host: 127.0.0.1, port: ${opts.httpPort} }
`;
}
