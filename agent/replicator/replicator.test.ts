/**
 * Replicator behaviour against the Kafka peer (librdkafka's mock cluster
 * behind the shim, real kafkajs) with an in-memory log store; the same
 * scenarios against the real log store and a real process live in
 * test/replicator-*.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openLogStore } from '../../log-store/index.ts';
import { startKafkaMock } from '../../test/support/kafka-mock.ts';
import { useKafkaMock } from '../../test/support/kafka-mock-hooks.ts';
import type { KafkaMock } from '../../test/support/kafka-mock.ts';
import { readBack } from '../../test/support/kafka-read.ts';
import { TEST_KAFKA_TLS_CERT, TEST_KAFKA_TLS_KEY } from '../../test/support/kafka-tls-fixture.ts';
import { AgentError } from '../errors.ts';
import type { KafkaProducer } from '../kafka-client.ts';
import { createReplicator } from './index.ts';
import type { Replicator, ReplicatorOptions } from './index.ts';
import { backoffMs, resolveOptions } from './options.ts';
import { decodeEncodedProduce } from './test-support/decode-produce.ts';
import { createMemoryLogStore } from './test-support/memory-log-store.ts';
import { storedBytesPerBlockRecord, storedBytesPerRecord } from './partition-worker.ts';
import type { MemoryLogStore } from './test-support/memory-log-store.ts';

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg?: string;
}
function captureLogger() {
  const lines: Line[] = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (;;) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(what);
}

/** The dedup rule central consumers apply: drop a record whose (gateway, topic, partition) offset is ≤ the highest seen. Returns the kept offsets. */
export function dedup(records: ReadonlyArray<{ headers: Record<string, string> }>): number[] {
  const highest = new Map<string, number>();
  const kept: number[] = [];
  for (const r of records) {
    const h = r.headers;
    const id = `${h['millstream.gateway']}/${h['millstream.topic']}/${h['millstream.partition']}`;
    const offset = Number(h['millstream.offset']);
    if (offset <= (highest.get(id) ?? -1)) continue;
    highest.set(id, offset);
    kept.push(offset);
  }
  return kept;
}

function reading(i: number) {
  const sensor = `aa-${100 + (i % 17)}`;
  return {
    key: sensor,
    value: JSON.stringify({ reading_ts: new Date(1_700_000_000_000 + i * 1000).toISOString(), sensor_id: sensor, production_line: 'w01', widget_type: 'acme94', colour: i % 3 ? 'RED' : 'BLUE', temp_celcius: 20 + (i % 7), widget_weight_g: 100 + (i % 50) }),
    timestamp: 1_700_000_000_000 + i * 1000,
    headers: { source: 'mqtt', device: `dev-${i % 5}` },
  };
}

