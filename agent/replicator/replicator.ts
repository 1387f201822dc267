/**
 * Store-and-forward replication of local log topics to the central Kafka
 * cluster.
 *
 * Guarantees:
 * - Per (local topic, partition), records reach the central topic in local
 *   offset order. The durable position (log store consumer `consumerName`)
 *   advances only after the cluster acknowledged (acks -1, idempotent
 *   producer). Nothing is lost while it is within local retention.
 * - At least once: after a crash, records acknowledged but not yet committed
 *   locally are sent again. Every record carries `millstream.gateway`,
 *   `millstream.topic`, `millstream.partition`, `millstream.offset`. Dedup
 *   rule for central consumers: drop a record whose offset is ≤ the highest
 *   offset already seen for its (gateway, topic, partition).
 * - Partitions: when the central topic has as many partitions as the local
 *   one, a record goes to the same partition number (both sides use Kafka's
 *   murmur2 default partitioner for keys, so a key keeps its partition).
 *   When the counts differ, the central partitioner places each record by
 *   key (order per key holds; order across keys of one local partition does not).
 * - Offline: each partition backs off with jitter and keeps its position;
 *   one log line per replicator state change (online/offline), not per retry.
 *   Back online, each partition drains its backlog oldest first, with at
 *   most two batches in memory (the one in flight and the next, read ahead).
 * - Retention gaps (records deleted before they were sent) are reported in
 *   status, logged, and marked in the dead-letter topic: never hidden.
 * - A non-retriable error (e.g. topic authorization) stops that topic with
 *   the error in its status; other topics go on. A record too large for the
 *   cluster goes to the local dead-letter topic with the reason.
 *
 * Local topics must exist before start(); central topics must exist unless
 * `kafka.allowAutoTopicCreation` is set.
 */
import type { ConsumerPositions } from '../../log-store/index.ts';
import { AgentError } from '../errors.ts';
import { KafkaSession } from './kafka-session.ts';
import { backoffMs, resolveOptions } from './options.ts';
import type { ReplicatorOptions, ResolvedOptions } from './options.ts';
import { PartitionWorker, toStatusError } from './partition-worker.ts';
import type { TopicRuntime } from './partition-worker.ts';
import { PositionCommitter } from './position-committer.ts';
import { writeStatusFile } from './status-file.ts';
import type { ReplicatorState, ReplicatorStatus, StatusError, TopicStatus } from './status.ts';

export interface Replicator {
  /** Opens positions and starts one worker per partition. Resolves without waiting for the cluster (offline start is normal). Idempotent. */
  start(): Promise<void>;
  /** Stops workers, waits at most `stopTimeoutMs` for batches in flight, then at most `stopTimeoutMs` for the position commit, disconnects. Idempotent. */
  stop(): Promise<void>;
  /** A snapshot (fresh objects each call). */
  status(): ReplicatorStatus;
}

/** Errors that mean the cluster (not one topic) is out of reach: they make the replicator `offline`. */
const CONNECTIVITY_CODES = new Set(['KAFKA_CONNECTION', 'KAFKA_UNAVAILABLE', 'KAFKA_TLS']);

class ReplicatorImpl implements Replicator {
  private readonly opts: Readonly<ResolvedOptions>;
  private state: ReplicatorState = 'stopped';
  private since: number;
  private lastError: StatusError | undefined;
  private abort = new AbortController();
  private session: KafkaSession | undefined;
  private committer: PositionCommitter | undefined;
  private topics: TopicRuntime[] = [];
  private workers: PartitionWorker[] = [];
  private running: Promise<unknown>[] = [];
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private statusTimer: unknown;
  /** Acknowledgements so far (a failure of an attempt begun before the latest one is stale). */
  private successes = 0;
  private statusWrite: Promise<void> | undefined;
  private statusDirty = false;

  constructor(options: ReplicatorOptions) {
    this.opts = resolveOptions(options);
    this.since = this.opts.clock.now();
  }

