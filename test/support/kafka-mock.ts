/**
 * The Kafka peer for tests: Confluent's mock cluster inside librdkafka,
 * run by the compiled launcher (kafka-mock-launcher.c) as a child process,
 * fronted by the metadata shim (kafka-mock-shim.ts) so that kafkajs's
 * idempotent producer can initialise against it.
 *
 *   const kafka = await startKafkaMock({ brokers: 3 });
 *   await kafka.createTopic('central', 3);
 *   // clients use kafka.bootstrap
 *   await kafka.brokerDown(-1); ... await kafka.brokerUp(-1);
 *   await kafka.stop();
 *
 * The child exits when its stdin closes, so it never outlives the test process.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { MockShim } from './kafka-mock-shim.ts';
import type { ShimSaslOptions, ShimTlsOptions } from './kafka-mock-shim.ts';
import { requireLauncher } from './kafka-mock-build.ts';

/** Kafka api keys used with `pushErrors`. */
export const KAFKA_API = Object.freeze({ PRODUCE: 0, FETCH: 1, METADATA: 3, INIT_PRODUCER_ID: 22 });

/** Kafka protocol error codes used by tests (librdkafka's -195 `_TRANSPORT` makes the mock drop the connection). */
export const KAFKA_ERR = Object.freeze({
  TRANSPORT: -195,
  NOT_LEADER_FOR_PARTITION: 6,
  REQUEST_TIMED_OUT: 7,
  MESSAGE_TOO_LARGE: 10,
  NOT_ENOUGH_REPLICAS: 19,
  TOPIC_AUTHORIZATION_FAILED: 29,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  DUPLICATE_SEQUENCE_NUMBER: 46,
});

export interface KafkaMock {
  /** `host:port` of each broker as clients must use it (the shims). */
  readonly bootstrap: string[];
  readonly shim: MockShim;
  /** Process id of the launcher (the mock cluster), e.g. to read its CPU time. */
  readonly pid: number | undefined;
  /** Sends one launcher command (see kafka-mock-launcher.c); rejects on `error ...`. */
  command(line: string): Promise<void>;
  createTopic(name: string, partitions: number): Promise<void>;
  /** Disconnects a broker (-1: all) and refuses new connections. */
  brokerDown(id: number): Promise<void>;
  brokerUp(id: number): Promise<void>;
  /** The next requests of `apiKey` fail with these codes, in order. */
  pushErrors(apiKey: number, codes: readonly number[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `tls`: the shim listeners speak TLS with this key and certificate (see kafka-tls-fixture.ts).
 * `sasl`: every client connection must authenticate with these credentials first, by SASL/PLAIN or the SCRAM mechanisms `sasl.mechanisms` names (default: no SASL).
 */
export async function startKafkaMock(options: { brokers?: number; tls?: ShimTlsOptions; sasl?: ShimSaslOptions } = {}): Promise<KafkaMock> {
  const launcher = requireLauncher();
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(launcher, [String(options.brokers ?? 3)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let exited = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    waiters.shift()?.();
  });
  child.on('exit', () => {
    exited = true;
    for (const w of waiters.splice(0)) w();
  });
  const nextLine = async (): Promise<string> => {
    while (lines.length === 0) {
      if (exited) throw new Error(`Kafka mock launcher exited: ${stderr.trim()}`);
      await new Promise<void>((r) => waiters.push(r));
    }
    return lines.shift()!;
  };
  const first = await nextLine();
  const m = /^bootstrap (\S+)$/.exec(first);
  if (!m) throw new Error(`Kafka mock launcher said ${JSON.stringify(first)}`);
  const targets = m[1].split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
  });
  const shim = await MockShim.start(targets, options.tls, options.sasl);
  // Commands are answered in order; serialise them so answers match.
  let queue: Promise<unknown> = Promise.resolve();
  const command = (line: string): Promise<void> => {
    const run = queue.then(async () => {
      child.stdin.write(`${line}\n`);
      const answer = await nextLine();
      if (answer !== 'ok') throw new Error(`Kafka mock: ${line}: ${answer}`);
    });
    queue = run.catch(() => undefined);
    return run;
  };
  let stopped = false;
  return {
    bootstrap: shim.bootstrap,
    shim,
    pid: child.pid,
    command,
    createTopic: (name, partitions) => command(`topic ${name} ${partitions}`),
    brokerDown: (id) => command(`down ${id}`),
    brokerUp: (id) => command(`up ${id}`),
    pushErrors: (apiKey, codes) => command(`errors ${apiKey} ${codes.join(' ')}`),
    async stop() {
      if (stopped) return;
      stopped = true;
      await shim.close();
      if (!exited) {
        const done = new Promise<void>((r) => child.once('exit', () => r()));
        child.stdin.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(timer);
      }
    },
  };
}
