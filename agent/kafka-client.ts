/**
 * The one module that imports kafkajs. Everything else in the agent talks
 * to the central Kafka cluster through `KafkaProducer` and sees only
 * `AgentError`s: switching the client library is a change to this file.
 *
 * Producer settings are fixed where correctness depends on them:
 * idempotent (the broker drops a retried batch it already stored), acks -1
 * (all in-sync replicas), one request in flight per broker connection (so
 * batches of a partition cannot overtake each other), no automatic topic
 * creation unless asked, and Kafka's default (murmur2) partitioner so a key
 * lands on the same partition number as in the local log.
 */
import { rootCertificates } from 'node:tls';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Admin, KafkaConfig, Message, Producer, SASLOptions } from 'kafkajs';
import type { Logger } from '../log-store/index.ts';
import { AgentError } from './errors.ts';
import type { AgentErrorCode } from './errors.ts';

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

/** One record on its way to Kafka. */
export interface OutboundRecord {
  key: string | Buffer | null;
  value: Buffer;
  /** Milliseconds since the epoch. */
  timestamp: number;
  headers: Record<string, string>;
}

export interface ProduceRequest {
  topic: string;
  /** Target partition; undefined: the default partitioner decides by key. */
  partition?: number;
  records: readonly OutboundRecord[];
  compression: 'none' | 'gzip';
}

/** What the replicator needs from a Kafka producer. Every method rejects only with `AgentError`. */
export interface KafkaProducer {
  connect(): Promise<void>;
  /** Resolves once the cluster acknowledged every record (acks -1). */
  send(request: ProduceRequest): Promise<void>;
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

/** Creates an idempotent producer (not connected). */
export function createKafkaProducer(options: KafkaClientOptions): KafkaProducer {
  const kafka = new Kafka(kafkajsConfig(options));
  let producer: Producer | undefined;
  let admin: Admin | undefined;
  const allowAutoTopicCreation = options.allowAutoTopicCreation ?? false;

  const ensureProducer = (): Producer => {
    producer ??= kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: options.retries ?? 2, initialRetryTime: options.initialRetryTimeMs ?? 100, maxRetryTime: 5000 },
    });
    return producer;
  };

  return {
    async connect() {
      try {
        await ensureProducer().connect();
      } catch (err) {
        throw translateKafkaError(err);
      }
    },
    async send({ topic, partition, records, compression }) {
      const messages: Message[] = records.map((r) => ({
        key: r.key,
        value: r.value,
        timestamp: String(r.timestamp),
        headers: r.headers,
        ...(partition === undefined ? {} : { partition }),
      }));
      try {
        await ensureProducer().send({
          topic,
          acks: -1,
          timeout: options.requestTimeoutMs ?? 30000,
          compression: compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
          messages,
        });
      } catch (err) {
        throw translateKafkaError(err, { topic, partition });
      }
    },
    async partitionCount(topic) {
      try {
        if (!admin) {
          admin = kafka.admin({ retry: { retries: options.retries ?? 2, initialRetryTime: options.initialRetryTimeMs ?? 100 } });
          await admin.connect();
        }
        const meta = await admin.fetchTopicMetadata({ topics: [topic] });
        const t = meta.topics.find((x) => x.name === topic);
        if (!t || t.partitions.length === 0) throw new AgentError('KAFKA_UNKNOWN_TOPIC', `central topic ${topic} has no partitions`, { topic });
        return t.partitions.length;
      } catch (err) {
        const e = translateKafkaError(err, { topic });
        if (e.code === 'KAFKA_CONNECTION' && admin) {
          const a = admin;
          admin = undefined;
          await a.disconnect().catch(() => undefined);
        }
        throw e;
      }
    },
    async disconnect() {
      const p = producer;
      const a = admin;
      producer = undefined;
      admin = undefined;
      await Promise.all([p?.disconnect().catch(() => undefined), a?.disconnect().catch(() => undefined)]);
    },
  };
}
