/**
 * The agent's side of replication: builds the replicator from the config's
 * `replication` section (agent/replicator/from-config.ts maps it and reads
 * the TLS files) and flattens its status into the agent's status rows.
 */
import type { LogStoreApi, Logger } from '../log-store/index.ts';
import type { AgentConfig } from './config.ts';
import { createReplicator, type Replicator } from './replicator/index.ts';
import { replicationPartitionRows, replicatorOptionsFromConfig } from './replicator/from-config.ts';
import type { ReplicationPartitionStatus } from './status.ts';

export interface AgentReplicator {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): ReplicationPartitionStatus[];
}

export async function createAgentReplicator(o: { config: AgentConfig; log: LogStoreApi; logger: Logger }): Promise<AgentReplicator> {
  const options = await replicatorOptionsFromConfig(o.config.gateway.id, o.config.replication, { log: o.log, logger: o.logger });
  const replicator: Replicator = createReplicator(options);
  return {
    start: () => replicator.start(),
    stop: () => replicator.stop(),
    status: () => replicationPartitionRows(replicator.status()),
  };
}
