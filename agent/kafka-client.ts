/**
 * The one module that imports kafkajs. Everything else in the agent talks
 * to the central Kafka cluster through `KafkaProducer` (and `encodeProduce`)
 * and sees only `AgentError`s: switching the client library is a change to
 * this file.
 *
 * kafkajs does what it does well: connections, TLS, SASL, ApiVersions,
 * metadata, leader lookup, InitProducerId and retries. Produce requests are
 * ours: kafkajs's encoding (an object and a fresh Encoder per record, an
 * O(n²) grouping, CRC-32C byte at a time) capped a producer at ~20,000
 * records/s. `encodeProduce` writes each partition's record batch v2 into
 * one Buffer (kafka-produce-encoder.ts) once; `send` fills in the producer
 * id, epoch and sequence, writes the request header into room left before
 * the body, and hands that buffer to kafkajs's connection queue (same
 * correlation ids, timeouts and in-flight limit as kafkajs's own requests).
 * This relies on kafkajs internals (`kafkajs/src/...`: Cluster, Broker,
 * Connection, retry, error codes, Produce response decoders), so kafkajs is
 * pinned to exactly 2.2.4 in package.json.
 *
 * Producer settings are fixed where correctness depends on them:
 * idempotent (the broker drops a retried batch it already stored), acks -1
 * (all in-sync replicas), one request in flight per broker connection and
 * one batch in flight per partition (so batches of a partition cannot
 * overtake each other), Produce v3 or later (record batch v2, needed for
 * idempotence; v3–v7 as the broker's ApiVersions allow), no automatic topic
 * creation unless asked, and Kafka's default (murmur2) partitioner so a key
 * lands on the same partition number as in the local log.
 */
import { createRequire } from 'node:module';
import { rootCertificates } from 'node:tls';
import { Partitioners, logLevel } from 'kafkajs';
import type { KafkaConfig, PartitionMetadata, SASLOptions } from 'kafkajs';
import type { Logger } from '../log-store/index.ts';
import { AgentError } from './errors.ts';
import type { AgentErrorCode } from './errors.ts';
import { BodyBufferPool, MAX_SEQUENCE, encodeProduceBody, encodeProduceBodyFromBlocks, sealBatch } from './kafka-produce-encoder.ts';

export { BodyBufferPool };
import type { ProduceBody, RawRecordBlock } from './kafka-produce-encoder.ts';

export type { RawRecordBlock };

/** TLS to the brokers. PEM contents, not file names (the agent reads the files). */
export interface KafkaTlsOptions {
  /** CA certificates (PEM) that sign the brokers' certificates. Default: none beyond `systemCa`. */
  ca?: string[];
  /** Trust Node's bundled public root CAs too. Default true when `ca` is empty, false otherwise. */
  systemCa?: boolean;
  /** Client certificate chain (PEM) for mutual TLS. Default: none. */
  cert?: string;
  /** Private key (PEM) of `cert`. Required with `cert`. */
  key?: string;
  /** Host name to check the broker certificate against. Default: the broker's host. */
  servername?: string;
}

