/**
 * The Modbus source: one adapter per line (an RTU serial port or a TCP
 * connection), polling several slaves over it with modbus-serial.
 *
 * - Requests on a line are serialized (one transaction in flight), in FIFO
 *   order per request, so slaves interleave request by request: a live slave
 *   waits at most one in-flight transaction (bounded by that slave's
 *   `timeoutMs`) behind a dead one.
 * - Each slave polls on its own interval (fixed rate; a late poll is not
 *   made up for twice). One poll reads the slave's plan (few coalesced
 *   requests) and yields one Reading: key = `sensorId`, value = the key
 *   field, the constant `fields` and every decoded register.
 * - A per-slave circuit breaker (see modbus-circuit-breaker.ts) stops polling
 *   a slave that keeps timing out or answering exceptions and probes it
 *   after an exponential, jittered back-off. Exceptions are looked up in the
 *   exception table and surfaced by name (status `lastError`, `exceptions`).
 * - The line itself (port or socket) reconnects with back-off through
 *   AdapterBase; slaves wait while it is down and do not count that against
 *   their breakers.
 * - Backpressure: a slave does not poll again until its last reading reached
 *   the sink (AdapterBase pauses and retries while the sink refuses).
 * - Capture: every request (`dir: tx`) and response (`rx`) is written as an
 *   RTU frame (unit id, PDU, CRC) for both transports, under the slave's
 *   name as `device`, with `meta: {line, unitId, poll, request}` (poll: the
 *   slave's poll sequence number; request: index in its plan); see
 *   modbus-replay.ts.
 *
 * Times come from the injected clock and timers (polling, breaker, back-off);
 * only the per-request response timeout runs inside modbus-serial on the
 * global timers.
 */
import { EventEmitter } from 'node:events';
import ModbusSerial from 'modbus-serial';
import { AdapterBase, type AdapterDeps, type CommonAdapterConfig } from './adapter-base.ts';
import { sleep } from './backoff.ts';
import { BridgeError, isBridgeError } from './errors.ts';
import { CircuitBreaker, type BreakerState } from './modbus-circuit-breaker.ts';
import { modbusException } from './modbus-exceptions.ts';
import { buildExceptionResponse, buildReadRequest, buildReadResponse, framesRaw } from './modbus-frames.ts';
import type { ReadRequest } from './modbus-request-plan.ts';
import { decodeSlaveValue, resolveSlaves, type ModbusSlaveConfig, type ResolvedSlave } from './modbus-slave.ts';
import { ReadingBuilder } from './reading-builder.ts';
import { ReadingPipeline } from './reading-pipeline.ts';
import type { AdapterEvents, AdapterState, DeviceStatus, SourceKind } from './types.ts';

export interface ModbusTcpTransport {
  kind: 'tcp';
  /** Host name or address of the Modbus TCP server or gateway. Required. */
  host: string;
  /** Default 502. */
  port?: number;
  /** Bound on establishing the connection, in ms. Default 5000. */
  connectTimeoutMs?: number;
}

export interface ModbusRtuTransport {
  kind: 'rtu';
  /** Serial port path, e.g. /dev/ttyUSB0. Required. */
  path: string;
  /** Default 9600. */
  baudRate?: number;
  /** Default 8. */
  dataBits?: 5 | 6 | 7 | 8;
  /** Default 'none' (the Modbus specification says 'even'; many installations use 'none'). */
  parity?: 'none' | 'even' | 'odd' | 'mark' | 'space';
  /** Default 1. */
  stopBits?: 1 | 1.5 | 2;
  /** RTS/CTS hardware flow control. Default false. */
  rtscts?: boolean;
}

/** The adapter's configuration: the agent YAML's `modbus` source maps onto it. `device` names the line. */
export interface ModbusAdapterConfig extends CommonAdapterConfig {
  transport: ModbusTcpTransport | ModbusRtuTransport;
  /** The slaves on this line. Required, at least one; names and unit ids unique. */
  slaves: readonly ModbusSlaveConfig[];
}

