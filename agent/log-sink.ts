/**
 * The bridge → log wiring: a `ReadingSink` that appends readings to their
 * topics and dead letters to the dead-letter topic. `write` resolves only
 * once the log has them durably (one appendBatch per topic per call, so one
 * group-commit fsync covers a whole batch of readings); it rejects when the
 * log refuses (disk floor, I/O), and the adapters then slow down or pause.
 *
 * Topics are created on first use with the configured settings (or the
 * defaults); the set of known topics is kept per sink instance.
 *
 * A batch that spans topics is appended per topic. When one topic's append
 * fails after another's succeeded, the adapter retries the same batch (the
 * same array): the sink remembers which topics of that array are already
 * stored and appends only the rest, so a retry does not duplicate them.
 */
import type { Reading, ReadingSink } from '../firmware-bridge/index.ts';
import type { LogStoreApi, RecordInput, TopicConfig } from '../log-store/index.ts';

export interface LogSinkOptions {
  log: LogStoreApi;
  deadLetterTopic: string;
  /** Settings for topics created on first use (by name). */
  topicSettings: (topic: string) => Partial<TopicConfig>;
  /** Called with every stored reading (the status page's recent values, counters). Must be cheap. */
  onStored?: (readings: readonly Reading[]) => void;
}

export interface LogSink extends ReadingSink {
  /** Readings stored per topic since start. */
  stored(): Record<string, number>;
  deadLettersStored(): number;
}

export function createLogSink(options: LogSinkOptions): LogSink {
  const { log } = options;
  const ready = new Map<string, Promise<unknown>>();
  const counts: Record<string, number> = {};
  let deadLetters = 0;
  /** Topics of a batch already stored, for batches that failed part-way (keyed by the batch array itself). */
  const partlyStored = new WeakMap<readonly Reading[], Set<string>>();

  const ensure = (topic: string): Promise<unknown> => {
    let p = ready.get(topic);
    if (!p) {
      p = log.hasTopic(topic) ? Promise.resolve() : log.ensureTopic(topic, options.topicSettings(topic));
      p.catch(() => ready.delete(topic));
      ready.set(topic, p);
    }
    return p;
  };

  return {
    async write(readings) {
      if (readings.length === 0) return;
      // Group by topic, keeping each topic's order (and so each key's order).
      const byTopic = new Map<string, RecordInput[]>();
      for (const r of readings) {
        let list = byTopic.get(r.topic);
        if (!list) byTopic.set(r.topic, (list = []));
        list.push({ key: r.key, value: r.valueBytes ?? r.valueJson ?? JSON.stringify(r.value), timestamp: r.timestamp, headers: r.headers });
      }
      const done = partlyStored.get(readings);
      const results = await Promise.allSettled(
        [...byTopic].map(async ([topic, records]) => {
          if (done?.has(topic)) return;
          await ensure(topic);
          await log.appendBatch(topic, records);
          counts[topic] = (counts[topic] ?? 0) + records.length;
          if (byTopic.size > 1) {
            let set = partlyStored.get(readings);
            if (!set) partlyStored.set(readings, (set = new Set()));
            set.add(topic);
          }
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      partlyStored.delete(readings);
      options.onStored?.(readings);
    },
    async deadLetter(letters) {
      if (letters.length === 0) return;
      const byTopic = new Map<string, RecordInput[]>();
      for (const l of letters) {
        const topic = l.topic || options.deadLetterTopic;
        let list = byTopic.get(topic);
        if (!list) byTopic.set(topic, (list = []));
        list.push({
          key: l.device,
          value: JSON.stringify({ device: l.device, intendedTopic: l.intendedTopic, reason: l.reason, raw: l.raw, receivedAt: l.receivedAt }),
          timestamp: l.receivedAt,
          headers: { 'millstream.dead_letter.reason': l.reason.slice(0, 500), 'millstream.device': l.device },
        });
      }
      await Promise.all(
        [...byTopic].map(async ([topic, records]) => {
          await ensure(topic);
          await log.appendBatch(topic, records);
        }),
      );
      deadLetters += letters.length;
    },
    stored: () => ({ ...counts }),
    deadLettersStored: () => deadLetters,
  };
}
