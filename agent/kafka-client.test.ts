import { createRequire } from 'node:module';
import { rootCertificates } from 'node:tls';
import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSRequestTimeoutError,
  KafkaJSSASLAuthenticationError,
} from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { useKafkaMock } from '../test/support/kafka-mock-hooks.ts';
import type { KafkaMock } from '../test/support/kafka-mock.ts';
import { readBack } from '../test/support/kafka-read.ts';
import { AgentError } from './errors.ts';
import { BodyBufferPool, KAFKA_ERROR_TABLE, createKafkaProducer, encodeProduce, kafkajsConfig, releaseEncoded, translateKafkaError } from './kafka-client.ts';
import type { KafkaProducer, OutboundRecord } from './kafka-client.ts';

const require = createRequire(import.meta.url);
/** kafkajs's own constructor of broker errors, as its response parsers call it. */
const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode(code: number): Error };
/** kafkajs's type declarations omit constructor options its runtime takes. */
const make = (Class: unknown, ...args: unknown[]): Error => new (Class as new (...a: unknown[]) => Error)(...args);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('translateKafkaError', () => {
  it.each([
    [29, 'KAFKA_TOPIC_AUTHORIZATION', false],
    [10, 'KAFKA_MESSAGE_TOO_LARGE', false],
    [18, 'KAFKA_MESSAGE_TOO_LARGE', false],
    [6, 'KAFKA_UNAVAILABLE', true],
    [19, 'KAFKA_UNAVAILABLE', true],
    [7, 'KAFKA_CONNECTION', true],
    [3, 'KAFKA_UNKNOWN_TOPIC', true],
    [17, 'KAFKA_UNKNOWN_TOPIC', false],
    [45, 'KAFKA_PRODUCER_STATE', true],
    [31, 'KAFKA_CLUSTER_AUTHORIZATION', false],
    [58, 'KAFKA_AUTHENTICATION', false],
    [87, 'KAFKA_INVALID_RECORD', false],
  ] as const)('broker error %i → %s (retriable %s), also when kafkajs wrapped it in its retry errors', (kafkaCode, code, retriable) => {
    const protocol = createErrorFromCode(kafkaCode);
    for (const thrown of [
      protocol,
      make(KafkaJSNonRetriableError, protocol, { cause: protocol }),
      make(KafkaJSNumberOfRetriesExceeded, protocol, { retryCount: 2, retryTime: 100 }),
    ]) {
      const e = translateKafkaError(thrown, { topic: 'central', partition: 1 });
      expect(e).toBeInstanceOf(AgentError);
      expect(e.code).toBe(code);
      expect(e.retriable).toBe(retriable);
      expect(e.context).toMatchObject({ topic: 'central', partition: 1, kafkaCode, kafkaType: KAFKA_ERROR_TABLE[kafkaCode].type });
      expect(e.cause).toBe(thrown);
    }
  });

  it('classifies client-side failures by kafkajs error class, through retry wrappers', () => {
    const conn = make(KafkaJSConnectionError, 'Connection error: connect ECONNREFUSED', { broker: 'b:1', code: 'ECONNREFUSED' });
    expect(translateKafkaError(make(KafkaJSNumberOfRetriesExceeded, conn, { retryCount: 2, retryTime: 10 }))).toMatchObject({ code: 'KAFKA_CONNECTION', retriable: true });
    expect(translateKafkaError(make(KafkaJSRequestTimeoutError, 'Request Produce timed out'))).toMatchObject({ code: 'KAFKA_CONNECTION', retriable: true });
    const tls = make(KafkaJSConnectionError, 'Connection error: self-signed certificate', { broker: 'b:1', code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    expect(translateKafkaError(make(KafkaJSNumberOfRetriesExceeded, tls, { retryCount: 1, retryTime: 10 }))).toMatchObject({ code: 'KAFKA_TLS', retriable: true, context: { tlsCode: 'DEPTH_ZERO_SELF_SIGNED_CERT' } });
    expect(translateKafkaError(make(KafkaJSSASLAuthenticationError, 'SASL PLAIN authentication failed'))).toMatchObject({ code: 'KAFKA_AUTHENTICATION', retriable: false });
  });

  it('an unknown broker code keeps kafkajs’s retriable flag; an unknown throwable is KAFKA_OTHER', () => {
    const unknown = Object.assign(new Error('weird'), { name: 'KafkaJSProtocolError', type: 'SOMETHING_NEW', code: 4242, retriable: false });
    expect(translateKafkaError(unknown)).toMatchObject({ code: 'KAFKA_OTHER', retriable: false, context: { kafkaCode: 4242 } });
    expect(translateKafkaError(new Error('boom'))).toMatchObject({ code: 'KAFKA_OTHER', retriable: true });
    const ours = new AgentError('KAFKA_UNKNOWN_TOPIC', 'x');
    expect(translateKafkaError(ours)).toBe(ours);
  });
});

describe('kafkajsConfig', () => {
  const base = { brokers: ['k1:9093'], clientId: 'gw-7', logger: silent };
  it('plaintext by default; TLS with a private CA trusts only it unless system CAs are asked for', () => {
    expect(kafkajsConfig(base).ssl).toBeUndefined();
    const onlyPrivate = kafkajsConfig({ ...base, tls: { ca: ['PEM-CA'] } }).ssl as { ca: string[]; rejectUnauthorized: boolean };
    expect(onlyPrivate.ca).toEqual(['PEM-CA']);
    expect(onlyPrivate.rejectUnauthorized).toBe(true);
    const both = kafkajsConfig({ ...base, tls: { ca: ['PEM-CA'], systemCa: true } }).ssl as { ca: string[] };
    expect(both.ca).toEqual([...rootCertificates, 'PEM-CA']);
    const system = kafkajsConfig({ ...base, tls: {} }).ssl as { ca: string[] };
    expect(system.ca).toEqual([...rootCertificates]);
    const mtls = kafkajsConfig({ ...base, tls: { ca: ['C'], cert: 'CERT', key: 'KEY', servername: 'kafka.plant' } }).ssl as Record<string, unknown>;
    expect(mtls).toMatchObject({ cert: 'CERT', key: 'KEY', servername: 'kafka.plant' });
  });
  it.each(['plain', 'scram-sha-256', 'scram-sha-512'] as const)('SASL %s maps to kafkajs', (mechanism) => {
    expect(kafkajsConfig({ ...base, sasl: { mechanism, username: 'u', password: 'p' } }).sasl).toEqual({ mechanism, username: 'u', password: 'p' });
  });
});

describe('the producer against the Kafka peer (librdkafka mock behind the sequence-checking shim)', () => {
  let kafka: KafkaMock;
  let producer: KafkaProducer | undefined;
  let n = 0;
  useKafkaMock({ brokers: 3 }, (k) => (kafka = k));
  afterEach(async () => {
    await producer?.disconnect();
    producer = undefined;
  });
  const connect = async (): Promise<KafkaProducer> => {
    producer = createKafkaProducer({ brokers: kafka.bootstrap, clientId: 'client-test', logger: silent, retries: 2, initialRetryTimeMs: 20, requestTimeoutMs: 3000 });
    await producer.connect();
    return producer;
  };
  const records = (from: number, count: number): OutboundRecord[] =>
    Array.from({ length: count }, (_, i) => ({ key: `k${(from + i) % 7}`, value: Buffer.from(`v${from + i}`), timestamp: 1_600_000_000_000 + from + i, headers: { n: String(from + i) }, offset: from + i }));

  it('batches from one buffer pool, one acknowledgement lost: the retry inside send has the same sequence, stored once, in order, headers added', async () => {
    const topic = `c${++n}`;
    await kafka.createTopic(topic, 1);
    const p = await connect();
    await p.partitionCount(topic);
    const pool = new BodyBufferPool(1);
    const dupsBefore = kafka.shim.sequences.counts.duplicate;
    for (let b = 0; b < 4; b++) {
      if (b === 2) kafka.shim.dropNextProduceResponse(1);
      // Each batch is encoded into the buffer the previous one gave back (a reused buffer must not leak old bytes).
      const encoded = await encodeProduce({ topic, partition: 0, records: records(b * 50, 50 - b * 10), compression: 'none', addHeaders: { g: 'gw' }, offsetHeader: 'o' }, pool);
      await p.send(encoded);
      releaseEncoded(encoded, pool);
    }
    expect(kafka.shim.sequences.counts.duplicate - dupsBefore).toBe(1);
    const got = (await readBack(kafka.bootstrap, topic)).get(0)!;
    const expected = [0, 1, 2, 3].flatMap((b) => records(b * 50, 50 - b * 10));
    expect(got.map((r) => [r.key, r.value, r.timestamp, r.headers])).toEqual(expected.map((r) => [r.key, r.value.toString(), r.timestamp, { n: r.headers.n, g: 'gw', o: String(r.offset) }]));
  });

  it('without a partition, Kafka’s default partitioner spreads records by key, one batch per partition, each key in order', async () => {
    const topic = `c${++n}`;
    await kafka.createTopic(topic, 3);
    const p = await connect();
    const partitionCount = await p.partitionCount(topic);
    const input = records(0, 90);
    const encoded = await encodeProduce({ topic, partitionCount, records: input, compression: 'gzip' });
    expect(encoded.batches.map((b) => b.partition).sort()).toEqual([0, 1, 2]);
    await p.send(encoded);
    const central = await readBack(kafka.bootstrap, topic);
    for (const [partition, got] of central) {
      expect(got.length).toBe(encoded.batches.find((b) => b.partition === partition)!.recordCount);
      // Every record of a key, in order, on one partition.
      for (const key of new Set(got.map((r) => r.key))) expect(got.filter((r) => r.key === key).map((r) => r.value)).toEqual(input.filter((r) => r.key === key).map((r) => r.value.toString()));
    }
    expect([...central.values()].reduce((s, l) => s + l.length, 0)).toBe(90);
  });

  it('a producer-state error fails the send (KAFKA_PRODUCER_STATE); the next send gets a new producer id, starts at sequence 0 and is stored', async () => {
    const topic = `c${++n}`;
    await kafka.createTopic(topic, 1);
    const p = await connect();
    await p.partitionCount(topic);
    await p.send(await encodeProduce({ topic, partition: 0, records: records(0, 10), compression: 'none' }));
    await kafka.pushErrors(0, [45]);
    const second = await encodeProduce({ topic, partition: 0, records: records(10, 10), compression: 'none' });
    await expect(p.send(second)).rejects.toMatchObject({ code: 'KAFKA_PRODUCER_STATE', retriable: true });
    await p.send(second);
    const got = (await readBack(kafka.bootstrap, topic)).get(0)!;
    expect(got.map((r) => r.value)).toEqual(records(0, 20).map((r) => r.value.toString()));
  });
});
