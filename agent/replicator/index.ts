/**
 * The replicator's public entry point (the agent wires it; see replicator.ts
 * for guarantees, options.ts for every option and its default).
 */
export { createReplicator } from './replicator.ts';
export type { Replicator } from './replicator.ts';
export type { ReplicatorOptions, ReplicatedTopic } from './options.ts';
export { centralTopicName } from './options.ts';
export { MILLSTREAM_HEADERS, DEAD_LETTER_HEADERS } from './partition-worker.ts';
export type * from './status.ts';
export { replicatorOptionsFromConfig, replicationPartitionRows } from './from-config.ts';
