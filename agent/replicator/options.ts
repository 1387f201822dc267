/**
 * Options of `createReplicator`, their defaults, and their validation.
 * Validated once at creation, then frozen; each error names the key
 * (`replication.topics[1].centralTopic`), matching the agent's YAML
 * `replication:` section that maps onto these options.
 */
import { join } from 'node:path';
import type { Clock, LogStoreApi, Logger, Timers } from '../../log-store/index.ts';
import { AgentError } from '../errors.ts';
import type { KafkaClientOptions, KafkaProducer } from '../kafka-client.ts';

export interface ReplicatedTopic {
  /** Local topic to replicate. Required. */
  topic: string;
  /** Central topic name or template; overrides `ReplicatorOptions.centralTopic`. */
  centralTopic?: string;
}

export interface ReplicatorOptions {
  /** This gateway's id: the `millstream.gateway` header and `{gateway}` in topic templates. Required. */
  gatewayId: string;
  /** The local log store to read from (positions are its consumer `consumerName`). Required. */
  log: LogStoreApi;
  /** How to reach the central cluster. `logger` is filled in from `logger` below. Required. */
  kafka: Omit<KafkaClientOptions, 'logger'>;
  /** Local topics to replicate. Required, at least one, no duplicates. */
  topics: readonly ReplicatedTopic[];
  /**
   * Central topic name: a fixed name or a template with `{gateway}` and
   * `{topic}` (the local topic). Default '{gateway}.{topic}'.
   */
  centralTopic?: string;
  /** Batch compression on the wire. Default 'none'. */
  compression?: 'none' | 'gzip';
  /** Most records in one produce request per partition. Default 5000. */
  batchRecords?: number;
  /** Most bytes (as stored locally) read for one batch; keep below the cluster's message.max.bytes. Default 900000. */
  batchBytes?: number;
  /** After new records appear at the tail, wait this long (ms) so more can join the batch. Default 5. */
  lingerMs?: number;
  /** Where a partition never replicated before starts. Default 'earliest' (everything retained). */
  startFrom?: 'earliest' | 'latest';
  /** Name of the log store consumer holding the durable positions. Default 'replicator'. */
  consumerName?: string;
  /** Local topic receiving records the cluster refused as too large, and retention-gap markers. Default 'replicator.dead-letter'. */
  deadLetterTopic?: string;
  /** First back-off after a retriable error, ms (doubles per failure, jittered to 50–100 %). Default 500. */
  backoffInitialMs?: number;
  /** Longest back-off, ms. Default 30000. */
  backoffMaxMs?: number;
  /**
   * Where the status snapshot for `millstream replicate status` is written
   * (atomically, see status-file.ts) on every state change and every
   * `statusFileIntervalMs`. Default `<log.dataDir>/replicator-status.json`; null: none.
   */
  statusFile?: string | null;
  /** Default 5000 (ms). */
  statusFileIntervalMs?: number;
  /** stop() waits at most this long (ms) for batches in flight before disconnecting. Default 10000. */
  stopTimeoutMs?: number;
  /** Default Date.now. */
  clock?: Clock;
  /** Default global setTimeout/clearTimeout. */
  timers?: Timers;
  /** Uniform [0, 1) for back-off jitter. Default Math.random. */
  random?: () => number;
  /** Default: discards everything. */
  logger?: Logger;
  /** Creates the Kafka producer. Default createKafkaProducer (kafkajs). */
  producerFactory?: (options: KafkaClientOptions) => KafkaProducer;
}

export interface ResolvedTopic {
  topic: string;
  centralTopic: string;
}

export interface ResolvedOptions {
  gatewayId: string;
  log: LogStoreApi;
  kafka: KafkaClientOptions;
  topics: readonly ResolvedTopic[];
  compression: 'none' | 'gzip';
  batchRecords: number;
  batchBytes: number;
  lingerMs: number;
  startFrom: 'earliest' | 'latest';
  consumerName: string;
  deadLetterTopic: string;
  backoffInitialMs: number;
  backoffMaxMs: number;
  stopTimeoutMs: number;
  statusFile: string | null;
  statusFileIntervalMs: number;
  clock: Clock;
  timers: Timers;
  random: () => number;
  logger: Logger;
  producerFactory?: (options: KafkaClientOptions) => KafkaProducer;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

function configError(key: string, message: string): AgentError {
  return new AgentError('CONFIG_INVALID', `replication.${key}: ${message}`, { key: `replication.${key}` });
}

function positiveInt(value: number | undefined, fallback: number, key: string, min = 1): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) throw configError(key, `must be an integer ≥ ${min}, got ${String(value)}`);
  return v;
}

/** Fills `{gateway}` and `{topic}`; any other `{...}` is an error. The result must be a valid Kafka topic name. */
export function centralTopicName(template: string, gatewayId: string, topic: string, key = 'centralTopic'): string {
  const name = template.replace(/\{([^}]*)\}/g, (all, field: string) => {
    if (field === 'gateway') return gatewayId;
    if (field === 'topic') return topic;
    throw configError(key, `unknown placeholder ${all} in ${JSON.stringify(template)} (use {gateway} and {topic})`);
  });
  if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw configError(key, `${JSON.stringify(name)} is not a valid Kafka topic name (letters, digits, '.', '_', '-', at most 249)`);
  }
  return name;
}

