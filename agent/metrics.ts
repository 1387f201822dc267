/**
 * Prometheus metrics. One registry per agent instance (never prom-client's
 * global one); counters and gauges are filled at scrape time from the status
 * model, so the hot paths pay nothing for metrics. The fsync latency
 * histogram is observed by the log's file-system wrapper (agent.ts).
 *
 * The metrics are tables (name, help, labels, value from the status) so
 * adding one is one row.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentStatus, ReplicationPartitionStatus, RuleStatus, SourceStatus } from './status.ts';

export interface AgentMetrics {
  readonly registry: Registry;
  /** Observed for every fdatasync of the log, in seconds. */
  readonly fsyncSeconds: Histogram;
  /** Prometheus text exposition. */
  render(): Promise<string>;
}

type Labels = Record<string, string | number>;

interface MetricRow<T> {
  name: string;
  help: string;
  /** Counters are cumulative counts the components keep; gauges are current values. */
  type: 'counter' | 'gauge';
  value: (item: T) => number;
}

const SOURCE_METRICS: ReadonlyArray<MetricRow<SourceStatus>> = [
  { name: 'millstream_source_readings_total', help: 'Readings from a device stored in the log.', type: 'counter', value: (s) => s.readings },
  { name: 'millstream_source_decode_errors_total', help: 'Frames or payloads a device sent that could not be decoded.', type: 'counter', value: (s) => s.decodeErrors },
  { name: 'millstream_source_dead_letters_total', help: 'Readings sent to the dead-letter topic (decode or schema failures).', type: 'counter', value: (s) => s.deadLetters },
  { name: 'millstream_source_errors_total', help: 'Device errors (connection, timeouts, exceptions).', type: 'counter', value: (s) => s.errors },
  { name: 'millstream_source_connected', help: '1 when the device is connected.', type: 'gauge', value: (s) => (s.connected ? 1 : 0) },
];

type PartitionRow = { topic: string; partition: number; earliestOffset: number; endOffset: number; bytes: number };
const LOG_METRICS: ReadonlyArray<MetricRow<PartitionRow>> = [
  { name: 'millstream_log_records_total', help: 'Records appended to a topic partition (its end offset).', type: 'counter', value: (p) => p.endOffset },
  { name: 'millstream_log_earliest_offset', help: 'Earliest retained offset of a topic partition.', type: 'gauge', value: (p) => p.earliestOffset },
  { name: 'millstream_log_bytes', help: 'Bytes on disk of a topic partition.', type: 'gauge', value: (p) => p.bytes },
];

const RULE_METRICS: ReadonlyArray<MetricRow<RuleStatus>> = [
  { name: 'millstream_rule_lag_records', help: 'Input records a rule has not processed yet.', type: 'gauge', value: (r) => r.lag },
  { name: 'millstream_rule_records_in_total', help: 'Input records a rule processed.', type: 'counter', value: (r) => r.recordsIn },
  { name: 'millstream_rule_records_out_total', help: 'Records a rule wrote to its output topic.', type: 'counter', value: (r) => r.recordsOut },
  { name: 'millstream_rule_records_late_total', help: "Records later than a window's grace, sent to the rule's _late topic.", type: 'counter', value: (r) => r.recordsLate },
];

const REPLICATION_METRICS: ReadonlyArray<MetricRow<ReplicationPartitionStatus>> = [
  { name: 'millstream_replication_lag_records', help: 'Records of a local partition not yet acknowledged by the central cluster.', type: 'gauge', value: (p) => p.lagRecords },
  { name: 'millstream_replication_lag_seconds', help: 'Age of the oldest record not yet acknowledged by the central cluster, in seconds.', type: 'gauge', value: (p) => p.lagSeconds },
  { name: 'millstream_replication_position', help: 'Next local offset to replicate.', type: 'gauge', value: (p) => p.position },
];

export function createMetrics(status: () => AgentStatus): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'millstream_' });

  const fsyncSeconds = new Histogram({
    name: 'millstream_log_fsync_seconds',
    help: 'Latency of fdatasync on the log, in seconds.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  // One status snapshot per scrape, shared by every metric.
  let snap: AgentStatus | undefined;
  const current = () => (snap ??= status());

  function register<T>(rows: ReadonlyArray<MetricRow<T>>, labelNames: string[], items: () => Iterable<T>, labels: (item: T) => Labels): void {
    for (const row of rows) {
      const collect = function (this: Counter<string> | Gauge<string>) {
        this.reset();
        for (const item of items()) {
          const v = row.value(item);
          // Counters carry the components' cumulative counts: set by incrementing from zero after the reset.
          if (this instanceof Counter) this.inc(labels(item), Math.max(0, v));
          else this.set(labels(item), v);
        }
      };
      const opts = { name: row.name, help: row.help, labelNames, registers: [registry], collect };
      if (row.type === 'counter') new Counter(opts);
      else new Gauge(opts);
    }
  }

  register(SOURCE_METRICS, ['source', 'device', 'kind'], () => current().sources, (s) => ({ source: s.source, device: s.device, kind: s.kind }));
  register(
    LOG_METRICS,
    ['topic', 'partition'],
    () => current().topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, ...p }))),
    (p) => ({ topic: p.topic, partition: p.partition }),
  );
  register(RULE_METRICS, ['rule'], () => current().rules, (r) => ({ rule: r.name }));
  register(REPLICATION_METRICS, ['topic', 'partition'], () => current().replication.partitions, (p) => ({ topic: p.topic, partition: p.partition }));
  register([{ name: 'millstream_component_up', help: '1 when a supervised component is running.', type: 'gauge', value: (c: AgentStatus['components'][number]) => (c.state === 'running' ? 1 : 0) }], ['component'], () => current().components, (c) => ({ component: c.name }));
  register([{ name: 'millstream_rss_bytes', help: 'Resident set size of the agent process, in bytes.', type: 'gauge', value: (n: number) => n }], [], () => [process.memoryUsage.rss()], () => ({}));

  return {
    registry,
    fsyncSeconds,
    async render() {
      snap = undefined;
      try {
        return await registry.metrics();
      } finally {
        snap = undefined;
      }
    },
  };
}
