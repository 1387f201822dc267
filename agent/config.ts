/**
 * Loads `millstream.yaml`: parse (YAML errors with line and column), validate
 * once against `configSchema` (every error names the key path and what was
 * expected, and the file position of the offending key), apply defaults,
 * resolve paths relative to the config file, freeze. Components get only
 * their slice of the frozen result.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import type { TopicConfig } from '../log-store/index.ts';
import { configSchema } from './config-schema.ts';
import { AgentError } from './errors.ts';

export type RegisterType = 'bool' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64' | 'string';

/** A topic's log settings (as the log store names them) and its schema file. */
export interface TopicSettings
  extends Pick<TopicConfig, 'partitions' | 'retentionMs' | 'retentionBytes' | 'segmentBytes' | 'segmentMs' | 'flushIntervalMs' | 'flushBytes'> {
  /** Absolute path of the topic's JSON Schema file, if any. */
  schema?: string;
}

export interface SerialPortSettings {
  path: string;
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd' | 'mark' | 'space';
  stopBits: 1 | 1.5 | 2;
  rtscts: boolean;
}

export interface SerialSourceSettings extends SerialPortSettings {
  framing: 'json' | 'csv' | 'kv';
  csvHeader?: string[];
  delimiter: string;
  maxLineBytes: number;
  reopenIntervalMs: number;
}

export interface ModbusRegisterSettings {
  field: string;
  function: 'coil' | 'discrete' | 'holding' | 'input';
  address: number;
  type?: RegisterType;
  length?: number;
  bit?: number;
  byteOrder: 'ABCD' | 'CDAB' | 'BADC' | 'DCBA';
  scale: number;
  offset: number;
  unit?: string;
}

export interface ModbusDeviceSettings {
  unitId: number;
  sensorId: string;
  pollIntervalMs?: number;
  registers?: ModbusRegisterSettings[];
  fields?: Record<string, string | number | boolean>;
}

export interface ModbusSourceSettings extends Partial<SerialPortSettings> {
  transport: 'tcp' | 'rtu';
  host?: string;
  port: number;
  pollIntervalMs: number;
  timeoutMs: number;
  retries: number;
  maxRegistersPerRequest: number;
  registers?: ModbusRegisterSettings[];
  devices: ModbusDeviceSettings[];
}

export interface MqttSourceSettings {
  url: string;
  protocolVersion: 4 | 5;
  sessionExpiryS?: number;
  connectTimeoutMs: number;
  servername?: string;
  rejectUnauthorized: boolean;
  clientId?: string;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
  cleanSession: boolean;
  keepaliveS: number;
  subscriptions: Array<{ topic: string; qos: 0 | 1; logTopic?: string }>;
  maxInFlight: number;
}

export interface SourceSettings {
  name: string;
  topic: string;
  keyField: string;
  maxClockSkewMs: number;
  capture?: string;
  serial?: SerialSourceSettings;
  modbus?: ModbusSourceSettings;
  mqtt?: MqttSourceSettings;
}

export interface ReplicationSettings {
  enabled: boolean;
  brokers?: string[];
  clientId?: string;
  tls?: { ca?: string; cert?: string; key?: string };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  topics?: Array<{ topic: string; centralTopic: string }>;
  compression: 'none' | 'gzip';
  batchSize: number;
  lingerMs: number;
}

/** The validated configuration with every default applied; deeply frozen. */
export interface AgentConfig {
  /** Absolute path of the file it came from, or '<built-in>' for the demo. */
  file: string;
  gateway: { id: string };
  dataDir: string;
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  store: { minFreeBytes: number; retentionCheckIntervalMs: number };
  topics: Record<string, TopicSettings>;
  deadLetterTopic: string;
  sources: SourceSettings[];
  rules: { dir?: string; idleCloseMs: number };
  replication: ReplicationSettings;
  http: { enabled: boolean; host: string; port: number };
  shutdown: { timeoutMs: number };
}

/** One problem found in a config file. `line`/`col` are 1-based, when known. */
export interface ConfigProblem {
  path: string;
  message: string;
  line?: number;
  col?: number;
}

/** Thrown by `loadConfig` / `parseConfig`: the message lists every problem, one per line, `file:line:col: path: message`. */
export class ConfigError extends AgentError {
  readonly problems: readonly ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    super('CONFIG_INVALID', problems.map((p) => formatProblem(file, p)).join('\n'), { file });
    this.problems = problems;
  }
}

export function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.col ?? 1}` : file;
  return `${where}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

function createValidator() {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictTypes: false, allowUnionTypes: true });
  return ajv.compile(configSchema);
}

/** `/sources/2/modbus/registers/5/type` → `sources[2].modbus.registers[5].type`. */
export function keyPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number' || /^\d+$/.test(String(s))) out += `[${s}]`;
    else out += out ? `.${s}` : String(s);
  }
  return out;
}