describe('options', () => {
  const log = createMemoryLogStore();
  const base: ReplicatorOptions = { gatewayId: 'gw1', log, kafka: { brokers: ['k:9092'], clientId: 'c' }, topics: [{ topic: 'widgets' }] };
  it.each([
    [{ gatewayId: '' }, /replication\.gatewayId: required/],
    [{ kafka: { brokers: [], clientId: 'c' } }, /replication\.kafka\.brokers: at least one/],
    [{ kafka: { brokers: ['nohost'], clientId: 'c' } }, /replication\.kafka\.brokers\[0\]: expected host:port/],
    [{ kafka: { brokers: ['k:1'], clientId: 'c', sasl: { mechanism: 'gssapi', username: 'u', password: 'p' } } }, /replication\.kafka\.sasl\.mechanism/],
    [{ kafka: { brokers: ['k:1'], clientId: 'c', tls: { cert: 'C' } } }, /replication\.kafka\.tls\.key: required/],
    [{ kafka: { brokers: ['k:1'], clientId: 'c', retries: 0 } }, /replication\.kafka\.retries: must be an integer ≥ 1/],
    [{ topics: [] }, /replication\.topics: at least one/],
    [{ topics: [{ topic: 'a' }, { topic: 'a' }] }, /replication\.topics\[1\]\.topic: a is listed twice/],
    [{ topics: [{ topic: 'a', centralTopic: '{site}.{topic}' }] }, /replication\.topics\[0\]\.centralTopic: unknown placeholder \{site\}/],
    [{ centralTopic: '{gateway}/{topic}' }, /replication\.centralTopic: "gw1\/widgets" is not a valid Kafka topic name/],
    [{ compression: 'snappy' }, /replication\.compression: none or gzip/],
    [{ batchRecords: 0 }, /replication\.batchRecords: must be an integer ≥ 1/],
    [{ deadLetterTopic: 'widgets' }, /replication\.deadLetterTopic: must not be one of the replicated topics/],
  ] as Array<[Partial<ReplicatorOptions> & Record<string, unknown>, RegExp]>)('%j is refused naming the key', (patch, message) => {
    expect(() => createReplicator({ ...base, ...patch } as ReplicatorOptions)).toThrow(message);
  });
  it('fills central topic templates and defaults, and freezes the result', () => {
    const r = resolveOptions({ ...base, topics: [{ topic: 'widgets' }, { topic: 'heavy_by_line', centralTopic: 'plant.heavy' }, { topic: 'hot', centralTopic: 'x.{topic}.{gateway}' }] });
    expect(r.topics.map((t) => t.centralTopic)).toEqual(['gw1.widgets', 'plant.heavy', 'x.hot.gw1']);
    expect(r).toMatchObject({ compression: 'none', batchRecords: 5000, batchBytes: 900000, lingerMs: 5, startFrom: 'earliest', consumerName: 'replicator', deadLetterTopic: 'replicator.dead-letter', backoffInitialMs: 500, backoffMaxMs: 30000 });
    expect(Object.isFrozen(r)).toBe(true);
  });
  it('back-off doubles up to the maximum, jittered to 50–100 %', () => {
    expect([0, 1, 2, 3, 10].map((a) => backoffMs(a, 500, 4000, () => 0))).toEqual([250, 500, 1000, 2000, 2000]);
    expect([0, 1, 2, 3, 10].map((a) => backoffMs(a, 500, 4000, () => 0.999999))).toEqual([500, 1000, 2000, 4000, 4000]);
  });
});

/** Timers the test fires by hand; records every requested delay. */
function manualTimers() {
  let next = 1;
  const pending = new Map<number, { fn: () => void; ms: number }>();
  const requested: number[] = [];
  return {
    requested,
    pending,
    timers: {
      setTimeout(fn: () => void, ms: number) {
        const id = next++;
        pending.set(id, { fn, ms });
        requested.push(ms);
        return id;
      },
      clearTimeout(h: unknown) {
        pending.delete(h as number);
      },
    },
    /** Fires every pending timer of at least `minMs` (back-offs, not linger). */
    fire(minMs = 0) {
      for (const [id, t] of [...pending]) {
        if (t.ms < minMs) continue;
        pending.delete(id);
        t.fn();
      }
    },
  };
}

