import { createRequire } from 'node:module';
import { rootCertificates } from 'node:tls';
import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSRequestTimeoutError,
  KafkaJSSASLAuthenticationError,
} from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { AgentError } from './errors.ts';
import { KAFKA_ERROR_TABLE, kafkajsConfig, translateKafkaError } from './kafka-client.ts';

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
