/**
 * The Kafka peer the replicator tests run against: librdkafka's mock cluster
 * behind our protocol shim. These tests pin what the shim adds (codec
 * against bytes kafkajs encodes, Kafka's producer sequence rules) and that
 * kafkajs's idempotent producer works through it.
 */
import { gzipSync } from 'node:zlib';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKafkaMock } from './support/kafka-mock.ts';
import type { KafkaMock } from './support/kafka-mock.ts';
import { RawKafkaConnection, encodeRequestFrame, kafkajsProtocol } from './support/kafka-raw-client.ts';
import { endOffsets, readBack } from './support/kafka-read.ts';
import { SequenceTracker } from './support/kafka-sequence-tracker.ts';
import {
  FrameReader,
  crc32c,
  decodeBatchHeader,
  decodeProduceRequest,
  decodeProduceResponse,
  encodeProduceResponse,
  frame,
  int16,
  int32,
  nullableString,
  rewriteMetadataResponse,
} from './support/kafka-shim-codec.ts';

const GZIP = 1;

async function kafkajsProduceFrame(opts: { version: number; producerId: number; epoch: number; firstSequence: number; count: number; compression?: number }): Promise<Buffer> {
  const { request } = kafkajsProtocol('produce', opts.version);
  const Long = (await import('kafkajs/src/utils/long.js' as string)).default as { fromNumber(n: number): unknown };
  const messages = Array.from({ length: opts.count }, (_, i) => ({
    key: `k${i}`,
    value: JSON.stringify({ i }),
    timestamp: 1_700_000_000_000 + i,
    headers: { 'millstream.offset': String(i) },
  }));
  const req = request({
    acks: -1,
    timeout: 30000,
    transactionalId: null,
    producerId: Long.fromNumber(opts.producerId),
    producerEpoch: opts.epoch,
    compression: opts.compression ?? 0,
    topicData: [{ topic: 'widgets', partitions: [{ partition: 2, firstSequence: opts.firstSequence, messages }] }],
  });
  return encodeRequestFrame(req, 7);
}

