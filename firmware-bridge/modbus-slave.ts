/**
 * One Modbus slave (unit) on a line: its configuration, validated once and
 * frozen, its read plan, and the decoder that turns the responses of one
 * poll into the reading's value. Live polling and capture replay both go
 * through `decodeSlaveValue`, so a replayed session decodes exactly as it
 * did in the field.
 */
import { BridgeError } from './errors.ts';
import type { BreakerOptions } from './modbus-circuit-breaker.ts';
import { decodeBits, decodeRegisters, resolveRegisterMap, type RegisterEntry, type ResolvedEntry } from './modbus-registers.ts';
import { planRequests, type PlanLimits, type ReadRequest } from './modbus-request-plan.ts';

/** A slave's configuration (one entry of the adapter's `slaves`). Each option states its default. */
export interface ModbusSlaveConfig {
  /** Slave name: the `device` header, status, dead letters, capture. Unique on the line. Default `<line device>/unit-<unitId>`. */
  name?: string;
  /** Unit id (slave address): 1..247 on RTU; 0..255 on TCP. Required. */
  unitId: number;
  /** The reading's key, set as the value's key field (`sensor_id` by default). Required. */
  sensorId: string;
  /** Log topic of this slave's readings. Default: the adapter's `topic`. */
  topic?: string;
  /** Time between the starts of two polls, in ms. Default 1000. */
  pollIntervalMs?: number;
  /** Response timeout of each request, in ms. Default 1000. */
  timeoutMs?: number;
  /**
   * Extra attempts of a request after a timeout or a retriable exception. Default 1.
   * Only a healthy slave retries: once a poll has failed, the next polls (and
   * every probe) send each request once, so a dead slave costs the line at
   * most one `timeoutMs` per poll.
   */
  retries?: number;
  /** Constant fields added to every reading's value (e.g. `production_line`, `widget_type`). Default none. */
  fields?: Readonly<Record<string, string | number | boolean>>;
  /**
   * The register map. Required, at least one entry. A register named like the
   * key field (a device reporting its own id) overrides `sensorId`; one named
   * like the timestamp field (`reading_ts`), e.g. uint32 epoch seconds with
   * scale 1000, is the device's event time.
   */
  registers: readonly RegisterEntry[];
  /** Request coalescing limits. Default: 125 registers / 2000 bits per request, gaps of 8 registers / 64 bits. */
  plan?: PlanLimits;
  /** Circuit breaker. Default: opens after 3 failed polls; probes after 1 s, 2 s, ... up to 60 s (jittered). */
  breaker?: BreakerOptions;
}

export const SLAVE_DEFAULTS = Object.freeze({ pollIntervalMs: 1000, timeoutMs: 1000, retries: 1 });

/** A validated slave, ready to poll. */
export interface ResolvedSlave {
  readonly name: string;
  readonly unitId: number;
  readonly sensorId: string;
  readonly topic: string;
  readonly pollIntervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly fields: Readonly<Record<string, string | number | boolean>>;
  readonly registers: readonly ResolvedEntry[];
  readonly requests: readonly ReadRequest[];
  readonly breaker: BreakerOptions;
  /** The value's key field (the adapter's `keyField`, default 'sensor_id'). */
  readonly keyField: string;
}

function positiveInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/**
 * Validates one slave; errors are BRIDGE_CONFIG and name the slave and key
 * (`slaves[1] (boiler): timeoutMs must be ...`). `maxUnitId` is 247 on RTU
 * (248..255 are reserved there) and 255 on TCP.
 */
export function resolveSlave(
  config: ModbusSlaveConfig,
  index: number,
  defaultTopic: string,
  maxUnitId: number,
  keyField = 'sensor_id',
  line = 'modbus',
): ResolvedSlave {
  const name = config?.name ?? `${line}/unit-${config?.unitId}`;
  const where = `slaves[${index}] (${name})`;
  const fail = (key: string, message: string, cause?: unknown): never => {
    throw new BridgeError('BRIDGE_CONFIG', `${where}: ${key}: ${message}`, { device: name, key }, cause);
  };
  if (typeof name !== 'string' || name === '') fail('name', 'must be a non-empty string');
  if (!positiveInt(config.unitId, 0, maxUnitId)) fail('unitId', `must be an integer 0..${maxUnitId}`);
  if (typeof config.sensorId !== 'string' || config.sensorId === '') fail('sensorId', 'must be a non-empty string');
  const pollIntervalMs = config.pollIntervalMs ?? SLAVE_DEFAULTS.pollIntervalMs;
  const timeoutMs = config.timeoutMs ?? SLAVE_DEFAULTS.timeoutMs;
  const retries = config.retries ?? SLAVE_DEFAULTS.retries;
  if (!positiveInt(pollIntervalMs, 1, 86_400_000)) fail('pollIntervalMs', 'must be an integer 1..86400000 (ms)');
  if (!positiveInt(timeoutMs, 1, 600_000)) fail('timeoutMs', 'must be an integer 1..600000 (ms)');
  if (!positiveInt(retries, 0, 10)) fail('retries', 'must be an integer 0..10');
  if (!Array.isArray(config.registers) || config.registers.length === 0) fail('registers', 'needs at least one entry');
  let registers: ResolvedEntry[] = [];
  let requests: ReadRequest[] = [];
  try {
    registers = resolveRegisterMap(config.registers);
    requests = planRequests(registers, config.plan);
  } catch (err) {
    fail('registers', (err as Error).message, err);
  }
  const fields = Object.freeze({ ...(config.fields ?? {}) });
  for (const r of registers) if (r.field in fields) fail('fields', `"${r.field}" is both a constant field and a register`);
  return Object.freeze({
    name,
    unitId: config.unitId,
    sensorId: config.sensorId,
    topic: config.topic ?? defaultTopic,
    pollIntervalMs,
    timeoutMs,
    retries,
    fields,
    registers: Object.freeze(registers),
    requests: Object.freeze(requests),
    breaker: Object.freeze({ ...(config.breaker ?? {}) }),
    keyField,
  });
}