export interface KafkaSaslOptions {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export interface KafkaClientOptions {
  /** Bootstrap brokers, `host:port`. Required, at least one. */
  brokers: readonly string[];
  /** Client id the brokers see (quotas, logs). Required. */
  clientId: string;
  /** TLS settings; omitted: plaintext. */
  tls?: KafkaTlsOptions;
  /** SASL credentials; omitted: no authentication. Use with `tls` outside a trusted network. */
  sasl?: KafkaSaslOptions;
  /** TCP connect timeout in ms. Default 3000. */
  connectionTimeoutMs?: number;
  /** Time the broker may take to answer a request, in ms. Default 30000. */
  requestTimeoutMs?: number;
  /** Retries kafkajs makes inside one send before the error reaches the caller (who backs off itself). At least 1 (kafkajs's idempotent producer requires retries). Default 2. */
  retries?: number;
  /** First retry delay inside one send, in ms (doubles, with kafkajs's jitter). Default 100. */
  initialRetryTimeMs?: number;
  /** Let the cluster create a missing topic on first use (broker setting permitting). Default false. */
  allowAutoTopicCreation?: boolean;
  /** kafkajs's own log lines go here at debug level (its errors are reported by the caller, once). */
  logger: Logger;
}

/** One record on its way to Kafka. A log store `LogRecord` is one as it is. */
export interface OutboundRecord {
  key: string | Buffer | null;
  value: Buffer;
  /** Milliseconds since the epoch. */
  timestamp: number;
  /** The record's own headers. */
  headers: Readonly<Record<string, string>>;
  /** Its offset where it comes from; required with `ProduceRequest.offsetHeader`. */
  offset?: number;
}

export interface ProduceRequest {
  topic: string;
  /** Target partition; undefined: Kafka's default partitioner decides by key among `partitionCount` partitions. */
  partition?: number;
  /** Partitions of the topic; required when `partition` is undefined. */
  partitionCount?: number;
  /** The records; or, instead, `blocks`. */
  records?: readonly OutboundRecord[];
  /** Records as the log store's `readBatches` returns them (bytes copied, no object per record); needs `partition`. */
  blocks?: readonly RawRecordBlock[];
  compression: 'none' | 'gzip';
  /** How long the broker may wait for the acks (acks -1), in ms. Default 30000. */
  timeoutMs?: number;
  /** Headers added to every record after its own, the same for all records (an own header of the same name is left out). Default: none. */
  addHeaders?: Readonly<Record<string, string>>;
  /** Name of a header added last to every record, its value the record's `offset` in decimal (an own header of that name is left out). Default: none. */
  offsetHeader?: string;
}

/**
 * A Produce request encoded once (`encodeProduce`), then sent, and resent
 * after a failure, as it is: the same records in the same batches, so the
 * broker recognises a batch it already stored by its sequence. Holds only
 * the encoded bytes, none of the records; not tied to a producer instance
 * (the producer id and sequences are filled in by `send`).
 */
export interface EncodedProduce {
  readonly topic: string;
  /** Records in all batches. */
  readonly recordCount: number;
  /** Encoded bytes of all batches. */
  readonly bytes: number;
  /** One batch per target partition. */
  readonly batches: readonly EncodedBatch[];
}

export interface EncodedBatch extends ProduceBody {
  readonly partition: number;
  readonly recordCount: number;
  /** A send of it is unanswered or failed: a socket may still hold `backing`, so it is neither written to nor pooled again (the next send copies it first). */
  tainted: boolean;
}

/** Moves a tainted batch to a fresh copy of its buffer, which no socket holds. */
function detach(batch: EncodedBatch): void {
  const backing = Buffer.from(batch.backing.subarray(0, batch.headroom + batch.body.length));
  Object.assign(batch, { backing, body: backing.subarray(batch.headroom), tainted: false });
}

/**
 * Encodes a request's records into one Produce body per target partition.
 * Reads `request.records` only synchronously, before its first await: the
 * caller may reuse the records (e.g. values sharing a log read buffer) as
 * soon as it returns.
 */
export function encodeProduce(request: ProduceRequest, pool?: BodyBufferPool): Promise<EncodedProduce> {
  const { topic, partition, compression } = request;
  const timeoutMs = request.timeoutMs ?? 30000;
  const addedHeaders = { fixed: request.addHeaders, offsetName: request.offsetHeader };
  if (request.blocks !== undefined) {
    if (partition === undefined) throw new AgentError('KAFKA_OTHER', `encodeProduce of log blocks to ${topic} needs a partition`, { topic }, undefined, false);
    const recordCount = request.blocks.reduce((n, b) => n + b.count, 0);
    return encodeProduceBodyFromBlocks(request.blocks, { topic, partition, acks: -1, timeoutMs, compression, addedHeaders }, pool, FRAME_HEADROOM).then((b) => ({
      topic,
      recordCount,
      bytes: b.body.length,
      batches: [{ ...b, partition, recordCount, tainted: false }],
    }));
  }
  const records = request.records ?? [];
  const groups = new Map<number, OutboundRecord[]>();
  if (partition !== undefined) groups.set(partition, records as OutboundRecord[]);
  else {
    const n = request.partitionCount;
    if (n === undefined || n < 1) throw new AgentError('KAFKA_OTHER', `encodeProduce to ${topic} without a partition needs the partition count`, { topic }, undefined, false);
    const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
    const partitioner = Partitioners.DefaultPartitioner();
    for (const r of records) {
      const p = partitioner({ topic, partitionMetadata, message: { key: r.key, value: r.value } });
      const group = groups.get(p);
      if (group) group.push(r);
      else groups.set(p, [r]);
    }
  }
  // Every encodeProduceBody call writes its records synchronously, so all records are read before the first await.
  const pending = [...groups].map(([p, group]) =>
    encodeProduceBody(group, { topic, partition: p, acks: -1, timeoutMs, compression, addedHeaders }, pool, FRAME_HEADROOM).then((b): EncodedBatch => ({ ...b, partition: p, recordCount: group.length, tainted: false })),
  );
  return Promise.all(pending).then((batches) => ({ topic, recordCount: records.length, bytes: batches.reduce((n, b) => n + b.body.length, 0), batches }));
}

/** Gives the buffers of `encoded` back to `pool`: only once no `send` of it is pending (resolved or rejected). */
export function releaseEncoded(encoded: EncodedProduce, pool: BodyBufferPool): void {
  for (const b of encoded.batches) if (!b.tainted) pool.give(b.backing);
}

/** What the replicator needs from a Kafka producer. Every method rejects only with `AgentError`. */
export interface KafkaProducer {
  connect(): Promise<void>;
  /** Resolves once the cluster acknowledged every batch (acks -1). Rejected: some batches may have been stored; resend the same `EncodedProduce`. */
  send(request: EncodedProduce): Promise<void>;
  /** Number of partitions of a central topic. */
  partitionCount(topic: string): Promise<number>;
  /** Idempotent. */
  disconnect(): Promise<void>;
}

/**
 * Kafka protocol error codes → our codes. `retriable` overrides the
 * catalogue default where Kafka's own classification differs.
 * Codes not listed become KAFKA_OTHER with kafkajs's retriable flag.
 */
export const KAFKA_ERROR_TABLE: Readonly<Record<number, { type: string; code: AgentErrorCode; retriable?: boolean }>> = Object.freeze({
  2: { type: 'CORRUPT_MESSAGE', code: 'KAFKA_OTHER', retriable: true },
  3: { type: 'UNKNOWN_TOPIC_OR_PARTITION', code: 'KAFKA_UNKNOWN_TOPIC' },
  5: { type: 'LEADER_NOT_AVAILABLE', code: 'KAFKA_UNAVAILABLE' },
  6: { type: 'NOT_LEADER_FOR_PARTITION', code: 'KAFKA_UNAVAILABLE' },
  7: { type: 'REQUEST_TIMED_OUT', code: 'KAFKA_CONNECTION' },
  8: { type: 'BROKER_NOT_AVAILABLE', code: 'KAFKA_UNAVAILABLE' },
  9: { type: 'REPLICA_NOT_AVAILABLE', code: 'KAFKA_UNAVAILABLE' },
  10: { type: 'MESSAGE_TOO_LARGE', code: 'KAFKA_MESSAGE_TOO_LARGE' },
  13: { type: 'NETWORK_EXCEPTION', code: 'KAFKA_CONNECTION' },
  17: { type: 'INVALID_TOPIC_EXCEPTION', code: 'KAFKA_UNKNOWN_TOPIC', retriable: false },
  18: { type: 'RECORD_LIST_TOO_LARGE', code: 'KAFKA_MESSAGE_TOO_LARGE' },
  19: { type: 'NOT_ENOUGH_REPLICAS', code: 'KAFKA_UNAVAILABLE' },
  20: { type: 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', code: 'KAFKA_UNAVAILABLE' },
  21: { type: 'INVALID_REQUIRED_ACKS', code: 'KAFKA_UNSUPPORTED' },
  29: { type: 'TOPIC_AUTHORIZATION_FAILED', code: 'KAFKA_TOPIC_AUTHORIZATION' },
  31: { type: 'CLUSTER_AUTHORIZATION_FAILED', code: 'KAFKA_CLUSTER_AUTHORIZATION' },
  32: { type: 'INVALID_TIMESTAMP', code: 'KAFKA_INVALID_RECORD' },
  33: { type: 'UNSUPPORTED_SASL_MECHANISM', code: 'KAFKA_AUTHENTICATION' },
  34: { type: 'ILLEGAL_SASL_STATE', code: 'KAFKA_AUTHENTICATION' },
  35: { type: 'UNSUPPORTED_VERSION', code: 'KAFKA_UNSUPPORTED' },
  43: { type: 'UNSUPPORTED_FOR_MESSAGE_FORMAT', code: 'KAFKA_UNSUPPORTED' },
  45: { type: 'OUT_OF_ORDER_SEQUENCE_NUMBER', code: 'KAFKA_PRODUCER_STATE' },
  46: { type: 'DUPLICATE_SEQUENCE_NUMBER', code: 'KAFKA_PRODUCER_STATE' },
  47: { type: 'INVALID_PRODUCER_EPOCH', code: 'KAFKA_PRODUCER_STATE' },
  53: { type: 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', code: 'KAFKA_CLUSTER_AUTHORIZATION' },
  56: { type: 'KAFKA_STORAGE_ERROR', code: 'KAFKA_UNAVAILABLE' },
  58: { type: 'SASL_AUTHENTICATION_FAILED', code: 'KAFKA_AUTHENTICATION' },
  59: { type: 'UNKNOWN_PRODUCER_ID', code: 'KAFKA_PRODUCER_STATE' },
  72: { type: 'LISTENER_NOT_FOUND', code: 'KAFKA_UNAVAILABLE' },
  74: { type: 'FENCED_LEADER_EPOCH', code: 'KAFKA_UNAVAILABLE' },
  75: { type: 'UNKNOWN_LEADER_EPOCH', code: 'KAFKA_UNAVAILABLE' },
  76: { type: 'UNSUPPORTED_COMPRESSION_TYPE', code: 'KAFKA_UNSUPPORTED' },
  87: { type: 'INVALID_RECORD', code: 'KAFKA_INVALID_RECORD' },
  89: { type: 'THROTTLING_QUOTA_EXCEEDED', code: 'KAFKA_UNAVAILABLE' },
  90: { type: 'PRODUCER_FENCED', code: 'KAFKA_PRODUCER_STATE' },
});

/** kafkajs error classes that carry no protocol code → our codes. */
export const KAFKAJS_CLASS_TABLE: Readonly<Record<string, AgentErrorCode>> = Object.freeze({
  KafkaJSConnectionError: 'KAFKA_CONNECTION',
  KafkaJSConnectionClosedError: 'KAFKA_CONNECTION',
  KafkaJSRequestTimeoutError: 'KAFKA_CONNECTION',
  KafkaJSNoBrokerAvailableError: 'KAFKA_CONNECTION',
  KafkaJSBrokerNotFound: 'KAFKA_CONNECTION',
  KafkaJSMetadataNotLoaded: 'KAFKA_CONNECTION',
  KafkaJSTopicMetadataNotLoaded: 'KAFKA_CONNECTION',
  KafkaJSTimeout: 'KAFKA_CONNECTION',
  KafkaJSLockTimeout: 'KAFKA_CONNECTION',
  KafkaJSSASLAuthenticationError: 'KAFKA_AUTHENTICATION',
  KafkaJSServerDoesNotSupportApiKey: 'KAFKA_UNSUPPORTED',
});

/** Node TLS error codes (carried by kafkajs's connection errors) → KAFKA_TLS. */
export const TLS_ERROR_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

interface KafkajsErrorLike {
  name?: string;
  message?: string;
  type?: string;
  code?: unknown;
  retriable?: boolean;
  cause?: unknown;
}

/**
 * Translates whatever kafkajs threw into an AgentError. Walks the `cause`
 * chain (kafkajs wraps the broker's error in retry errors): the first
 * protocol error code decides, else a TLS error code, else the first known
 * class, else KAFKA_OTHER.
 */
export function translateKafkaError(err: unknown, context: { topic?: string; partition?: number } = {}): AgentError {
  if (err instanceof AgentError) return err;
  const chain: KafkajsErrorLike[] = [];
  for (let e: unknown = err; e !== null && typeof e === 'object' && chain.length < 8; e = (e as KafkajsErrorLike).cause) {
    chain.push(e as KafkajsErrorLike);
  }
  const ours = chain.find((e): e is AgentError => e instanceof AgentError);
  if (ours) return ours;
  const top = chain[0] ?? { message: String(err) };
  const protocol = chain.find((e) => typeof e.code === 'number' && typeof e.type === 'string');
  if (protocol) {
    const row = KAFKA_ERROR_TABLE[protocol.code as number];
    const code = row?.code ?? 'KAFKA_OTHER';
    const retriable = row ? row.retriable : protocol.retriable !== false;
    return new AgentError(code, `${protocol.type}: ${protocol.message ?? top.message}`, { ...context, kafkaCode: protocol.code as number, kafkaType: protocol.type }, err, retriable);
  }
  const tls = chain.find((e) => typeof e.code === 'string' && TLS_ERROR_CODES.has(e.code));
  if (tls) return new AgentError('KAFKA_TLS', `${tls.message ?? top.message} (${String(tls.code)})`, { ...context, tlsCode: tls.code }, err);
  for (const e of chain) {
    const code = e.name ? KAFKAJS_CLASS_TABLE[e.name] : undefined;
    if (code) return new AgentError(code, e.message ?? String(e), { ...context }, err);
  }
  const last = chain.at(-1) ?? top;
  return new AgentError('KAFKA_OTHER', `${top.name ?? 'Error'}: ${top.message ?? String(err)}`, { ...context }, err, last.retriable !== false);
}

function saslOptions(sasl: KafkaSaslOptions): SASLOptions {
  switch (sasl.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username: sasl.username, password: sasl.password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username: sasl.username, password: sasl.password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username: sasl.username, password: sasl.password };
  }
}

/** The kafkajs configuration for these options (exported for tests of TLS/SASL mapping). */
export function kafkajsConfig(options: KafkaClientOptions): KafkaConfig {
  const { logger } = options;
  const config: KafkaConfig = {
    brokers: [...options.brokers],
    clientId: options.clientId,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    requestTimeout: options.requestTimeoutMs ?? 30000,
    retry: { retries: options.retries ?? 2, initialRetryTime: options.initialRetryTimeMs ?? 100, maxRetryTime: 5000 },
    logLevel: logLevel.INFO,
    logCreator:
      () =>
      ({ namespace, level, log }) => {
        const { message, ...extra } = log;
        logger.debug({ kafkajs: namespace, kafkajsLevel: logLevel[level], ...extra }, message);
      },
  };
  if (options.tls) {
    const ca = options.tls.ca ?? [];
    const systemCa = options.tls.systemCa ?? ca.length === 0;
    config.ssl = {
      ca: systemCa ? [...rootCertificates, ...ca] : ca,
      ...(options.tls.cert ? { cert: options.tls.cert, key: options.tls.key } : {}),
      ...(options.tls.servername ? { servername: options.tls.servername } : {}),
      rejectUnauthorized: true,
    };
  }
  if (options.sasl) config.sasl = saslOptions(options.sasl);
  return config;
}

/** The kafkajs internals the producer drives (kafkajs 2.2.4, pinned; it has no `exports` map, so these paths are stable for that version). */
interface KafkajsBroker {
  nodeId: number;
  connectionPool: { send(protocolRequest: ProtocolRequest): Promise<unknown>; getConnection(index: number): Promise<KafkajsConnection> };
  lookupRequest(apiKey: number, definition: ProtocolDefinition): ProduceVersion | undefined;
  initProducerId(args: { transactionTimeout: number }): Promise<{ producerId: string; producerEpoch: number }>;
  disconnect(): Promise<void>;
}
interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  isConnected(): boolean;
  refreshMetadata(): Promise<void>;
  refreshMetadataIfNecessary(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): PartitionMetadata[];
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(args: { nodeId: string | number }): Promise<KafkajsBroker>;
  findControllerBroker(): Promise<KafkajsBroker>;
  removeBroker(args: { host: string; port: number }): void;
}
interface ProduceResponseData {
  topics: Array<{ topicName: string; partitions: Array<{ partition: number; errorCode: number }> }>;
}
interface ProtocolRequest {
  request: { apiKey: number; apiVersion: number; apiName: string; expectResponse(): boolean; encode(): Promise<unknown> };
  response: { decode(raw: Buffer): Promise<ProduceResponseData>; parse(data: ProduceResponseData): Promise<ProduceResponseData> };
}
interface ProtocolDefinition {
  versions: string[];
  protocol(args: { version: number }): ProduceVersion | undefined;
}
/** One Produce version as `lookupRequest` picks it. */
interface ProduceVersion {
  version: number;
  decode(raw: Buffer): Promise<ProduceResponseData & { clientSideThrottleTime?: number }>;
  /** The request for kafkajs's own path (which frames, and so copies, the body). */
  request(body: Buffer): ProtocolRequest;
}
/** A kafkajs connection (network/connection.js) as far as a request framed in place needs it. */
interface KafkajsConnection {
  clientId: string;
  sasl: unknown;
  socket: { write(data: Buffer, encoding: 'binary'): boolean };
  requestQueue: {
    push(request: { entry: object; expectResponse: boolean; requestTimeout: number | null; sendRequest(): void }): void;
    maybeThrottle(clientSideThrottleTime: number | undefined): void;
  };
  isAuthenticated(): boolean;
  failIfNotConnected(): void;
  nextCorrelationId(): number;
}
type KafkaError = Error & { type?: string; code?: unknown; retriable?: boolean; host?: string; port?: number };
type Retrier = <T>(fn: (bail: (e: Error) => void, retryCount: number, retryTime: number) => Promise<T>) => Promise<T>;

const require = createRequire(import.meta.url);
const KafkajsClusterClass = require('kafkajs/src/cluster/index.js') as new (options: object) => KafkajsCluster;
const { createLogger } = require('kafkajs/src/loggers/index.js') as { createLogger(options: { level: number; logCreator: KafkaConfig['logCreator'] }): unknown };
const defaultSocketFactory = require('kafkajs/src/network/socketFactory.js') as () => unknown;
const createRetry = require('kafkajs/src/retry/index.js') as (options: object) => Retrier;
const { createErrorFromCode, staleMetadata } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): KafkaError; staleMetadata(e: KafkaError): boolean };
const KafkajsEncoder = require('kafkajs/src/protocol/encoder.js') as new (initialSize?: number) => { buf: Buffer; offset: number };
const PRODUCE_API_KEY = 0;
/** Produce versions we encode: v3 (record batch v2, idempotence) up to kafkajs's newest response decoder. The request bodies are identical on the wire. */
const PRODUCE_RESPONSE_DECODERS: Readonly<Record<number, { decode(raw: Buffer): Promise<ProduceResponseData> }>> = Object.freeze({
  3: require('kafkajs/src/protocol/requests/produce/v3/response.js'),
  4: require('kafkajs/src/protocol/requests/produce/v4/response.js'),
  5: require('kafkajs/src/protocol/requests/produce/v5/response.js'),
  6: require('kafkajs/src/protocol/requests/produce/v6/response.js'),
  7: require('kafkajs/src/protocol/requests/produce/v7/response.js'),
});

