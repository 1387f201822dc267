/**
 * The agent: one validated config in, the running gateway out. It wires the
 * modules (only agent/ does) and supervises them:
 *
 *   log store → rules → sources → replicator      (start order; stop is the reverse)
 *
 * The HTTP endpoints start first and stop last, so /healthz answers during
 * start and shutdown. `stop()` is the SIGTERM path: sources stop taking
 * input and hand their last readings to the log, the replicator finishes its
 * in-flight batch, rules checkpoint, and the log flushes and fsyncs before it
 * closes. Every phase is bounded (config `shutdown.timeoutMs`).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createAdapter, SchemaCheck, openCaptureWriter, type DeviceAdapter, type Reading, type CaptureWriter } from '../firmware-bridge/index.ts';
import { openLogStore, type LogFileSystem, type LogStoreApi, type Logger, type TopicConfig } from '../log-store/index.ts';
import { nodeFileSystem } from '../log-store/file-system.ts';
import { createRuleEngine, type RuleEngine } from '../rules/rule-engine.ts';
import type { AgentConfig } from './config.ts';
import { AgentError } from './errors.ts';
import { startHttpServer, type HttpServer } from './http-server.ts';
import { createLogSink, type LogSink } from './log-sink.ts';
import { createMetrics, type AgentMetrics } from './metrics.ts';
import { adapterConfig } from './source-config.ts';
import { computeHealth, RateTracker, RecentValues, type AgentStatus, type ReplicationPartitionStatus, type RuleStatus, type SourceStatus, type TopicStatus } from './status.ts';
import { Supervisor, type Component } from './supervisor.ts';
import type { AgentReplicator } from './replication.ts';

export const VERSION = '0.1.0';

export interface AgentDeps {
  logger: Logger & { level?: string };
  /** Default Date.now. */
  clock?: { now(): number };
  /** Default Math.random. */
  random?: () => number;
}

export interface Agent {
  readonly config: AgentConfig;
  /** The status page URL, once started (null with http disabled). */
  readonly url: string | null;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Applies what can change live from a new config: rules (reloaded from their folder), log level, topic retention. */
  reload(next?: AgentConfig): Promise<string[]>;
  status(): AgentStatus;
  /** The log store, while running (for tests and tools in the same process). */
  log(): LogStoreApi | null;
  /** What the sources handed to the log since start: readings stored per topic, dead letters, per device counts. Valid after stop. */
  summary(): AgentSummary;
}

export interface AgentSummary {
  storedByTopic: Record<string, number>;
  deadLetters: number;
  devices: Array<{ source: string; device: string; readings: number; decodeErrors: number; deadLetters: number }>;
}

/** Wraps the log's file-system port so every fdatasync is timed into the metrics histogram. */
function timedFileSystem(base: LogFileSystem, metrics: AgentMetrics): LogFileSystem {
  return {
    ...base,
    async open(path, mode) {
      const handle = await base.open(path, mode);
      const datasync = handle.datasync.bind(handle);
      return Object.assign(Object.create(handle) as typeof handle, {
        async datasync() {
          const end = metrics.fsyncSeconds.startTimer();
          try {
            await datasync();
          } finally {
            end();
          }
        },
      });
    },
  };
}

