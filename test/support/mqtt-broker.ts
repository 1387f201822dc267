/**
 * Real MQTT brokers for tests and benchmarks, on loopback:
 *
 * - aedes, in-process: always available. Its in-memory persistence object is
 *   kept across `restart()`, so persistent sessions (subscriptions and queued
 *   QoS 1 messages) survive a broker restart the way a disk-backed broker's do.
 * - Mosquitto, as a child process, when `/usr/sbin/mosquitto` exists: a tiny
 *   config (one listener on 127.0.0.1, anonymous, persistence in a temp
 *   folder); `restart()` stops it with SIGTERM (it writes its session
 *   database) and starts it again on the same port.
 *
 * Use `brokerKinds` with `describe.each` so every suite runs against both;
 * Mosquitto suites are skipped (with `skipReason`) only when the binary is absent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { join } from 'node:path';

export type BrokerKind = 'aedes' | 'mosquitto';

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';

export interface BrokerKindInfo {
  kind: BrokerKind;
  available: boolean;
  /** Why the kind is unavailable; empty when available. */
  skipReason: string;
}

export const brokerKinds: BrokerKindInfo[] = [
  { kind: 'aedes', available: true, skipReason: '' },
  {
    kind: 'mosquitto',
    available: existsSync(MOSQUITTO_BIN),
    skipReason: existsSync(MOSQUITTO_BIN) ? '' : `${MOSQUITTO_BIN} not installed (apt-get install mosquitto; .ci/run installs it)`,
  },
];

/** Broker-side TLS: PEM file paths. The URL becomes `mqtts://`. */
export interface BrokerTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Refuse clients without a certificate signed by `caFile`. Default false. */
  requireClientCert?: boolean;
}

export interface BrokerOptions {
  /** Serve MQTT over TLS. Default: plain TCP. */
  tls?: BrokerTls;
  /** ACL: the only topics (exact, or a `prefix/#`) clients may subscribe and publish to. Default: all. */
  allowedTopics?: readonly string[];
  /** user → password; when set, anonymous clients are refused (CONNACK "bad user name or password"). Default: anonymous allowed. */
  users?: Readonly<Record<string, string>>;
  /** Mosquitto `max_inflight_messages` (outgoing QoS 1 messages in flight per client). Default: Mosquitto's own (20). */
  maxInflightMessages?: number;
  /** Mosquitto `max_queued_messages` per offline/busy client. Default 0 (no limit), so tests never lose messages to the queue cap. */
  maxQueuedMessages?: number;
}