/** Status of one slave: the common fields plus what an operator needs to see on a Modbus line. */
export interface ModbusDeviceStatus extends DeviceStatus {
  /** The line (adapter) the slave is on. */
  line: string;
  unitId: number;
  breaker: BreakerState;
  /** Failed polls since the last success. */
  consecutiveFailures: number;
  /** When the next poll (or probe) is due, ms since the epoch; null when stopped. */
  nextPollAt: number | null;
  /** Requests sent (including retries and probes). */
  requests: number;
  /** Polls that produced a reading. */
  polls: number;
  timeouts: number;
  /** Exception responses by name (e.g. {"ILLEGAL DATA ADDRESS": 3}). */
  exceptions: Record<string, number>;
}

interface ReadResult {
  data: Buffer;
  /** Clock time the response arrived (also its capture time). */
  receivedAt: number;
  request: Buffer;
  response: Buffer;
}

interface SlaveRuntime {
  readonly config: ResolvedSlave;
  readonly breaker: CircuitBreaker;
  readonly pipeline: ReadingPipeline;
  readonly scratch: Buffer;
  state: AdapterState;
  nextPollAt: number | null;
  pollSeq: number;
  requests: number;
  polls: number;
  timeouts: number;
  readings: number;
  decodeErrors: number;
  deadLetters: number;
  errors: number;
  lastReadingAt: number | null;
  lastError: string | null;
  exceptions: Record<string, number>;
}

/**
 * modbus-serial is CommonJS: `module.exports` is the client class and
 * `module.exports.default` points back to it; under NodeNext only the latter
 * carries the class type.
 */
const ModbusRTU = ModbusSerial.default;
type ModbusClient = InstanceType<typeof ModbusRTU>;

/** Longest wait for a port or socket to report closed, in ms. */
const RELEASE_TIMEOUT_MS = 2000;
type ReadCallback = (err: unknown, res: { buffer: Buffer; request?: Uint8Array; responses?: Uint8Array[] }) => void;

/** Is a failed request worth another attempt within the same poll? Decided by code and the exception table, never by text. */
function retriable(err: BridgeError): boolean {
  if (err.code === 'BRIDGE_TIMEOUT') return true;
  if (err.code === 'BRIDGE_PROTOCOL') {
    const code = err.context.protocolCode;
    return typeof code === 'number' ? modbusException(code).retriable : true; // garbled frame (CRC, length): retry
  }
  return false;
}

export class ModbusAdapter extends AdapterBase {
  private readonly transport: ModbusTcpTransport | ModbusRtuTransport;
  private readonly slaves: SlaveRuntime[];
  private readonly slaveEvents = new EventEmitter();

  private client: ModbusClient | null = null;
  private lineUp = false;
  private readonly lineWaiters = new Set<() => void>();
  private lineTail: Promise<unknown> = Promise.resolve();
  private inflight: { reject: (err: Error) => void } | null = null;
  private loopAbort: AbortController | null = null;
  private loops: Promise<void>[] = [];
  private backlogWaiters = new Set<() => void>();

  constructor(config: ModbusAdapterConfig, deps: AdapterDeps) {
    const kind: SourceKind = config?.transport?.kind === 'rtu' ? 'modbus-rtu' : 'modbus-tcp';
    super(kind, config, deps);
    const t = config.transport;
    const fail = (key: string, message: string): never => {
      throw new BridgeError('BRIDGE_CONFIG', `modbus ${config.device}: ${key}: ${message}`, { device: config.device, key });
    };
    if (t?.kind === 'tcp') {
      if (typeof t.host !== 'string' || t.host === '') fail('transport.host', 'must be a non-empty string');
      if (t.port !== undefined && !(Number.isInteger(t.port) && t.port > 0 && t.port < 65536)) fail('transport.port', 'must be 1..65535');
    } else if (t?.kind === 'rtu') {
      if (typeof t.path !== 'string' || t.path === '') fail('transport.path', 'must be a non-empty string');
    } else {
      fail('transport.kind', 'must be "tcp" or "rtu"');
    }
    this.transport = Object.freeze({ ...t });
    const resolved = resolveSlaves(config);
    const random = deps.random ?? Math.random;
    this.slaves = resolved.map((s) => ({
      config: s,
      breaker: new CircuitBreaker(s.breaker, random),
      pipeline: new ReadingPipeline({
        builder: new ReadingBuilder({
          topic: s.topic,
          device: s.name,
          kind,
          gatewayId: deps.gatewayId,
          keyField: config.keyField,
          timestampField: config.timestampField,
          maxClockSkewMs: config.maxClockSkewMs,
        }),
        schemaCheck: deps.schemaCheck,
        deadLetterTopic: config.deadLetterTopic,
      }),
      scratch: Buffer.allocUnsafe(8),
      state: 'stopped',
      nextPollAt: null,
      pollSeq: 0,
      requests: 0,
      polls: 0,
      timeouts: 0,
      readings: 0,
      decodeErrors: 0,
      deadLetters: 0,
      errors: 0,
      lastReadingAt: null,
      lastError: null,
      exceptions: {},
    }));
  }