describe('offline: back-off with jitter, one log line per state change, positions kept', () => {
  it('retries a failing cluster on the injected timers, logs offline/online once each, then delivers in order', async () => {
    const log = createMemoryLogStore();
    await log.ensureTopic('widgets', { partitions: 1 });
    for (let i = 0; i < 10; i++) await log.append('widgets', { ...reading(i), partition: 0 });
    const sent: Array<{ offsets: string[] }> = [];
    let failures = 6;
    const fake: KafkaProducer = {
      async connect() {},
      async partitionCount() {
        return 1;
      },
      async send(req) {
        if (failures-- > 0) throw new AgentError('KAFKA_CONNECTION', 'Connection error: connect ECONNREFUSED');
        sent.push({ offsets: (await decodeEncodedProduce(req)).map((r) => r.headers['millstream.offset']) });
      },
      async disconnect() {},
    };
    const t = manualTimers();
    const { lines, logger } = captureLogger();
    let random = 0;
    const r = createReplicator({
      gatewayId: 'gw1', log, kafka: { brokers: ['k:1'], clientId: 'c' }, topics: [{ topic: 'widgets' }], producerFactory: () => fake,
      statusFile: null, timers: t.timers, random: () => (random = (random + 0.37) % 1), logger, backoffInitialMs: 100, backoffMaxMs: 1000, batchRecords: 4,
    });
    await r.start();
    await until(() => r.status().state === 'offline', 'offline');
    for (let round = 0; round < 6 && sent.length === 0; round++) {
      await until(() => t.pending.size > 0, 'a back-off timer');
      expect(r.status().topics[0].partitions[0].position).toBe(0);
      expect(r.status().topics[0].partitions[0].state).toBe('backoff');
      t.fire(50);
      await new Promise((res) => setTimeout(res, 5));
    }
    await until(() => r.status().topics[0].partitions[0].position === 10, 'drained');
    expect(sent.map((s) => s.offsets)).toEqual([['0', '1', '2', '3'], ['4', '5', '6', '7'], ['8', '9']]);
    // Back-offs requested: 100·2^n capped at 1000, each within 50–100 % of its ceiling.
    const backoffs = t.requested.filter((ms) => ms >= 50);
    expect(backoffs.length).toBeGreaterThanOrEqual(5);
    backoffs.forEach((ms) => expect(ms).toBeLessThanOrEqual(1000));
    const stateLines = lines.filter((l) => l.level !== 'debug' && /replicator: (central Kafka|online)/.test(l.msg ?? ''));
    // Connected at start (online), then six failed sends and their retries: one offline line, one back-online line.
    expect(stateLines.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'replicator: online'],
      ['warn', expect.stringMatching(/central Kafka unreachable/)],
      ['info', expect.stringMatching(/reachable again, draining/)],
    ]);
    expect(stateLines[1].obj.code).toBe('KAFKA_CONNECTION');
    expect(r.status().state).toBe('online');
    await r.stop();
    expect(log.commits.at(-1)).toEqual([{ topic: 'widgets', partition: 0, offset: 10 }]);
  });
});

