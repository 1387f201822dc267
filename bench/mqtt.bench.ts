/**
 * MQTT → log end to end (issue 4). A real broker on loopback (Mosquitto as a
 * child process when installed, so it does not share our event loop; else
 * aedes in-process) holds N QoS 1 widget readings queued for two persistent
 * sessions; then, one after the other:
 *
 * 1. baseline: a bare MQTT.js subscriber with no processing (it PUBACKs on
 *    receipt) drains its session, in a child process of its own (plain
 *    node): messages/s received;
 * 2. the MQTT adapter drains its session into a real log store (3
 *    partitions, fsync 'always', group commit), acknowledging each batch
 *    only after the log made it durable: readings/s stored durably. It runs
 *    in a child process of its own too (plain node when the bench runs
 *    compiled, as the agent does), so the peak RSS is the adapter's and the
 *    log store's, not the bench harness's or the broker clients'.
 *
 * Both read the same messages from the same broker with the same session
 * settings: MQTT 5, QoS 1, persistent session, receiveMaximum =
 * MAX_PENDING (the adapter's maxPendingReadings), and the broker's own
 * in-flight and queue caps off (Mosquitto's max_inflight_messages default,
 * 20, would otherwise cap QoS 1 delivery to a client whose acks wait for an
 * fsync), and both skip MQTT.js's per-packet `debug` trace calls while
 * tracing is off; so the ratio shows what decoding, the schema-free reading
 * pipeline and durable storage cost over receiving alone. The publisher
 * runs in a child process before either measurement, so its cost and
 * memory are in neither figure.
 *
 * Targets: ≥ 100,000 readings/s, ≥ 0.8 × baseline, peak RSS ≤ 100 MB.
 * `BENCH_SCALE` multiplies N (default 200,000).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { connectAsync } from 'mqtt';
import { MqttAdapter } from '../firmware-bridge/mqtt-adapter.ts';
import type { DeadLetter, Reading, ReadingSink } from '../firmware-bridge/types.ts';
import { openLogStore, type LogStoreApi, type RecordInput } from '../log-store/index.ts';
import { brokerKinds, startBroker, type TestBroker } from '../test/support/mqtt-broker.ts';
import { runBenchChild } from './harness.ts';
import type { BenchSuite } from './harness.ts';

const SENSORS = 100;
const TOPIC_PATTERN = 'factory/+line/+sensor_id/reading';
/** Messages the publisher keeps unacknowledged at once. */
const PUBLISH_WINDOW = 2000;
/** The adapter's backlog mark, also its MQTT 5 receiveMaximum (the adapter default; larger marks only grow the heap, not the rate). */
const MAX_PENDING = 1_000;

