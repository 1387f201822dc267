/**
 * Modbus slaves simulated behind modbus-serial's own servers (ServerTCP for
 * TCP, ServerSerial on a socat pty for RTU), so adapter tests talk to a real
 * protocol stack over a real socket or tty.
 *
 * Every unit id has a mode: 'live' answers from its tables, 'dead' never
 * answers (the request times out, as for an absent slave), and
 * `{ exception: n }` answers with exception code n. A unit with no tables is
 * dead. Register requests (FC 3/4) are logged in arrival order, so tests count
 * real round trips and check their interleaving.
 */
import { createServer } from 'node:net';
import { ServerSerial, ServerTCP, type IServiceVector } from 'modbus-serial';
import type { DeadLetter, Reading, ReadingSink } from '../../firmware-bridge/types.ts';

export type SlaveMode = 'live' | 'dead' | { exception: number };

export interface SimSlave {
  mode: SlaveMode;
  holding: Map<number, number>;
  input: Map<number, number>;
  coils: Map<number, boolean>;
  discrete: Map<number, boolean>;
}

export interface LoggedRequest {
  unitId: number;
  functionCode: number;
  address: number;
  count: number;
}

type ValueCb<T> = (err: unknown, value?: T) => void;

export class SimulatedSlaves {
  readonly slaves = new Map<number, SimSlave>();
  /** FC 3 and FC 4 requests in arrival order. */
  readonly requests: LoggedRequest[] = [];

  slave(unitId: number): SimSlave {
    let s = this.slaves.get(unitId);
    if (!s) {
      s = { mode: 'live', holding: new Map(), input: new Map(), coils: new Map(), discrete: new Map() };
      this.slaves.set(unitId, s);
    }
    return s;
  }

  /** Writes big-endian register bytes (as a device holds them) from `address` on. */
  setRegisters(unitId: number, table: 'holding' | 'input', address: number, bytes: Uint8Array): void {
    const s = this.slave(unitId);
    for (let i = 0; i + 1 < bytes.length; i += 2) s[table].set(address + i / 2, (bytes[i]! << 8) | bytes[i + 1]!);
  }

  requestsFor(unitId: number): LoggedRequest[] {
    return this.requests.filter((r) => r.unitId === unitId);
  }

  /** Runs `answer` unless the unit is dead (never answers) or set to answer an exception. */
  private serve<T>(unitId: number, cb: ValueCb<T>, answer: (s: SimSlave) => T): void {
    const s = this.slaves.get(unitId);
    if (!s || s.mode === 'dead') return;
    if (typeof s.mode === 'object') {
      cb({ modbusErrorCode: s.mode.exception });
      return;
    }
    cb(null, answer(s));
  }

  private registers(table: 'holding' | 'input', fc: number) {
    return {
      one: (addr: number, unitId: number, cb: ValueCb<number>): void => {
        this.requests.push({ unitId, functionCode: fc, address: addr, count: 1 });
        this.serve(unitId, cb, (s) => s[table].get(addr) ?? 0);
      },
      many: (addr: number, length: number, unitId: number, cb: ValueCb<number[]>): void => {
        this.requests.push({ unitId, functionCode: fc, address: addr, count: length });
        this.serve(unitId, cb, (s) => Array.from({ length }, (_, i) => s[table].get(addr + i) ?? 0));
      },
    };
  }

  vector(): IServiceVector {
    const holding = this.registers('holding', 3);
    const input = this.registers('input', 4);
    return {
      getHoldingRegister: holding.one,
      getMultipleHoldingRegisters: holding.many,
      getInputRegister: input.one,
      getMultipleInputRegisters: input.many,
      getCoil: (addr: number, unitId: number, cb: ValueCb<boolean>) => this.serve(unitId, cb, (s) => s.coils.get(addr) ?? false),
      getDiscreteInput: (addr: number, unitId: number, cb: ValueCb<boolean>) => this.serve(unitId, cb, (s) => s.discrete.get(addr) ?? false),
    } as IServiceVector;
  }
}

/** A free TCP port on 127.0.0.1 (ServerTCP treats port 0 as "use 502"). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningServer {
  port: number;
  close(): Promise<void>;
}

/** modbus-serial's ServerTCP on 127.0.0.1, answering for every unit id (unitID 255). */
export async function startTcpServer(sim: SimulatedSlaves): Promise<RunningServer> {
  const port = await freePort();
  const server = new ServerTCP(sim.vector(), { host: '127.0.0.1', port, unitID: 255 });
  await new Promise<void>((resolve, reject) => {
    server.on('initialized', () => resolve());
    server.on('serverError', (err) => reject(err));
  });
  server.on('socketError', () => {});
  server.on('error', () => {});
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** modbus-serial's ServerSerial on one end of a pty pair (the adapter opens the other). */
export async function startSerialServer(sim: SimulatedSlaves, path: string, baudRate = 9600): Promise<{ close(): Promise<void> }> {
  const server = await new Promise<ServerSerial>((resolve, reject) => {
    // interval: the silence (ms) that ends a request frame; requests are serialized, so the next one comes only after a response or a timeout (>= 100 ms in tests).
    const s: ServerSerial = new ServerSerial(sim.vector(), {
      path,
      baudRate,
      unitID: 255,
      interval: 20,
      openCallback: (err?: Error | null) => (err ? reject(err) : resolve(s)),
    } as never);
  });
  server.on('error', () => {});
  server.on('socketError', () => {});
  return {
    close: () =>
      new Promise<void>((resolve) => {
        try {
          server.close(() => resolve());
        } catch {
          resolve();
        }
      }),
  };
}

/** A sink in memory: readings and dead letters in store order; can refuse the next N writes. */
export class CollectingSink implements ReadingSink {
  readonly readings: Reading[] = [];
  readonly letters: DeadLetter[] = [];
  refuseNext = 0;

  async write(readings: readonly Reading[]): Promise<void> {
    if (this.refuseNext > 0) {
      this.refuseNext--;
      throw new Error('sink refused: disk below floor');
    }
    this.readings.push(...readings);
  }

  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    this.letters.push(...letters);
  }

  from(device: string): Reading[] {
    return this.readings.filter((r) => r.headers.device === device);
  }
}

/** Polls until `cond` holds (the vitest timeout catches a hang). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((resolve) => setTimeout(resolve, 5));
}
