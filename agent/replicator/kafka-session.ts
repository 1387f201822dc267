/**
 * The replicator's one Kafka producer, shared by every partition worker:
 * connected lazily (concurrent callers share one attempt), replaced after a
 * producer-state error (a new producer id; the broker cannot dedup across
 * producer ids, so a batch may then arrive twice: the headers identify it).
 */
import type { AgentError } from '../errors.ts';
import { createKafkaProducer } from '../kafka-client.ts';
import type { KafkaProducer } from '../kafka-client.ts';
import type { ResolvedOptions } from './options.ts';

export class KafkaSession {
  private producer: KafkaProducer | undefined;
  private connecting: Promise<KafkaProducer> | undefined;
  private closed = false;

  constructor(private readonly opts: Readonly<ResolvedOptions>) {}

  /** The connected producer; rejects with an AgentError (KAFKA_CONNECTION...) when the cluster is unreachable. */
  get(): Promise<KafkaProducer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const factory = this.opts.producerFactory ?? createKafkaProducer;
      const p = factory(this.opts.kafka);
      try {
        await p.connect();
      } catch (err) {
        await p.disconnect().catch(() => undefined);
        throw err;
      } finally {
        this.connecting = undefined;
      }
      if (this.closed) {
        await p.disconnect();
        throw new Error('replicator stopped');
      }
      this.producer = p;
      return p;
    })();
    return this.connecting;
  }

  /** Drops `failed` (if it is still the current producer) so the next `get` makes a new one. */
  async reset(failed: KafkaProducer, reason: AgentError): Promise<void> {
    if (this.producer !== failed) return;
    this.producer = undefined;
    this.opts.logger.warn({ code: reason.code, err: reason.message }, 'replicator: replacing the Kafka producer (new producer id)');
    await failed.disconnect().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const p = this.producer;
    this.producer = undefined;
    await p?.disconnect().catch(() => undefined);
  }
}