describe('shim codec against kafkajs bytes', () => {
  it('frames a byte stream split at every possible point', async () => {
    const frames = [await kafkajsProduceFrame({ version: 7, producerId: 1, epoch: 0, firstSequence: 0, count: 3 }), frame(Buffer.alloc(0)), frame(Buffer.from('xyz'))];
    const all = Buffer.concat(frames);
    for (let cut = 0; cut <= all.length; cut++) {
      for (const step of [1, 7]) {
        const reader = new FrameReader();
        const out = [...reader.push(all.subarray(0, cut))];
        for (let i = cut; i < all.length; i += step) out.push(...reader.push(all.subarray(i, i + step)));
        expect(out.map((f) => f.toString('hex'))).toEqual(frames.map((f) => f.toString('hex')));
      }
    }
  });

  it('CRC-32C matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it.each([3, 5, 7])('decodes a kafkajs Produce v%i request (gzip, headers): producer id, epoch, sequence, count', async (version) => {
    const bytes = await kafkajsProduceFrame({ version, producerId: 4242, epoch: 3, firstSequence: 17, count: 5, compression: GZIP });
    const req = decodeProduceRequest(bytes);
    expect(req).toMatchObject({ apiVersion: version, correlationId: 7, clientId: 'raw-client', transactionalId: null, acks: -1, timeoutMs: 30000 });
    expect(req.topics).toHaveLength(1);
    expect(req.topics[0].topic).toBe('widgets');
    const { partition, batch } = req.topics[0].partitions[0];
    expect(partition).toBe(2);
    expect(batch).toMatchObject({ magic: 2, producerId: 4242n, producerEpoch: 3, baseSequence: 17, recordCount: 5, lastOffsetDelta: 4 });
    expect(batch.attributes & 0x7).toBe(GZIP);
  });

  it('refuses a batch whose bytes were changed (CRC-32C) and a Produce version it does not decode', async () => {
    const bytes = await kafkajsProduceFrame({ version: 7, producerId: 1, epoch: 0, firstSequence: 0, count: 2 });
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 3] ^= 0x40;
    expect(() => decodeProduceRequest(flipped)).toThrow(/CRC-32C mismatch/);
    const { request } = kafkajsProtocol('produce', 2);
    const v2 = await encodeRequestFrame(request({ acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ value: 'x' }] }] }] }), 1);
    expect(() => decodeProduceRequest(v2)).toThrow(/Produce v2 is not supported/);
  });

  it.each([3, 5, 7])('encodes Produce v%i responses that kafkajs decodes to the same fields', async (version) => {
    const response = {
      correlationId: 9,
      throttleTimeMs: 0,
      topics: [{ topic: 'widgets', partitions: [{ partition: 1, errorCode: 0, baseOffset: 1234n, logAppendTime: -1n, logStartOffset: 5n }, { partition: 2, errorCode: 45, baseOffset: -1n, logAppendTime: -1n, logStartOffset: -1n }] }],
    };
    const bytes = encodeProduceResponse(response, version);
    const decoded = (await kafkajsProtocol('produce', version).response.decode(bytes.subarray(8))) as {
      topics: Array<{ topicName: string; partitions: Array<{ partition: number; errorCode: number; baseOffset: string; logStartOffset?: string }> }>;
    };
    expect(decoded.topics[0].topicName).toBe('widgets');
    expect(decoded.topics[0].partitions.map((p) => [p.partition, p.errorCode, p.baseOffset])).toEqual([
      [1, 0, '1234'],
      [2, 45, '-1'],
    ]);
    if (version >= 5) expect(decoded.topics[0].partitions[0].logStartOffset).toBe('5');
    expect(decodeProduceResponse(bytes, version)).toEqual(version >= 5 ? response : { ...response, topics: [{ ...response.topics[0], partitions: response.topics[0].partitions.map((p) => ({ ...p, logStartOffset: -1n })) }] });
  });

  function metadataV6(controllerId: number): Buffer {
    const broker = (id: number, port: number) => Buffer.concat([int32(id), nullableString('127.0.0.1'), int32(port), nullableString(null)]);
    const topic = Buffer.concat([
      int16(0), nullableString('widgets'), Buffer.from([0]), int32(1),
      int16(0), int32(0), int32(2), int32(1), int32(2), int32(1), int32(2), int32(0),
    ]);
    return frame(Buffer.concat([int32(77), int32(0), int32(2), broker(1, 9001), broker(2, 9002), nullableString('mockCluster'), int32(controllerId), int32(1), topic]));
  }

  it('rewrites Metadata v6: brokers advertised at the shim ports, a missing controller id becomes the lowest broker, topics untouched', async () => {
    const shimPorts: Record<number, number> = { 9001: 19001, 9002: 19002 };
    const out = rewriteMetadataResponse(metadataV6(0), 6, (b) => ({ host: '127.0.0.1', port: shimPorts[b.port] }));
    const decoded = (await kafkajsProtocol('metadata', 6).response.decode(out.subarray(8))) as {
      brokers: Array<{ nodeId: number; port: number }>;
      controllerId: number;
      clusterId: string;
      topicMetadata: Array<{ topic: string; partitionMetadata: Array<{ partitionId: number; leader: number }> }>;
    };
    expect(decoded.brokers.map((b) => [b.nodeId, b.port])).toEqual([
      [1, 19001],
      [2, 19002],
    ]);
    expect(decoded.controllerId).toBe(1);
    expect(decoded.clusterId).toBe('mockCluster');
    expect(decoded.topicMetadata[0].topic).toBe('widgets');
    expect(decoded.topicMetadata[0].partitionMetadata[0]).toMatchObject({ partitionId: 0, leader: 2 });
    const kept = rewriteMetadataResponse(metadataV6(2), 6, (b) => ({ host: '127.0.0.1', port: shimPorts[b.port] }));
    expect(((await kafkajsProtocol('metadata', 6).response.decode(kept.subarray(8))) as { controllerId: number }).controllerId).toBe(2);
    expect(() => rewriteMetadataResponse(metadataV6(0), 9, () => ({ host: 'x', port: 1 }))).toThrow(/v9 is not supported/);
  });
});

