/**
 * Real pseudo-terminal pairs for serial tests, made by socat:
 *
 *   socat -d -d pty,raw,echo=0,link=<dir>/device pty,raw,echo=0,link=<dir>/writer
 *
 * The adapter opens `devicePath` with the serialport package (a real tty);
 * the test plays the sensor by writing to `writerPath`. Bytes written to one
 * end come out of the other.
 *
 * - `closeWriter()` / `openWriter()`: the sensor side closes and reopens its
 *   tty; the pair stays, so bytes written before and after meet.
 * - `unplug()`: socat exits (SIGTERM, it removes both links): the adapter's
 *   tty hangs up and `devicePath` disappears, as when a USB adapter is pulled.
 * - `replug()`: a new socat with the same link names: the port comes back
 *   (possibly as another /dev/pts/N, as after USB re-enumeration).
 *
 * `close()` kills socat and removes the directory; call it in afterEach.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PtyPair {
  /** The tty the adapter opens. */
  readonly devicePath: string;
  /** The tty the test writes to as the sensor. */
  readonly writerPath: string;
  /** Writes to the sensor end (opens it first if needed); resolves once written. */
  write(data: string | Uint8Array): Promise<void>;
  /** Reads what the adapter side sent (Modbus RTU requests), waiting for at least `minBytes`. */
  read(minBytes: number): Promise<Buffer>;
  openWriter(): Promise<void>;
  closeWriter(): Promise<void>;
  /** socat exits and both links disappear. */
  unplug(): Promise<void>;
  /** socat starts again with the same links. */
  replug(): Promise<void>;
  close(): Promise<void>;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(cond: () => boolean, what: string, attempts = 500): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (cond()) return;
    await delay(20);
  }
  throw new Error(`pty: timed out waiting for ${what}`);
}

export function socatAvailable(): boolean {
  return ['/usr/bin/socat', '/bin/socat', '/usr/local/bin/socat'].some((p) => existsSync(p));
}

export async function openPtyPair(): Promise<PtyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'millstream-pty-'));
  const devicePath = join(dir, 'device');
  const writerPath = join(dir, 'writer');
  let proc: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let writer: FileHandle | null = null;
  let log = '';

  async function startSocat(): Promise<void> {
    const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${devicePath}`, `pty,raw,echo=0,link=${writerPath}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      log = (log + d).slice(-4000);
    });
    proc = child;
    exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // Ready only once THIS socat has set both ptys up (raw, no echo): a writer opening earlier would get
    // cooked-mode output processing (\n → \r\n). The log of an earlier socat must not count.
    let ready = false;
    let own = '';
    child.stderr!.on('data', (d: string) => {
      own += d;
      if (own.includes('starting data transfer loop')) ready = true;
    });
    await waitFor(() => ready || child.exitCode !== null, 'socat to start');
    if (child.exitCode !== null) throw new Error(`socat exited with ${child.exitCode}: ${log}`);
    await waitFor(() => existsSync(devicePath) && existsSync(writerPath), 'the pty links');
  }

  async function stopSocat(): Promise<void> {
    const child = proc;
    if (!child) return;
    proc = null;
    if (writer) {
      await writer.close().catch(() => {});
      writer = null;
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await waitFor(() => !existsSync(devicePath) && !existsSync(writerPath), 'the pty links to go').catch(async () => {
      await rm(devicePath, { force: true });
      await rm(writerPath, { force: true });
    });
  }

  await startSocat();

  const pair: PtyPair = {
    devicePath,
    writerPath,
    async openWriter() {
      if (writer) return;
      writer = await open(writerPath, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
    },
    async closeWriter() {
      if (!writer) return;
      await writer.close();
      writer = null;
    },
    async write(data) {
      await pair.openWriter();
      const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
      let off = 0;
      while (off < buf.length) {
        try {
          const { bytesWritten } = await writer!.write(buf, off, buf.length - off);
          off += bytesWritten;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          await delay(5);
        }
      }
    },
    async read(minBytes) {
      await pair.openWriter();
      const chunks: Buffer[] = [];
      let total = 0;
      while (total < minBytes) {
        const buf = Buffer.alloc(4096);
        try {
          const { bytesRead } = await writer!.read(buf, 0, buf.length, null);
          if (bytesRead > 0) {
            chunks.push(buf.subarray(0, bytesRead));
            total += bytesRead;
            continue;
          }
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        }
        await delay(5);
      }
      return Buffer.concat(chunks);
    },
    unplug: stopSocat,
    async replug() {
      if (proc) return;
      await startSocat();
    },
    async close() {
      await stopSocat();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return pair;
}