export function createAgent(config: AgentConfig, deps: AgentDeps): Agent {
  const logger = deps.logger;
  const clock = deps.clock ?? { now: () => Date.now() };
  const startedAt = clock.now();
  const rates = new RateTracker();
  const recent = new RecentValues(['temp_celcius', 'widget_weight_g']);
  let state: AgentStatus['state'] = 'starting';
  let current = config;
  let log: LogStoreApi | null = null;
  let sink: LogSink | null = null;
  let rules: RuleEngine | null = null;
  let replicator: AgentReplicator | null = null;
  let http: HttpServer | null = null;
  let captures: CaptureWriter[] = [];
  const adapters = new Map<string, DeviceAdapter>();
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;

  const status = (): AgentStatus => {
    const now = clock.now();
    const sources: SourceStatus[] = [];
    for (const s of current.sources) {
      const a = adapters.get(s.name);
      if (!a) {
        sources.push({ source: s.name, device: s.name, kind: s.serial ? 'serial' : s.modbus ? `modbus-${s.modbus.transport}` : 'mqtt', state: 'stopped', connected: false, lastReadingAt: null, readings: 0, decodeErrors: 0, deadLetters: 0, errors: 0, lastError: null, clockSkewMs: null });
        continue;
      }
      for (const d of a.status()) sources.push({ source: s.name, ...d });
    }
    const topics: TopicStatus[] = [];
    if (log) {
      for (const t of log.topics()) {
        try {
          const d = log.describe(t.name);
          const endOffsetTotal = d.partitionsInfo.reduce((a, p) => a + p.endOffset, 0);
          topics.push({
            name: t.name,
            partitions: d.partitionsInfo.map((p) => ({ partition: p.partition, earliestOffset: p.earliestOffset, endOffset: p.endOffset, bytes: p.bytes })),
            ratePerS: rates.sample(t.name, endOffsetTotal, now),
            endOffsetTotal,
            bytes: d.partitionsInfo.reduce((a, p) => a + p.bytes, 0),
          });
        } catch {
          // A topic deleted or failing between list and describe: skip it this time.
        }
      }
    }
    const engine = rules?.status();
    const ruleStatus: RuleStatus[] = engine
      ? engine.rules.map((r) => ({
          name: r.name,
          file: r.file,
          state: r.state,
          lag: r.lag,
          recordsIn: r.recordsIn,
          recordsOut: r.recordsOut,
          recordsLate: r.recordsLate,
          lastError: r.lastError,
          ...(r.outputTopic ? { outputTopic: r.outputTopic } : {}),
        }))
      : [];
    const replicationPartitions: ReplicationPartitionStatus[] = replicator ? replicator.status() : [];
    const base = {
      gateway: current.gateway.id,
      version: VERSION,
      pid: process.pid,
      startedAt,
      now,
      state,
      components: supervisor.status(),
      sources,
      topics,
      rules: ruleStatus,
      ruleProblems: engine?.problems ?? [],
      replication: { enabled: current.replication.enabled, partitions: replicationPartitions },
      recent: recent.snapshot(),
      rssBytes: process.memoryUsage.rss(),
    };
    return { ...base, health: computeHealth(base) };
  };

  const metrics = createMetrics(status);

  const topicSettings = (topic: string): Partial<TopicConfig> => {
    const t = current.topics[topic];
    if (!t) return {};
    const { schema: _schema, ...rest } = t;
    return rest;
  };

  const logComponent: Component = {
    name: 'log',
    critical: true,
    async start() {
      await mkdir(current.dataDir, { recursive: true });
      // The log lives directly in dataDir, so `millstream log ... --data-dir <dataDir>` and replay find it;
      // the rules' state sits beside it in rules-state/ (topic folders are always <topic>-<n>).
      log = await openLogStore({
        dataDir: current.dataDir,
        minFreeBytes: current.store.minFreeBytes,
        retentionCheckIntervalMs: current.store.retentionCheckIntervalMs,
        logger,
        fs: timedFileSystem(nodeFileSystem, metrics),
      });
      for (const r of log.recovery) {
        if (r.bytesTruncated > 0 || r.indexesRebuilt.length) logger.warn({ ...r }, 'log recovery repaired a partition');
      }
      for (const name of Object.keys(current.topics)) await log.ensureTopic(name, topicSettings(name));
      sink = createLogSink({
        log,
        deadLetterTopic: current.deadLetterTopic,
        topicSettings,
        onStored: (readings: readonly Reading[]) => {
          // A sample for the live chart: the batch's last 64 readings, in order.
          for (let i = Math.max(0, readings.length - 64); i < readings.length; i++) {
            const r = readings[i]!;
            recent.add(r.key, r.timestamp, r.value);
          }
        },
      });
    },
    async stop() {
      const l = log;
      log = null;
      if (l) await l.close();
    },
  };

  const rulesComponent: Component = {
    name: 'rules',
    async start(ctx) {
      if (!current.rules.dir || !log) return;
      rules = createRuleEngine({
        log,
        rulesDir: current.rules.dir,
        stateDir: join(current.dataDir, 'rules-state'),
        clock,
        timers: { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) },
        logger,
        idleCloseMs: current.rules.idleCloseMs,
      });
      try {
        await rules.start();
      } catch (err) {
        ctx.fail(err as Error);
        throw err;
      }
    },
    async stop() {
      const r = rules;
      rules = null;
      if (r) await r.stop();
    },
  };

  const sourceComponents: Component[] = config.sources.map((s) => ({
    name: `source:${s.name}`,
    async start() {
      if (!sink) throw new AgentError('COMPONENT_FAILED', `source ${s.name}: the log is not open`);
      const schemas: Record<string, object> = {};
      const schemaFile = current.topics[s.topic]?.schema;
      if (schemaFile) {
        try {
          schemas[s.topic] = JSON.parse(await readFile(schemaFile, 'utf8')) as object;
        } catch (err) {
          throw new AgentError('CONFIG_UNREADABLE', `topics.${s.topic}.schema: cannot load ${schemaFile}: ${(err as Error).message}`, { file: schemaFile }, err);
        }
      }
      let capture: CaptureWriter | undefined;
      if (s.capture) {
        capture = openCaptureWriter(s.capture);
        captures.push(capture);
      }
      const adapter = createAdapter(adapterConfig(s, current), {
        sink,
        gatewayId: current.gateway.id,
        schemaCheck: new SchemaCheck({ schemas }),
        ...(capture ? { capture } : {}),
        logger,
      });
      adapter.on('error', (err: Error) => logger.debug({ source: s.name, err }, 'source error'));
      adapters.set(s.name, adapter);
      await adapter.start();
    },
    async stop() {
      const a = adapters.get(s.name);
      if (a) await a.stop();
    },
  }));

  const replicatorComponent: Component = {
    name: 'replicator',
    async start() {
      if (!current.replication.enabled || !log) return;
      // Loaded only when replication is on: a gateway without it never loads the Kafka client.
      const { createAgentReplicator } = await import('./replication.ts');
      replicator = await createAgentReplicator({ config: current, log, logger });
      await replicator.start();
    },
    async stop() {
      const r = replicator;
      replicator = null;
      if (r) await r.stop();
    },
  };

  const budget = config.shutdown.timeoutMs;
  const components = [
    logComponent,
    ...(config.rules.dir ? [rulesComponent] : []),
    ...sourceComponents,
    ...(config.replication.enabled ? [replicatorComponent] : []),
  ];
  const supervisor = new Supervisor(components, {
    logger,
    // Sources, replicator, rules and log share the stop budget; each gets a fair slice.
    stopTimeoutMs: Math.max(500, Math.floor(budget / 4)),
  });

  return {
    config,
    get url() {
      return http?.url ?? null;
    },
    start() {
      // Idempotent: a second call waits for the first.
      starting ??= (async () => {
        if (config.http.enabled) http = await startHttpServer({ host: config.http.host, port: config.http.port, status, metrics });
        try {
          await supervisor.start();
        } catch (err) {
          await http?.close();
          http = null;
          throw err;
        }
        state = 'running';
        logger.info(
          { gateway: config.gateway.id, sources: config.sources.length, url: http?.url ?? null, dataDir: config.dataDir },
          `millstream running${http ? `; status page at ${http.url}` : ''}`,
        );
      })();
      return starting;
    },
    stop() {
      stopping ??= (async () => {
        state = 'stopping';
        await starting?.catch(() => undefined);
        await supervisor.stop();
        for (const c of captures) await c.close().catch(() => undefined);
        captures = [];
        await http?.close();
        http = null;
      })();
      return stopping;
    },
    async reload(next) {
      const changes: string[] = [];
      if (next) {
        if (next.log.level !== current.log.level && deps.logger.level !== undefined) {
          deps.logger.level = next.log.level;
          changes.push(`log.level ${current.log.level} → ${next.log.level}`);
        }
        if (log) {
          for (const [name, t] of Object.entries(next.topics)) {
            if (JSON.stringify(t) !== JSON.stringify(current.topics[name])) {
              const { schema: _s, ...settings } = t;
              await log.ensureTopic(name, settings);
              changes.push(`topics.${name}`);
            }
          }
        }
        const needRestart = (['sources', 'replication', 'http', 'dataDir', 'store'] as const).filter(
          (k) => JSON.stringify(next[k]) !== JSON.stringify(current[k]),
        );
        if (needRestart.length) logger.warn({ keys: needRestart }, `config changes to ${needRestart.join(', ')} take effect at the next restart`);
        current = next;
      }
      if (rules) {
        await rules.reload();
        changes.push('rules reloaded');
      }
      return changes;
    },
    status,
    log: () => log,
    summary() {
      const devices: AgentSummary['devices'] = [];
      for (const [source, a] of adapters) {
        for (const d of a.status()) devices.push({ source, device: d.device, readings: d.readings, decodeErrors: d.decodeErrors, deadLetters: d.deadLetters });
      }
      return { storedByTopic: sink?.stored() ?? {}, deadLetters: sink?.deadLettersStored() ?? 0, devices };
    },
  };
}