describe('producer sequence rules', () => {
  const batch = (seq: number, count: number, epoch = 0) => ({
    baseOffset: 0n, batchLength: 0, magic: 2, crc: 0, attributes: 0, lastOffsetDelta: count - 1,
    producerId: 7n, producerEpoch: epoch, baseSequence: seq, recordCount: count,
  });
  it('follows Kafka: first batch at 0, in sequence appends, last five batches are duplicates, gaps and stale repeats are errors', () => {
    const t = new SequenceTracker();
    expect(t.check('t', 0, batch(3, 1))).toEqual({ kind: 'error', errorCode: 45, reason: expect.any(String) });
    expect(t.check('t', 0, batch(0, 10)).kind).toBe('append');
    t.written('t', 0, batch(0, 10), 100n);
    expect(t.check('t', 0, batch(0, 10))).toEqual({ kind: 'duplicate', baseOffset: 100n });
    expect(t.check('t', 0, batch(11, 5))).toMatchObject({ kind: 'error', errorCode: 45 });
    expect(t.check('t', 0, batch(10, 5)).kind).toBe('append');
    for (let i = 0; i < 6; i++) t.written('t', 0, batch(10 + i * 5, 5), BigInt(110 + i * 5));
    expect(t.check('t', 0, batch(0, 10))).toMatchObject({ kind: 'error', errorCode: 45 });
    expect(t.check('t', 0, batch(35, 5))).toEqual({ kind: 'duplicate', baseOffset: 135n });
    expect(t.check('t', 1, batch(0, 1)).kind).toBe('append');
    expect(t.check('t', 0, batch(0, 1, 1)).kind).toBe('append');
    t.written('t', 0, batch(0, 1, 1), 200n);
    expect(t.check('t', 0, batch(40, 1, 0))).toMatchObject({ kind: 'error', errorCode: 47 });
  });
});