/** Hands an encoded body to kafkajs's framing (request.js calls `encode()` and copies `.buffer` of what it returns). */
function encoderOf(body: Buffer): unknown {
  const e = new KafkajsEncoder(0);
  e.buf = body;
  e.offset = body.length;
  return e;
}

/** kafkajs's request definition of Produce with our encoding; `lookupRequest` picks min(v7, the broker's newest). */
const PRODUCE_DEFINITION: ProtocolDefinition = {
  versions: Object.keys(PRODUCE_RESPONSE_DECODERS),
  protocol: ({ version }) => {
    const decoder = PRODUCE_RESPONSE_DECODERS[version];
    if (!decoder) return undefined;
    return {
      version,
      decode: (raw) => decoder.decode(raw),
      request: (body) => ({
        request: { apiKey: PRODUCE_API_KEY, apiVersion: version, apiName: 'Produce', expectResponse: () => true, encode: async () => encoderOf(body) },
        // Per-partition error codes are turned into errors by the caller, which knows the partition.
        response: { decode: (raw) => decoder.decode(raw), parse: async (data) => data },
      }),
    };
  },
};

/** Bytes reserved before each encoded body for the request header (size, api key and version, correlation id, client id). */
const FRAME_HEADROOM = 64;

/**
 * Sends a sealed batch on the broker's connection and returns the decoded
 * response. The first attempt writes the request header into the headroom
 * before the body and hands that one buffer to the socket: no copy. kafkajs's
 * own path (`connectionPool.send`, which copies the body twice) is taken for
 * a connection that must (re)authenticate first and a client id too long for
 * the headroom. The batch's buffer is tainted from the write until the
 * broker answers (see `EncodedBatch.tainted`).
 */