function pointerSegments(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function describeAjvError(e: ErrorObject): { segments: string[]; message: string; anchor: Anchor } | undefined {
  const segments = pointerSegments(e.instancePath);
  const p = e.params as Record<string, unknown>;
  // The propertyNames keyword reports the failing name's own check separately; one line is enough.
  if (e.schemaPath.includes('/propertyNames/') ) return undefined;
  const v = (message: string) => ({ segments, message, anchor: 'value' as const });
  switch (e.keyword) {
    case 'additionalProperties':
      return { segments: [...segments, String(p.additionalProperty)], message: 'unknown key', anchor: 'key' };
    case 'required':
      return { segments: [...segments, String(p.missingProperty)], message: 'required key is missing', anchor: 'parent' };
    case 'enum':
      return v(`expected one of ${(p.allowedValues as unknown[]).map((v) => String(v)).join(', ')}`);
    case 'type':
      return v(`expected ${String(p.type).replace(',', ' or ')}`);
    case 'pattern':
      return v(`must match ${String(p.pattern)}`);
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return v(`expected a number ${String(p.comparison)} ${String(p.limit)}`);
    case 'minItems':
      return v(`expected at least ${String(p.limit)} item(s)`);
    case 'minLength':
    case 'maxLength':
      return v(`expected a string of ${e.keyword === 'minLength' ? 'at least' : 'at most'} ${String(p.limit)} character(s)`);
    case 'propertyNames':
      return { segments: [...segments, String(p.propertyName)], message: 'invalid name', anchor: 'key' };
    default:
      return v(e.message ?? e.keyword);
  }
}

/** Finds the YAML node at a key path, for its line and column. */
type Anchor = 'key' | 'value' | 'parent';

/**
 * Finds where a problem sits in the YAML text: at the offending value
 * (wrong type, enum), at the key (unknown key), or at the parent's key
 * (missing key).
 */
function locate(
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
  segments: string[],
  anchor: Anchor,
): { line: number; col: number } | undefined {
  if (anchor === 'parent') return segments.length ? locate(doc, counter, segments.slice(0, -1), 'key') : locate(doc, counter, [], 'value');
  let node: unknown = doc.contents;
  let last: YamlNode | undefined = node as YamlNode;
  for (const [i, seg] of segments.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((it) => String((it.key as { value?: unknown })?.value ?? it.key) === seg);
      if (!pair) break;
      node = pair.value;
      // The last segment names a key: point at the key itself, not its value.
      last = (i === segments.length - 1 && anchor === 'key' ? pair.key : (pair.value ?? pair.key)) as YamlNode;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)];
      if (item === undefined) break;
      node = item;
      last = item as YamlNode;
    } else break;
  }
  const range = (last as { range?: [number, number, number] } | undefined)?.range;
  if (!range) return undefined;
  const pos = counter.linePos(range[0]);
  return { line: pos.line, col: pos.col };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** Checks the schema cannot express: exactly one source kind, unique names, transport-specific keys. */
function crossChecks(raw: Record<string, unknown>): Array<{ segments: string[]; message: string; anchor: Anchor }> {
  const out: Array<{ segments: string[]; message: string; anchor: Anchor }> = [];
  const sources = Array.isArray(raw.sources) ? (raw.sources as Array<Record<string, unknown>>) : [];
  const names = new Map<string, number>();
  sources.forEach((s, i) => {
    if (!s || typeof s !== 'object') return;
    const kinds = ['serial', 'modbus', 'mqtt'].filter((k) => k in s);
    if (kinds.length !== 1) {
      out.push({
        segments: ['sources', String(i)],
        message: `expected exactly one of serial, modbus, mqtt${kinds.length ? ` (found ${kinds.join(', ')})` : ''}`,
        anchor: 'value',
      });
    }
    if (typeof s.name === 'string') {
      const prev = names.get(s.name);
      if (prev !== undefined) out.push({ segments: ['sources', String(i), 'name'], message: `duplicate source name (also sources[${prev}])`, anchor: 'value' });
      else names.set(s.name, i);
    }
    const m = s.modbus as Record<string, unknown> | undefined;
    if (m && typeof m === 'object') {
      if ((m.transport ?? 'tcp') === 'tcp' && typeof m.host !== 'string') {
        out.push({ segments: ['sources', String(i), 'modbus', 'host'], message: 'required key is missing (transport tcp)', anchor: 'parent' });
      }
      if (m.transport === 'rtu' && typeof m.path !== 'string') {
        out.push({ segments: ['sources', String(i), 'modbus', 'path'], message: 'required key is missing (transport rtu)', anchor: 'parent' });
      }
      const devices = Array.isArray(m.devices) ? (m.devices as Array<Record<string, unknown>>) : [];
      devices.forEach((d, j) => {
        if (d && typeof d === 'object' && !Array.isArray(d.registers) && !Array.isArray(m.registers)) {
          out.push({ segments: ['sources', String(i), 'modbus', 'devices', String(j), 'registers'], message: 'no register map (give one here or at modbus.registers)', anchor: 'parent' });
        }
      });
      const checkRegs = (regs: unknown, base: string[]) => {
        if (!Array.isArray(regs)) return;
        regs.forEach((r: Record<string, unknown>, k) => {
          if (r && r.type === 'string' && typeof r.length !== 'number') {
            out.push({ segments: [...base, String(k), 'length'], message: 'required key is missing (type string)', anchor: 'parent' });
          }
          if (r && (r.function === 'coil' || r.function === 'discrete') && r.type !== undefined && r.type !== 'bool') {
            out.push({ segments: [...base, String(k), 'type'], message: `expected bool for function ${String(r.function)}`, anchor: 'value' });
          }
        });
      };
      checkRegs(m.registers, ['sources', String(i), 'modbus', 'registers']);
      devices.forEach((d, j) => checkRegs(d?.registers, ['sources', String(i), 'modbus', 'devices', String(j), 'registers']));
    }
  });
  const repl = raw.replication as Record<string, unknown> | undefined;
  if (repl && repl.enabled === true) {
    if (!Array.isArray(repl.brokers)) out.push({ segments: ['replication', 'brokers'], message: 'required key is missing (replication enabled)', anchor: 'parent' });
    if (!Array.isArray(repl.topics)) out.push({ segments: ['replication', 'topics'], message: 'required key is missing (replication enabled)', anchor: 'parent' });
  }
  return out;
}