describe('read sizing', () => {
  it('a log read asking for storedBytesPerRecord × n bytes returns n records, as records or as blocks (the real log store, batches of every size)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'millstream-repl-read-'));
    const log = await openLogStore({ dataDir: join(dir, 'data'), minFreeBytes: 0, retentionCheckIntervalMs: 0, topicDefaults: { fsync: 'never' } });
    try {
      await log.ensureTopic('widgets', { partitions: 1 });
      // Appends of 1, 7, 100 and 3000 records: stored batches small and large.
      let i = 0;
      for (const size of [1, 7, 100, 3000, 1, 3000, 7, 3000, 100]) await log.appendBatch('widgets', Array.from({ length: size }, () => ({ ...reading(i++), partition: 0 })));
      const first = (await log.read('widgets', 0, 0, { maxRecords: 50, maxBytes: 1 << 20 })).records;
      const perRecord = storedBytesPerRecord(first);
      const perBlockRecord = storedBytesPerBlockRecord((await log.readBatches('widgets', 0, 0, { maxRecords: 50, maxBytes: 1 << 20 })).blocks);
      for (const [offset, n] of [[0, 500], [3, 5000], [108, 2000], [4000, 5000]]) {
        const { records } = await log.read('widgets', 0, offset, { maxRecords: n, maxBytes: Math.ceil(perRecord * n) });
        expect(records.length).toBe(n);
        expect((await log.readBatches('widgets', 0, offset, { maxRecords: n, maxBytes: Math.ceil(perBlockRecord * n) })).count).toBe(n);
      }
    } finally {
      await log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('stop() is bounded', () => {
  it('a send that never returns does not hold stop() past stopTimeoutMs; the position stays where it was acknowledged', async () => {
    const log = createMemoryLogStore();
    await log.ensureTopic('widgets', { partitions: 1 });
    await log.append('widgets', { ...reading(0), partition: 0 });
    let sends = 0;
    let disconnected = false;
    const fake: KafkaProducer = {
      async connect() {},
      async partitionCount() {
        return 1;
      },
      send() {
        sends++;
        return new Promise(() => {});
      },
      async disconnect() {
        disconnected = true;
      },
    };
    const t = manualTimers();
    const r = createReplicator({ gatewayId: 'gw1', log, kafka: { brokers: ['k:1'], clientId: 'c' }, topics: [{ topic: 'widgets' }], producerFactory: () => fake, statusFile: null, timers: t.timers, stopTimeoutMs: 7000 });
    await r.start();
    await until(() => sends === 1, 'sending');
    const stopped = r.stop();
    await until(() => [...t.pending.values()].some((x) => x.ms === 7000), 'stop timer');
    t.fire(7000);
    await stopped;
    expect(disconnected).toBe(true);
    expect(r.status().state).toBe('stopped');
    expect(r.status().topics[0].partitions[0].position).toBe(0);
    expect((await log.consumer('replicator')).get('widgets', 0)).toBeUndefined();
  });
});

describe('against the Kafka peer', () => {
  let kafka: KafkaMock;
  let log: MemoryLogStore;
  let replicator: Replicator | undefined;
  let n = 0;
  useKafkaMock({ brokers: 3 }, (k) => (kafka = k));
  afterEach(async () => {
    await replicator?.stop();
    replicator = undefined;
  });
  const make = (opts: Partial<ReplicatorOptions> & { topics: ReplicatorOptions['topics'] }) => {
    const { lines, logger } = captureLogger();
    replicator = createReplicator({
      gatewayId: 'gw1', log, kafka: { brokers: kafka.bootstrap, clientId: 'gw1-test', retries: 1, initialRetryTimeMs: 20, connectionTimeoutMs: 500, requestTimeoutMs: 3000 },
      backoffInitialMs: 20, backoffMaxMs: 200, lingerMs: 1, logger, statusFile: null, ...opts,
    });
    return { r: replicator, lines };
  };

  it('replicates keyed records to the same partition numbers, in order, with key, timestamp and headers, plus the dedup headers', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 3 });
    await kafka.createTopic(`gw1.${topic}`, 3);
    const input = Array.from({ length: 3000 }, (_, i) => reading(i));
    await log.appendBatch(topic, input);
    const { r } = make({ topics: [{ topic }], batchRecords: 500, compression: 'gzip' });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    for (let p = 0; p < 3; p++) {
      const local = (await log.read(topic, p, 0, { maxRecords: 10_000, maxBytes: 1 << 30 })).records;
      const got = central.get(p)!;
      expect(got.length).toBe(local.length);
      got.forEach((c, i) => {
        const l = local[i];
        expect(c.key).toBe(l.key);
        expect(c.value).toBe(l.value.toString());
        expect(c.timestamp).toBe(l.timestamp);
        expect(c.headers).toEqual({ ...l.headers, 'millstream.gateway': 'gw1', 'millstream.topic': topic, 'millstream.partition': String(p), 'millstream.offset': String(l.offset) });
      });
    }
    const st = r.status();
    expect(st.state).toBe('online');
    expect(st.topics[0]).toMatchObject({ topic, centralTopic: `gw1.${topic}`, state: 'running', centralPartitions: 3, lagRecords: 0, lagSeconds: 0 });
    expect(st.topics[0].partitions.reduce((s, p) => s + p.sentRecords, 0)).toBe(3000);
    await r.stop();
    const positions = (await log.consumer('replicator')).all()[topic];
    expect(positions).toEqual({ 0: log.endOffset(topic, 0), 1: log.endOffset(topic, 1), 2: log.endOffset(topic, 2) });
  });

  it('when the central partition count differs, the central partitioner places records by key (one key, one partition, order kept)', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 3 });
    await kafka.createTopic(`gw1.${topic}`, 2);
    await log.appendBatch(topic, Array.from({ length: 600 }, (_, i) => reading(i)));
    const { r } = make({ topics: [{ topic }] });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
    expect(r.status().topics[0].centralPartitions).toBe(2);
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    const partitionOfKey = new Map<string, number>();
    const lastOffset = new Map<string, number>();
    let total = 0;
    for (const [p, records] of central) {
      for (const rec of records) {
        total++;
        expect(partitionOfKey.get(rec.key!) ?? p).toBe(p);
        partitionOfKey.set(rec.key!, p);
        const off = Number(rec.headers['millstream.offset']);
        expect(off).toBeGreaterThan(lastOffset.get(rec.key!) ?? -1);
        lastOffset.set(rec.key!, off);
      }
    }
    expect(total).toBe(600);
  });

  it('broker down under continuous ingest, then back: offline then online, nothing lost, order kept, backlog drained', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 3 });
    await kafka.createTopic(`gw1.${topic}`, 3);
    const { r, lines } = make({ topics: [{ topic }], batchRecords: 200 });
    await r.start();
    let i = 0;
    let ingesting = true;
    const ingest = (async () => {
      while (ingesting) {
        await log.appendBatch(topic, Array.from({ length: 20 }, () => reading(i++)));
        await new Promise((res) => setTimeout(res, 2));
      }
    })();
    await until(() => r.status().topics[0].partitions.every((p) => p.sentRecords > 0), 'sending');
    await kafka.brokerDown(-1);
    await until(() => r.status().state === 'offline', 'offline');
    const whileDown = i;
    await until(() => i > whileDown + 500, 'ingest while down');
    const st = r.status();
    expect(st.lastError?.code).toMatch(/KAFKA_CONNECTION|KAFKA_UNAVAILABLE/);
    expect(st.topics[0].lagRecords).toBeGreaterThan(0);
    await kafka.brokerUp(-1);
    await until(() => r.status().state === 'online', 'online');
    ingesting = false;
    await ingest;
    await until(() => r.status().topics[0].lagRecords === 0, 'drained');
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    let total = 0;
    for (let p = 0; p < 3; p++) {
      // The documented dedup rule (drop offset ≤ highest seen) must leave exactly 0..end-1 in order.
      const kept = dedup(central.get(p)!);
      expect(kept).toEqual(Array.from({ length: log.endOffset(topic, p) }, (_, k) => k));
      total += kept.length;
    }
    expect(total).toBe(i);
    const changes = lines.filter((l) => /central Kafka/.test(l.msg ?? ''));
    expect(changes.map((l) => l.level)).toEqual(['warn', 'info']);
  });

  it('retention deleting unsent records: the gap is reported (status, log, dead-letter marker) and replication goes on', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    await log.appendBatch(topic, Array.from({ length: 20 }, (_, i) => ({ ...reading(i), partition: 0 })));
    const first = make({ topics: [{ topic }] }).r;
    await first.start();
    await until(() => first.status().topics[0].lagRecords === 0, 'first 20 sent');
    await first.stop();
    // Offline for a long time: 80 more readings, and retention deletes offsets 0..59 (40 of them never sent).
    await log.appendBatch(topic, Array.from({ length: 80 }, (_, i) => ({ ...reading(20 + i), partition: 0 })));
    log.deleteBefore(topic, 0, 60);
    const { r, lines } = make({ topics: [{ topic }] });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
    const p = r.status().topics[0].partitions[0];
    expect(p.gaps).toEqual([{ fromOffset: 20, toOffset: 59, count: 40, detectedAt: expect.any(Number) }]);
    expect(p.lostRecords).toBe(40);
    expect(p.lastError?.code).toBe('REPL_RETENTION_GAP');
    expect(lines.filter((l) => l.level === 'error' && l.obj.code === 'REPL_RETENTION_GAP').map((l) => [l.obj.fromOffset, l.obj.toOffset, l.obj.count])).toEqual([[20, 59, 40]]);
    const marker = (await log.read('replicator.dead-letter', 0, 0)).records;
    expect(JSON.parse(marker[0].value.toString())).toMatchObject({ reason: 'retention-gap', gatewayId: 'gw1', topic, partition: 0, fromOffset: 20, toOffset: 59, count: 40 });
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    expect(central.get(0)!.map((c) => Number(c.headers['millstream.offset']))).toEqual([...Array.from({ length: 20 }, (_, k) => k), ...Array.from({ length: 40 }, (_, k) => 60 + k)]);
  });

  it('a non-retriable error (topic authorization) stops that topic with a clear status; the other topic goes on', async () => {
    log = createMemoryLogStore();
    const denied = `w${++n}`;
    const fine = `w${++n}`;
    for (const t of [denied, fine]) {
      await log.ensureTopic(t, { partitions: 1 });
      await kafka.createTopic(`gw1.${t}`, 1);
      await log.appendBatch(t, Array.from({ length: 50 }, (_, i) => ({ ...reading(i), partition: 0 })));
    }
    kafka.shim.failTopic(`gw1.${denied}`, 29);
    try {
      const { r } = make({ topics: [{ topic: denied }, { topic: fine }] });
      await r.start();
      await until(() => r.status().topics[0].state === 'stopped' && r.status().topics[1].lagRecords === 0, 'denied stopped, fine drained');
      const [d, f] = r.status().topics;
      expect(d.error).toMatchObject({ code: 'KAFKA_TOPIC_AUTHORIZATION', retriable: false, kafkaType: 'TOPIC_AUTHORIZATION_FAILED' });
      expect(d.partitions[0]).toMatchObject({ state: 'stopped', position: 0, lagRecords: 50 });
      expect(f).toMatchObject({ state: 'running', lagRecords: 0 });
      await log.appendBatch(fine, [{ ...reading(99), partition: 0 }]);
      await until(() => r.status().topics[1].partitions[0].position === 51, 'fine keeps going');
    } finally {
      kafka.shim.failTopic(`gw1.${denied}`, 0);
    }
  });

  it('a record too large for the cluster goes to the dead-letter topic with the reason; the records around it are replicated', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    const records = Array.from({ length: 8 }, (_, i) => ({ ...reading(i), partition: 0 }));
    records[5] = { ...records[5], value: JSON.stringify({ blob: 'x'.repeat(20_000) }) };
    await log.appendBatch(topic, records);
    kafka.shim.setMaxMessageBytes(10_000);
    try {
      const { r } = make({ topics: [{ topic }] });
      await r.start();
      await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
      const p = r.status().topics[0].partitions[0];
      expect(p).toMatchObject({ deadLettered: 1, sentRecords: 7, position: 8 });
      expect(p.lastError).toMatchObject({ code: 'KAFKA_MESSAGE_TOO_LARGE', kafkaType: 'MESSAGE_TOO_LARGE' });
      expect(r.status().topics[0].state).toBe('running');
      const dlq = (await log.read('replicator.dead-letter', 0, 0)).records;
      expect(dlq).toHaveLength(1);
      expect(dlq[0].value.toString()).toBe(records[5].value);
      expect(dlq[0].headers).toMatchObject({ 'millstream.offset': '5', 'millstream.dead-letter.code': 'KAFKA_MESSAGE_TOO_LARGE', 'millstream.dead-letter.central-topic': `gw1.${topic}` });
      expect(dlq[0].headers['millstream.dead-letter.reason']).toMatch(/MESSAGE_TOO_LARGE/);
      const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
      expect(central.get(0)!.map((c) => c.headers['millstream.offset'])).toEqual(['0', '1', '2', '3', '4', '6', '7']);
    } finally {
      kafka.shim.setMaxMessageBytes(Infinity);
    }
  });

  it('connection dropped mid-produce: the broker stored the batch, the retry is acknowledged as a duplicate, nothing stored twice', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    await log.appendBatch(topic, Array.from({ length: 30 }, (_, i) => ({ ...reading(i), partition: 0 })));
    const dupsBefore = kafka.shim.sequences.counts.duplicate;
    kafka.shim.dropNextProduceResponse(2);
    const { r } = make({ topics: [{ topic }], batchRecords: 10 });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
    expect(kafka.shim.sequences.counts.duplicate - dupsBefore).toBe(2);
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    expect(central.get(0)!.map((c) => Number(c.headers['millstream.offset']))).toEqual(Array.from({ length: 30 }, (_, k) => k));
  });

  it('retriable broker errors and dropped connections: retried until delivered, once each, the error shown meanwhile', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    await log.appendBatch(topic, Array.from({ length: 40 }, (_, i) => ({ ...reading(i), partition: 0 })));
    // NOT_ENOUGH_REPLICAS ×4, a connection the broker drops before storing, REQUEST_TIMED_OUT ×2: more than kafkajs retries itself.
    await kafka.pushErrors(0, [19, 19, 19, 19, -195, 7, 7]);
    const { r, lines } = make({ topics: [{ topic }], batchRecords: 10 });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
    const p = r.status().topics[0].partitions[0];
    expect(p.lastError).toMatchObject({ retriable: true });
    expect(['KAFKA_UNAVAILABLE', 'KAFKA_CONNECTION']).toContain(p.lastError!.code);
    expect(r.status().topics[0].state).toBe('running');
    expect(lines.some((l) => l.level === 'error')).toBe(false);
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    expect(central.get(0)!.map((c) => Number(c.headers['millstream.offset']))).toEqual(Array.from({ length: 40 }, (_, k) => k));
  });

  it('a producer-state error (OUT_OF_ORDER_SEQUENCE_NUMBER) replaces the producer and goes on without loss', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    await log.appendBatch(topic, Array.from({ length: 20 }, (_, i) => ({ ...reading(i), partition: 0 })));
    const { r, lines } = make({ topics: [{ topic }], batchRecords: 10 });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'first 20');
    kafka.shim.failTopic(`gw1.${topic}`, 45);
    try {
      await log.appendBatch(topic, Array.from({ length: 20 }, (_, i) => ({ ...reading(20 + i), partition: 0 })));
      await until(() => r.status().topics[0].partitions[0].lastError?.code === 'KAFKA_PRODUCER_STATE', 'producer state error');
      await until(() => lines.some((l) => /replacing the Kafka producer/.test(l.msg ?? '')), 'producer replaced');
    } finally {
      kafka.shim.failTopic(`gw1.${topic}`, 0);
    }
    await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
    expect(r.status().topics[0].state).toBe('running');
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    expect(dedup(central.get(0)!)).toEqual(Array.from({ length: 40 }, (_, k) => k));
  });

  it('UNKNOWN_TOPIC_OR_PARTITION (a topic being created or re-created) is retried and shown, without going offline', async () => {
    // The mock cluster auto-creates topics on Metadata, so the broker's answer to Produce is injected by the shim.
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    await log.appendBatch(topic, Array.from({ length: 5 }, (_, i) => ({ ...reading(i), partition: 0 })));
    kafka.shim.failTopic(`gw1.${topic}`, 3);
    const { r } = make({ topics: [{ topic }] });
    try {
      await r.start();
      await until(() => r.status().topics[0].partitions[0].lastError?.code === 'KAFKA_UNKNOWN_TOPIC', 'unknown topic shown');
      expect(r.status().state).toBe('online');
      expect(r.status().topics[0].partitions[0]).toMatchObject({ state: 'backoff', position: 0, lagRecords: 5 });
    } finally {
      kafka.shim.failTopic(`gw1.${topic}`, 0);
    }
    await until(() => r.status().topics[0].lagRecords === 0, 'delivered once the topic answers');
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    expect(central.get(0)!.map((c) => Number(c.headers['millstream.offset']))).toEqual([0, 1, 2, 3, 4]);
  });

  it('starts offline when the cluster is unreachable (start() does not wait for it) and goes online when it is back', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    await kafka.brokerDown(-1);
    try {
      const { r } = make({ topics: [{ topic }] });
      await r.start();
      await until(() => r.status().state === 'offline', 'offline');
      expect(r.status().lastError?.code).toBe('KAFKA_CONNECTION');
    } finally {
      await kafka.brokerUp(-1);
    }
    await until(() => replicator!.status().state === 'online', 'online with nothing to send');
  });

  it('stop() is idempotent and start() after stop() resumes from the committed position', async () => {
    log = createMemoryLogStore();
    const topic = `w${++n}`;
    await log.ensureTopic(topic, { partitions: 1 });
    await kafka.createTopic(`gw1.${topic}`, 1);
    await log.appendBatch(topic, Array.from({ length: 20 }, (_, i) => ({ ...reading(i), partition: 0 })));
    const { r } = make({ topics: [{ topic }] });
    await r.start();
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'caught up');
    await Promise.all([r.stop(), r.stop()]);
    await r.stop();
    expect(r.status().state).toBe('stopped');
    await log.appendBatch(topic, Array.from({ length: 5 }, (_, i) => ({ ...reading(20 + i), partition: 0 })));
    await r.start();
    await until(() => r.status().topics[0].partitions[0].position === 25, 'resumed');
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    expect(central.get(0)!.map((c) => Number(c.headers['millstream.offset']))).toEqual(Array.from({ length: 25 }, (_, k) => k));
  });
});

