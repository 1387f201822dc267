/**
 * The replicator's status, as `status()` returns it and as the agent's
 * /metrics and status page and `millstream replicate status` show it.
 * Plain data (JSON-serialisable); offsets are local log offsets; times are
 * ms since the epoch; lag seconds use the record's own timestamp (event time).
 */
import type { AgentErrorCode } from '../errors.ts';

/** Whether the central cluster answered the last attempt. */
export type ReplicatorState = 'stopped' | 'starting' | 'online' | 'offline' | 'stopping';

/**
 * - `caught-up`: position = end offset, waiting for new records;
 * - `sending`: a batch is being read or produced;
 * - `backoff`: the last attempt failed with a retriable error; retrying later;
 * - `stopped`: a non-retriable error stopped the topic (see `lastError`), or the replicator is stopped.
 */
export type PartitionState = 'starting' | 'caught-up' | 'sending' | 'backoff' | 'stopped';

export interface StatusError {
  code: AgentErrorCode;
  message: string;
  retriable: boolean;
  /** Kafka protocol error name, when a broker sent it. */
  kafkaType?: string;
  at: number;
}

/** Records retention deleted before they were replicated: offsets `fromOffset`..`toOffset` inclusive. */
export interface RetentionGap {
  fromOffset: number;
  toOffset: number;
  count: number;
  detectedAt: number;
}

export interface PartitionStatus {
  partition: number;
  state: PartitionState;
  /** Next local offset to replicate (everything below is acknowledged by the cluster, or dead-lettered, or lost in a gap). */
  position: number;
  /** Local end offset (next offset to be written). */
  endOffset: number;
  /** endOffset − position. */
  lagRecords: number;
  /** Age of the oldest unreplicated record, from its timestamp; 0 when caught up. */
  lagSeconds: number;
  /** Records acknowledged by the cluster since start. */
  sentRecords: number;
  /** Records sent to the dead-letter topic since start. */
  deadLettered: number;
  /** Retention gaps found since start (also logged and marked in the dead-letter topic). */
  gaps: RetentionGap[];
  /** Sum of `gaps[].count`. */
  lostRecords: number;
  lastError?: StatusError;
}

export interface TopicStatus {
  topic: string;
  centralTopic: string;
  /** `stopped` after a non-retriable error (see `error`); the other topics go on. */
  state: 'running' | 'stopped';
  /** Central partition count, once known; keyed records keep their partition number when it equals the local count. */
  centralPartitions?: number;
  error?: StatusError;
  lagRecords: number;
  lagSeconds: number;
  partitions: PartitionStatus[];
}

export interface ReplicatorStatus {
  state: ReplicatorState;
  /** When `state` last changed. */
  since: number;
  gatewayId: string;
  /** The error that made the replicator offline, if it is. */
  lastError?: StatusError;
  topics: TopicStatus[];
}
