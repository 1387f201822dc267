/**
 * The replicator with the real log store against the Kafka peer
 * (librdkafka's mock cluster behind the shim), read back with kafkajs's
 * decoders.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createReplicator } from '../agent/replicator/index.ts';
import type { Replicator, ReplicatorOptions } from '../agent/replicator/index.ts';
import { openLogStore } from '../log-store/index.ts';
import type { LogStoreApi } from '../log-store/index.ts';
import { useKafkaMock } from './support/kafka-mock-hooks.ts';
import type { KafkaMock } from './support/kafka-mock.ts';
import { readBack } from './support/kafka-read.ts';

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

function reading(i: number) {
  const sensor = `aa-${100 + (i % 211)}`;
  return {
    key: sensor,
    value: JSON.stringify({ reading_ts: new Date(1_700_000_000_000 + i * 100).toISOString(), sensor_id: sensor, production_line: `w0${i % 4}`, widget_type: 'acme94', colour: i % 3 ? 'RED' : 'BLUE', temp_celcius: 20 + (i % 7), widget_weight_g: 100 + (i % 50) }),
    timestamp: 1_700_000_000_000 + i * 100,
    headers: { source: 'modbus', device: `plc-${i % 5}`, gateway: 'gw1' },
  };
}

/** The dedup rule for central consumers, applied per (gateway, topic, partition): returns the kept records. */
function dedup<T extends { headers: Record<string, string> }>(records: readonly T[]): T[] {
  const highest = new Map<string, number>();
  return records.filter((r) => {
    const id = `${r.headers['millstream.gateway']}/${r.headers['millstream.topic']}/${r.headers['millstream.partition']}`;
    const offset = Number(r.headers['millstream.offset']);
    if (offset <= (highest.get(id) ?? -1)) return false;
    highest.set(id, offset);
    return true;
  });
}

let kafka: KafkaMock;
let dir: string;
let log: LogStoreApi | undefined;
let replicator: Replicator | undefined;
let n = 0;

useKafkaMock({ brokers: 3 }, (k) => (kafka = k));
afterEach(async () => {
  await replicator?.stop();
  await log?.close();
  replicator = undefined;
  log = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function setup(partitions: number, topicConfig: Record<string, number> = {}) {
  dir = await mkdtemp(join(tmpdir(), 'millstream-repl-e2e-'));
  log = await openLogStore({ dataDir: join(dir, 'data'), minFreeBytes: 0, retentionCheckIntervalMs: 0, topicDefaults: { fsync: 'never' } });
  const topic = `widgets${++n}`;
  await log.ensureTopic(topic, { partitions, ...topicConfig });
  await kafka.createTopic(`gw1.${topic}`, partitions);
  return { log, topic };
}

function start(l: LogStoreApi, topic: string, extra: Partial<ReplicatorOptions> = {}) {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj: obj as Record<string, unknown>, msg });
  replicator = createReplicator({
    gatewayId: 'gw1',
    log: l,
    kafka: { brokers: kafka.bootstrap, clientId: 'gw1-e2e', retries: 1, initialRetryTimeMs: 20, connectionTimeoutMs: 500, requestTimeoutMs: 3000 },
    topics: [{ topic }],
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
    ...extra,
  });
  return { r: replicator, lines };
}

