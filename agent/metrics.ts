/**
 * Prometheus metrics. One registry per agent instance (never prom-client's
 * global one); gauges and counters are filled at scrape time from the status
 * model, so the hot paths pay nothing for metrics. The fsync latency
 * histogram is observed by the log store's file-system wrapper.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentStatus } from './status.ts';

export interface AgentMetrics {
  readonly registry: Registry;
  /** Observed for every fdatasync of the log, in seconds. */
  readonly fsyncSeconds: Histogram;
  /** Prometheus text exposition. */
  render(): Promise<string>;
}

/** Sets a counter to an absolute value (the components keep the cumulative counts). */
function setCounter(counter: Counter<string>, labels: Record<string, string | number>, value: number): void {
  counter.inc(labels, Math.max(0, value));
}

export function createMetrics(status: () => AgentStatus): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'millstream_' });

  const fsyncSeconds = new Histogram({
    name: 'millstream_log_fsync_seconds',
    help: 'Latency of fdatasync on the log, in seconds.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });

  let snap: AgentStatus | undefined;
  const current = () => (snap ??= status());

  new Counter({
    name: 'millstream_source_readings_total',
    help: 'Readings received from a device and handed to the log.',
    labelNames: ['source', 'device', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of current().sources) setCounter(this, { source: s.source, device: s.device, kind: s.kind }, s.readings);
    },
  });
  new Counter({
    name: 'millstream_source_decode_errors_total',
    help: 'Frames or payloads a source could not decode.',
    labelNames: ['source', 'device', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of current().sources) setCounter(this, { source: s.source, device: s.device, kind: s.kind }, s.decodeErrors);
    },
  });
  new Counter({
    name: 'millstream_source_dead_letters_total',
    help: 'Readings sent to the dead-letter topic (decode or schema failures).',
    labelNames: ['source', 'device', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of current().sources) setCounter(this, { source: s.source, device: s.device, kind: s.kind }, s.deadLetters);
    },
  });
  new Gauge({
    name: 'millstream_source_connected',
    help: '1 when the device is connected.',
    labelNames: ['source', 'device', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of current().sources) this.set({ source: s.source, device: s.device, kind: s.kind }, s.connected ? 1 : 0);
    },
  });
  new Counter({
    name: 'millstream_log_records_total',
    help: 'Records appended to a topic partition (its end offset).',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of current().topics) for (const p of t.partitions) setCounter(this, { topic: t.name, partition: p.partition }, p.endOffset);
    },
  });
  new Gauge({
    name: 'millstream_log_earliest_offset',
    help: 'Earliest retained offset of a topic partition.',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of current().topics) for (const p of t.partitions) this.set({ topic: t.name, partition: p.partition }, p.earliestOffset);
    },
  });
  new Gauge({
    name: 'millstream_log_bytes',
    help: 'Bytes on disk of a topic partition.',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of current().topics) for (const p of t.partitions) this.set({ topic: t.name, partition: p.partition }, p.bytes);
    },
  });
  new Gauge({
    name: 'millstream_rule_lag_records',
    help: 'Input records a rule has not processed yet.',
    labelNames: ['rule'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of current().rules) this.set({ rule: r.name }, r.lag);
    },
  });
  for (const [name, help, pick] of [
    ['millstream_rule_records_in_total', 'Input records a rule processed.', (r: AgentStatus['rules'][number]) => r.recordsIn],
    ['millstream_rule_records_out_total', 'Records a rule wrote to its output topic.', (r: AgentStatus['rules'][number]) => r.recordsOut],
    ['millstream_rule_records_late_total', "Records later than a window's grace, sent to the rule's _late topic.", (r: AgentStatus['rules'][number]) => r.recordsLate],
  ] as const) {
    new Counter({
      name,
      help,
      labelNames: ['rule'],
      registers: [registry],
      collect() {
        this.reset();
        for (const r of current().rules) setCounter(this, { rule: r.name }, pick(r));
      },
    });
  }
  new Gauge({
    name: 'millstream_replication_lag_records',
    help: 'Records of a local partition not yet acknowledged by the central cluster.',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of current().replication.partitions) this.set({ topic: p.topic, partition: p.partition }, p.lagRecords);
    },
  });
  new Gauge({
    name: 'millstream_replication_lag_seconds',
    help: 'Age of the oldest record not yet acknowledged by the central cluster, in seconds.',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of current().replication.partitions) this.set({ topic: p.topic, partition: p.partition }, p.lagSeconds);
    },
  });
  new Gauge({
    name: 'millstream_component_up',
    help: '1 when a supervised component is running.',
    labelNames: ['component'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of current().components) this.set({ component: c.name }, c.state === 'running' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'millstream_rss_bytes',
    help: 'Resident set size of the agent process, in bytes.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });

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