async function produceOnce(broker: KafkajsBroker, produce: ProduceVersion, batch: EncodedBatch): Promise<ProduceResponseData> {
  const connection = await broker.connectionPool.getConnection(0);
  const clientIdBytes = Buffer.byteLength(connection.clientId, 'utf8');
  const headerBytes = 4 + 2 + 2 + 4 + 2 + clientIdBytes;
  if (batch.tainted) detach(batch);
  if (headerBytes > batch.headroom || (connection.sasl && !connection.isAuthenticated())) {
    return (await broker.connectionPool.send(produce.request(batch.body))) as ProduceResponseData;
  }
  connection.failIfNotConnected();
  const correlationId = connection.nextCorrelationId();
  const buf = batch.backing;
  const start = batch.headroom - headerBytes;
  let p = buf.writeInt32BE(headerBytes - 4 + batch.body.length, start);
  p = buf.writeInt16BE(PRODUCE_API_KEY, p);
  p = buf.writeInt16BE(produce.version, p);
  p = buf.writeInt32BE(correlationId, p);
  p = buf.writeInt16BE(clientIdBytes, p);
  buf.write(connection.clientId, p, clientIdBytes, 'utf8');
  const frame = buf.subarray(start, batch.headroom + batch.body.length);
  batch.tainted = true; // until the broker answered
  const { payload } = await new Promise<{ payload: Buffer }>((resolve, reject) => {
    connection.requestQueue.push({
      entry: { apiKey: PRODUCE_API_KEY, apiName: 'Produce', apiVersion: produce.version, correlationId, resolve, reject },
      expectResponse: true,
      requestTimeout: null,
      sendRequest: () => {
        connection.socket.write(frame, 'binary');
      },
    });
  });
  batch.tainted = false; // answered: the broker read the whole request
  const data = await produce.decode(payload);
  connection.requestQueue.maybeThrottle(data.clientSideThrottleTime);
  return data;
}

