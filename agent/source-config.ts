/**
 * Maps one `sources[]` entry of the validated agent config onto the bridge
 * adapter's own config. TLS files are read here (only agent/ reads files);
 * errors name the source and the key.
 */
import { readFileSync } from 'node:fs';
import type { AdapterConfig } from '../firmware-bridge/index.ts';
import type { AgentConfig, SourceSettings } from './config.ts';
import { AgentError } from './errors.ts';

function readPem(path: string | undefined, source: string, key: string): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_UNREADABLE', `sources.${source}.${key}: cannot read ${path}: ${(err as Error).message}`, { source, key, file: path }, err);
  }
}

export function adapterConfig(s: SourceSettings, config: AgentConfig): AdapterConfig {
  const common = {
    device: s.name,
    topic: s.topic,
    deadLetterTopic: config.deadLetterTopic,
    keyField: s.keyField,
    maxClockSkewMs: s.maxClockSkewMs,
  };
  if (s.serial) {
    const x = s.serial;
    return {
      kind: 'serial',
      ...common,
      path: x.path,
      baudRate: x.baudRate,
      dataBits: x.dataBits,
      parity: x.parity,
      stopBits: x.stopBits,
      rtscts: x.rtscts,
      framing: x.framing === 'csv' ? { format: 'csv', ...(x.csvHeader ? { header: x.csvHeader } : {}), delimiter: x.delimiter } : { format: x.framing },
      maxLineBytes: x.maxLineBytes,
      reconnect: { initialMs: x.reopenIntervalMs, maxMs: 30_000 },
    };
  }
  if (s.modbus) {
    const m = s.modbus;
    const transport =
      m.transport === 'rtu'
        ? {
            kind: 'rtu' as const,
            path: m.path as string,
            baudRate: m.baudRate ?? 9600,
            dataBits: (m.dataBits ?? 8) as 7 | 8,
            parity: (m.parity ?? 'none') as 'none' | 'even' | 'odd',
            stopBits: (m.stopBits ?? 1) as 1 | 2,
          }
        : { kind: 'tcp' as const, host: m.host as string, port: m.port };
    return {
      kind: 'modbus',
      ...common,
      transport,
      slaves: m.devices.map((d) => ({
        name: `${s.name}/${d.sensorId}`,
        unitId: d.unitId,
        sensorId: d.sensorId,
        pollIntervalMs: d.pollIntervalMs ?? m.pollIntervalMs,
        timeoutMs: m.timeoutMs,
        retries: m.retries,
        ...(d.fields ? { fields: d.fields } : {}),
        registers: (d.registers ?? m.registers ?? []).map((r) => ({ ...r })),
        plan: { maxRegisters: m.maxRegistersPerRequest },
      })),
    } as AdapterConfig;
  }
  if (s.mqtt) {
    const q = s.mqtt;
    const ca = readPem(q.ca, s.name, 'mqtt.ca');
    const cert = readPem(q.cert, s.name, 'mqtt.cert');
    const key = readPem(q.key, s.name, 'mqtt.key');
    return {
      kind: 'mqtt',
      ...common,
      url: q.url,
      clientId: q.clientId ?? `millstream-${config.gateway.id}-${s.name}`,
      ...(q.username !== undefined ? { username: q.username } : {}),
      ...(q.password !== undefined ? { password: q.password } : {}),
      ...(ca || cert || key || q.servername !== undefined || !q.rejectUnauthorized
        ? {
            tls: {
              ...(ca ? { ca } : {}),
              ...(cert ? { cert } : {}),
              ...(key ? { key } : {}),
              ...(q.servername !== undefined ? { servername: q.servername } : {}),
              rejectUnauthorized: q.rejectUnauthorized,
            },
          }
        : {}),
      cleanSession: q.cleanSession,
      protocolVersion: q.protocolVersion,
      ...(q.sessionExpiryS !== undefined ? { sessionExpirySec: q.sessionExpiryS } : {}),
      connectTimeoutMs: q.connectTimeoutMs,
      keepaliveSec: q.keepaliveS,
      subscriptions: q.subscriptions.map((sub) => ({ topic: sub.topic, qos: sub.qos, ...(sub.logTopic ? { logTopic: sub.logTopic } : {}) })),
      maxPendingReadings: q.maxInFlight,
    };
  }
  throw new AgentError('CONFIG_INVALID', `sources.${s.name}: no serial, modbus or mqtt section`, { source: s.name });
}
