/**
 * An in-memory LogStoreApi for the replicator's unit tests: the parts the
 * replicator uses (topics, read, follow, offsets, consumer positions,
 * append), with `deleteBefore` standing in for retention. Integration tests
 * (test/replicator-*.test.ts) use the real log store.
 */
import { LogError, recordBlockOf } from '../../../log-store/index.ts';
import type {
  AppendAck,
  BatchAck,
  ConsumerPositions,
  FollowOptions,
  LogRecord,
  LogStoreApi,
  ReadOptions,
  ReadResult,
  RecordInput,
  TopicConfig,
  TopicDescription,
  TopicInfo,
} from '../../../log-store/index.ts';

interface Part {
  earliest: number;
  records: LogRecord[]; // records[i].offset = earliest + i
  waiters: Array<() => void>;
}

export interface MemoryLogStore extends LogStoreApi {
  /** Deletes records below `offset` (retention). */
  deleteBefore(topic: string, partition: number, offset: number): void;
  /** Commits recorded so far (consumer name → list of commits). */
  readonly commits: Array<Array<{ topic: string; partition: number; offset: number }>>;
}

export function createMemoryLogStore(clock: () => number = Date.now): MemoryLogStore {
  const topics = new Map<string, { config: TopicConfig; parts: Part[]; rr: number }>();
  const positions = new Map<string, Map<string, number>>();
  const commits: MemoryLogStore['commits'] = [];
  const config = (partitions: number): TopicConfig => ({
    partitions, retentionMs: -1, retentionBytes: -1, segmentBytes: 1 << 26, segmentMs: 1e9, flushIntervalMs: 0, flushBytes: 1 << 20, fsync: 'always', indexIntervalBytes: 4096,
  });
  const get = (topic: string) => {
    const t = topics.get(topic);
    if (!t) throw new LogError('LOG_TOPIC_NOT_FOUND', `no topic ${topic}`, { topic });
    return t;
  };
  const part = (topic: string, partition: number) => {
    const p = get(topic).parts[partition];
    if (!p) throw new LogError('LOG_INVALID_ARGUMENT', `no partition ${partition}`, { topic, partition });
    return p;
  };
  const end = (p: Part) => p.earliest + p.records.length;
  const read = (topic: string, partition: number, offset: number, options: ReadOptions = {}): ReadResult => {
    const p = part(topic, partition);
    if (offset < p.earliest || offset > end(p)) throw new LogError('LOG_OUT_OF_RANGE', `offset ${offset} out of range`, { topic, partition, offset, earliestOffset: p.earliest, endOffset: end(p) });
    const max = options.maxRecords ?? 1000;
    const maxBytes = options.maxBytes ?? 1 << 20;
    const out: LogRecord[] = [];
    let bytes = 0;
    for (let i = offset - p.earliest; i < p.records.length && out.length < max; i++) {
      const r = p.records[i];
      bytes += r.value.length + 50;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push({ ...r, headers: { ...r.headers } });
    }
    return { records: out, nextOffset: offset + out.length };
  };
  const append = (topic: string, input: RecordInput): AppendAck => {
    const t = get(topic);
    const partition = input.partition ?? (input.key === null ? t.rr++ % t.parts.length : hash(input.key) % t.parts.length);
    const p = t.parts[partition];
    const offset = end(p);
    p.records.push({
      topic, partition, offset, timestamp: input.timestamp ?? clock(), key: input.key,
      value: Buffer.from(typeof input.value === 'string' ? input.value : input.value), headers: { ...(input.headers ?? {}) },
    });
    for (const w of p.waiters.splice(0)) w();
    return { partition, offset };
  };
  const consumer = (name: string): ConsumerPositions => {
    let m = positions.get(name);
    if (!m) positions.set(name, (m = new Map()));
    const map = m;
    return {
      name,
      get: (topic, partition) => map.get(`${topic}\u0000${partition}`),
      all: () => {
        const out: Record<string, Record<number, number>> = {};
        for (const [k, v] of map) {
          const [t, p] = k.split('\u0000');
          (out[t] ??= {})[Number(p)] = v;
        }
        return out;
      },
      async commit(list) {
        commits.push(list.map((x) => ({ ...x })));
        for (const x of list) map.set(`${x.topic}\u0000${x.partition}`, x.offset);
      },
    };
  };
  const api: MemoryLogStore = {
    dataDir: '(memory)',
    commits,
    async createTopic(name, c) {
      return api.ensureTopic(name, c);
    },
    async ensureTopic(name, c): Promise<TopicInfo> {
      if (!topics.has(name)) {
        const n = c?.partitions ?? 1;
        topics.set(name, { config: config(n), parts: Array.from({ length: n }, () => ({ earliest: 0, records: [], waiters: [] })), rr: 0 });
      }
      return { name, config: get(name).config };
    },
    hasTopic: (name) => topics.has(name),
    topics: () => [...topics].map(([name, t]) => ({ name, config: t.config })),
    describe(topic): TopicDescription {
      const t = get(topic);
      return { name: topic, config: t.config, partitionsInfo: t.parts.map((p, i) => ({ partition: i, earliestOffset: p.earliest, endOffset: end(p), bytes: 0, segments: 1 })) };
    },
    partitionFor: (topic, key) => (key === null ? 0 : hash(key) % get(topic).parts.length),
    async append(topic, record) {
      return append(topic, record);
    },
    async appendBatch(topic, records): Promise<BatchAck> {
      const parts: BatchAck['partitions'] = [];
      for (const r of records) {
        const ack = append(topic, r);
        const e = parts.find((x) => x.partition === ack.partition);
        if (e) e.count++;
        else parts.push({ partition: ack.partition, baseOffset: ack.offset, count: 1 });
      }
      return { count: records.length, partitions: parts };
    },
    batchBuilder() {
      throw new Error('the in-memory log store does not build batches (the replicator never does)');
    },
    async appendBuilt() {
      throw new Error('the in-memory log store does not build batches (the replicator never does)');
    },
    async read(topic, partition, offset, options) {
      return read(topic, partition, offset, options);
    },
    async readBatches(topic, partition, offset, options) {
      const { records, nextOffset } = read(topic, partition, offset, options);
      const block = recordBlockOf(records);
      return { blocks: block ? [block] : [], count: records.length, nextOffset };
    },
    releaseBlocks() {},
    async offsetForTimestamp(topic, partition) {
      return end(part(topic, partition));
    },
    async *follow(topic, partition, offset, options: FollowOptions = {}) {
      let next = offset;
      const p = part(topic, partition);
      while (!options.signal?.aborted) {
        if (next < end(p)) {
          const r = read(topic, partition, next, options);
          next = r.nextOffset;
          yield r.records;
          continue;
        }
        await new Promise<void>((resolve) => {
          p.waiters.push(resolve);
          options.signal?.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    },
    earliestOffset: (topic, partition) => part(topic, partition).earliest,
    endOffset: (topic, partition) => end(part(topic, partition)),
    async consumer(name) {
      return consumer(name);
    },
    async enforceRetention() {
      return { deletedSegments: [] };
    },
    async verify() {
      return { segments: 0, batches: 0, records: 0, problems: [] };
    },
    recovery: [],
    async flush() {},
    async close() {},
    deleteBefore(topic, partition, offset) {
      const p = part(topic, partition);
      const n = Math.min(p.records.length, Math.max(0, offset - p.earliest));
      p.records.splice(0, n);
      p.earliest += n;
    },
  };
  return api;
}

function hash(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return h;
}