export interface TestBroker {
  readonly kind: BrokerKind;
  /** `mqtt://127.0.0.1:<port>`; stays the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** Stops the broker; persistent sessions are kept for `start()`. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port. Idempotent. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Stops for good and removes temp files. Idempotent. */
  close(): Promise<void>;
  /** The broker's process id when it runs as a process of its own (Mosquitto), else null (aedes runs in ours). */
  readonly pid: number | null;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick, released before return). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startBroker(kind: BrokerKind, options: BrokerOptions = {}): Promise<TestBroker> {
  const port = await freePort();
  const broker = kind === 'aedes' ? new AedesBroker(port, options) : new MosquittoBroker(port, options);
  await broker.start();
  return broker;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

class AedesBroker implements TestBroker {
  readonly pid = null;
  readonly kind = 'aedes' as const;
  readonly url: string;
  private broker: import('aedes').Aedes | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** The in-memory persistence, carried across restarts. */
  private persistence: unknown = undefined;

  constructor(
    readonly port: number,
    private readonly options: BrokerOptions = {},
  ) {
    this.url = `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    if (this.broker) return;
    const users = this.options.users;
    const authenticate = users
      ? (_client: unknown, username: Readonly<string> | undefined, password: Readonly<Buffer> | undefined, done: (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void) => {
          if (username !== undefined && Object.hasOwn(users, username) && password?.toString() === users[username]) return done(null, true);
          done(Object.assign(new Error('bad user name or password'), { returnCode: 4 }), null);
        }
      : undefined;
    // Imported on first use: benchmarks that run Mosquitto do not pay for aedes in their RSS.
    const { Aedes } = await import('aedes');
    const allowed = this.options.allowedTopics;
    const permitted = (topic: string): boolean => !allowed || allowed.some((p) => topic === p || (p.endsWith('/#') && (topic === p.slice(0, -2) || topic.startsWith(p.slice(0, -1)))));
    const authorizeSubscribe = allowed
      ? (_client: unknown, sub: { topic: string }, done: (err: Error | null, sub: unknown) => void) => done(null, permitted(sub.topic) ? sub : null)
      : undefined;
    const broker = await Aedes.createBroker({
      ...(this.persistence === undefined ? {} : { persistence: this.persistence }),
      ...(authenticate ? { authenticate: authenticate as never } : {}),
      ...(authorizeSubscribe ? { authorizeSubscribe: authorizeSubscribe as never } : {}),
    });
    this.persistence = (broker as unknown as { persistence: unknown }).persistence;
    const onSocket = (socket: Socket): void => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      broker.handle(socket);
    };
    const tls = this.options.tls;
    const server: Server = tls
      ? createTlsServer(
          {
            ca: readFileSync(tls.caFile),
            cert: readFileSync(tls.certFile),
            key: readFileSync(tls.keyFile),
            requestCert: tls.requireClientCert ?? false,
            rejectUnauthorized: tls.requireClientCert ?? false,
          },
          onSocket,
        )
      : createServer(onSocket);
    // A TLS handshake failure is the client's problem, not the test broker's.
    server.on('tlsClientError', () => {});
    // A restart may find the port in TIME_WAIT-free but briefly busy: retry a little.
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
        break;
      } catch (err) {
        if (attempt >= 50) throw err;
        await sleep(50);
      }
    }
    this.broker = broker;
    this.server = server;
  }

  async stop(): Promise<void> {
    const { broker, server } = this;
    if (!broker || !server) return;
    this.broker = null;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
    await new Promise<void>((resolve) => broker.close(() => resolve()));
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
  }
}

class MosquittoBroker implements TestBroker {
  readonly kind = 'mosquitto' as const;
  readonly url: string;
  private dir: string | null = null;
  private child: ChildProcess | null = null;
  get pid(): number | null {
    return this.child?.pid ?? null;
  }
  private stderr = '';

  constructor(
    readonly port: number,
    private readonly options: BrokerOptions,
  ) {
    this.url = `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
  }

  private async config(): Promise<string> {
    if (!this.dir) this.dir = await mkdtemp(join(tmpdir(), 'millstream-mosquitto-'));
    const { tls, users } = this.options;
    const passwordFile = join(this.dir, 'passwords');
    if (users) await writeFile(passwordFile, Object.entries(users).map(([user, password]) => mosquittoPasswordLine(user, password)).join(''));
    const aclFile = join(this.dir, 'acl');
    if (this.options.allowedTopics) await writeFile(aclFile, this.options.allowedTopics.map((t) => `topic readwrite ${t}\n`).join(''));
    const lines = [
      `listener ${this.port} 127.0.0.1`,
      ...(this.options.allowedTopics ? [`acl_file ${aclFile}`] : []),
      `allow_anonymous ${users ? 'false' : 'true'}`,
      ...(users ? [`password_file ${passwordFile}`] : []),
      ...(tls
        ? [`cafile ${tls.caFile}`, `certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`, `require_certificate ${tls.requireClientCert ? 'true' : 'false'}`]
        : []),
      'persistence true',
      `persistence_location ${this.dir}/`,
      'persistence_file mosquitto.db',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      `max_queued_messages ${this.options.maxQueuedMessages ?? 0}`,
      ...(this.options.maxInflightMessages === undefined ? [] : [`max_inflight_messages ${this.options.maxInflightMessages}`]),
      // As root Mosquitto drops to user "mosquitto", who could not write our temp folder.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
    ];
    const file = join(this.dir, 'mosquitto.conf');
    await writeFile(file, `${lines.join('\n')}\n`);
    return file;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const file = await this.config();
    this.stderr = '';
    const child = spawn(MOSQUITTO_BIN, ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    this.child = child;
    for (;;) {
      if (exited) {
        this.child = null;
        throw new Error(`mosquitto exited on start: ${this.stderr}`);
      }
      if (await canConnect(this.port)) return;
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.dir) {
      await rm(this.dir, { recursive: true, force: true });
      this.dir = null;
    }
  }
}

/** A Mosquitto 2 password-file line: `$7$` is PBKDF2-HMAC-SHA512 with 101 rounds, base64 salt and hash (what mosquitto_passwd writes). */
function mosquittoPasswordLine(user: string, password: string): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, 101, 64, 'sha512');
  return `${user}:$7$101$${salt.toString('base64')}$${hash.toString('base64')}\n`;
}
