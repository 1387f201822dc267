/**
 * SASL/PLAIN and SCRAM-SHA-256/512 against a peer that demands it: the
 * Kafka peer (librdkafka's mock behind the shim) started with `sasl`, so
 * every connection must authenticate to the shim before any other request.
 * The shim's SCRAM server is RFC 5802's (salted PBKDF2 keys, client proof
 * checked, server signature sent), so kafkajs's SCRAM client is checked
 * against an exchange it did not write.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createReplicator } from '../agent/replicator/index.ts';
import type { Replicator } from '../agent/replicator/index.ts';
import { openLogStore } from '../log-store/index.ts';
import type { LogStoreApi } from '../log-store/index.ts';
import { startKafkaMock } from './support/kafka-mock.ts';
import type { KafkaMock } from './support/kafka-mock.ts';
import { RawKafkaConnection, encodeRequestFrame, kafkajsProtocol } from './support/kafka-raw-client.ts';
import { FrameReader } from './support/kafka-shim-codec.ts';
import { endOffsets, readBack } from './support/kafka-read.ts';

const CREDENTIALS = { username: 'gw1', password: 's3cret' };

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

let kafka: KafkaMock;
let dir: string | undefined;
let log: LogStoreApi | undefined;
let replicator: Replicator | undefined;
let n = 0;

beforeAll(async () => {
  kafka = await startKafkaMock({ brokers: 3, sasl: CREDENTIALS });
});
afterAll(async () => {
  await kafka?.stop();
});
afterEach(async () => {
  await replicator?.stop();
  await log?.close();
  replicator = undefined;
  log = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function setup(records: number, peer: KafkaMock = kafka) {
  dir = await mkdtemp(join(tmpdir(), 'millstream-repl-sasl-'));
  log = await openLogStore({ dataDir: join(dir, 'data'), minFreeBytes: 0, retentionCheckIntervalMs: 0, topicDefaults: { fsync: 'never' } });
  const topic = `secure${++n}`;
  await log.ensureTopic(topic, { partitions: 2 });
  await peer.createTopic(`gw1.${topic}`, 2);
  await log.appendBatch(topic, Array.from({ length: records }, (_, i) => ({ key: `k${i % 7}`, value: `v${i}`, timestamp: 1_700_000_000_000 + i, headers: { n: String(i) } })));
  return { log, topic };
}

function start(l: LogStoreApi, topic: string, password: string, mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512' = 'plain', peer: KafkaMock = kafka) {
  replicator = createReplicator({
    gatewayId: 'gw1',
    log: l,
    kafka: {
      brokers: peer.bootstrap,
      clientId: 'gw1-sasl',
      sasl: { mechanism, username: CREDENTIALS.username, password },
      retries: 1,
      initialRetryTimeMs: 20,
      connectionTimeoutMs: 500,
      requestTimeoutMs: 3000,
    },
    topics: [{ topic }],
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  return replicator;
}

describe('replicator with SASL/PLAIN', () => {
  it('authenticates and replicates every record, in order per partition', async () => {
    const { log: l, topic } = await setup(300);
    const failuresBefore = kafka.shim.authFailures.length;
    const r = start(l, topic, CREDENTIALS.password);
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0);
    await r.stop();
    expect(kafka.shim.authenticated).toBeGreaterThan(0);
    expect(kafka.shim.authFailures.length).toBe(failuresBefore);
    await expect(readBack(kafka.bootstrap, `gw1.${topic}`)).rejects.toThrow(/connection closed/);
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`, CREDENTIALS);
    let total = 0;
    for (let p = 0; p < 2; p++) {
      const local = (await l.read(topic, p, 0, { maxRecords: 1000, maxBytes: 1 << 30 })).records;
      expect(central.get(p)!.map((c) => [c.key, c.value, c.headers.n, c.headers['millstream.offset']])).toEqual(
        local.map((o) => [o.key, o.value.toString(), o.headers.n, String(o.offset)]),
      );
      total += local.length;
    }
    expect(total).toBe(300);
    // The unauthenticated readBack above was cut off by the shim and recorded; nothing else was.
    expect(kafka.shim.errors).toHaveLength(1);
    expect(kafka.shim.errors[0]).toMatch(/api key 3 .*before SASL authentication/);
    kafka.shim.errors.length = 0;
  });

  it('wrong password: the topic stops with KAFKA_AUTHENTICATION (non-retriable) and nothing reaches the cluster', async () => {
    const { log: l, topic } = await setup(50);
    const failuresBefore = kafka.shim.authFailures.length;
    const r = start(l, topic, 'wrong');
    await r.start();
    await until(() => r.status().topics[0].state === 'stopped');
    const st = r.status();
    expect(st.topics[0].error).toMatchObject({ code: 'KAFKA_AUTHENTICATION', retriable: false, message: expect.stringMatching(/Invalid username or password/) });
    expect(st.lastError).toMatchObject({ code: 'KAFKA_AUTHENTICATION', retriable: false });
    expect(st.topics[0].partitions.map((p) => [p.state, p.position, p.sentRecords])).toEqual([
      ['stopped', 0, 0],
      ['stopped', 0, 0],
    ]);
    expect(kafka.shim.authFailures.length).toBeGreaterThan(failuresBefore);
    expect(kafka.shim.authFailures.at(-1)).toMatch(/PLAIN authentication failed for "gw1"/);
    await r.stop();
    expect([...(await endOffsets(kafka.bootstrap, `gw1.${topic}`, CREDENTIALS)).values()]).toEqual([0, 0]);
    expect((await l.consumer('replicator')).all()[topic] ?? {}).toEqual({});
    expect(kafka.shim.errors).toEqual([]);
  });

  it('ApiVersions advertises SaslHandshake and SaslAuthenticate v0–v1; a mechanism other than PLAIN is refused (33) and the connection closed', async () => {
    const conn = await RawKafkaConnection.open(kafka.bootstrap[1]);
    const av = kafkajsProtocol('apiVersions', 2);
    const versions = await conn.send<{ errorCode: number; apiVersions: Array<{ apiKey: number; minVersion: number; maxVersion: number }> }>(av.request({}), av.response);
    expect(versions.errorCode).toBe(0);
    expect(versions.apiVersions.filter((v) => v.apiKey === 17 || v.apiKey === 36)).toEqual([
      { apiKey: 17, minVersion: 0, maxVersion: 1 },
      { apiKey: 36, minVersion: 0, maxVersion: 1 },
    ]);
    expect(versions.apiVersions.some((v) => v.apiKey === 0)).toBe(true); // the mock's own APIs are still listed
    conn.close();
    // A plain socket, to see both the answer and the shim closing the connection after it.
    const hs = kafkajsProtocol('saslHandshake', 1);
    const socket = connect({ host: '127.0.0.1', port: Number(kafka.bootstrap[1].split(':')[1]) });
    const frames = new FrameReader();
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(...frames.push(chunk)));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', () => undefined);
    socket.write(await encodeRequestFrame(hs.request({ mechanism: 'SCRAM-SHA-256' }), 1));
    await closed;
    expect(received).toHaveLength(1);
    expect(await hs.response.decode(received[0].subarray(8))).toEqual({ errorCode: 33, enabledMechanisms: ['PLAIN'] });
    expect(kafka.shim.authFailures.at(-1)).toMatch(/mechanism SCRAM-SHA-256 refused/);
    expect(kafka.shim.errors).toEqual([]);
  });

  it('a client that skips SASL and sends Metadata is cut off, and the shim records the error', async () => {
    const conn = await RawKafkaConnection.open(kafka.bootstrap[0]);
    const md = kafkajsProtocol('metadata', 1);
    await expect(conn.send(md.request({ topics: [] }), md.response)).rejects.toThrow(/connection closed/);
    conn.close();
    expect(kafka.shim.errors).toHaveLength(1);
    expect(kafka.shim.errors[0]).toMatch(/api key 3 v1 before SASL authentication completed/);
    kafka.shim.errors.length = 0;
  });
});

describe('replicator with SASL/SCRAM', () => {
  let scramPeer: KafkaMock;
  beforeAll(async () => {
    // PLAIN too, only so the test's read-back client (PLAIN) can check what arrived.
    scramPeer = await startKafkaMock({ brokers: 1, sasl: { ...CREDENTIALS, mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-512', 'PLAIN'] } });
  });
  afterAll(async () => {
    await scramPeer?.stop();
  });

  for (const [mechanism, shimName] of [['scram-sha-256', 'SCRAM-SHA-256'], ['scram-sha-512', 'SCRAM-SHA-512']] as const) {
    it(`${mechanism}: authenticates and replicates every record`, async () => {
      const { log: l, topic } = await setup(120, scramPeer);
      const before = scramPeer.shim.authenticatedBy[shimName];
      const r = start(l, topic, CREDENTIALS.password, mechanism, scramPeer);
      await r.start();
      await until(() => r.status().topics[0].lagRecords === 0);
      await r.stop();
      expect(scramPeer.shim.authenticatedBy[shimName]).toBeGreaterThan(before);
      expect(scramPeer.shim.authFailures).toEqual([]);
      const central = await readBack(scramPeer.bootstrap, `gw1.${topic}`, CREDENTIALS);
      const values = [...central.values()].flat().map((c) => c.value).sort();
      expect(values).toEqual(Array.from({ length: 120 }, (_, i) => `v${i}`).sort());
      expect(scramPeer.shim.errors).toEqual([]);
    });
  }

  it('scram-sha-512 with a wrong password: the topic stops with KAFKA_AUTHENTICATION and nothing is sent', async () => {
    const { log: l, topic } = await setup(30, scramPeer);
    const r = start(l, topic, 'wrong', 'scram-sha-512', scramPeer);
    await r.start();
    await until(() => r.status().topics[0].state === 'stopped');
    expect(r.status().topics[0].error).toMatchObject({ code: 'KAFKA_AUTHENTICATION', retriable: false });
    expect(r.status().topics[0].partitions.map((p) => p.sentRecords)).toEqual([0, 0]);
    expect(scramPeer.shim.authFailures.at(-1)).toMatch(/SCRAM-SHA-512 authentication failed: wrong password for "gw1"/);
    scramPeer.shim.authFailures.length = 0;
  });
});
