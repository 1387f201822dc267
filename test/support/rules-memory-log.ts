/**
 * TEMPORARY: an in-memory stand-in for the log store, used only until the
 * real implementation lands on main (then the rules tests switch to
 * openLogStore and this file goes away).
 */
import type { LogRecord, LogStoreApi, RecordInput, TopicConfig } from '../../log-store/types.ts';

function hash(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
  return h & 0x7fffffff;
}

export function memoryLog(): LogStoreApi {
  const topics = new Map<string, { config: TopicConfig; parts: LogRecord[][] }>();
  const waiters = new Set<() => void>();
  let rr = 0;
  const cfg = (partitions: number): TopicConfig => ({
    partitions,
    retentionMs: -1,
    retentionBytes: -1,
    segmentBytes: 1 << 26,
    segmentMs: 1e9,
    flushIntervalMs: 0,
    flushBytes: 1 << 20,
    fsync: 'never',
    indexIntervalBytes: 4096,
  });
  const t = (name: string) => {
    const x = topics.get(name);
    if (!x) throw new Error(`no topic ${name}`);
    return x;
  };
  const api: LogStoreApi = {
    dataDir: ':memory:',
    async createTopic(name, config) {
      if (!topics.has(name)) topics.set(name, { config: cfg(config?.partitions ?? 1), parts: Array.from({ length: config?.partitions ?? 1 }, () => []) });
      return { name, config: t(name).config };
    },
    ensureTopic(name, config) {
      return api.createTopic(name, config);
    },
    hasTopic: (name) => topics.has(name),
    topics: () => [...topics].map(([name, x]) => ({ name, config: x.config })),
    describe(name) {
      const x = t(name);
      return { name, config: x.config, partitionsInfo: x.parts.map((p, i) => ({ partition: i, earliestOffset: 0, endOffset: p.length, bytes: 0, segments: 1 })) };
    },
    partitionFor(topic, key) {
      const n = t(topic).parts.length;
      return key === null ? rr++ % n : hash(key) % n;
    },
    async append(topic, record) {
      const ack = await api.appendBatch(topic, [record]);
      return { partition: ack.partitions[0]!.partition, offset: ack.partitions[0]!.baseOffset };
    },
    async appendBatch(topic, records: readonly RecordInput[]) {
      const x = t(topic);
      const acks = new Map<number, { partition: number; baseOffset: number; count: number }>();
      for (const r of records) {
        const p = r.partition ?? api.partitionFor(topic, r.key);
        const part = x.parts[p]!;
        if (!acks.has(p)) acks.set(p, { partition: p, baseOffset: part.length, count: 0 });
        acks.get(p)!.count++;
        part.push({
          topic,
          partition: p,
          offset: part.length,
          timestamp: r.timestamp ?? Date.now(),
          key: r.key,
          value: Buffer.from(r.value),
          headers: { ...(r.headers ?? {}) },
        });
      }
      for (const w of [...waiters]) w();
      return { count: records.length, partitions: [...acks.values()] };
    },
    async read(topic, partition, offset, options) {
      const part = t(topic).parts[partition]!;
      const records = part.slice(offset, offset + (options?.maxRecords ?? 1000));
      return { records, nextOffset: offset + records.length };
    },
    async offsetForTimestamp() {
      return 0;
    },
    async *follow(topic, partition, offset, options) {
      let off = offset;
      const signal = options?.signal;
      while (!signal?.aborted) {
        const res = await api.read(topic, partition, off, options);
        if (res.records.length) {
          off = res.nextOffset;
          yield res.records;
          continue;
        }
        await new Promise<void>((resolve) => {
          const w = () => {
            waiters.delete(w);
            signal?.removeEventListener('abort', w);
            resolve();
          };
          waiters.add(w);
          signal?.addEventListener('abort', w);
        });
      }
    },
    earliestOffset: () => 0,
    endOffset: (topic, partition) => t(topic).parts[partition]!.length,
    async consumer() {
      throw new Error('not in the memory log');
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
  };
  return api;
}
