/**
 * A ReadingSink on the real log store, for end-to-end bridge tests: readings
 * are appended per topic in arrival order (`appendBatch` resolves once
 * durable, so the adapter's deliver resolves only after fsync); dead letters
 * are JSON records in their dead-letter topic, keyed by device. Topics are
 * created on first use. The agent's own wiring follows the same mapping.
 */
import type { DeadLetter, Reading, ReadingSink } from '../../firmware-bridge/types.ts';
import type { LogStoreApi, RecordInput } from '../../log-store/index.ts';

export class LogStoreSink implements ReadingSink {
  private readonly known = new Set<string>();

  constructor(
    private readonly log: LogStoreApi,
    private readonly partitions = 3,
  ) {}

  private async ensure(topic: string): Promise<void> {
    if (this.known.has(topic)) return;
    await this.log.ensureTopic(topic, { partitions: this.partitions });
    this.known.add(topic);
  }

  async write(readings: readonly Reading[]): Promise<void> {
    const byTopic = new Map<string, RecordInput[]>();
    for (const r of readings) {
      let list = byTopic.get(r.topic);
      if (!list) byTopic.set(r.topic, (list = []));
      list.push({ key: r.key, value: JSON.stringify(r.value), timestamp: r.timestamp, headers: r.headers });
    }
    for (const [topic, records] of byTopic) {
      await this.ensure(topic);
      await this.log.appendBatch(topic, records);
    }
  }

  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    for (const l of letters) {
      await this.ensure(l.topic);
      await this.log.append(l.topic, {
        key: l.device,
        value: JSON.stringify({ intendedTopic: l.intendedTopic, device: l.device, reason: l.reason, raw: l.raw, receivedAt: l.receivedAt }),
        timestamp: l.receivedAt,
        headers: { device: l.device, intended_topic: l.intendedTopic },
      });
    }
  }
}