export function resolveOptions(o: ReplicatorOptions): Readonly<ResolvedOptions> {
  if (typeof o.gatewayId !== 'string' || o.gatewayId.length === 0) throw configError('gatewayId', 'required');
  if (!o.log) throw configError('log', 'required');
  if (!o.kafka || !Array.isArray(o.kafka.brokers) || o.kafka.brokers.length === 0) throw configError('kafka.brokers', 'at least one broker (host:port) is required');
  o.kafka.brokers.forEach((b, i) => {
    if (!/^[^:\s]+:\d{1,5}$/.test(b)) throw configError(`kafka.brokers[${i}]`, `expected host:port, got ${JSON.stringify(b)}`);
  });
  if (typeof o.kafka.clientId !== 'string' || o.kafka.clientId.length === 0) throw configError('kafka.clientId', 'required');
  if (o.kafka.retries !== undefined && (!Number.isInteger(o.kafka.retries) || o.kafka.retries < 1)) {
    throw configError('kafka.retries', `must be an integer ≥ 1 (the idempotent producer needs retries), got ${String(o.kafka.retries)}`);
  }
  if (o.kafka.tls?.cert && !o.kafka.tls.key) throw configError('kafka.tls.key', 'required with kafka.tls.cert');
  if (o.kafka.sasl) {
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(o.kafka.sasl.mechanism)) {
      throw configError('kafka.sasl.mechanism', `one of plain, scram-sha-256, scram-sha-512, got ${JSON.stringify(o.kafka.sasl.mechanism)}`);
    }
    if (!o.kafka.sasl.username) throw configError('kafka.sasl.username', 'required with kafka.sasl');
  }
  if (!Array.isArray(o.topics) || o.topics.length === 0) throw configError('topics', 'at least one topic is required');
  const defaultTemplate = o.centralTopic ?? '{gateway}.{topic}';
  const seen = new Set<string>();
  const topics = o.topics.map((t, i) => {
    if (!t || typeof t.topic !== 'string' || !TOPIC_NAME.test(t.topic)) throw configError(`topics[${i}].topic`, `invalid topic name ${JSON.stringify(t?.topic)}`);
    if (seen.has(t.topic)) throw configError(`topics[${i}].topic`, `${t.topic} is listed twice`);
    seen.add(t.topic);
    const key = t.centralTopic === undefined ? 'centralTopic' : `topics[${i}].centralTopic`;
    return Object.freeze({ topic: t.topic, centralTopic: centralTopicName(t.centralTopic ?? defaultTemplate, o.gatewayId, t.topic, key) });
  });
  const compression = o.compression ?? 'none';
  if (compression !== 'none' && compression !== 'gzip') throw configError('compression', `none or gzip, got ${JSON.stringify(compression)}`);
  const startFrom = o.startFrom ?? 'earliest';
  if (startFrom !== 'earliest' && startFrom !== 'latest') throw configError('startFrom', `earliest or latest, got ${JSON.stringify(startFrom)}`);
  const deadLetterTopic = o.deadLetterTopic ?? 'replicator.dead-letter';
  if (!TOPIC_NAME.test(deadLetterTopic)) throw configError('deadLetterTopic', `invalid topic name ${JSON.stringify(deadLetterTopic)}`);
  if (seen.has(deadLetterTopic)) throw configError('deadLetterTopic', 'must not be one of the replicated topics');
  const backoffInitialMs = positiveInt(o.backoffInitialMs, 500, 'backoffInitialMs');
  const logger = o.logger ?? silent;
  const timers: Timers = o.timers ?? {
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  };
  return Object.freeze({
    gatewayId: o.gatewayId,
    log: o.log,
    kafka: Object.freeze({ ...o.kafka, logger }),
    topics: Object.freeze(topics),
    compression,
    batchRecords: positiveInt(o.batchRecords, 5000, 'batchRecords'),
    batchBytes: positiveInt(o.batchBytes, 900_000, 'batchBytes'),
    lingerMs: positiveInt(o.lingerMs, 5, 'lingerMs', 0),
    startFrom,
    consumerName: o.consumerName ?? 'replicator',
    deadLetterTopic,
    backoffInitialMs,
    backoffMaxMs: positiveInt(o.backoffMaxMs, 30_000, 'backoffMaxMs', backoffInitialMs),
    stopTimeoutMs: positiveInt(o.stopTimeoutMs, 10_000, 'stopTimeoutMs'),
    statusFile: o.statusFile === undefined ? join(o.log.dataDir, 'replicator-status.json') : o.statusFile,
    statusFileIntervalMs: positiveInt(o.statusFileIntervalMs, 5000, 'statusFileIntervalMs'),
    clock: o.clock ?? { now: () => Date.now() },
    timers,
    random: o.random ?? Math.random,
    logger,
    producerFactory: o.producerFactory,
  });
}

/** Back-off before retry number `attempt` (0-based): initial × 2^attempt capped at max, jittered to 50–100 % ("equal jitter"). */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