  private setState(state: ReplicatorState, error?: StatusError): void {
    if (error) this.lastError = error;
    if (this.state === state) return;
    const from = this.state;
    this.state = state;
    this.since = this.opts.clock.now();
    this.snapshot();
    const { logger } = this.opts;
    if (state === 'offline') {
      logger.warn({ from, code: error?.code, err: error?.message }, 'replicator: central Kafka unreachable, holding records locally and retrying with back-off');
    } else if (state === 'online') {
      this.lastError = undefined;
      const backlog = this.workers.reduce((n, w) => n + Math.max(0, this.opts.log.endOffset(w.topic, w.status.partition) - w.status.position), 0);
      logger.info({ from, backlogRecords: backlog }, from === 'offline' ? 'replicator: central Kafka reachable again, draining the backlog' : 'replicator: online');
    } else {
      logger.info({ from, to: state }, `replicator: ${state}`);
    }
  }

  /** Writes the status file soon (coalesced: at most one write in flight). */
  private snapshot(): void {
    const path = this.opts.statusFile;
    if (path === null || this.topics.length === 0) return;
    if (this.statusWrite) {
      this.statusDirty = true;
      return;
    }
    this.statusWrite = writeStatusFile(path, this.status(), this.opts.clock.now())
      .catch((err: unknown) => this.opts.logger.warn({ err, file: path }, 'replicator: could not write the status file'))
      .finally(() => {
        this.statusWrite = undefined;
        if (this.statusDirty) {
          this.statusDirty = false;
          this.snapshot();
        }
      });
  }

  private tick = (): void => {
    if (this.opts.statusFile === null) return;
    this.snapshot();
    this.statusTimer = this.opts.timers.setTimeout(this.tick, this.opts.statusFileIntervalMs);
  };

  start(): Promise<void> {
    if (this.state !== 'stopped') return this.starting ?? Promise.resolve();
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { log, topics, deadLetterTopic, logger } = this.opts;
    this.setState('starting');
    this.abort = new AbortController();
    try {
      for (const t of topics) {
        if (!log.hasTopic(t.topic)) throw new AgentError('CONFIG_INVALID', `replication.topics: local topic ${t.topic} does not exist`, { topic: t.topic });
      }
      await log.ensureTopic(deadLetterTopic, { partitions: 1 });
      const positions: ConsumerPositions = await log.consumer(this.opts.consumerName);
      this.session = new KafkaSession(this.opts);
      this.committer = new PositionCommitter(positions, logger);
      const hooks = {
        successes: () => this.successes,
        succeeded: () => {
          this.successes++;
          if (this.state === 'starting' || this.state === 'offline') this.setState('online');
        },
        failed: (e: AgentError, successesAtStart: number) => {
          // A failure of an attempt that began before the latest acknowledgement is stale: it does not flip the state back.
          if (successesAtStart !== this.successes) return;
          if (CONNECTIVITY_CODES.has(e.code) && (this.state === 'starting' || this.state === 'online')) this.setState('offline', toStatusError(e, this.opts.clock.now()));
        },
      };
      this.topics = [];
      this.workers = [];
      for (const t of topics) {
        const info = log.describe(t.topic);
        const status: TopicStatus = { topic: t.topic, centralTopic: t.centralTopic, state: 'running', lagRecords: 0, lagSeconds: 0, partitions: [] };
        const abort = new AbortController();
        const rt: TopicRuntime = {
          topic: t.topic,
          centralTopic: t.centralTopic,
          localPartitions: info.partitionsInfo.length,
          status,
          abort,
          centralPartitions: undefined,
          stop: (e: AgentError) => {
            if (status.state === 'stopped') return;
            status.state = 'stopped';
            status.error = toStatusError(e, this.opts.clock.now());
            logger.error({ topic: t.topic, centralTopic: t.centralTopic, code: e.code, err: e.message }, 'replicator: topic stopped by a non-retriable error; other topics go on');
            abort.abort();
            this.snapshot();
          },
        };
        this.topics.push(rt);
        for (const p of info.partitionsInfo) {
          const committed = positions.get(t.topic, p.partition);
          const position = committed ?? (this.opts.startFrom === 'latest' ? p.endOffset : p.earliestOffset);
          const ps = {
            partition: p.partition,
            state: 'starting' as const,
            position,
            endOffset: p.endOffset,
            lagRecords: Math.max(0, p.endOffset - position),
            lagSeconds: 0,
            sentRecords: 0,
            deadLettered: 0,
            gaps: [],
            lostRecords: 0,
          };
          status.partitions.push(ps);
          this.workers.push(new PartitionWorker(this.opts, rt, ps, this.session, this.committer, hooks));
        }
      }
    } catch (err) {
      this.setState('stopped');
      this.starting = undefined;
      throw err;
    }
    const signal = this.abort.signal;
    this.running = this.workers.map((w) =>
      w.run(signal).catch((err: unknown) => {
        logger.error({ err, topic: w.topic, partition: w.status.partition }, 'replicator: partition worker failed');
      }),
    );
    void this.probe(signal);
    this.tick();
  }