/** The line-level facts `resolveSlaves` needs (a subset of ModbusAdapterConfig). */
export interface SlaveLineConfig {
  device: string;
  topic: string;
  keyField?: string;
  transport: { kind: 'tcp' | 'rtu' };
  slaves: readonly ModbusSlaveConfig[];
}

/**
 * Validates every slave of a line: each as `resolveSlave` (unit ids up to
 * 247 on RTU, 255 on TCP), plus names and unit ids unique on the line.
 * Used by the adapter and by capture replay, so both see the same slaves.
 */
export function resolveSlaves(line: SlaveLineConfig): ResolvedSlave[] {
  const fail = (key: string, message: string): never => {
    throw new BridgeError('BRIDGE_CONFIG', `modbus ${line.device}: ${key}: ${message}`, { device: line.device, key });
  };
  if (!Array.isArray(line.slaves) || line.slaves.length === 0) fail('slaves', 'needs at least one slave');
  const maxUnitId = line.transport.kind === 'rtu' ? 247 : 255;
  const resolved = line.slaves.map((s, i) => resolveSlave(s, i, line.topic, maxUnitId, line.keyField ?? 'sensor_id', line.device));
  const names = new Set<string>();
  const units = new Set<number>();
  resolved.forEach((s, i) => {
    if (names.has(s.name)) fail(`slaves[${i}].name`, `duplicate slave name "${s.name}"`);
    if (units.has(s.unitId)) fail(`slaves[${i}].unitId`, `unit id ${s.unitId} is used twice on this line`);
    names.add(s.name);
    units.add(s.unitId);
  });
  return resolved;
}

/**
 * The value of one poll: `{[keyField]: sensorId, ...fields, ...decoded}`
 * (keyField from `resolveSlave`).
 * `responses[i]` holds the data bytes answering `slave.requests[i]` (register
 * bytes big-endian, or packed bits LSB first). A float that decodes to NaN or
 * ±Infinity (a device's "no value" marker) becomes null, since JSON has no
 * such numbers. Throws BRIDGE_DECODE when a response is shorter than its
 * request (a device or gateway answering with fewer registers).
 */
export function decodeSlaveValue(slave: ResolvedSlave, responses: readonly Uint8Array[], scratch: Buffer = Buffer.allocUnsafe(8)): Record<string, unknown> {
  if (responses.length !== slave.requests.length) {
    throw new BridgeError('BRIDGE_DECODE', `${slave.name}: ${responses.length} responses for ${slave.requests.length} requests`, { device: slave.name });
  }
  // A register named like the key field (a device reporting its own id) overwrites sensorId.
  const value: Record<string, unknown> = { [slave.keyField]: slave.sensorId, ...slave.fields };
  for (let i = 0; i < slave.requests.length; i++) {
    const req = slave.requests[i]!;
    const data = responses[i]!;
    const needBytes = req.functionCode <= 2 ? Math.ceil(req.count / 8) : req.count * 2;
    if (data.length < needBytes) {
      throw new BridgeError(
        'BRIDGE_DECODE',
        `${slave.name}: response to FC ${req.functionCode} @${req.address} x${req.count} has ${data.length} data bytes, expected ${needBytes}`,
        { device: slave.name, functionCode: req.functionCode, address: req.address },
      );
    }
    for (const f of req.fields) {
      if (req.functionCode <= 2) {
        value[f.entry.field] = decodeBits(f.entry, data, f.index);
      } else {
        const v = decodeRegisters(f.entry, data, f.index, scratch);
        value[f.entry.field] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
      }
    }
  }
  return value;
}
