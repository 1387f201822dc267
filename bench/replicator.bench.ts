/**
 * Replicator benchmark (issue 5). In one run:
 *
 * 1. fill: 1,000,000 widget readings (~170 bytes key+value, plus headers;
 *    3 partitions, keyed) into a local log store (fsync 'never': set-up);
 * 2. drain: a child process runs the replicator on that backlog against the
 *    Kafka peer on loopback (librdkafka's mock cluster, 3 brokers, behind the
 *    test shim, both hosted by this parent) until its lag is 0: records/s
 *    and MB/s of key+value payload, and the child's peak RSS (the
 *    replicator's own, without the peer's memory). The replicator runs as
 *    the agent does: reads each batch from the log, encodes it with its own
 *    Produce encoder (agent/kafka-produce-encoder.ts, dedup headers added
 *    there) and sends it through kafkajs's connections (agent/kafka-client.ts),
 *    committing positions as batches are acknowledged;
 * 3. baseline: another child runs a bare kafkajs producer (its public API,
 *    `producer.send`, so kafkajs's own encoding) with the same settings
 *    (idempotent, acks -1, one request in flight, same batch size, one
 *    sender per partition) sending the same records, with the same headers,
 *    from memory; half before the drain and half after, so a load change on
 *    the shared machine biases neither side.
 *
 * The ratio is therefore what replicating from the log with millstream's
 * client costs against what an application gets from kafkajs as published.
 * Also printed: CPU time per record of both children (less noisy than wall
 * time on a shared machine), the load average, and the CPU the peer used
 * while the replicator drained (the shim in this process, the mock in its
 * own), so a figure limited by the peer or by other load can be told apart.
 * Targets (issue 5): ≥ 200,000 records/s, ≥ 0.8 × baseline, peak RSS ≤ 150 MB.
 * `BENCH_SCALE` multiplies the record count; `BENCH_CHILD_NODE_ARGS` adds
 * node flags to both children (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CompressionTypes, Kafka, Partitioners, logLevel } from 'kafkajs';
import { createReplicator } from '../agent/replicator/index.ts';
import { kafkaPartition, openLogStore } from '../log-store/index.ts';
import type { RecordInput } from '../log-store/index.ts';
import { buildKafkaMockLauncher } from '../test/support/kafka-mock-build.ts';
import { startKafkaMock } from '../test/support/kafka-mock.ts';
import { runBenchChild } from './harness.ts';
import type { BenchSuite } from './harness.ts';

const PARTITIONS = 3;
const BATCH_RECORDS = 5000;
const POOL_SIZE = 10_000;
const SENSORS = 200;
const MB = 1024 * 1024;
const CHILD_FLAG = '--replicator-bench-child';

function readingPool(): RecordInput[] {
  const colours = ['RED', 'BLUE', 'GREEN', 'YELLOW'];
  const t0 = Date.parse('2020-02-14T12:19:27Z');
  return Array.from({ length: POOL_SIZE }, (_, i) => {
    const sensor = `aa-${100 + (i % SENSORS)}`;
    return {
      key: sensor,
      value: JSON.stringify({ reading_ts: new Date(t0 + i * 250).toISOString(), sensor_id: sensor, production_line: `w0${1 + (i % 4)}`, widget_type: 'acme94', colour: colours[i % 4], temp_celcius: 15 + ((i * 7) % 20), widget_weight_g: 90 + ((i * 13) % 60) }),
      timestamp: t0 + i * 250,
      headers: { source: 'mqtt', device: `dev-${i % 8}` },
    };
  });
}

interface ChildArgs {
  mode: 'replicator' | 'baseline';
  bootstrap: string[];
  dataDir: string;
  count: number;
}

/** Runs in the child: drains (or sends from memory) and prints `{"ms":…,"rssMb":…}`. */
async function child(args: ChildArgs): Promise<void> {
  let ms: number;
  // CPU time of this process over the timed part: unlike wall time, barely moved by other load on a shared machine.
  let cpu0: NodeJS.CpuUsage;
  let cpu: NodeJS.CpuUsage;
  // Where the memory goes: peaks of V8 heap and of Buffer memory outside it, sampled every 50 ms.
  const peak = { heapMb: 0, externalMb: 0 };
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peak.heapMb = Math.max(peak.heapMb, m.heapTotal / MB);
    peak.externalMb = Math.max(peak.externalMb, m.external / MB);
  }, 50);
  if (args.mode === 'replicator') {
    const log = await openLogStore({ dataDir: args.dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
    const replicator = createReplicator({
      gatewayId: 'gw1', log, kafka: { brokers: args.bootstrap, clientId: 'bench' }, topics: [{ topic: 'widgets' }],
      batchRecords: BATCH_RECORDS, batchBytes: 4 * MB, statusFile: null,
    });
    const t0 = performance.now();
    cpu0 = process.cpuUsage();
    await replicator.start();
    while (replicator.status().topics[0].lagRecords > 0) await new Promise((r) => setTimeout(r, 20));
    ms = performance.now() - t0;
    cpu = process.cpuUsage(cpu0);
    await replicator.stop();
    await log.close();
  } else {
    const pool = readingPool();
    const perPartition: RecordInput[][] = Array.from({ length: PARTITIONS }, () => []);
    for (const r of pool) perPartition[kafkaPartition(r.key!, PARTITIONS)].push(r);
    const counts = Array.from({ length: PARTITIONS }, () => 0);
    for (let i = 0; i < args.count; i++) counts[kafkaPartition(pool[i % POOL_SIZE].key!, PARTITIONS)]++;
    const client = new Kafka({ brokers: args.bootstrap, clientId: 'bench-baseline', logLevel: logLevel.NOTHING });
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    // Timed from before connect, as the replicator's drain is timed from start() (which connects).
    const t0 = performance.now();
    cpu0 = process.cpuUsage();
    await producer.connect();
    await Promise.all(
      perPartition.map(async (records, p) => {
        for (let sent = 0; sent < counts[p]; ) {
          const n = Math.min(BATCH_RECORDS, counts[p] - sent);
          const messages = Array.from({ length: n }, (_, k) => {
            const r = records[(sent + k) % records.length];
            return {
              key: r.key, value: r.value as string, timestamp: String(r.timestamp), partition: p,
              headers: { ...r.headers, 'millstream.gateway': 'gw1', 'millstream.topic': 'widgets', 'millstream.partition': String(p), 'millstream.offset': String(sent + k) },
            };
          });
          await producer.send({ topic: 'baseline.widgets', acks: -1, compression: CompressionTypes.None, messages });
          sent += n;
        }
      }),
    );
    ms = performance.now() - t0;
    cpu = process.cpuUsage(cpu0);
    await producer.disconnect();
  }
  clearInterval(sampler);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  process.stdout.write(`${JSON.stringify({ ms, cpuMs, rssMb: process.resourceUsage().maxRSS / 1024, ...peak })}\n`);
}

interface ChildResult {
  ms: number;
  cpuMs: number;
  rssMb: number;
  heapMb: number;
  externalMb: number;
}

/** CPU time (user + system) of another process so far, in ms, from /proc (NaN where there is none). */
function processCpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (100 Hz)
  } catch {
    return Number.NaN;
  }
}

