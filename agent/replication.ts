/**
 * Maps the config's `replication` section onto the replicator and its
 * status onto the agent's status model. TLS files are read here.
 */
import { readFileSync } from 'node:fs';
import type { LogStoreApi, Logger } from '../log-store/index.ts';
import type { AgentConfig } from './config.ts';
import { AgentError } from './errors.ts';
import { createReplicator, type Replicator } from './replicator/index.ts';
import type { ReplicationPartitionStatus } from './status.ts';

export interface AgentReplicator {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): ReplicationPartitionStatus[];
}

function pem(path: string | undefined, key: string): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentError('CONFIG_UNREADABLE', `replication.tls.${key}: cannot read ${path}: ${(err as Error).message}`, { file: path }, err);
  }
}

export function createAgentReplicator(o: { config: AgentConfig; log: LogStoreApi; logger: Logger; onFatal(err: Error): void }): AgentReplicator {
  const r = o.config.replication;
  const ca = pem(r.tls?.ca, 'ca');
  const cert = pem(r.tls?.cert, 'cert');
  const key = pem(r.tls?.key, 'key');
  const replicator: Replicator = createReplicator({
    gatewayId: o.config.gateway.id,
    log: o.log,
    kafka: {
      brokers: r.brokers ?? [],
      clientId: r.clientId ?? `millstream-${o.config.gateway.id}`,
      ...(r.tls ? { tls: { ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } } : {}),
      ...(r.sasl ? { sasl: r.sasl } : {}),
    },
    topics: (r.topics ?? []).map((t) => ({ topic: t.topic, centralTopic: t.centralTopic })),
    compression: r.compression,
    batchRecords: r.batchSize,
    lingerMs: r.lingerMs,
    logger: o.logger,
  });
  void o.onFatal;
  return {
    start: () => replicator.start(),
    stop: () => replicator.stop(),
    status() {
      const s = replicator.status();
      return s.topics.flatMap((t) =>
        t.partitions.map((p) => ({
          topic: t.topic,
          partition: p.partition,
          centralTopic: t.centralTopic,
          position: p.position,
          endOffset: p.endOffset,
          lagRecords: p.lagRecords,
          lagSeconds: p.lagSeconds,
          state: t.state === 'stopped' ? 'stopped' : s.state === 'offline' ? 'offline' : p.state,
          lastError: (p.lastError ?? t.error)?.message ?? null,
        })),
      );
    },
  };
}