/** Parses and validates config text. `file` is used in messages and to resolve relative paths. */
export function parseConfig(text: string, file: string): AgentConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = counter.linePos(e.pos[0]);
        return { path: '', message: `YAML: ${e.message.split('\n')[0]}`, ...(pos ? { line: pos.line, col: pos.col } : {}) };
      }),
    );
  }
  const raw = (doc.toJS() ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '', message: 'expected a mapping of keys at the top level' }]);
  }
  const validate = createValidator();
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  const add = (segments: string[], message: string, anchor: Anchor) => {
    const path = keyPath(segments);
    const k = `${path}\0${message}`;
    if (seen.has(k)) return;
    seen.add(k);
    problems.push({ path, message, ...locate(doc, counter, segments, anchor) });
  };
  if (!validate(raw)) for (const e of validate.errors ?? []) {
    const d = describeAjvError(e);
    if (d) add(d.segments, d.message, d.anchor);
  }
  for (const c of crossChecks(raw)) add(c.segments, c.message, c.anchor);
  if (problems.length) throw new ConfigError(file, problems);
  return deepFreeze(resolveConfig(raw, file));
}

function resolveConfig(raw: Record<string, unknown>, file: string): AgentConfig {
  const base = file.startsWith('<') ? process.cwd() : dirname(resolve(file));
  const abs = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(base, p));
  const cfg = raw as unknown as AgentConfig;
  const topics: Record<string, TopicSettings> = {};
  for (const [name, t] of Object.entries(cfg.topics ?? {})) {
    const { schema, ...rest } = t;
    topics[name] = schema === undefined ? rest : { ...rest, schema: abs(schema) as string };
  }
  return {
    file: file.startsWith('<') ? file : resolve(file),
    gateway: { id: cfg.gateway?.id ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-') },
    dataDir: abs(cfg.dataDir) as string,
    log: { level: cfg.log?.level ?? 'info' },
    store: {
      minFreeBytes: cfg.store?.minFreeBytes ?? 67_108_864,
      retentionCheckIntervalMs: cfg.store?.retentionCheckIntervalMs ?? 60_000,
    },
    topics,
    deadLetterTopic: cfg.deadLetterTopic,
    sources: cfg.sources.map((s) => ({
      ...s,
      ...(s.capture !== undefined ? { capture: abs(s.capture) as string } : {}),
      ...(s.mqtt ? { mqtt: { ...s.mqtt, ca: abs(s.mqtt.ca), cert: abs(s.mqtt.cert), key: abs(s.mqtt.key) } } : {}),
    })),
    rules: { ...(cfg.rules?.dir !== undefined ? { dir: abs(cfg.rules.dir) as string } : {}), idleCloseMs: cfg.rules?.idleCloseMs ?? 60_000 },
    replication: cfg.replication ?? { enabled: false, compression: 'gzip', batchSize: 10_000, lingerMs: 50 },
    http: { enabled: cfg.http?.enabled ?? true, host: cfg.http?.host ?? '127.0.0.1', port: cfg.http?.port ?? 8080 },
    shutdown: { timeoutMs: cfg.shutdown?.timeoutMs ?? 20_000 },
  };
}

/** Reads, parses and validates a config file. Throws ConfigError (or AgentError CONFIG_UNREADABLE). */
export async function loadConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_UNREADABLE', `${file}: cannot read config: ${(err as Error).message}`, { file }, err);
  }
  return parseConfig(text, file);
}
