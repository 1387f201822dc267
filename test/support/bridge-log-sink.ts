/**
 * The sink the bridge end-to-end tests hand their adapters: the agent's own
 * log sink (agent/log-sink.ts) on a real log store, so these tests exercise
 * the production mapping of readings and dead letters to log records.
 * Topics are created on first use with `partitions` partitions.
 */
import { createLogSink, type LogSink } from '../../agent/log-sink.ts';
import type { DeadLetter, Reading, ReadingSink } from '../../firmware-bridge/types.ts';
import type { LogStoreApi } from '../../log-store/index.ts';

export class LogStoreSink implements ReadingSink {
  private readonly sink: LogSink;

  constructor(log: LogStoreApi, partitions = 3) {
    this.sink = createLogSink({ log, deadLetterTopic: 'dead-letters', topicSettings: () => ({ partitions }) });
  }

  write(readings: readonly Reading[]): Promise<void> {
    return this.sink.write(readings);
  }

  deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    return this.sink.deadLetter(letters);
  }
}