describe('kafkajs against the mock cluster through the shim', () => {
  let kafka: KafkaMock;
  beforeAll(async () => {
    kafka = await startKafkaMock({ brokers: 3 });
  });
  afterAll(async () => {
    await kafka?.stop();
  });

  it('the idempotent producer initialises; a batch whose acknowledgement was lost is retried and stored once', async () => {
    await kafka.createTopic('peer-idem', 3);
    const client = new Kafka({ brokers: kafka.bootstrap, clientId: 'peer-test', logLevel: logLevel.NOTHING, retry: { initialRetryTime: 50, retries: 10 } });
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await producer.send({ topic: 'peer-idem', acks: -1, messages: [{ key: 'a', value: 'v1', partition: 0, headers: { h: '1' } }] });
      kafka.shim.dropNextProduceResponse(1);
      await producer.send({ topic: 'peer-idem', acks: -1, messages: [{ key: 'a', value: 'v2', partition: 0 }, { key: 'b', value: 'v3', partition: 0 }] });
      await producer.send({ topic: 'peer-idem', acks: -1, messages: [{ key: 'a', value: 'v4', partition: 0 }] });
    } finally {
      await producer.disconnect();
    }
    expect(kafka.shim.sequences.counts.duplicate).toBe(1);
    const records = await readBack(kafka.bootstrap, 'peer-idem');
    expect(records.get(0)!.map((r) => [r.offset, r.key, r.value])).toEqual([
      [0, 'a', 'v1'],
      [1, 'a', 'v2'],
      [2, 'b', 'v3'],
      [3, 'a', 'v4'],
    ]);
    expect(records.get(0)![0].headers).toEqual({ h: '1' });
    expect(kafka.shim.errors).toEqual([]);
  });

  it('raw Produce with kafkajs bytes: duplicate acknowledged with its first offset, not stored; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER', async () => {
    await kafka.createTopic('peer-raw', 1);
    await kafka.command('leader peer-raw 0 1');
    const any = await RawKafkaConnection.open(kafka.bootstrap[0]);
    const md = kafkajsProtocol('metadata', 1);
    const meta = await any.send<{ brokers: Array<{ nodeId: number; host: string; port: number }>; controllerId: number }>(md.request({ topics: ['peer-raw'] }), md.response);
    expect(meta.controllerId).toBeGreaterThanOrEqual(1);
    const leader = meta.brokers.find((b) => b.nodeId === 1)!;
    expect(kafka.bootstrap).toContain(`${leader.host}:${leader.port}`);
    const init = kafkajsProtocol('initProducerId', 0);
    const pid = await any.send<{ errorCode: number; producerId: string; producerEpoch: number }>(init.request({ transactionalId: null, transactionTimeout: 30000 }), init.response);
    expect(pid.errorCode).toBe(0);
    any.close();

    const conn = await RawKafkaConnection.open(`${leader.host}:${leader.port}`);
    const Long = (await import('kafkajs/src/utils/long.js' as string)).default as { fromString(s: string): unknown };
    const produce = kafkajsProtocol('produce', 7);
    const send = (firstSequence: number, n: number) =>
      conn.send<{ topics: Array<{ partitions: Array<{ errorCode: number; baseOffset: string }> }> }>(
        produce.request({
          acks: -1, timeout: 5000, transactionalId: null, producerId: Long.fromString(pid.producerId), producerEpoch: pid.producerEpoch, compression: GZIP,
          topicData: [{ topic: 'peer-raw', partitions: [{ partition: 0, firstSequence, messages: Array.from({ length: n }, (_, i) => ({ key: 'k', value: `s${firstSequence + i}` })) }] }],
        }),
        produce.response,
      ).then((r) => r.topics[0].partitions[0]);
    expect(await send(0, 3)).toMatchObject({ errorCode: 0, baseOffset: '0' });
    expect(await send(3, 2)).toMatchObject({ errorCode: 0, baseOffset: '3' });
    expect(await send(0, 3)).toMatchObject({ errorCode: 0, baseOffset: '0' });
    expect(await send(9, 1)).toMatchObject({ errorCode: 45 });
    expect(await send(5, 1)).toMatchObject({ errorCode: 0, baseOffset: '5' });
    conn.close();
    expect((await endOffsets(kafka.bootstrap, 'peer-raw')).get(0)).toBe(6);
    expect((await readBack(kafka.bootstrap, 'peer-raw')).get(0)!.map((r) => r.value)).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
    expect(kafka.shim.errors).toEqual([]);
  });

  it('cutting every client connection mid-stream: kafkajs reconnects, every record is stored once, in order', async () => {
    await kafka.createTopic('peer-cut', 1);
    const client = new Kafka({ brokers: kafka.bootstrap, clientId: 'peer-cut', logLevel: logLevel.NOTHING, retry: { initialRetryTime: 20, retries: 20 } });
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (let b = 0; b < 20; b++) {
        const sending = producer.send({ topic: 'peer-cut', acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: String(b * 10 + i), partition: 0 })) });
        if (b % 4 === 1) kafka.shim.dropConnections();
        await sending;
      }
    } finally {
      await producer.disconnect();
    }
    expect((await readBack(kafka.bootstrap, 'peer-cut')).get(0)!.map((r) => Number(r.value))).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(kafka.shim.errors).toEqual([]);
  });

  it('fails loudly on a request it does not understand: the connection ends and the error is recorded', async () => {
    const conn = await RawKafkaConnection.open(kafka.bootstrap[0]);
    const v2 = kafkajsProtocol('produce', 2);
    await expect(
      conn.send(v2.request({ acks: -1, timeout: 1000, topicData: [{ topic: 'peer-raw', partitions: [{ partition: 0, messages: [{ value: gzipSync('x').toString('base64') }] }] }] }), v2.response),
    ).rejects.toThrow(/closed/);
    expect(kafka.shim.errors.splice(0)).toEqual([expect.stringMatching(/Produce v2 is not supported/)]);
  });
});

it('decodeBatchHeader refuses two batches in one record set', async () => {
  const bytes = await kafkajsProduceFrame({ version: 7, producerId: 1, epoch: 0, firstSequence: 0, count: 1 });
  const records = decodeProduceRequest(bytes).topics[0].partitions[0];
  expect(records.batch.recordCount).toBe(1);
  const req = bytes.subarray(bytes.length - (records.batch.batchLength + 12));
  expect(() => decodeBatchHeader(Buffer.concat([req, req]))).toThrow(/one batch per partition/);
});
