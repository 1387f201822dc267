/**
 * Serial source: reads a line protocol (newline-delimited JSON, CSV,
 * key=value) from a serial port with the serialport package.
 *
 * Unplug/replug: when the port hangs up (USB adapter pulled, pty gone) the
 * partial line held by the framer is dead-lettered as an incomplete line, the
 * adapter goes to 'backoff' and reopens the same path with back-off until it
 * is back. A device that resumes mid-line produces one undecodable fragment,
 * which is dead-lettered like any bad line; the lines after it decode.
 *
 * Backpressure: while the sink is behind (`backlogged`), the port stream is
 * paused; the kernel tty buffer (and with `rtscts`, the device) holds the
 * rest. Capture: with a capture writer, each chunk is recorded exactly as
 * read, before framing, plus a 'disconnect' event when the port goes away.
 */
import { SerialPort } from 'serialport';
import { AdapterBase, type AdapterDeps, type CommonAdapterConfig } from './adapter-base.ts';
import { BridgeError } from './errors.ts';
import type { FramingConfig } from './line-decoders.ts';
import { LineProcessor, type LineOutput } from './line-processor.ts';
import type { DeadLetter, Reading } from './types.ts';

export interface SerialAdapterConfig extends CommonAdapterConfig {
  kind: 'serial';
  /** Port path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/... Required. */
  path: string;
  /** Bits per second. Default 9600. */
  baudRate?: number;
  /** Default 8. */
  dataBits?: 5 | 6 | 7 | 8;
  /** Default 'none'. */
  parity?: 'none' | 'even' | 'odd' | 'mark' | 'space';
  /** Default 1. */
  stopBits?: 1 | 1.5 | 2;
  /** RTS/CTS hardware flow control. Default false. */
  rtscts?: boolean;
  /** Line format. Default { format: 'json' }. */
  framing?: FramingConfig;
  /** Longest accepted line in bytes; a longer one is a decode error. Default 65536. */
  maxLineBytes?: number;
}

export const SERIAL_DEFAULTS = Object.freeze({
  baudRate: 9600,
  dataBits: 8 as const,
  parity: 'none' as const,
  stopBits: 1 as const,
  rtscts: false,
  framing: Object.freeze({ format: 'json' as const }),
});

const PARITIES: ReadonlySet<string> = new Set(['none', 'even', 'odd', 'mark', 'space']);

function validate(config: SerialAdapterConfig): void {
  const bad = (key: string, why: string): never => {
    throw new BridgeError('BRIDGE_CONFIG', `serial device ${config.device}: ${key} ${why}`, { device: config.device, key });
  };
  if (typeof config.path !== 'string' || config.path === '') bad('path', 'must be a non-empty string');
  if (config.baudRate !== undefined && !(Number.isInteger(config.baudRate) && config.baudRate > 0)) bad('baudRate', `must be a positive integer (got ${config.baudRate})`);
  if (config.dataBits !== undefined && ![5, 6, 7, 8].includes(config.dataBits)) bad('dataBits', `must be 5, 6, 7 or 8 (got ${config.dataBits})`);
  if (config.parity !== undefined && !PARITIES.has(config.parity)) bad('parity', `must be one of ${[...PARITIES].join(', ')} (got ${config.parity})`);
  if (config.stopBits !== undefined && ![1, 1.5, 2].includes(config.stopBits)) bad('stopBits', `must be 1, 1.5 or 2 (got ${config.stopBits})`);
  if (config.maxLineBytes !== undefined && !(Number.isInteger(config.maxLineBytes) && config.maxLineBytes > 0)) bad('maxLineBytes', 'must be a positive integer');
}

export class SerialAdapter extends AdapterBase {
  private readonly serial: Readonly<SerialAdapterConfig>;
  private readonly processor: LineProcessor;
  private port: SerialPort | null = null;

  private readonly onData = (chunk: Buffer): void => this.handleChunk(chunk);
  private readonly onClose = (err?: Error | null): void => this.handleClose(err ?? null);
  private readonly onError = (err: Error): void => this.noteError(new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `serial ${this.serial.path}: ${err.message}`, { device: this.device, path: this.serial.path }, err));

  constructor(config: SerialAdapterConfig, deps: AdapterDeps) {
    validate(config);
    super('serial', config, deps);
    this.serial = Object.freeze({ ...config });
    this.processor = new LineProcessor({ framing: config.framing ?? SERIAL_DEFAULTS.framing, maxLineBytes: config.maxLineBytes });
  }

  protected async openDevice(): Promise<void> {
    const c = this.serial;
    const port = new SerialPort({
      path: c.path,
      baudRate: c.baudRate ?? SERIAL_DEFAULTS.baudRate,
      dataBits: c.dataBits ?? SERIAL_DEFAULTS.dataBits,
      parity: c.parity ?? SERIAL_DEFAULTS.parity,
      stopBits: c.stopBits ?? SERIAL_DEFAULTS.stopBits,
      rtscts: c.rtscts ?? SERIAL_DEFAULTS.rtscts,
      autoOpen: false,
    });
    // Registered before open so an error during open never goes unhandled.
    port.on('error', this.onError);
    this.port = port;
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    if (this.port !== port) {
      // closeDevice() ran while the port was opening (stop): close it here, nobody else holds it.
      port.on('error', () => {});
      await new Promise<void>((resolve) => port.close(() => resolve()));
      throw new BridgeError('BRIDGE_STOPPED', `serial ${c.path}: stopped while opening`, { device: this.device });
    }
    port.on('data', this.onData);
    port.on('close', this.onClose);
    if (this.backlogged) port.pause();
  }

  protected async closeDevice(): Promise<void> {
    const port = this.port;
    if (!port) return;
    this.port = null;
    port.off('data', this.onData);
    port.off('close', this.onClose);
    port.off('error', this.onError);
    // The port object is dropped after this; a late error from a hung-up tty must not crash the process.
    port.on('error', () => {});
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  protected override onBacklogCleared(): void {
    this.port?.resume();
  }

  private handleChunk(chunk: Buffer): void {
    const receivedAt = this.clock.now();
    this.capture?.write({ receivedAt, kind: 'serial', device: this.device, data: chunk });
    try {
      const outputs = this.processor.push(chunk);
      if (outputs.length > 0) this.send(outputs, receivedAt);
    } catch (err) {
      // A bug in decoding must not take the port's stream (and the process) down: count it, keep reading.
      this.noteError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private handleClose(err: Error | null): void {
    const receivedAt = this.clock.now();
    this.capture?.write({ receivedAt, kind: 'serial', device: this.device, event: 'disconnect' });
    const partial = this.processor.disconnect();
    if (partial) this.send([partial], receivedAt);
    this.deviceLost(err ?? new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `serial ${this.serial.path} closed`, { device: this.device }));
  }

  private send(outputs: LineOutput[], receivedAt: number): void {
    const readings: Reading[] = [];
    const letters: DeadLetter[] = [];
    for (const out of outputs) {
      const item = out.ok ? this.accept(out.value, out.raw, receivedAt, undefined, out.valueJson) : this.reject(out.error, out.raw, receivedAt);
      if ('intendedTopic' in item) letters.push(item);
      else readings.push(item);
    }
    // Delivery failures surface through status and the 'error' event; abandoned readings at stop are logged by the base.
    this.deliver(readings, letters).catch(() => {});
    if (this.backlogged) this.port?.pause();
  }
}
