/**
 * The agent's status model: what `/api/status`, `/healthz`, `/metrics`, the
 * status page, `millstream status` and systemd's STATUS= line all show. The
 * agent assembles it on demand from its components; nothing here keeps state
 * except `RateTracker` and `RecentValues`, owned by the agent instance.
 */
import type { DeviceStatus } from '../firmware-bridge/index.ts';

/** A device's status as the bridge reports it, plus the config source it belongs to. */
export interface SourceStatus extends Omit<DeviceStatus, 'kind' | 'state'> {
  /** Source name from the config (one source may have several devices, e.g. Modbus slaves). */
  source: string;
  /** The bridge's kind, or `modbus-tcp`/`modbus-rtu` for a source not started yet. */
  kind: string;
  /** The bridge's state, or `stopped`/`failed` for a source the supervisor holds. */
  state: string;
}

export interface TopicStatus {
  name: string;
  partitions: Array<{ partition: number; earliestOffset: number; endOffset: number; bytes: number }>;
  /** Records appended per second over the last sampling interval. */
  ratePerS: number;
  endOffsetTotal: number;
  bytes: number;
}

export interface RuleStatus {
  name: string;
  file: string;
  state: string;
  /** Input records not yet processed. */
  lag: number;
  recordsIn: number;
  recordsOut: number;
  /** Records later than the window's grace, sent to the rule's _late topic. */
  recordsLate: number;
  lastError: string | null;
  outputTopic?: string;
}

export interface ReplicationPartitionStatus {
  topic: string;
  partition: number;
  centralTopic?: string;
  position: number;
  endOffset: number;
  lagRecords: number;
  lagSeconds: number;
  state: string;
  lastError: string | null;
}

export interface ComponentStatus {
  name: string;
  state: 'stopped' | 'starting' | 'running' | 'failed' | 'backoff' | 'stopping';
  restarts: number;
  lastError: string | null;
}

export interface AgentStatus {
  gateway: string;
  version: string;
  pid: number;
  startedAt: number;
  now: number;
  state: 'starting' | 'running' | 'stopping';
  health: { status: 'ok' | 'degraded'; reasons: string[] };
  components: ComponentStatus[];
  sources: SourceStatus[];
  topics: TopicStatus[];
  rules: RuleStatus[];
  /** Problems of the rule files now (`file:line:col: message`); the rules that were running keep running. */
  ruleProblems: string[];
  replication: { enabled: boolean; partitions: ReplicationPartitionStatus[] };
  /** Recent numeric values per sensor for the live chart: field → sensor → [timestampMs, value][]. */
  recent: Record<string, Record<string, Array<[number, number]>>>;
  rssBytes: number;
}

const HEALTHY_REPLICATION_STATES: ReadonlySet<string> = new Set(['starting', 'running', 'sending', 'caught-up', 'idle']);

/** Health from status: degraded with one reason per problem, ok otherwise. */
export function computeHealth(s: Omit<AgentStatus, 'health'>): { status: 'ok' | 'degraded'; reasons: string[] } {
  const reasons: string[] = [];
  for (const c of s.components) {
    if (c.state === 'failed' || c.state === 'backoff') reasons.push(`component ${c.name} ${c.state}${c.lastError ? `: ${c.lastError}` : ''}`);
  }
  for (const src of s.sources) {
    if (!src.connected) reasons.push(`source ${src.source} device ${src.device} ${src.state}${src.lastError ? `: ${src.lastError}` : ''}`);
  }
  for (const r of s.rules) {
    if (r.state === 'failed' || r.state === 'error') reasons.push(`rule ${r.name} ${r.state}${r.lastError ? `: ${r.lastError}` : ''}`);
  }
  for (const p of s.ruleProblems) reasons.push(`rule file ${p}`);
  for (const p of s.replication.partitions) {
    if (!HEALTHY_REPLICATION_STATES.has(p.state)) {
      reasons.push(`replication ${p.topic}[${p.partition}] ${p.state}${p.lastError ? `: ${p.lastError}` : ''}`);
    }
  }
  if (s.state !== 'running') reasons.push(`agent ${s.state}`);
  return { status: reasons.length ? 'degraded' : 'ok', reasons };
}

/** Records/s per topic from successive end-offset totals. */
export class RateTracker {
  private readonly last = new Map<string, { at: number; total: number; rate: number }>();

  /** Updates with the current total and returns the rate since the previous sample (or the last known rate within `minIntervalMs`). */
  sample(key: string, total: number, now: number, minIntervalMs = 900): number {
    const prev = this.last.get(key);
    if (!prev) {
      this.last.set(key, { at: now, total, rate: 0 });
      return 0;
    }
    if (now - prev.at < minIntervalMs) return prev.rate;
    const rate = ((total - prev.total) * 1000) / (now - prev.at);
    this.last.set(key, { at: now, total, rate });
    return rate;
  }
}

/**
 * A bounded ring of recent numeric values per field and sensor, fed from the
 * readings the agent stores (a sample, not every reading): memory is
 * `fields × sensors × perSensor` points at most.
 */
export class RecentValues {
  private readonly data = new Map<string, Map<string, Array<[number, number]>>>();

  constructor(
    private readonly fields: readonly string[],
    private readonly perSensor = 120,
    private readonly maxSensors = 50,
  ) {}

  add(sensor: string | null, timestamp: number, value: Record<string, unknown>): void {
    if (sensor === null) return;
    for (const f of this.fields) {
      const v = value[f];
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      let bySensor = this.data.get(f);
      if (!bySensor) this.data.set(f, (bySensor = new Map()));
      let points = bySensor.get(sensor);
      if (!points) {
        if (bySensor.size >= this.maxSensors) continue;
        bySensor.set(sensor, (points = []));
      }
      points.push([timestamp, v]);
      if (points.length > this.perSensor) points.splice(0, points.length - this.perSensor);
    }
  }

  snapshot(): Record<string, Record<string, Array<[number, number]>>> {
    const out: Record<string, Record<string, Array<[number, number]>>> = {};
    for (const [f, bySensor] of this.data) {
      out[f] = {};
      for (const [s, points] of bySensor) out[f][s] = points.slice();
    }
    return out;
  }
}
