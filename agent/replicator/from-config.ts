/**
 * Maps the agent's validated `replication:` config section (agent/config.ts)
 * onto `ReplicatorOptions`, and the replicator's status onto the flat
 * per-partition rows of the agent's status model (agent/status.ts), which
 * /metrics, /healthz and the status page read.
 *
 * File paths in the config (TLS CA, certificate, key) are read here: only
 * agent/ reads files named by the config.
 */
import { readFile } from 'node:fs/promises';
import type { LogStoreApi, Logger } from '../../log-store/index.ts';
import type { ReplicationSettings } from '../config.ts';
import type { ReplicationPartitionStatus } from '../status.ts';
import type { ReplicatorOptions } from './options.ts';
import type { PartitionState, ReplicatorStatus } from './status.ts';

export interface FromConfigDeps {
  log: LogStoreApi;
  logger: Logger;
  /** Reads a PEM file. Default: node:fs readFile (utf8). */
  readText?: (path: string) => Promise<string>;
}

/** The replicator options for an enabled `replication:` section. Throws when a TLS file cannot be read (naming the key and path). */
export async function replicatorOptionsFromConfig(
  gatewayId: string,
  settings: ReplicationSettings,
  deps: FromConfigDeps,
): Promise<ReplicatorOptions> {
  const read = deps.readText ?? ((path: string) => readFile(path, 'utf8'));
  const load = async (key: string, path: string | undefined): Promise<string | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await read(path);
    } catch (err) {
      throw new Error(`replication.tls.${key}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const tls = settings.tls
    ? {
        ...(settings.tls.ca ? { ca: [(await load('ca', settings.tls.ca))!] } : { systemCa: true }),
        ...(settings.tls.cert ? { cert: await load('cert', settings.tls.cert), key: await load('key', settings.tls.key) } : {}),
      }
    : undefined;
  return {
    gatewayId,
    log: deps.log,
    logger: deps.logger,
    kafka: {
      brokers: settings.brokers ?? [],
      clientId: settings.clientId ?? `millstream-${gatewayId}`,
      ...(tls ? { tls } : {}),
      ...(settings.sasl ? { sasl: { ...settings.sasl } } : {}),
    },
    topics: (settings.topics ?? []).map((t) => ({ topic: t.topic, centralTopic: t.centralTopic })),
    compression: settings.compression,
    batchRecords: settings.batchSize,
    lingerMs: settings.lingerMs,
  };
}

/** Partition states as the agent's health check reads them ('running', 'idle', 'caught-up' are healthy). */
const AGENT_STATE: Readonly<Record<PartitionState, string>> = Object.freeze({
  starting: 'idle',
  'caught-up': 'caught-up',
  sending: 'running',
  backoff: 'backoff',
  stopped: 'stopped',
});

/** One row per replicated partition for the agent's status model. */
export function replicationPartitionRows(status: ReplicatorStatus): ReplicationPartitionStatus[] {
  return status.topics.flatMap((t) =>
    t.partitions.map((p) => {
      const error = t.state === 'stopped' ? t.error : p.lastError;
      return {
        topic: t.topic,
        partition: p.partition,
        centralTopic: t.centralTopic,
        position: p.position,
        endOffset: p.endOffset,
        lagRecords: p.lagRecords,
        lagSeconds: p.lagSeconds,
        state: t.state === 'stopped' ? 'stopped' : AGENT_STATE[p.state],
        lastError: error ? `${error.code}: ${error.message}` : null,
      };
    }),
  );
}