  // ── lifecycle ────────────────────────────────────────────────────────────

  override start(): Promise<void> {
    if (!this.loopAbort) {
      const abort = new AbortController();
      this.loopAbort = abort;
      this.loops = this.slaves.map((s) => this.runSlave(s, abort.signal));
    }
    return super.start();
  }

  override async stop(): Promise<void> {
    const abort = this.loopAbort;
    abort?.abort();
    for (const wake of this.backlogWaiters) wake();
    await super.stop();
    if (abort) {
      await Promise.all(this.loops);
      if (this.loopAbort === abort) {
        this.loopAbort = null;
        this.loops = [];
      }
    }
    for (const s of this.slaves) {
      s.nextPollAt = null;
      this.setSlaveState(s);
    }
  }

  protected async openDevice(signal: AbortSignal): Promise<void> {
    const client: ModbusClient = new ModbusRTU();
    // Debug mode keeps each transaction's raw request and response frames (for capture).
    (client as unknown as { isDebugEnabled: boolean }).isDebugEnabled = true;
    const t = this.transport;
    try {
      if (t.kind === 'tcp') {
        await client.connectTCP(t.host, { port: t.port ?? 502, timeout: t.connectTimeoutMs ?? 5000 });
      } else {
        await client.connectRTUBuffered(t.path, {
          baudRate: t.baudRate ?? 9600,
          dataBits: t.dataBits ?? 8,
          parity: t.parity ?? 'none',
          stopBits: t.stopBits ?? 1,
          rtscts: t.rtscts ?? false,
        });
      }
    } catch (err) {
      await this.release(client);
      throw err;
    }
    if (signal.aborted) {
      await this.release(client);
      throw new BridgeError('BRIDGE_STOPPED', 'stopped while connecting', { device: this.device });
    }
    client.on('close', () => {
      if (this.client === client) this.lineDown(new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `${this.lineName()} closed`, { device: this.device }));
    });
    client.on('error', (err: unknown) => {
      if (this.client === client) this.lineDown(err);
    });
    this.client = client;
    this.lineUp = true;
    for (const wake of this.lineWaiters) wake();
    this.lineWaiters.clear();
  }

  protected async closeDevice(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.lineUp = false;
    this.inflight?.reject(new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `${this.lineName()} closed with a request in flight`, { device: this.device }));
    this.inflight = null;
    if (client) await this.release(client);
  }

  protected override onBacklogCleared(): void {
    for (const wake of this.backlogWaiters) wake();
    this.backlogWaiters.clear();
  }

  /**
   * Releases a client: TCP sockets are destroyed (no FIN handshake to wait
   * for from a server that may be gone); a serial port is closed. Bounded by
   * RELEASE_TIMEOUT_MS so a port that never reports closed cannot stall a
   * reconnect.
   */
  private release(client: ModbusClient): Promise<void> {
    // modbus-serial's typings omit the EventEmitter methods the class has.
    const emitter = client as unknown as EventEmitter;
    emitter.removeAllListeners('close');
    emitter.removeAllListeners('error');
    // Keep an error listener: a late socket/port error after release must not crash the process.
    emitter.on('error', () => {});
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.timers.clearTimeout(guard);
        resolve();
      };
      const guard = this.timers.setTimeout(finish, RELEASE_TIMEOUT_MS);
      try {
        if (this.transport.kind === 'tcp' || !client.isOpen) client.destroy(finish);
        else client.close(finish);
      } catch {
        finish();
      }
    });
  }

  private lineDown(err: unknown): void {
    if (!this.lineUp) return;
    this.lineUp = false;
    this.deviceLost(err);
  }

  private lineName(): string {
    const t = this.transport;
    return t.kind === 'tcp' ? `modbus tcp ${t.host}:${t.port ?? 502}` : `modbus rtu ${t.path}`;
  }

  // ── polling ──────────────────────────────────────────────────────────────

  private async runSlave(s: SlaveRuntime, signal: AbortSignal): Promise<void> {
    let due = this.clock.now();
    try {
      while (!signal.aborted) {
        const now = this.clock.now();
        const at = Math.max(due, now + s.breaker.acquire(now));
        s.nextPollAt = at;
        if (at > now) {
          await sleep(at - now, this.timers, signal);
          // The breaker's retryAt may just have passed: turn it half-open (the probe).
          if (s.breaker.acquire(this.clock.now()) > 0) continue;
        }
        due = at;
        await this.whenLineUp(signal);
        await this.whenNotBacklogged(signal);
        await this.pollSlave(s, signal);
        due += s.config.pollIntervalMs;
        const after = this.clock.now();
        if (due < after) due = after;
      }
    } catch (err) {
      if (!signal.aborted && !isBridgeError(err, 'BRIDGE_STOPPED')) {
        this.noteError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private whenLineUp(signal: AbortSignal): Promise<void> {
    if (this.lineUp) return Promise.resolve();
    return this.waitOn(this.lineWaiters, signal);
  }

  private whenNotBacklogged(signal: AbortSignal): Promise<void> {
    if (!this.backlogged) return Promise.resolve();
    return this.waitOn(this.backlogWaiters, signal);
  }

  private waitOn(waiters: Set<() => void>, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(new BridgeError('BRIDGE_STOPPED', 'stopped'));
        return;
      }
      const onAbort = (): void => {
        waiters.delete(wake);
        reject(new BridgeError('BRIDGE_STOPPED', 'stopped'));
      };
      const wake = (): void => {
        waiters.delete(wake);
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) reject(new BridgeError('BRIDGE_STOPPED', 'stopped'));
        else resolve();
      };
      waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** One poll: read the plan, decode, deliver. Failures feed the breaker; a line failure hands over to reconnect. */
  private async pollSlave(s: SlaveRuntime, signal: AbortSignal): Promise<void> {
    const cfg = s.config;
    const poll = ++s.pollSeq;
    // Retries only for a healthy slave: a suspect one costs one timeout per poll.
    const retries = s.breaker.state === 'closed' && s.breaker.consecutiveFailures === 0 ? cfg.retries : 0;
    const data: Buffer[] = [];
    const frames: Buffer[] = [];
    let receivedAt = 0;
    for (let i = 0; i < cfg.requests.length; i++) {
      const req = cfg.requests[i]!;
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await this.read(s, req, poll, i, signal);
          data.push(res.data);
          frames.push(res.response);
          receivedAt = res.receivedAt;
          break;
        } catch (err) {
          if (signal.aborted) throw new BridgeError('BRIDGE_STOPPED', 'stopped');
          const error = isBridgeError(err) ? err : new BridgeError('BRIDGE_PROTOCOL', String(err), { device: cfg.name }, err);
          if (error.code === 'BRIDGE_DEVICE_UNAVAILABLE' || error.code === 'BRIDGE_STOPPED') {
            // The line, not the slave: reconnect; the slave's breaker is not charged.
            this.lineDown(error);
            return;
          }
          if (attempt < retries && retriable(error)) continue;
          this.slaveFailed(s, error);
          return;
        }
      }
    }
    // Receive time of the poll = arrival of its last response (what replay of a capture sees too).
    s.breaker.success();
    s.polls++;
    let item;
    try {
      const value = decodeSlaveValue(cfg, data, s.scratch);
      const result = s.pipeline.fromValue(value, framesRaw(frames), receivedAt);
      if (result.ok) {
        item = { readings: [result.reading], letters: [] };
      } else {
        if (result.error.code !== 'BRIDGE_SCHEMA') s.decodeErrors++;
        item = { readings: [], letters: [result.letter] };
      }
    } catch (err) {
      const error = isBridgeError(err) ? err : new BridgeError('BRIDGE_DECODE', (err as Error).message, { device: cfg.name }, err);
      s.decodeErrors++;
      s.lastError = error.message;
      item = { readings: [], letters: [s.pipeline.fromError(error, framesRaw(frames), receivedAt)] };
    }
    this.setSlaveState(s);
    await this.deliver(item.readings, item.letters);
    s.readings += item.readings.length;
    s.deadLetters += item.letters.length;
    if (item.readings.length > 0) s.lastReadingAt = receivedAt;
  }

  private slaveFailed(s: SlaveRuntime, error: BridgeError): void {
    s.errors++;
    s.lastError = error.message;
    if (error.code === 'BRIDGE_TIMEOUT') s.timeouts++;
    const exception = error.context.exception;
    if (typeof exception === 'string') s.exceptions[exception] = (s.exceptions[exception] ?? 0) + 1;
    const delayMs = s.breaker.failure(this.clock.now());
    if (delayMs !== null) {
      this.logger.warn({ device: s.config.name, unitId: s.config.unitId, delayMs, opens: s.breaker.opens, err: error.message }, 'circuit breaker open');
    }
    this.noteError(error);
    this.setSlaveState(s);
  }

  /** One read transaction, queued behind the line's in-flight one. */
  private read(s: SlaveRuntime, req: ReadRequest, poll: number, index: number, signal: AbortSignal): Promise<ReadResult> {
    const run = async (): Promise<ReadResult> => {
      if (signal.aborted) throw new BridgeError('BRIDGE_STOPPED', 'stopped');
      const client = this.client;
      if (!client || !this.lineUp) throw new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `${this.lineName()} is not connected`, { device: this.device });
      return this.transact(client, s, req, poll, index);
    };
    const result = this.lineTail.then(run, run);
    this.lineTail = result.catch(() => {});
    return result;
  }

  private transact(client: ModbusClient, s: SlaveRuntime, req: ReadRequest, poll: number, index: number): Promise<ReadResult> {
    const { unitId, name } = s.config;
    const meta = { line: this.device, unitId, poll, request: index };
    const request = buildReadRequest(unitId, req.functionCode, req.address, req.count);
    this.capture?.write({ receivedAt: this.clock.now(), kind: this.kind, device: name, direction: 'tx', data: request, meta });
    s.requests++;
    client.setTimeout(s.config.timeoutMs);
    return new Promise<ReadResult>((resolve, reject) => {
      let settled = false;
      const inflight = {
        reject: (err: Error) => {
          if (settled) return;
          settled = true;
          reject(err);
        },
      };
      this.inflight = inflight;
      const done: ReadCallback = (err, res) => {
        if (this.inflight === inflight) this.inflight = null;
        if (settled) return;
        settled = true;
        const receivedAt = this.clock.now();
        if (err) {
          const error = this.translate(err, s, req);
          const code = error.context.protocolCode;
          const raw = (err as { modbusResponses?: Uint8Array[] }).modbusResponses;
          const response =
            raw && raw.length > 0 ? Buffer.concat(raw) : typeof code === 'number' ? buildExceptionResponse(unitId, req.functionCode, code) : null;
          if (response) this.capture?.write({ receivedAt, kind: this.kind, device: name, data: response, meta });
          reject(error);
          return;
        }
        const response = res.responses && res.responses.length > 0 ? Buffer.concat(res.responses) : buildReadResponse(unitId, req.functionCode, res.buffer);
        this.capture?.write({ receivedAt, kind: this.kind, device: name, data: response, meta });
        resolve({ data: res.buffer, receivedAt, request, response });
      };
      try {
        switch (req.functionCode) {
          case 1:
            client.writeFC1(unitId, req.address, req.count, done as never);
            break;
          case 2:
            client.writeFC2(unitId, req.address, req.count, done as never);
            break;
          case 3:
            client.writeFC3(unitId, req.address, req.count, done as never);
            break;
          default:
            client.writeFC4(unitId, req.address, req.count, done as never);
        }
      } catch (err) {
        done(err, undefined as never);
      }
    });
  }

  /** modbus-serial's errors → BridgeError, by their fields (modbusCode, errno), never by message text. */
  private translate(err: unknown, s: SlaveRuntime, req: ReadRequest): BridgeError {
    const e = err as { modbusCode?: number; errno?: string; message?: string; name?: string };
    const context = { device: s.config.name, unitId: s.config.unitId, functionCode: req.functionCode, address: req.address, count: req.count };
    const what = `${s.config.name} (unit ${s.config.unitId}) FC ${req.functionCode} @${req.address} x${req.count}`;
    if (typeof e?.modbusCode === 'number') {
      const ex = modbusException(e.modbusCode);
      return new BridgeError('BRIDGE_PROTOCOL', `${what}: Modbus exception ${ex.code} ${ex.name}: ${ex.message}`, { ...context, protocolCode: ex.code, exception: ex.name }, err);
    }
    if (e?.errno === 'ETIMEDOUT') {
      return new BridgeError('BRIDGE_TIMEOUT', `${what}: no response within ${s.config.timeoutMs} ms`, { ...context, timeoutMs: s.config.timeoutMs }, err);
    }
    if (e?.name === 'PortNotOpenError' || e?.errno === 'ECONNREFUSED') {
      return new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `${what}: ${this.lineName()} is not open`, context, err);
    }
    // CRC errors, length mismatches, unexpected unit or function: a garbled frame.
    return new BridgeError('BRIDGE_PROTOCOL', `${what}: bad response frame: ${e?.message ?? String(err)}`, context, err);
  }

  // ── status and events ────────────────────────────────────────────────────

  private slaveState(s: SlaveRuntime): AdapterState {
    const line = this.state;
    if (line === 'stopped' || line === 'connecting' || line === 'backoff' || line === 'paused') return line;
    return s.breaker.state === 'open' ? 'backoff' : 'connected';
  }

  /** Line state changes are emitted by the base for every slave; keep each slave's last-emitted state in step. */
  protected override setState(state: AdapterState): void {
    super.setState(state);
    for (const s of this.slaves) s.state = this.slaveState(s);
  }

  private setSlaveState(s: SlaveRuntime): void {
    const next = this.slaveState(s);
    if (next === s.state) return;
    s.state = next;
    this.slaveEvents.emit('state', this.slaveStatus(s));
  }

  private slaveStatus(s: SlaveRuntime): DeviceStatus {
    const state = this.slaveState(s);
    return {
      device: s.config.name,
      kind: this.kind,
      state,
      connected: this.lineUp && state !== 'stopped' && s.breaker.consecutiveFailures === 0,
      lastReadingAt: s.lastReadingAt,
      readings: s.readings,
      decodeErrors: s.decodeErrors,
      deadLetters: s.deadLetters,
      errors: s.errors,
      lastError: s.lastError,
      clockSkewMs: s.pipeline.builder.clockSkewMs,
    };
  }

  /**
   * One status per slave, in config order. A slave's `errors` and
   * `lastError` include the line's own (connection lost, sink refused), since
   * those stop its readings too; its state shows the line's while the line
   * is not connected, and 'backoff' while its breaker is open.
   */
  override status(): DeviceStatus[] {
    return this.slaves.map((s) => this.slaveStatus(s));
  }

  /** The per-slave status with the Modbus details (breaker, schedule, request and exception counts). */
  modbusStatus(): ModbusDeviceStatus[] {
    return this.slaves.map((s) => ({
      ...this.slaveStatus(s),
      line: this.device,
      unitId: s.config.unitId,
      breaker: s.breaker.state,
      consecutiveFailures: s.breaker.consecutiveFailures,
      nextPollAt: s.nextPollAt,
      requests: s.requests,
      polls: s.polls,
      timeouts: s.timeouts,
      exceptions: { ...s.exceptions },
    }));
  }

  /** Status of the line itself (connection, sink backpressure, line errors). */
  lineStatus(): DeviceStatus {
    return this.baseStatus();
  }

  /** Line-level errors (the base names the line as device) count for every slave on it as well. */
  protected override noteError(err: Error): void {
    super.noteError(err);
    if ((err as BridgeError).context?.device !== this.device) return;
    for (const s of this.slaves) {
      s.errors++;
      s.lastError = err.message;
    }
  }

  override on<E extends keyof AdapterEvents>(event: E, listener: AdapterEvents[E]): this {
    super.on(event, listener);
    if (event === 'state') this.slaveEvents.on(event, listener);
    return this;
  }

  override off<E extends keyof AdapterEvents>(event: E, listener: AdapterEvents[E]): this {
    super.off(event, listener);
    this.slaveEvents.off(event, listener);
    return this;
  }
}
