/**
 * A protocol-level TCP shim in front of each broker of librdkafka's mock
 * cluster (test/support/kafka-mock.ts starts both). The mock stores and
 * serves the records; the shim closes two gaps found in librdkafka 2.0.2's
 * mock, and nothing else:
 *
 * 1. Metadata names controller id 0 while the brokers are numbered from 1,
 *    and kafkajs's idempotent producer asks the controller for its producer
 *    id ("Broker 0 not found in the cached metadata"). Metadata responses
 *    (v0–v8) are rewritten: a controller id that names no listed broker
 *    becomes the lowest listed id, and brokers are advertised at the shims'
 *    ports so clients never bypass the shim. Topic metadata is copied verbatim.
 * 2. The mock checks producer sequence numbers only for transactional
 *    producers (rd_kafka_mock_validate_records returns early without a
 *    TransactionalId), so an idempotent producer's retry is stored twice.
 *    The shim applies Kafka's checks (kafka-sequence-tracker.ts) to every
 *    Produce request (v3–v8, one record batch v2 per partition, CRC-32C
 *    checked): a duplicate of one of the last five batches is acknowledged
 *    with the original offset and not forwarded; a gap or stale repeat is
 *    answered OUT_OF_ORDER_SEQUENCE_NUMBER; in-sequence batches go to the
 *    mock, and the state advances only when the mock acknowledged them.
 *
 * Everything else is forwarded byte for byte. It fails loudly: a frame it
 * cannot decode, a version it does not know, a response to an unknown
 * correlation id, or a Produce request mixing new and duplicate batches ends
 * the connection and is recorded in `errors` (tests assert it stays empty).
 *
 * SASL/PLAIN and SCRAM-SHA-256/512 (the mock has no SASL APIs): with `sasl`, every client
 * connection must authenticate to the shim before anything else, as a
 * broker's SASL_PLAINTEXT/SASL_SSL listener demands. ApiVersions (v0–v2) is
 * forwarded and its answer advertises SaslHandshake v0–v1 and
 * SaslAuthenticate v0–v1; SaslHandshake is answered by the shim (mechanisms
 * ['PLAIN']; any other mechanism: UNSUPPORTED_SASL_MECHANISM 33), then
 * SaslAuthenticate checks `authzid\0username\0password` (authzid empty or
 * the username): wrong credentials are answered SASL_AUTHENTICATION_FAILED
 * (58) with a message, recorded in `authFailures`, and the connection is
 * closed. Any other request before authentication succeeded (including the
 * raw-token flow after SaslHandshake v0 without SaslAuthenticate, which
 * kafkajs does not use) ends the connection and is recorded in `errors`.
 * With `sasl.mechanisms` naming SCRAM-SHA-256 or SCRAM-SHA-512, the shim is
 * the SCRAM server of RFC 5802 over two SaslAuthenticate round trips, as a
 * Kafka SCRAM listener: client-first (`n,,n=user,r=nonce`) → server-first
 * (`r=nonce+ours,s=salt,i=4096`); client-final (`c=biws,r=…,p=proof`) → the
 * proof is checked against the password's stored key and answered with the
 * server signature (`v=…`), or SASL_AUTHENTICATION_FAILED.
 * After authentication, requests are handled as without SASL.
 *
 * Faults for tests: `dropNextProduceResponse(n)` lets the mock store a batch
 * and cuts the connection before the client sees the acknowledgement (the
 * producer must retry a batch the broker already has); `dropConnections()`
 * cuts every client connection; `failTopic(topic, code)` answers every
 * Produce to one topic with a broker error code (the mock's own error
 * injection is per request type, not per topic); `setMaxMessageBytes(n)`
 * refuses record batches larger than n bytes with MESSAGE_TOO_LARGE, as a
 * broker's message.max.bytes does.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import {
  API_KEY,
  Cursor,
  FrameReader,
  decodeProduceRequest,
  decodeProduceResponse,
  encodeProduceResponse,
  encodeSaslAuthenticateResponse,
  encodeSaslHandshakeResponse,
  requestBodyStart,
  rewriteApiVersionsResponse,
  rewriteMetadataResponse,
} from './kafka-shim-codec.ts';
import type { MetadataBroker, ProducePartitionResult, ProduceRequest } from './kafka-shim-codec.ts';
import { SequenceTracker } from './kafka-sequence-tracker.ts';
import type { SequenceVerdict } from './kafka-sequence-tracker.ts';

/** A mock broker's listener, as its bootstrap list names it. */
export interface ShimTarget {
  host: string;
  port: number;
}