describe('replicator with the real log store', () => {
  it('100,000 keyed readings across 3 partitions: every record once, in order per partition, keys, timestamps and headers intact', async () => {
    const { log: l, topic } = await setup(3);
    const total = 100_000;
    for (let i = 0; i < total; i += 5000) await l.appendBatch(topic, Array.from({ length: 5000 }, (_, k) => reading(i + k)));
    // gzip: the mock cluster keeps at most 5 MB per partition (older batches are evicted), compressed batches fit.
    const { r } = start(l, topic, { compression: 'gzip' });
    await r.start();
    await until(() => r.status().topics[0].lagRecords === 0);
    await r.stop();
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    let count = 0;
    for (let p = 0; p < 3; p++) {
      const end = l.endOffset(topic, p);
      const local = (await l.read(topic, p, 0, { maxRecords: end + 1, maxBytes: 1 << 30 })).records;
      const got = central.get(p)!;
      expect(got.length).toBe(end);
      for (let k = 0; k < got.length; k++) {
        const c = got[k];
        const o = local[k];
        if (c.key !== o.key || c.value !== o.value.toString() || c.timestamp !== o.timestamp || c.headers['millstream.offset'] !== String(o.offset)) {
          expect({ key: c.key, value: c.value, timestamp: c.timestamp, offset: c.headers['millstream.offset'] }).toEqual({ key: o.key, value: o.value.toString(), timestamp: o.timestamp, offset: String(o.offset) });
        }
        if (k % 997 === 0) expect(c.headers).toEqual({ ...o.headers, 'millstream.gateway': 'gw1', 'millstream.topic': topic, 'millstream.partition': String(p), 'millstream.offset': String(o.offset) });
      }
      count += got.length;
    }
    expect(count).toBe(total);
    const positions = (await l.consumer('replicator')).all()[topic];
    expect(positions).toEqual({ 0: l.endOffset(topic, 0), 1: l.endOffset(topic, 1), 2: l.endOffset(topic, 2) });
  });

  it('broker down under continuous ingest, then back: nothing lost, order kept, backlog drained, lag reported while down', async () => {
    const { log: l, topic } = await setup(3);
    const { r, lines } = start(l, topic, { batchRecords: 500 });
    await r.start();
    let i = 0;
    let ingesting = true;
    const ingest = (async () => {
      while (ingesting) {
        await l.appendBatch(topic, Array.from({ length: 25 }, () => reading(i++)));
        await new Promise((res) => setTimeout(res, 2));
      }
    })();
    await until(() => r.status().topics[0].partitions.every((p) => p.sentRecords > 0));
    await kafka.brokerDown(-1);
    await until(() => r.status().state === 'offline');
    const at = i;
    await until(() => i > at + 2000);
    const down = r.status().topics[0];
    expect(down.lagRecords).toBeGreaterThan(0);
    expect(down.lagSeconds).toBeGreaterThan(0);
    expect(down.partitions.some((p) => p.state === 'backoff' && p.lastError !== undefined)).toBe(true);
    await kafka.brokerUp(-1);
    await until(() => r.status().state === 'online');
    ingesting = false;
    await ingest;
    await until(() => r.status().topics[0].lagRecords === 0);
    const central = await readBack(kafka.bootstrap, `gw1.${topic}`);
    let total = 0;
    for (let p = 0; p < 3; p++) {
      const kept = dedup(central.get(p)!).map((c) => Number(c.headers['millstream.offset']));
      expect(kept).toEqual(Array.from({ length: l.endOffset(topic, p) }, (_, k) => k));
      total += kept.length;
    }
    expect(total).toBe(i);
    expect(lines.filter((x) => /central Kafka/.test(x.msg ?? '')).map((x) => x.level)).toEqual(['warn', 'info']);
  });

  it('retention deletes records that were never sent: the gap (count and offsets) is reported, the rest replicated', async () => {
    const { log: l, topic } = await setup(1, { segmentBytes: 4096, retentionBytes: 4096 * 3, retentionMs: -1 });
    const { r, lines } = start(l, topic);
    await r.start();
    await l.appendBatch(topic, Array.from({ length: 20 }, (_, k) => reading(k)));
    await until(() => r.status().topics[0].partitions[0].position === 20);
    await kafka.brokerDown(-1);
    for (let k = 20; k < 400; k += 20) await l.appendBatch(topic, Array.from({ length: 20 }, (_, j) => reading(k + j)));
    await until(() => r.status().state === 'offline');
    const position = r.status().topics[0].partitions[0].position;
    const report = await l.enforceRetention();
    expect(report.deletedSegments.length).toBeGreaterThan(0);
    const earliest = l.earliestOffset(topic, 0);
    expect(earliest).toBeGreaterThan(position);
    await kafka.brokerUp(-1);
    await until(() => r.status().topics[0].lagRecords === 0);
    // A batch read before retention ran may still be sent from memory, so the gap starts at or after `position`;
    // it ends just before the new earliest offset. Invariant: every offset is delivered or reported lost, never both.
    const p = r.status().topics[0].partitions[0];
    expect(p.gaps).toHaveLength(1);
    const gap = p.gaps[0];
    expect(gap.fromOffset).toBeGreaterThanOrEqual(position);
    expect(gap.toOffset).toBe(earliest - 1);
    expect(gap.count).toBe(gap.toOffset - gap.fromOffset + 1);
    expect(gap.count).toBeGreaterThan(0);
    expect(p.lostRecords).toBe(gap.count);
    expect(lines.filter((x) => x.obj.code === 'REPL_RETENTION_GAP').map((x) => [x.level, x.obj.fromOffset, x.obj.toOffset, x.obj.count])).toEqual([['error', gap.fromOffset, gap.toOffset, gap.count]]);
    const marker = (await l.read('replicator.dead-letter', 0, 0)).records.map((x) => JSON.parse(x.value.toString()));
    expect(marker).toEqual([expect.objectContaining({ reason: 'retention-gap', topic, partition: 0, fromOffset: gap.fromOffset, toOffset: gap.toOffset, count: gap.count })]);
    const central = dedup((await readBack(kafka.bootstrap, `gw1.${topic}`)).get(0)!).map((c) => Number(c.headers['millstream.offset']));
    const lost = Array.from({ length: gap.count }, (_, k) => gap.fromOffset + k);
    expect([...central, ...lost].sort((a, b) => a - b)).toEqual(Array.from({ length: l.endOffset(topic, 0) }, (_, k) => k));
    expect(central.filter((o) => o >= gap.fromOffset && o <= gap.toOffset)).toEqual([]);
  });
});
