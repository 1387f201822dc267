/**
 * The shared device-adapter contract, run against the Modbus adapter on a
 * modbus-serial ServerTCP.
 *
 * The contract drives "the device emits one reading"; a polled Modbus slave
 * has no such moment, so the world's slave answers a poll only when it has a
 * new register image (the request waits at the server, well inside the
 * slave's long timeout): one `sendReading` is one answered poll, hence one
 * reading. The register map reads the sensor id from the
 * device (a string register named `sensor_id`) and a sequence number; the
 * garbage frame is a sensor id whose bytes are not UTF-8.
 */
import { ServerTCP } from 'modbus-serial';
import { ModbusAdapter } from '../firmware-bridge/modbus-adapter.ts';
import { adapterContract, until, type ContractWorld } from './support/adapter-contract.ts';
import { freePort } from './support/modbus-sim.ts';

type Cb = (err: unknown, values?: number[]) => void;

function image(sensorId: Buffer, seq: number): number[] {
  const bytes = Buffer.alloc(20);
  sensorId.copy(bytes, 0, 0, 16);
  bytes.writeUInt32BE(seq, 16);
  return Array.from({ length: 10 }, (_, i) => bytes.readUInt16BE(i * 2));
}

/**
 * A slave that answers FC 3 only with a fresh image, each image once, in
 * order; images the adapter has not polled yet wait in the device (as a
 * device buffer would hold them while the gateway is stopped or paused).
 */
class OneShotSlave {
  private readonly queue: number[][] = [];
  private parked: { cb: Cb; sock: unknown } | null = null;
  server: ServerTCP | null = null;

  vector() {
    return {
      getMultipleHoldingRegisters: (_addr: number, _len: number, _unit: number, cb: Cb) => {
        const next = this.queue.shift();
        if (next) cb(null, next);
        else this.parked = { cb, sock: this.latestSocket() };
      },
    };
  }

  /** The adapter holds one connection at a time: the newest socket is the one a request came on. */
  private latestSocket(): unknown {
    return this.server ? [...this.server.socks.keys()].at(-1) : null;
  }

  /** Hands one image to the waiting poll, or keeps it for the next one. */
  async emit(words: number[]): Promise<void> {
    const parked = this.parked;
    this.parked = null;
    // A poll parked on a connection that has closed since can no longer carry it.
    if (parked && this.server?.socks.has(parked.sock as never)) parked.cb(null, words);
    else this.queue.push(words);
  }

  dropParked(): void {
    this.parked = null;
  }
}

adapterContract('modbus-tcp', async (): Promise<ContractWorld> => {
  const port = await freePort();
  const slave = new OneShotSlave();
  const startServer = async (): Promise<void> => {
    const server = new ServerTCP(slave.vector() as never, { host: '127.0.0.1', port, unitID: 255 });
    server.on('socketError', () => {});
    server.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      server.on('initialized', () => resolve());
      server.on('serverError', (err) => reject(err));
    });
    slave.server = server;
  };
  const stopServer = async (): Promise<void> => {
    const server = slave.server;
    slave.server = null;
    slave.dropParked();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  await startServer();
  return {
    kind: 'modbus-tcp',
    maxReadingsPerRead: 1,
    create(deps, common) {
      return new ModbusAdapter(
        {
          device: 'modbus-contract',
          topic: 'widgets',
          transport: { kind: 'tcp', host: '127.0.0.1', port },
          slaves: [
            {
              name: 'widget-counter',
              unitId: 1,
              sensorId: 'from-device',
              pollIntervalMs: 1,
              timeoutMs: 600_000,
              registers: [
                { field: 'sensor_id', function: 'holding', address: 0, type: 'string', length: 16 },
                { field: 'seq', function: 'holding', address: 8, type: 'uint32' },
              ],
            },
          ],
          ...common,
        },
        deps,
      );
    },
    sendReading: (sensorId, seq) => slave.emit(image(Buffer.from(sensorId, 'latin1'), seq)),
    sendGarbage: () => slave.emit(image(Buffer.from([0x61, 0xff, 0xfe, 0x62]), 0)),
    takeDown: stopServer,
    async bringUp() {
      await startServer();
      await until(() => slave.server !== null);
    },
    teardown: stopServer,
  };
});