/** Producer id, epoch and the next sequence per partition; replaced as a whole when the producer id is re-initialised. */
interface ProducerIdentity {
  producerId: string;
  producerEpoch: number;
  /** `topic\0partition` → sequence of the next batch's first record. Advances only when a batch is acknowledged. */
  sequences: Map<string, number>;
}

/** Sequence after `count` records from `sequence` (int32, wrapping to 0 as Kafka does). */
export function nextSequence(sequence: number, count: number): number {
  return (sequence + count) % (MAX_SEQUENCE + 1);
}

/**
 * Creates an idempotent producer (not connected). kafkajs does what it does
 * well: connections, TLS, SASL, ApiVersions, metadata, leader lookup,
 * InitProducerId and retries; the Produce request body is ours
 * (kafka-produce-encoder.ts: one Buffer per request, no per-record objects),
 * as is the sequence bookkeeping: one batch per (topic, partition) in flight;
 * its sequence advances only when the cluster acknowledged it; a retry,
 * inside `send` or by the caller, resends the same records with the same
 * sequence, so the broker drops a copy it already stored. A producer-state
 * error (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, ...) makes the
 * next `send` fetch a new producer id and restart sequences at 0; the caller
 * resends (duplicates across producer ids carry the dedup headers).
 */
export function createKafkaProducer(options: KafkaClientOptions): KafkaProducer {
  const config = kafkajsConfig(options);
  const retryOptions = { ...config.retry };
  const allowAutoTopicCreation = options.allowAutoTopicCreation ?? false;
  let cluster: KafkajsCluster | undefined;
  let identity: ProducerIdentity | undefined;
  let initialising: Promise<ProducerIdentity> | undefined;
  /** Tail of the chain of sends per `topic\0partition`: one batch per partition in flight. */
  const partitionTails = new Map<string, Promise<void>>();

  const newCluster = (): KafkajsCluster =>
    new KafkajsClusterClass({
      logger: createLogger({ level: config.logLevel ?? logLevel.INFO, logCreator: config.logCreator }),
      socketFactory: defaultSocketFactory(),
      brokers: config.brokers,
      ssl: config.ssl,
      sasl: config.sasl,
      clientId: config.clientId,
      connectionTimeout: config.connectionTimeout,
      requestTimeout: config.requestTimeout,
      enforceRequestTimeout: true,
      retry: retryOptions,
      metadataMaxAge: 300000,
      allowAutoTopicCreation,
      maxInFlightRequests: 1,
      instrumentationEmitter: null,
      offsets: new Map(),
    });

  const connected = (): KafkajsCluster => {
    if (!cluster) throw new AgentError('KAFKA_CONNECTION', 'the Kafka producer is not connected', {});
    return cluster;
  };

  /** InitProducerId from the controller (as kafkajs's idempotent producer asks it), with kafkajs's retries. */
  const initIdentity = (): Promise<ProducerIdentity> => {
    initialising ??= createRetry(retryOptions)(async (bail) => {
      const c = connected();
      try {
        await c.refreshMetadataIfNecessary();
        const broker = await c.findControllerBroker();
        const { producerId, producerEpoch } = await broker.initProducerId({ transactionTimeout: 60000 });
        identity = { producerId, producerEpoch, sequences: new Map() };
        return identity;
      } catch (err) {
        const e = err as KafkaError;
        if (e.retriable === false) bail(e);
        throw e;
      }
    }).finally(() => {
      initialising = undefined;
    });
    return initialising;
  };

  const ensureTopic = async (c: KafkajsCluster, topic: string): Promise<PartitionMetadata[]> => {
    await c.addTargetTopic(topic);
    return c.findTopicPartitionMetadata(topic);
  };

  /** Sends one encoded batch: sealed with the producer id and the partition's next sequence, resent unchanged on retries. */
  const sendBatch = async (topic: string, batch: EncodedBatch): Promise<void> => {
    const { partition } = batch;
    const id = identity ?? (await initIdentity());
    const key = `${topic}\0${partition}`;
    const baseSequence = id.sequences.get(key) ?? 0;
    if (batch.tainted) detach(batch);
    sealBatch(batch.body, batch, { producerId: id.producerId, producerEpoch: id.producerEpoch, baseSequence });
    await createRetry(retryOptions)(async (bail) => {
      const c = connected();
      try {
        await c.refreshMetadataIfNecessary();
        const leaders = Object.keys(c.findLeaderForPartitions(topic, [partition]));
        if (leaders.length === 0) throw Object.assign(createErrorFromCode(3), { message: `no leader known for ${topic}[${partition}]` });
        const broker = await c.findBroker({ nodeId: leaders[0] });
        const produce = broker.lookupRequest(PRODUCE_API_KEY, PRODUCE_DEFINITION);
        if (!produce) {
          bail(new AgentError('KAFKA_UNSUPPORTED', 'the broker does not support Produce v3 (Kafka 0.11) or later', { topic, partition }, undefined, false));
          return;
        }
        let data: ProduceResponseData;
        try {
          data = await produceOnce(broker, produce, batch);
        } catch (err) {
          if ((err as KafkaError).name === 'KafkaJSConnectionClosedError') await broker.disconnect();
          throw err;
        }
        const result = data.topics.find((t) => t.topicName === topic)?.partitions.find((p) => p.partition === partition);
        if (!result) throw new AgentError('KAFKA_OTHER', `the Produce response has no result for ${topic}[${partition}]`, { topic, partition });
        if (result.errorCode !== 0) throw createErrorFromCode(result.errorCode);
      } catch (err) {
        const e = err as KafkaError;
        if (typeof e.code === 'number' && KAFKA_ERROR_TABLE[e.code]?.code === 'KAFKA_PRODUCER_STATE') {
          if (identity === id) identity = undefined; // the next send asks for a new producer id
          bail(e);
          return;
        }
        if (e.name === 'KafkaJSConnectionClosedError' && e.host !== undefined && e.port !== undefined) c.removeBroker({ host: e.host, port: e.port });
        if (!c.isConnected()) {
          await c.connect();
          await c.refreshMetadata();
          throw e;
        }
        if (staleMetadata(e) || e.name === 'KafkaJSMetadataNotLoaded' || e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSConnectionClosedError' || (e.name === 'KafkaJSProtocolError' && e.retriable)) {
          await c.refreshMetadata().catch(() => undefined);
          throw e;
        }
        if (e instanceof AgentError || e.retriable === false) bail(e);
        throw e;
      }
    });
    id.sequences.set(key, nextSequence(baseSequence, batch.recordCount));
  };

  /** Runs `fn` after every earlier send to the same partition settled. */
  const serialised = (key: string, fn: () => Promise<void>): Promise<void> => {
    const previous = partitionTails.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    partitionTails.set(key, tail);
    void tail.then(() => {
      if (partitionTails.get(key) === tail) partitionTails.delete(key);
    });
    return run;
  };

  return {
    async connect() {
      try {
        cluster ??= newCluster();
        await cluster.connect();
        if (!identity) await initIdentity();
      } catch (err) {
        throw translateKafkaError(err);
      }
    },
    async send(request) {
      const { topic, batches } = request;
      try {
        await ensureTopic(connected(), topic);
        const results = await Promise.allSettled(batches.map((b) => serialised(`${topic}\0${b.partition}`, () => sendBatch(topic, b))));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      } catch (err) {
        throw translateKafkaError(err, { topic, ...(batches.length === 1 ? { partition: batches[0].partition } : {}) });
      }
    },
    async partitionCount(topic) {
      try {
        const partitions = await ensureTopic(connected(), topic);
        if (partitions.length === 0) throw new AgentError('KAFKA_UNKNOWN_TOPIC', `central topic ${topic} has no partitions`, { topic });
        return partitions.length;
      } catch (err) {
        throw translateKafkaError(err, { topic });
      }
    },
    async disconnect() {
      const c = cluster;
      cluster = undefined;
      identity = undefined;
      await c?.disconnect().catch(() => undefined);
    },
  };
}