function runChild(args: ChildArgs): Promise<ChildResult> {
  return runBenchChild<ChildResult>(fileURLToPath(import.meta.url), CHILD_FLAG, args, { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' });
}

const suite: BenchSuite = {
  name: 'replicator',
  description: 'drain a 1M-record backlog to the Kafka peer vs a bare kafkajs producer',
  async run(report, ctx) {
    const built = await buildKafkaMockLauncher();
    if (!built.ok) throw new Error(built.error);
    const count = Math.round(1_000_000 * ctx.scale);
    const pool = readingPool();
    const kafka = await startKafkaMock({ brokers: 3 });
    try {
      await kafka.createTopic('gw1.widgets', PARTITIONS);
      await kafka.createTopic('baseline.widgets', PARTITIONS);
      const dataDir = join(ctx.tmpDir, 'data');
      const log = await openLogStore({ dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0, topicDefaults: { fsync: 'never' } });
      await log.ensureTopic('widgets', { partitions: PARTITIONS });
      let bytes = 0;
      for (let i = 0; i < count; i += 10_000) {
        const batch = Array.from({ length: Math.min(10_000, count - i) }, (_, k) => pool[(i + k) % POOL_SIZE]);
        for (const r of batch) bytes += Buffer.byteLength(r.key ?? '') + Buffer.byteLength(r.value);
        await log.appendBatch('widgets', batch);
      }
      await log.close();
      const payloadMb = bytes / MB;
      report.note(`backlog: ${count} records, ${payloadMb.toFixed(1)} MB key+value, ${PARTITIONS} partitions; batches of ${BATCH_RECORDS} records, no compression`);

      // The baseline runs in two halves, before and after the drain, so load drifting on a shared machine biases neither side.
      const half = Math.floor(count / 2);
      const base1 = await runChild({ mode: 'baseline', bootstrap: kafka.bootstrap, dataDir, count: half });
      // The peer (shim in this process, librdkafka's mock in its own): CPU it used while the replicator drained.
      const peerCpu0 = process.cpuUsage();
      const mockCpu0 = processCpuMs(kafka.pid);
      const drain = await runChild({ mode: 'replicator', bootstrap: kafka.bootstrap, dataDir, count });
      const peerCpu = process.cpuUsage(peerCpu0);
      const mockCpuMs = processCpuMs(kafka.pid) - mockCpu0;
      const base2 = await runChild({ mode: 'baseline', bootstrap: kafka.bootstrap, dataDir, count: count - half });
      const base = { ms: base1.ms + base2.ms, cpuMs: base1.cpuMs + base2.cpuMs, rssMb: Math.max(base1.rssMb, base2.rssMb), heapMb: Math.max(base1.heapMb, base2.heapMb), externalMb: Math.max(base1.externalMb, base2.externalMb) };
      report.compare('drain backlog (records/s)', count / (drain.ms / 1000), count / (base.ms / 1000), 'records/s', { min: 200_000, minRatio: 0.8 });
      report.compare('drain backlog (MB/s key+value)', payloadMb / (drain.ms / 1000), payloadMb / (base.ms / 1000), 'MB/s', { minRatio: 0.8 });
      report.compare('peak RSS of the process (replicator vs bare producer)', drain.rssMb, base.rssMb, 'MB', { max: 150 });
      const load = loadavg()[0];
      const peerMs = (peerCpu.user + peerCpu.system) / 1000;
      report.note(`peer CPU while draining: shim ${((100 * peerMs) / drain.ms).toFixed(0)} % of a core (this process), librdkafka mock ${Number.isNaN(mockCpuMs) ? '?' : ((100 * mockCpuMs) / drain.ms).toFixed(0)} %`);
      report.note(`CPU time per record: replicator ${((drain.cpuMs * 1000) / count).toFixed(2)} µs (${((100 * drain.cpuMs) / drain.ms).toFixed(0)} % of a core while draining), bare producer ${((base.cpuMs * 1000) / count).toFixed(2)} µs; load average ${load.toFixed(1)} on ${availableParallelism()} cores`);
      report.note(`peak V8 heap ${drain.heapMb.toFixed(0)} MB (bare producer ${base.heapMb.toFixed(0)} MB), peak Buffer memory outside the heap ${drain.externalMb.toFixed(0)} MB (bare producer ${base.externalMb.toFixed(0)} MB)`);
      if (kafka.shim.errors.length > 0) report.note(`peer shim errors: ${kafka.shim.errors.join('; ')}`);
    } finally {
      await kafka.stop();
    }
  },
};

export default suite;

if (process.argv[2] === CHILD_FLAG) await child(JSON.parse(process.argv[3]) as ChildArgs);