  /** Connects once at start so status tells online/offline even before there is anything to send. */
  private async probe(signal: AbortSignal): Promise<void> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      const successesAtStart = this.successes;
      try {
        await this.session!.get();
        if (this.state === 'starting' || this.state === 'offline') this.setState('online');
        return;
      } catch (err) {
        if (signal.aborted) return;
        const e = err instanceof AgentError ? err : new AgentError('KAFKA_CONNECTION', String((err as Error)?.message ?? err), {}, err);
        if (successesAtStart !== this.successes) return;
        if (this.state === 'starting' || this.state === 'online') this.setState('offline', toStatusError(e, this.opts.clock.now()));
        if (this.state !== 'offline') return;
        await new Promise<void>((resolve) => {
          const h = this.opts.timers.setTimeout(resolve, backoffMs(attempt, this.opts.backoffInitialMs, this.opts.backoffMaxMs, this.opts.random));
          signal.addEventListener('abort', () => {
            this.opts.timers.clearTimeout(h);
            resolve();
          }, { once: true });
        });
      }
    }
  }

  stop(): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    this.setState('stopping');
    this.abort.abort();
    const { stopTimeoutMs, logger } = this.opts;
    const drained = await this.within(Promise.all(this.running), stopTimeoutMs);
    if (!drained) logger.warn({ stopTimeoutMs }, 'replicator: batches still in flight at the stop timeout; they will be sent again after restart');
    if (this.committer && !(await this.within(this.committer.flush(), stopTimeoutMs))) {
      logger.warn({ stopTimeoutMs }, 'replicator: committing positions did not finish at the stop timeout; records may be sent again after restart');
    }
    await this.session?.close();
    this.opts.timers.clearTimeout(this.statusTimer);
    this.running = [];
    this.starting = undefined;
    this.stopping = undefined;
    this.setState('stopped');
    await this.statusWrite;
  }

  /** True when `promise` settled within `ms` (injected timers). */
  private async within(promise: Promise<unknown>, ms: number): Promise<boolean> {
    let timer: unknown;
    const timeout = new Promise<false>((resolve) => {
      timer = this.opts.timers.setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([promise.then(() => true, () => true), timeout]);
    } finally {
      this.opts.timers.clearTimeout(timer);
    }
  }

  status(): ReplicatorStatus {
    const now = this.opts.clock.now();
    const { log } = this.opts;
    const topics = this.topics.map((rt): TopicStatus => {
      const partitions = this.workers
        .filter((w) => w.topic === rt.topic)
        .map((w) => {
          const s = w.status;
          const endOffset = log.endOffset(rt.topic, s.partition);
          const lagRecords = Math.max(0, endOffset - s.position);
          s.endOffset = endOffset;
          s.lagRecords = lagRecords;
          return { ...s, state: this.state === 'stopped' ? ('stopped' as const) : s.state, endOffset, lagRecords, lagSeconds: w.lagSeconds(now), gaps: s.gaps.map((g) => ({ ...g })) };
        });
      return {
        topic: rt.topic,
        centralTopic: rt.centralTopic,
        state: rt.status.state,
        ...(rt.centralPartitions === undefined ? {} : { centralPartitions: rt.centralPartitions }),
        ...(rt.status.error ? { error: { ...rt.status.error } } : {}),
        lagRecords: partitions.reduce((n, p) => n + p.lagRecords, 0),
        lagSeconds: partitions.reduce((m, p) => Math.max(m, p.lagSeconds), 0),
        partitions,
      };
    });
    return { state: this.state, since: this.since, gatewayId: this.opts.gatewayId, ...(this.lastError ? { lastError: { ...this.lastError } } : {}), topics };
  }
}

/** Creates a replicator (validates and freezes the options; throws CONFIG_INVALID naming the key). Call start(). */
export function createReplicator(options: ReplicatorOptions): Replicator {
  return new ReplicatorImpl(options);
}
