/**
 * The whole path on one gateway: an MQTT device → the agent (config-driven)
 * → its log → the replicator → the Kafka peer (librdkafka's mock cluster
 * behind the test shim), read back centrally with the dedup headers; the
 * agent's status and metrics report the replication position and lag.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, expect, it } from 'vitest';
import { createAgent, type Agent } from '../agent/agent.ts';
import { loadConfig } from '../agent/config.ts';
import { startKafkaMock, type KafkaMock } from './support/kafka-mock.ts';
import { readBack } from './support/kafka-read.ts';
import { startBroker, type TestBroker } from './support/mqtt-broker.ts';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {}, trace() {} };
let dir = '';
let kafka: KafkaMock | undefined;
let broker: TestBroker | undefined;
let agent: Agent | undefined;

afterAll(async () => {
  await agent?.stop();
  await kafka?.stop();
  await broker?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function until<T>(fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('replicates what an MQTT device sends, keyed, with the gateway headers, and reports lag 0 when drained', async () => {
  dir = await mkdtemp(join(tmpdir(), 'millstream-agent-repl-'));
  kafka = await startKafkaMock({ brokers: 3 });
  await kafka.createTopic('gw-r.widgets', 3);
  broker = await startBroker('aedes');
  const port = broker.port;
  const file = join(dir, 'millstream.yaml');
  await writeFile(
    file,
    `gateway: { id: gw-r }
dataDir: data
store: { minFreeBytes: 0 }
topics:
  widgets: { partitions: 3 }
sources:
  - name: hall
    topic: widgets
    mqtt:
      url: mqtt://127.0.0.1:${port}
      clientId: agent-repl
      subscriptions: [{ topic: "factory/+production_line/+sensor_id/reading", qos: 1 }]
replication:
  enabled: true
  brokers: [${kafka.bootstrap.map((b) => JSON.stringify(b)).join(', ')}]
  topics: [{ topic: widgets }]
  compression: gzip
  lingerMs: 5
http: { port: 0, host: 127.0.0.1 }
`,
  );
  agent = createAgent(await loadConfig(file), { logger: quiet });
  await agent.start();
  await until(() => (agent!.status().sources[0]?.connected ? true : undefined));

  const total = 500;
  const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'device' });
  for (let i = 0; i < total; i++) {
    const sensor = `aa-${100 + (i % 9)}`;
    await publisher.publishAsync(`factory/w0${i % 2}/${sensor}/reading`, JSON.stringify({ seq: i, reading_ts: new Date(1_700_000_000_000 + i).toISOString(), temp_celcius: 20 + (i % 5) }), { qos: 1 });
  }
  await publisher.endAsync();

  // Drained: every partition's position reached its end offset, total records = what was published.
  const rows = await until(() => {
    const r = agent!.status().replication.partitions;
    const end = r.reduce((a, p) => a + p.endOffset, 0);
    return end === total && r.every((p) => p.position === p.endOffset && p.lagRecords === 0) ? r : undefined;
  });
  expect(rows.map((r) => r.partition).sort()).toEqual([0, 1, 2]);
  expect(rows.every((r) => r.centralTopic === 'gw-r.widgets')).toBe(true);
  const metrics = await (await fetch(new URL('/metrics', agent.url!))).text();
  expect(metrics).toMatch(/^millstream_replication_lag_records\{topic="widgets",partition="0"\} 0$/m);

  const central = await readBack(kafka.bootstrap, 'gw-r.widgets');
  const all = [...central.values()].flat();
  expect(all).toHaveLength(total);
  expect(all.map((r) => (JSON.parse(r.value) as { seq: number }).seq).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
  const log = agent.log()!;
  for (const [partition, records] of central) {
    // Same key → same partition number centrally as locally (both use Kafka's default partitioner, counts match).
    for (const r of records) {
      expect(r.headers['millstream.gateway']).toBe('gw-r');
      expect(r.headers['millstream.topic']).toBe('widgets');
      expect(Number(r.headers['millstream.partition'])).toBe(partition);
      expect(log.partitionFor('widgets', r.key)).toBe(partition);
    }
    // In local order: offsets ascend.
    const offsets = records.map((r) => Number(r.headers['millstream.offset']));
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  }
});