describe('TLS to the cluster (the peer behind a TLS listener)', () => {
  let kafka: KafkaMock;
  let replicator: Replicator | undefined;
  beforeAll(async () => {
    kafka = await startKafkaMock({ brokers: 1, tls: { key: TEST_KAFKA_TLS_KEY, cert: TEST_KAFKA_TLS_CERT } });
  });
  afterAll(async () => {
    await kafka?.stop();
  });
  afterEach(async () => {
    await replicator?.stop();
    replicator = undefined;
  });
  const make = (log: MemoryLogStore, topic: string, tls: NonNullable<ReplicatorOptions['kafka']['tls']>) => {
    replicator = createReplicator({
      gatewayId: 'gw1', log, topics: [{ topic }], statusFile: null, backoffInitialMs: 20, backoffMaxMs: 200,
      kafka: { brokers: kafka.bootstrap, clientId: 'gw1-tls', tls, retries: 1, initialRetryTimeMs: 20, connectionTimeoutMs: 1000 },
    });
    return replicator;
  };

  it('replicates over TLS when the private CA is configured', async () => {
    const log = createMemoryLogStore();
    await log.ensureTopic('t1', { partitions: 1 });
    await kafka.createTopic('gw1.t1', 1);
    await log.appendBatch('t1', Array.from({ length: 20 }, (_, i) => ({ ...reading(i), partition: 0 })));
    const r = make(log, 't1', { ca: [TEST_KAFKA_TLS_CERT] });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0, 'replicated over TLS');
    expect(r.status().state).toBe('online');
    expect(kafka.shim.errors).toEqual([]);
  });

  it('refuses a broker whose certificate the configured CAs do not sign: offline, the reason shown, nothing acknowledged', async () => {
    const log = createMemoryLogStore();
    await log.ensureTopic('t2', { partitions: 1 });
    await kafka.createTopic('gw1.t2', 1);
    await log.appendBatch('t2', [{ ...reading(0), partition: 0 }]);
    const r = make(log, 't2', {});
    await r.start();
    await until(() => r.status().state === 'offline', 'offline');
    expect(r.status().lastError).toMatchObject({ code: 'KAFKA_TLS', retriable: true });
    expect(r.status().lastError!.message).toMatch(/self-signed certificate/i);
    expect(r.status().topics[0].partitions[0].position).toBe(0);
  });
});