/** PEM key and certificate the shim's listeners present (the mock behind it stays plaintext). */
export interface ShimTlsOptions {
  key: string;
  cert: string;
}

/** SASL mechanisms the shim can demand. */
export type ShimSaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

/** Credentials every client must present. */
export interface ShimSaslOptions {
  username: string;
  password: string;
  /** Mechanisms the shim accepts (SaslHandshake lists them). Default ['PLAIN']. */
  mechanisms?: readonly ShimSaslMechanism[];
}

/** A SCRAM exchange in progress on one connection (RFC 5802 / RFC 7677, as Kafka's SCRAM listeners run it). */
interface ScramExchange {
  hash: 'sha256' | 'sha512';
  /** client-first-message-bare, server-first-message: both enter the AuthMessage. */
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  salt: Buffer;
  iterations: number;
}

const SCRAM_ITERATIONS = 4096;

/** RFC 5802 §5.1 attribute list `a=v,b=w` → map (values may contain '='). */
function scramAttributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

/** RFC 5802 §5.1 saslname: '=2C' → ',', '=3D' → '='. */
function scramName(text: string): string {
  return text.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** Kafka error codes the SASL exchange answers with. */
const UNSUPPORTED_SASL_MECHANISM = 33;
const SASL_AUTHENTICATION_FAILED = 58;
/** Versions the shim answers itself, advertised in ApiVersions when SASL is on. */
const SASL_API_RANGES: ReadonlyMap<number, readonly [number, number]> = new Map([
  [API_KEY.SASL_HANDSHAKE, [0, 1]],
  [API_KEY.SASL_AUTHENTICATE, [0, 1]],
]);

/** How long a connection whose client went away waits for the mock's outstanding responses (so sequence state stays exact). */
const DRAIN_TIMEOUT_MS = 30_000;

interface Pending {
  correlationId: number;
  apiKey: number;
  apiVersion: number;
  /** The decoded Produce request, when the shim forwarded one. */
  produce?: ProduceRequest;
  /** Resolves the partitions' in-flight marks. */
  settle?: () => void;
  /** The frame to send the client once every earlier response went out; null: cut the connection instead. */
  ready?: Buffer | null;
  /** Close the client connection once `ready` is written (failed authentication). */
  endAfter?: boolean;
}

export class MockShim {
  readonly errors: string[] = [];
  /** One line per rejected SASL authentication (wrong credentials or mechanism); not an error of the shim. */
  readonly authFailures: string[] = [];
  /** Connections that authenticated successfully (SASL only). */
  authenticated = 0;
  /** The same, per mechanism. */
  readonly authenticatedBy: Record<ShimSaslMechanism, number> = { PLAIN: 0, 'SCRAM-SHA-256': 0, 'SCRAM-SHA-512': 0 };
  readonly sequences = new SequenceTracker();
  /** Keyed by the fronted broker's `host:port`. */
  private readonly servers = new Map<string, Server>();
  private readonly ports = new Map<string, number>();
  private readonly clients = new Set<Socket>();
  private readonly upstreams = new Set<Socket>();
  /** Produce batches forwarded and not yet answered, per topic/partition: later batches wait for them. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private dropProduce = 0;
  private readonly topicErrors = new Map<string, number>();
  private maxMessageBytes = Infinity;

  private constructor(
    private readonly targets: readonly ShimTarget[],
    private readonly tls: ShimTlsOptions | undefined,
    private readonly sasl: ShimSaslOptions | undefined,
  ) {}

  /**
   * Starts one listener per target broker on 127.0.0.1 (ephemeral ports); with `tls`, clients must speak TLS to it;
   * with `sasl`, they must authenticate with SASL/PLAIN and these credentials first.
   */
  static async start(targets: readonly ShimTarget[], tls?: ShimTlsOptions, sasl?: ShimSaslOptions): Promise<MockShim> {
    const shim = new MockShim(targets, tls, sasl);
    for (const t of targets) await shim.listen(t);
    return shim;
  }

  /** The bootstrap list clients use: the shims, never the mock directly. */
  get bootstrap(): string[] {
    return this.targets.map((t) => `127.0.0.1:${this.ports.get(`${t.host}:${t.port}`)}`);
  }

  /** The next `n` Produce responses are swallowed and their connections cut (the mock has stored the batch). */
  dropNextProduceResponse(n = 1): void {
    this.dropProduce += n;
  }

  /** Every Produce to `topic` is answered with `errorCode` (e.g. 29 TOPIC_AUTHORIZATION_FAILED) until cleared with `failTopic(topic, 0)`. */
  failTopic(topic: string, errorCode: number): void {
    if (errorCode === 0) this.topicErrors.delete(topic);
    else this.topicErrors.set(topic, errorCode);
  }

  /** Record batches larger than this many bytes are refused with MESSAGE_TOO_LARGE (10). Default unlimited. */
  setMaxMessageBytes(bytes: number): void {
    this.maxMessageBytes = bytes;
  }

  /** Cuts every client connection at once (listeners stay; outstanding responses still update sequence state). */
  dropConnections(): void {
    for (const s of this.clients) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.clients) s.destroy();
    for (const s of this.upstreams) s.destroy();
    await Promise.all([...this.servers.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.clear();
  }

  private advertise = (broker: MetadataBroker): { host: string; port: number } => {
    const port = this.ports.get(`${broker.host}:${broker.port}`);
    if (port === undefined) throw new Error(`Metadata names broker ${broker.nodeId} at ${broker.host}:${broker.port}, which the shim does not front`);
    return { host: '127.0.0.1', port };
  };

  /**
   * One step of the SASL/PLAIN exchange: sets `pending.ready` to the shim's answer (and `endAfter` on failure) or
   * throws (the caller ends the connection and records the error) for anything out of order.
   */
  private saslStep(
    requestFrame: Buffer,
    pending: Pending,
    auth: 'start' | 'handshake' | 'done' | 'rejected',
    where: string,
    setAuth: (next: 'handshake' | 'done' | 'rejected') => void,
    session: { mechanism?: ShimSaslMechanism; scram?: ScramExchange },
  ): void {
    const sasl = this.sasl!;
    const accepted = sasl.mechanisms ?? ['PLAIN'];
    const { apiKey, apiVersion, correlationId } = pending;
    if (auth === 'done') throw new Error(`api key ${apiKey} v${apiVersion} after SASL authentication (re-authentication is not supported)`);
    if (apiKey === API_KEY.SASL_HANDSHAKE && auth === 'start') {
      if (apiVersion > 1) throw new Error(`SaslHandshake v${apiVersion} not supported`);
      const c = requestBodyStart(requestFrame);
      const mechanism = c.string();
      c.end();
      if (!accepted.includes(mechanism as ShimSaslMechanism)) {
        this.authFailures.push(`${where}: mechanism ${mechanism} refused`);
        pending.ready = encodeSaslHandshakeResponse(correlationId, UNSUPPORTED_SASL_MECHANISM, accepted);
        pending.endAfter = true;
        setAuth('rejected');
        return;
      }
      session.mechanism = mechanism as ShimSaslMechanism;
      pending.ready = encodeSaslHandshakeResponse(correlationId, 0, accepted);
      setAuth('handshake');
      return;
    }
    if (apiKey === API_KEY.SASL_AUTHENTICATE && auth === 'handshake' && session.mechanism !== 'PLAIN') {
      if (apiVersion > 1) throw new Error(`SaslAuthenticate v${apiVersion} not supported`);
      const c = requestBodyStart(requestFrame);
      const token = (c.nullableBytes() ?? Buffer.alloc(0)).toString('utf8');
      c.end();
      const fail = (why: string): void => {
        this.authFailures.push(`${where}: ${session.mechanism} authentication failed: ${why}`);
        pending.ready = encodeSaslAuthenticateResponse(correlationId, apiVersion, SASL_AUTHENTICATION_FAILED, 'Authentication failed during authentication due to invalid credentials with SASL mechanism ' + session.mechanism);
        pending.endAfter = true;
        setAuth('rejected');
      };
      if (!session.scram) {
        // client-first-message: gs2 header 'n,,' (no channel binding, no authzid), then n=user,r=nonce
        if (!token.startsWith('n,,')) throw new Error(`SCRAM client-first message without the 'n,,' header: ${JSON.stringify(token)}`);
        const clientFirstBare = token.slice(3);
        const attrs = scramAttributes(clientFirstBare);
        const user = scramName(attrs.get('n') ?? '');
        const clientNonce = attrs.get('r');
        if (!clientNonce) throw new Error(`SCRAM client-first message without a nonce: ${JSON.stringify(token)}`);
        if (user !== sasl.username) return fail(`unknown user ${JSON.stringify(user)}`);
        const nonce = clientNonce + randomBytes(18).toString('base64');
        const salt = createHash('sha256').update(`millstream-shim:${user}`).digest().subarray(0, 16);
        const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${SCRAM_ITERATIONS}`;
        session.scram = { hash: session.mechanism === 'SCRAM-SHA-512' ? 'sha512' : 'sha256', clientFirstBare, serverFirst, nonce, salt, iterations: SCRAM_ITERATIONS };
        pending.ready = encodeSaslAuthenticateResponse(correlationId, apiVersion, 0, null, Buffer.from(serverFirst));
        return;
      }
      // client-final-message: c=biws,r=nonce,p=proof
      const x = session.scram;
      const proofAt = token.lastIndexOf(',p=');
      if (proofAt < 0) throw new Error(`SCRAM client-final message without a proof: ${JSON.stringify(token)}`);
      const withoutProof = token.slice(0, proofAt);
      const attrs = scramAttributes(withoutProof);
      if (attrs.get('r') !== x.nonce) return fail('nonce mismatch');
      if (attrs.get('c') !== 'biws') return fail(`channel binding ${JSON.stringify(attrs.get('c'))}`);
      const proof = Buffer.from(token.slice(proofAt + 3), 'base64');
      const keyLength = x.hash === 'sha512' ? 64 : 32;
      const salted = pbkdf2Sync(sasl.password, x.salt, x.iterations, keyLength, x.hash);
      const clientKey = createHmac(x.hash, salted).update('Client Key').digest();
      const storedKey = createHash(x.hash).update(clientKey).digest();
      const authMessage = `${x.clientFirstBare},${x.serverFirst},${withoutProof}`;
      const clientSignature = createHmac(x.hash, storedKey).update(authMessage).digest();
      if (proof.length !== keyLength) return fail('proof of the wrong length');
      const recoveredKey = Buffer.alloc(keyLength);
      for (let i = 0; i < keyLength; i++) recoveredKey[i] = proof[i]! ^ clientSignature[i]!;
      if (!timingSafeEqual(createHash(x.hash).update(recoveredKey).digest(), storedKey)) return fail(`wrong password for ${JSON.stringify(sasl.username)}`);
      const serverKey = createHmac(x.hash, salted).update('Server Key').digest();
      const serverSignature = createHmac(x.hash, serverKey).update(authMessage).digest('base64');
      this.authenticated++;
      this.authenticatedBy[session.mechanism!]++;
      pending.ready = encodeSaslAuthenticateResponse(correlationId, apiVersion, 0, null, Buffer.from(`v=${serverSignature}`));
      setAuth('done');
      return;
    }
    if (apiKey === API_KEY.SASL_AUTHENTICATE && auth === 'handshake') {
      if (apiVersion > 1) throw new Error(`SaslAuthenticate v${apiVersion} not supported`);
      const c = requestBodyStart(requestFrame);
      const token = c.nullableBytes();
      c.end();
      const parts = (token ?? Buffer.alloc(0)).toString('utf8').split('\u0000');
      const ok = parts.length === 3 && (parts[0] === '' || parts[0] === parts[1]) && parts[1] === sasl.username && parts[2] === sasl.password;
      if (!ok) {
        this.authFailures.push(`${where}: PLAIN authentication failed for ${JSON.stringify(parts.length === 3 ? parts[1] : '?')}`);
        pending.ready = encodeSaslAuthenticateResponse(correlationId, apiVersion, SASL_AUTHENTICATION_FAILED, 'Authentication failed: Invalid username or password');
        pending.endAfter = true;
        setAuth('rejected');
        return;
      }
      this.authenticated++;
      this.authenticatedBy.PLAIN++;
      pending.ready = encodeSaslAuthenticateResponse(correlationId, apiVersion, 0, null);
      setAuth('done');
      return;
    }
    throw new Error(`api key ${apiKey} v${apiVersion} before SASL authentication completed (state ${auth})`);
  }

  private listen(target: ShimTarget): Promise<void> {
    const server: Server = this.tls
      ? createTlsServer({ key: this.tls.key, cert: this.tls.cert }, (client) => this.accept(client, target))
      : createServer((client) => this.accept(client, target));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        this.servers.set(`${target.host}:${target.port}`, server);
        this.ports.set(`${target.host}:${target.port}`, (server.address() as AddressInfo).port);
        resolve();
      });
    });
  }

  private accept(client: Socket, target: ShimTarget): void {
    const where = `${target.host}:${target.port}`;
    client.setNoDelay(true);
    const upstream = createConnection({ host: target.host, port: target.port });
    upstream.setNoDelay(true);
    this.clients.add(client);
    this.upstreams.add(upstream);
    const order: Pending[] = [];
    const requests = new FrameReader();
    const responses = new FrameReader();
    let chain: Promise<void> = Promise.resolve();
    let drainTimer: NodeJS.Timeout | undefined;
    /** SASL progress of this connection: `rejected` ignores everything until the close. */
    let auth: 'start' | 'handshake' | 'done' | 'rejected' = this.sasl ? 'start' : 'done';
    const saslSession: { mechanism?: ShimSaslMechanism; scram?: ScramExchange } = {};

    const settleAll = (): void => {
      for (const p of order.splice(0)) p.settle?.();
    };
    const closeUpstream = (): void => {
      clearTimeout(drainTimer);
      this.upstreams.delete(upstream);
      upstream.destroy();
      settleAll();
    };
    const closeClient = (): void => {
      this.clients.delete(client);
      client.destroy();
      // Keep the upstream until the mock answered what it was sent, so the sequence state stays exact.
      if (order.some((p) => p.produce)) drainTimer ??= setTimeout(closeUpstream, DRAIN_TIMEOUT_MS);
      else closeUpstream();
    };
    const fail = (message: string): void => {
      this.errors.push(`${where}: ${message}`);
      closeClient();
      closeUpstream();
    };
    const flush = (): void => {
      while (order.length > 0 && order[0].ready !== undefined) {
        const p = order.shift()!;
        const ready = p.ready;
        if (ready === null) closeClient();
        else if (ready !== undefined && !client.destroyed) {
          client.write(ready);
          if (p.endAfter) client.end(() => closeClient());
        }
      }
      if (client.destroyed && !order.some((p) => p.produce)) closeUpstream();
    };

    client.on('error', () => closeClient());
    client.on('close', () => closeClient());
    upstream.on('error', () => {
      closeClient();
      closeUpstream();
    });
    upstream.on('close', () => {
      closeClient();
      closeUpstream();
    });

    const onRequest = async (requestFrame: Buffer): Promise<void> => {
      const c = new Cursor(requestFrame, 4);
      const apiKey = c.int16();
      const apiVersion = c.int16();
      const correlationId = c.int32();
      const pending: Pending = { correlationId, apiKey, apiVersion };
      if (auth === 'rejected') return;
      if (this.sasl && apiKey !== API_KEY.API_VERSIONS && (auth !== 'done' || apiKey === API_KEY.SASL_HANDSHAKE || apiKey === API_KEY.SASL_AUTHENTICATE)) {
        this.saslStep(requestFrame, pending, auth, where, (next) => {
          auth = next;
        }, saslSession);
        order.push(pending);
        flush();
        return;
      }
      if (apiKey !== API_KEY.PRODUCE) {
        order.push(pending);
        upstream.write(requestFrame);
        return;
      }
      const produce = decodeProduceRequest(requestFrame);
      if (produce.acks === 0) throw new Error('Produce with acks=0 is not supported by the shim');
      const keys = produce.topics.flatMap((t) => t.partitions.map((p) => `${t.topic}\u0000${p.partition}`));
      // Batches of a partition are checked one at a time, in arrival order.
      await Promise.all(keys.map((k) => this.inFlight.get(k)));
      // Broker checks in Kafka's order: authorization and size before sequence.
      const verdicts: SequenceVerdict[] = produce.topics.flatMap((t) =>
        t.partitions.map((p): SequenceVerdict => {
          const injected = this.topicErrors.get(t.topic);
          if (injected !== undefined) return { kind: 'error', errorCode: injected, reason: 'injected' };
          if (p.batch.batchLength + 12 > this.maxMessageBytes) return { kind: 'error', errorCode: 10, reason: 'batch larger than max message bytes' };
          return this.sequences.check(t.topic, p.partition, p.batch);
        }),
      );
      const forwards = verdicts.filter((v) => v.kind === 'append' || v.kind === 'pass').length;
      if (forwards === verdicts.length) {
        let settle!: () => void;
        const done = new Promise<void>((r) => {
          settle = r;
        });
        for (const k of keys) this.inFlight.set(k, done);
        pending.produce = produce;
        pending.settle = () => {
          for (const k of keys) if (this.inFlight.get(k) === done) this.inFlight.delete(k);
          settle();
        };
        order.push(pending);
        if (upstream.destroyed) {
          pending.settle();
          return;
        }
        upstream.write(requestFrame);
        return;
      }
      if (forwards > 0) throw new Error('Produce request mixes batches to store with batches to refuse or ack as duplicates; the shim does not split requests');
      let i = 0;
      const topics = produce.topics.map((t) => ({
        topic: t.topic,
        partitions: t.partitions.map((p): ProducePartitionResult => {
          const v = verdicts[i++];
          const base = { partition: p.partition, logAppendTime: -1n, logStartOffset: -1n };
          if (v.kind === 'duplicate') return { ...base, errorCode: 0, baseOffset: v.baseOffset };
          if (v.kind === 'error') return { ...base, errorCode: v.errorCode, baseOffset: -1n };
          throw new Error('unreachable');
        }),
      }));
      pending.ready = encodeProduceResponse({ correlationId, topics, throttleTimeMs: 0 }, apiVersion);
      order.push(pending);
      flush();
    };

    const onResponse = (responseFrame: Buffer): void => {
      const correlationId = new Cursor(responseFrame, 4).int32();
      const pending = order.find((p) => p.correlationId === correlationId && p.ready === undefined);
      if (!pending) throw new Error(`response with unknown correlation id ${correlationId}`);
      if (pending.apiKey === API_KEY.API_VERSIONS && this.sasl) {
        pending.ready = rewriteApiVersionsResponse(responseFrame, pending.apiVersion, SASL_API_RANGES);
      } else if (pending.apiKey === API_KEY.METADATA) {
        pending.ready = rewriteMetadataResponse(responseFrame, pending.apiVersion, this.advertise);
      } else if (pending.produce) {
        const response = decodeProduceResponse(responseFrame, pending.apiVersion);
        for (const t of response.topics) {
          const sent = pending.produce.topics.find((x) => x.topic === t.topic);
          for (const p of t.partitions) {
            const batch = sent?.partitions.find((x) => x.partition === p.partition)?.batch;
            if (!batch) throw new Error(`Produce response names ${t.topic}[${p.partition}], which the request did not`);
            if (p.errorCode === 0) this.sequences.written(t.topic, p.partition, batch, p.baseOffset);
          }
        }
        pending.settle?.();
        pending.settle = undefined;
        if (this.dropProduce > 0) {
          this.dropProduce--;
          pending.ready = null;
        } else {
          pending.ready = responseFrame;
        }
      } else {
        pending.ready = responseFrame;
      }
      flush();
    };

    client.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = requests.push(chunk);
      } catch (err) {
        fail(`request framing: ${(err as Error).message}`);
        return;
      }
      for (const f of frames) {
        chain = chain.then(() => onRequest(f)).catch((err: unknown) => fail(`request: ${(err as Error).message}`));
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      try {
        for (const f of responses.push(chunk)) onResponse(f);
      } catch (err) {
        fail(`response: ${(err as Error).message}`);
      }
    });
  }
}