/** Publishes `count` widget readings (QoS 1) from a child process and resolves when the broker acked all. */
function publishInChild(url: string, count: number): Promise<void> {
  const code = `
    import { connect, connectAsync } from 'mqtt';
    const [url, countText, sensorsText, windowText] = process.argv.slice(1);
    const count = Number(countText), sensors = Number(sensorsText), window = Number(windowText);
    const client = await connectAsync(url, { clientId: 'bench-publisher', protocolVersion: 5 });
    const t0 = Date.parse('2020-02-14T12:19:27Z');
    let sent = 0, acked = 0;
    await new Promise((resolve, reject) => {
      const pump = () => {
        while (sent < count && sent - acked < window) {
          const i = sent++;
          const sensor = 'aa-' + (100 + (i % sensors));
          const payload = JSON.stringify({ reading_ts: new Date(t0 + i * 250).toISOString(), sensor_id: sensor, production_line: 'w0' + (1 + (i % 4)),
            widget_type: 'acme94', colour: ['RED', 'BLUE', 'GREEN'][i % 3], temp_celcius: 20 + (i % 9), widget_weight_g: 95 + (i % 40), seq: i });
          client.publish('factory/w0' + (1 + (i % 4)) + '/' + sensor + '/reading', payload, { qos: 1 }, (err) => {
            if (err) return reject(err);
            acked++;
            if (acked === count) resolve();
            else pump();
          });
        }
      };
      pump();
    });
    await client.endAsync();
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, url, String(count), String(SENSORS), String(PUBLISH_WINDOW)], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`publisher exited with ${code}`))));
  });
}

/** Creates the persistent session (subscription) so the broker queues for it while it is away. */
async function createSession(url: string, clientId: string): Promise<void> {
  const client = await connectAsync(url, { clientId, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } });
  await client.subscribeAsync('factory/+/+/reading', { qos: 1 });
  await client.endAsync();
}

/** What the baseline child measured. */
interface BaselineRun {
  /** Messages/s from connect to the last message. */
  rate: number;
  /** CPU (user + system) per message in the child, µs. */
  cpuMicros: number;
  /** The child's peak RSS, MB. */
  peakRssMb: number;
}

/**
 * The bare subscriber, in a child process of its own (plain node, no tsx),
 * so its memory (MQTT.js's parse and PUBACK write buffers) is not in this
 * process's peak RSS, which is the adapter's figure. It only counts
 * messages; MQTT.js PUBACKs each on receipt. Same session kind, protocol
 * and receiveMaximum as the adapter, so the broker paces both alike.
 */
function baselineInChild(url: string, clientId: string, count: number, receiveMaximum: number): Promise<BaselineRun> {
  const code = `
    import { performance } from 'node:perf_hooks';
    import { connect } from 'mqtt';
    const [url, clientId, countText, receiveMaximumText] = process.argv.slice(1);
    const count = Number(countText);
    let received = 0;
    let done;
    const finished = new Promise((resolve) => (done = resolve));
    const cpu = process.cpuUsage();
    const start = performance.now();
    // connect(), not connectAsync(): the listener must be in place before the first queued message is parsed.
    const client = connect(url, { clientId, clean: false, protocolVersion: 5,
      properties: { sessionExpiryInterval: 3600, receiveMaximum: Number(receiveMaximumText) } });
    // As the adapter does: no per-packet trace call while DEBUG=mqttjs* is off.
    if (client.log.enabled !== true) client.log = () => {};
    client.on('message', () => {
      if (++received === count) done();
    });
    await finished;
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    await client.endAsync();
    process.stdout.write(JSON.stringify({ rate: count / seconds, cpuMicros: (used.user + used.system) / count, peakRssMb: process.resourceUsage().maxRSS / 1024 }));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code, url, clientId, String(count), String(receiveMaximum)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as BaselineRun) : reject(new Error(`baseline subscriber exited with ${code}`))));
  });
}

/** Readings → the log store, one appendBatch per write (what the agent's sink does). */
class LogSink implements ReadingSink {
  stored = 0;
  private target = Number.POSITIVE_INFINITY;
  private onTarget: (() => void) | null = null;
  constructor(private readonly log: LogStoreApi) {}
  whenStored(count: number): Promise<void> {
    this.target = count;
    return this.stored >= count ? Promise.resolve() : new Promise((resolve) => (this.onTarget = resolve));
  }
  async write(readings: readonly Reading[]): Promise<void> {
    const records: RecordInput[] = new Array(readings.length);
    for (let i = 0; i < readings.length; i++) {
      const r = readings[i]!;
      records[i] = { key: r.key, value: r.valueBytes ?? r.valueJson ?? JSON.stringify(r.value), timestamp: r.timestamp, headers: r.headers };
    }
    await this.log.appendBatch('widgets', records);
    this.stored += readings.length;
    if (this.stored >= this.target) this.onTarget?.();
  }
  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    throw new Error(`unexpected dead letters: ${letters[0]?.reason}`);
  }
}

/**
 * With BENCH_PHASES set, prints `phase <name> <start|end> <µs>` (the
 * monotonic clock `--cpu-prof` stamps samples with) to stderr, so a CPU
 * profile of the run can be split into baseline and adapter time.
 */
const markPhase = process.env.BENCH_PHASES
  ? (name: string, edge: 'start' | 'end') => process.stderr.write(`phase ${name} ${edge} ${process.hrtime.bigint() / 1000n}\n`)
  : () => {};

/**
 * Where peak RSS comes from: the full `process.memoryUsage()` figures (MB)
 * taken when the process's peak RSS has grown by 1 MB or more, checked
 * every 10 ms. The check reads getrusage's maxRSS (one syscall): reading
 * /proc for RSS every 10 ms (`memoryUsage()`, `memoryUsage.rss()`) showed as
 * 1.5-4% of the adapter child's CPU profile samples on this loaded machine.
 */
class MemoryPeaks {
  rss = 0;
  heapTotal = 0;
  heapUsed = 0;
  external = 0;
  arrayBuffers = 0;
  /** getrusage's maxRSS at the last full reading, MB. */
  private seenMaxRssMb = 0;
  private timer: NodeJS.Timeout | null = null;
  start(): void {
    this.timer ??= setInterval(() => this.sample(), 10);
  }
  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
  private sample(): void {
    const maxRssMb = process.resourceUsage().maxRSS / 1024;
    if (this.rss > 0 && maxRssMb < this.seenMaxRssMb + 1) return;
    this.seenMaxRssMb = maxRssMb;
    const m = process.memoryUsage();
    this.rss = m.rss / 2 ** 20;
    this.heapTotal = m.heapTotal / 2 ** 20;
    this.heapUsed = m.heapUsed / 2 ** 20;
    this.external = m.external / 2 ** 20;
    this.arrayBuffers = m.arrayBuffers / 2 ** 20;
  }
  toString(): string {
    return `rss ${this.rss.toFixed(0)}, heap total ${this.heapTotal.toFixed(0)} (used ${this.heapUsed.toFixed(0)}), external ${this.external.toFixed(0)} (array buffers ${this.arrayBuffers.toFixed(0)}) MB`;
  }
}


const CHILD_FLAG = '--mqtt-bench-adapter';

interface AdapterArgs {
  url: string;
  dataDir: string;
  clientId: string;
  count: number;
}

/** What one adapter child measured. */
interface AdapterRun {
  rate: number;
  cpuMicros: number;
  peakRssMb: number;
  startRssMb: number;
  errors: number;
  memory: string;
}

/** Runs in the adapter child: opens the log, drains `count` readings through the adapter, prints an AdapterRun. */
async function adapterChild(args: AdapterArgs): Promise<void> {
  const startRssMb = process.memoryUsage().rss / 2 ** 20;
  const log = await openLogStore({ dataDir: args.dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
  await log.ensureTopic('widgets', { partitions: 3 });
  const sink = new LogSink(log);
  const adapter = new MqttAdapter(
    {
      device: 'bench-broker',
      topic: 'widgets',
      url: args.url,
      clientId: args.clientId,
      protocolVersion: 5,
      subscriptions: [{ topic: TOPIC_PATTERN, qos: 1 }],
      maxPendingReadings: MAX_PENDING,
    },
    { sink, gatewayId: 'gw-bench' },
  );
  const memory = new MemoryPeaks();
  const stored = sink.whenStored(args.count);
  const cpu = process.cpuUsage();
  const start = performance.now();
  markPhase('adapter', 'start');
  memory.start();
  await adapter.start();
  await stored;
  memory.stop();
  markPhase('adapter', 'end');
  const rate = args.count / ((performance.now() - start) / 1000);
  const used = process.cpuUsage(cpu);
  await adapter.stop();
  const status = adapter.status()[0]!;
  await log.close();
  const run: AdapterRun = {
    rate, cpuMicros: (used.user + used.system) / args.count, peakRssMb: process.resourceUsage().maxRSS / 1024, startRssMb,
    errors: status.errors + status.deadLetters, memory: memory.toString(),
  };
  process.stdout.write(`${JSON.stringify(run)}\n`);
}

/** Starts the adapter child and resolves with what it measured. */
function adapterInChild(args: AdapterArgs): Promise<AdapterRun> {
  return runBenchChild<AdapterRun>(fileURLToPath(import.meta.url), CHILD_FLAG, args);
}

/**
 * CPU time (user + system) a process has used so far, in µs, from
 * /proc/<pid>/stat (clock ticks of 1/100 s, Linux's USER_HZ); NaN when it
 * cannot be read (no pid, not Linux).
 */
async function processCpuMicros(pid: number | null): Promise<number> {
  if (pid === null) return Number.NaN;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // fields after the parenthesised command name: state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

/** Rounds of publish → baseline drain → adapter drain; the best round of each is reported (shared, noisy machines). */
const ROUNDS = 3;

const suite: BenchSuite = {
  name: 'mqtt',
  description: 'MQTT → log end to end (QoS 1, durable before ack) vs a bare MQTT.js subscriber, real broker on loopback',
  async run(report, ctx) {
    const perRound = Math.max(1000, Math.round((200_000 * ctx.scale) / ROUNDS));
    const kind = brokerKinds.find((k) => k.kind === 'mosquitto' && k.available) ? 'mosquitto' : 'aedes';
    // Unlimited in flight and queued on the broker side: the clients' receiveMaximum is the only bound.
    const broker: TestBroker = await startBroker(kind, { maxInflightMessages: 0, maxQueuedMessages: 0 });
    const dataDir = join(ctx.tmpDir, 'data');
    try {
      const adapterId = 'bench-adapter';
      await createSession(broker.url, 'bench-baseline');
      await createSession(broker.url, 'bench-baseline-unbounded');
      await createSession(broker.url, adapterId);
      report.note(
        `${kind} broker on loopback; ${ROUNDS} rounds of ${perRound.toLocaleString('en-US')} QoS 1 readings (~220 B JSON) queued for each session by a child publisher; MQTT 5, receiveMaximum ${MAX_PENDING} for both, broker max_inflight_messages unlimited; adapter and baseline each in a child process (${fileURLToPath(import.meta.url).endsWith('.js') ? 'plain node, compiled' : 'sources through tsx'}); log: 3 partitions, fsync always; best round reported`,
      );
      const adapterRuns: AdapterRun[] = [];
      /** The broker's own CPU per message delivered (NaN: the broker runs in this process), during each drain. */
      const brokerPerMessage = { baseline: [] as number[], adapter: [] as number[] };
      const baselineRuns: BaselineRun[] = [];
      const unboundedRates: number[] = [];
      /** Runs one drain, noting the broker's CPU per message it delivered meanwhile. */
      const withBrokerCpu = async <T>(into: number[], drain: () => Promise<T>): Promise<T> => {
        const before = await processCpuMicros(broker.pid);
        const result = await drain();
        into.push(((await processCpuMicros(broker.pid)) - before) / perRound);
        return result;
      };
      for (let round = 0; round < ROUNDS; round++) {
        await publishInChild(broker.url, perRound);
        // For reference only: the same bare subscriber with MQTT 5's largest receiveMaximum (no flow control to speak of).
        unboundedRates.push((await baselineInChild(broker.url, 'bench-baseline-unbounded', perRound, 65_535)).rate);
        baselineRuns.push(await withBrokerCpu(brokerPerMessage.baseline, () => baselineInChild(broker.url, 'bench-baseline', perRound, MAX_PENDING)));
        adapterRuns.push(await withBrokerCpu(brokerPerMessage.adapter, () => adapterInChild({ url: broker.url, dataDir, clientId: adapterId, count: perRound })));
      }
      const log = await openLogStore({ dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0, readOnly: true });
      const endOffsets = log.describe('widgets').partitionsInfo.reduce((n, p) => n + p.endOffset, 0);
      await log.close();
      const errors = adapterRuns.reduce((n, r) => n + r.errors, 0);
      const fmt = (rates: number[]) => rates.map((r) => Math.round(r).toLocaleString('en-US')).join(', ');
      const best = <T extends { rate: number }>(runs: T[]): T => runs.reduce((a, b) => (b.rate > a.rate ? b : a));
      const bestAdapter = best(adapterRuns);
      const bestBaseline = best(baselineRuns);
      report.note(`rounds: adapter ${fmt(adapterRuns.map((r) => r.rate))} readings/s; baseline ${fmt(baselineRuns.map((r) => r.rate))} msg/s; reference: bare subscriber with receiveMaximum 65535 ${fmt(unboundedRates)} msg/s; stored ${endOffsets.toLocaleString('en-US')} records, ${errors} errors/dead letters`);
      if (broker.pid !== null) {
        const fmtCpu = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
        const fastest = Math.min(...brokerPerMessage.adapter, ...brokerPerMessage.baseline);
        report.note(
          `broker (${kind}) CPU per message delivered: ${fmtCpu(brokerPerMessage.adapter)} µs during the adapter drains, ${fmtCpu(brokerPerMessage.baseline)} µs during the baseline drains; at ${fastest.toFixed(1)} µs the broker alone can deliver at most ${Math.round(1e6 / fastest).toLocaleString('en-US')} msg/s with a whole core to itself`,
        );
      }
      report.note(`CPU per message (best round): adapter ${Math.min(...adapterRuns.map((r) => r.cpuMicros)).toFixed(1)} µs, baseline ${Math.min(...baselineRuns.map((r) => r.cpuMicros)).toFixed(1)} µs, each in its child`);
      report.note(`adapter child RSS at start (node + modules): ${Math.max(...adapterRuns.map((r) => r.startRssMb)).toFixed(0)} MB; memory at the RSS peak (10 ms samples) in the best round: ${bestAdapter.memory}`);
      report.compare('MQTT → log readings/s (durable, acked after fsync)', bestAdapter.rate, bestBaseline.rate, 'readings/s', { min: 100_000, minRatio: 0.8 });
      report.compare('peak RSS of the adapter process (vs the bare subscriber)', Math.max(...adapterRuns.map((r) => r.peakRssMb)), Math.max(...baselineRuns.map((r) => r.peakRssMb)), 'MB', { max: 100 });
      if (errors > 0) throw new Error(`${errors} errors or dead letters while draining`);
      if (endOffsets !== perRound * ROUNDS) throw new Error(`stored ${endOffsets} records, expected ${perRound * ROUNDS}`);
    } finally {
      await broker.close();
    }
  },
};

export default suite;

if (process.argv[2] === CHILD_FLAG) await adapterChild(JSON.parse(process.argv[3]!) as AdapterArgs);
