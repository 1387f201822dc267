/**
 * The MQTT source: subscribes to a broker (MQTT.js v5 client), maps JSON
 * payloads to readings and acknowledges QoS 1 messages only once the sink has
 * stored them durably.
 *
 * Delivery guarantee (QoS 1, clean session off): at least once. A message
 * is PUBACKed only after `sink.write` / `sink.deadLetter` resolved for it; a
 * crash, a lost connection or a refusing sink before that leaves it
 * unacknowledged, and the broker sends it again on the next connection of
 * the same client id (MQTT 3.1.1 §4.4, 5.0 §4.4). A message stored but whose
 * PUBACK was lost is stored twice. QoS 0 messages are acknowledged by nobody
 * and are lost if the process dies before they are stored.
 *
 * Receive path: MQTT.js keeps the connection (CONNECT, TLS, SUBSCRIBE,
 * keep-alive, DISCONNECT), but PUBLISH packets of QoS 0/1 are read ahead of
 * it by `MqttPublishReader` (see `tapStream`): MQTT.js's own path (a
 * BufferList parser, a packet object, a trace call, a process.nextTick and
 * a handler chain per packet) cost more CPU per message than everything
 * else in the bridge. Every other packet is fed, whole and in order, to
 * MQTT.js's parser. PUBLISH packets that MQTT.js still parses (QoS 2, an
 * MQTT 5 Topic Alias, malformed ones, or all of them should the tap not be
 * possible, or with `leanPublishReader: false`) come to `receive` through
 * `client.handleMessage`.
 *
 * How acks are held back (verified against MQTT.js 5.16,
 * `build/lib/handlers/publish.js`): neither path lets MQTT.js send a
 * PUBACK. For packets MQTT.js parses, the client calls
 * `client.handleMessage(packet, cb)` and sends the PUBACK inside `cb` unless
 * `cb` gets an error; `receive` calls `cb(deferred)`. The PUBACKs of a
 * stored batch are written later by us, straight to the client's socket in
 * one write (see `acknowledge`). Backpressure: while `maxPendingReadings`
 * messages wait for the sink, the lean reader stops and the socket is
 * paused (or, for MQTT.js's path, `cb` is held: the client stops parsing);
 * TCP pushes back and the broker keeps the rest. With MQTT 5 the CONNECT
 * also advertises `receiveMaximum = maxPendingReadings`, so the broker itself
 * caps unacknowledged messages in flight. (With 3.1.1 a hold longer than
 * 1.5 × keep-alive also holds back the PINGRESP, so MQTT.js drops the
 * connection and we reconnect; the broker resends what was unacknowledged,
 * so up to `maxPendingReadings` messages can be stored twice. With MQTT 5
 * the broker's flow control should keep us under the mark; the hold, at
 * twice receiveMaximum, bounds a broker that sends past it: see `holdMark`.)
 *
 * Batching: each message is decoded as it arrives (its payload, a view of
 * the socket's read buffer, is not kept); what arrives in one turn of the
 * event loop is handed to the sink as one delivery; deliveries queued while
 * the sink is busy are merged by the base into one `write`. The sink is
 * never awaited per message.
 *
 * Payload mapping (mqtt-payload.ts, shared with capture replay): the payload
 * must be UTF-8 JSON holding an object. The fields named in the
 * subscription's topic pattern (`factory/+line/+sensor_id/reading`) are
 * added to it and win over payload fields of the same name. Anything else
 * (not UTF-8, not JSON, not an object) is a decode error and goes to the
 * dead-letter topic with the raw payload. A topic matched by several
 * subscriptions uses the first. A payload that is a plain JSON object takes
 * the fast path (mqtt-fast-decoder.ts): checked in one pass over its bytes
 * and stored as those bytes (`Reading.valueBytes`, `value` parsed only on
 * demand), with exactly the reading the general path would build; anything
 * else (and topics with a JSON Schema) takes `decodeMqttMessage`.
 */
import type { Duplex } from 'node:stream';
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { AdapterBase, type AdapterDeps, type CommonAdapterConfig } from './adapter-base.ts';
import { BridgeError } from './errors.ts';
import { mqttReasonCode } from './mqtt-reason-codes.ts';
import { parseTopicPattern, type TopicPattern } from './mqtt-topic-pattern.ts';
import { decodeMqttMessage, MqttRoutes } from './mqtt-payload.ts';
import { MqttFastDecoder } from './mqtt-fast-decoder.ts';
import { MqttPublishReader } from './mqtt-publish-reader.ts';
import type { DeadLetter, Reading } from './types.ts';

/** One subscription. */
export interface MqttSubscriptionConfig {
  /** Topic pattern: an MQTT filter whose `+`/`#` levels may carry a field name (`factory/+line/+sensor_id/reading`). Required. */
  topic: string;
  /** Requested QoS, 0 or 1. Default 1. */
  qos?: 0 | 1;
  /** Log topic for readings of this subscription. Default: the adapter's `topic`. */
  logTopic?: string;
}

/** TLS material as PEM text (the agent reads the files; the bridge reads none). Used with `mqtts://` URLs. */
export interface MqttTlsConfig {
  /** CA certificate(s) that sign the broker's certificate. Default: Node's bundled root CAs. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate, for brokers that require one. Default: none. */
  cert?: string | Buffer;
  /** Private key of `cert`. Default: none. */
  key?: string | Buffer;
  /** Passphrase of `key`. Default: none. */
  passphrase?: string;
  /** Refuse brokers whose certificate does not verify. Default true. */
  rejectUnauthorized?: boolean;
  /** Host name to verify the certificate against (SNI). Default: the URL's host. */
  servername?: string;
}

/** The MQTT adapter's options (the agent's YAML `sources[].mqtt` maps onto these). */
export interface MqttAdapterConfig extends CommonAdapterConfig {
  /** Broker URL: `mqtt://host[:1883]` or `mqtts://host[:8883]`. Required. */
  url: string;
  /** Client id; with a persistent session it names the session, so keep it stable across restarts. Required. */
  clientId: string;
  /** Default: none (anonymous). */
  username?: string;
  /** Default: none. */
  password?: string;
  /** TLS material for `mqtts://`. Default: system CAs, no client certificate. */
  tls?: MqttTlsConfig;
  /** Clean session (3.1.1) / clean start (5). Default false: the broker keeps the subscriptions and queues QoS 1 messages while we are away. */
  cleanSession?: boolean;
  /** MQTT protocol level: 4 (3.1.1) or 5. Default 4. */
  protocolVersion?: 4 | 5;
  /** MQTT 5 only: how long the broker keeps the session after a disconnect, in s. Default 4294967295 (never expires) with cleanSession false, 0 with true. */
  sessionExpirySec?: number;
  /** Keep-alive interval in s (0: off). Default 30. */
  keepaliveSec?: number;
  /** Give up a connection attempt without CONNACK after this, in ms. Default 10000. */
  connectTimeoutMs?: number;
  /** What to subscribe to. Required, at least one. */
  subscriptions: MqttSubscriptionConfig[];
  /**
   * Read PUBLISH packets of QoS 0/1 with the adapter's own lean reader
   * ahead of MQTT.js (see the file comment); false: MQTT.js parses every
   * packet (slower; the same readings, acks and backpressure). Default true.
   */
  leanPublishReader?: boolean;
}

export const MQTT_DEFAULTS = Object.freeze({
  qos: 1 as 0 | 1,
  cleanSession: false,
  protocolVersion: 4 as 4 | 5,
  sessionExpiryNeverSec: 0xffff_ffff,
  keepaliveSec: 30,
  connectTimeoutMs: 10_000,
  leanPublishReader: true,
});

interface Subscription {
  pattern: TopicPattern;
  qos: 0 | 1;
  logTopic: string | undefined;
}

/** One live connection; acks and held callbacks belong to it and die with it. */
interface Connection {
  client: MqttClient;
  connected: boolean;
  /** The client's parser callback held for backpressure (at most one: the client waits for it). */
  held: ((err?: Error) => void) | null;
  /** The socket, once MQTT.js built it through `tapStream`; null: MQTT.js reads every packet itself. */
  stream: Duplex | null;
  /** Reads this connection's PUBLISH packets ahead of MQTT.js (see `tapStream`); null with `stream`. */
  reader: MqttPublishReader | null;
  /** When the socket's latest chunk arrived (ms): the receive time of the messages the lean reader reads from it. */
  chunkAt: number;
  closeError: Error | null;
}

/** Messages of one connection decoded since the last flush, and the packet ids of its QoS 1 ones, in arrival order, to PUBACK once stored. */
interface Batch {
  conn: Connection;
  readings: Reading[];
  letters: DeadLetter[];
  ackIds: number[];
}

function validate(config: MqttAdapterConfig): Subscription[] {
  const device = config?.device;
  const fail = (key: string, message: string): never => {
    throw new BridgeError('BRIDGE_CONFIG', `mqtt adapter ${device}: ${key} ${message}`, { device, key });
  };
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    return fail('url', `must be mqtt://host[:port] or mqtts://host[:port] (got ${JSON.stringify(config.url)})`);
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') fail('url', `must use mqtt:// or mqtts:// (got ${url.protocol}//)`);
  if (config.tls && url.protocol !== 'mqtts:') fail('tls', 'is set but the url is not mqtts://');
  if (typeof config.clientId !== 'string' || config.clientId === '' || Buffer.byteLength(config.clientId) > 65_535) {
    fail('clientId', 'must be a non-empty string (it names the persistent session)');
  }
  if (config.protocolVersion !== undefined && config.protocolVersion !== 4 && config.protocolVersion !== 5) fail('protocolVersion', `must be 4 or 5 (got ${config.protocolVersion})`);
  if (config.sessionExpirySec !== undefined && !(Number.isInteger(config.sessionExpirySec) && config.sessionExpirySec >= 0 && config.sessionExpirySec <= 0xffff_ffff)) {
    fail('sessionExpirySec', 'must be an integer 0..4294967295');
  }
  if (config.keepaliveSec !== undefined && !(Number.isInteger(config.keepaliveSec) && config.keepaliveSec >= 0 && config.keepaliveSec <= 65_535)) {
    fail('keepaliveSec', 'must be an integer 0..65535');
  }
  if (config.connectTimeoutMs !== undefined && !(config.connectTimeoutMs > 0)) fail('connectTimeoutMs', 'must be > 0');
  if (config.leanPublishReader !== undefined && typeof config.leanPublishReader !== 'boolean') fail('leanPublishReader', 'must be true or false');
  if (!Array.isArray(config.subscriptions) || config.subscriptions.length === 0) fail('subscriptions', 'must list at least one subscription');
  return config.subscriptions.map((sub, i) => {
    const qos = sub.qos ?? MQTT_DEFAULTS.qos;
    if (qos !== 0 && qos !== 1) fail(`subscriptions[${i}].qos`, `must be 0 or 1 (got ${String(sub.qos)})`);
    if (sub.logTopic !== undefined && (typeof sub.logTopic !== 'string' || sub.logTopic === '')) fail(`subscriptions[${i}].logTopic`, 'must be a non-empty string');
    let pattern: TopicPattern;
    try {
      pattern = parseTopicPattern(sub.topic);
    } catch (err) {
      return fail(`subscriptions[${i}].topic`, (err as Error).message);
    }
    return { pattern, qos, logTopic: sub.logTopic };
  });
}

export class MqttAdapter extends AdapterBase {
  private readonly mqttConfig: Readonly<MqttAdapterConfig>;
  private readonly subscriptions: readonly Subscription[];
  private readonly routes: MqttRoutes;
  /** Decodes plain JSON object payloads from their bytes (mqtt-fast-decoder.ts); what it declines takes `decodeMqttMessage`. */
  private readonly fast: MqttFastDecoder;
  /** Passed to MQTT.js's handleMessage callback so it skips its own PUBACK (one instance: no stack trace per message). */
  private readonly deferred = new Error('PUBACK deferred until the sink stored the message');
  private conn: Connection | null = null;
  private batch: Batch | null = null;
  /** Readings + dead letters in `batch`. */
  private batchSize = 0;
  private flushScheduled = false;
  /** Deliveries handed to the base and not yet settled. */
  private outstanding = 0;

  /**
   * Messages waiting for the sink at which reading is held (and resumed
   * at half of it). MQTT 3.1.1: `maxPendingReadings`. MQTT 5: twice the
   * receiveMaximum we advertise (= maxPendingReadings): the broker's flow
   * control should keep us at receiveMaximum unacked messages, so this is a
   * safety net. Not receiveMaximum + 1: Mosquitto 2.0 (persistent session
   * with queued messages, `max_inflight_messages 0`) sends exactly
   * receiveMaximum while nothing is acked, but past it once PUBACKs flow
   * (measured: up to 2,000 unacked with receiveMaximum 1,000), and holding
   * at receiveMaximum + 1 stalled reading 126 times per 100,000 messages,
   * each time until half the backlog was stored.
   */
  private readonly holdMark: number;

  constructor(config: MqttAdapterConfig, deps: AdapterDeps) {
    super('mqtt', config, deps);
    const receiveMaximum = Math.min(65_535, this.maxPendingReadings);
    this.holdMark = (config.protocolVersion ?? MQTT_DEFAULTS.protocolVersion) === 5 ? Math.max(this.maxPendingReadings, 2 * receiveMaximum) : this.maxPendingReadings;
    this.subscriptions = validate(config);
    this.routes = new MqttRoutes(this.subscriptions);
    const builder = this.pipeline.builder;
    this.fast = new MqttFastDecoder(this.routes, {
      keyField: builder.keyField,
      timestampField: builder.timestampField,
      topic: builder.topic,
      needsValue: (logTopic) => this.pipeline.checksSchema(logTopic),
    });
    this.mqttConfig = Object.freeze({ ...config });
  }

  /** The MQTT.js options for one connection attempt. Reconnecting is ours (base back-off), not MQTT.js's. */
  private clientOptions(): IClientOptions {
    const c = this.mqttConfig;
    const clean = c.cleanSession ?? MQTT_DEFAULTS.cleanSession;
    const protocolVersion = c.protocolVersion ?? MQTT_DEFAULTS.protocolVersion;
    const options: IClientOptions = {
      clientId: c.clientId,
      clean,
      protocolVersion,
      keepalive: c.keepaliveSec ?? MQTT_DEFAULTS.keepaliveSec,
      connectTimeout: c.connectTimeoutMs ?? MQTT_DEFAULTS.connectTimeoutMs,
      reconnectPeriod: 0,
      resubscribe: false,
      // MQTT.js's number cache (mqtt-packet: 65,536 two-byte Buffers, ~7 MB of heap kept for the process's life,
      // built at the first packet written) speeds up writing packet ids; we write our PUBACKs ourselves, and
      // MQTT.js writes only CONNECT, SUBSCRIBE, PINGREQ and DISCONNECT. (The option is process-wide in mqtt-packet.)
      writeCache: false,
    };
    if (c.username !== undefined) options.username = c.username;
    if (c.password !== undefined) options.password = c.password;
    if (protocolVersion === 5) {
      options.properties = {
        sessionExpiryInterval: c.sessionExpirySec ?? (clean ? 0 : MQTT_DEFAULTS.sessionExpiryNeverSec),
        receiveMaximum: Math.min(65_535, this.maxPendingReadings),
      };
    }
    const tls = c.tls;
    if (tls) {
      if (tls.ca !== undefined) options.ca = tls.ca as IClientOptions['ca'];
      if (tls.cert !== undefined) options.cert = tls.cert;
      if (tls.key !== undefined) options.key = tls.key;
      if (tls.passphrase !== undefined) (options as { passphrase?: string }).passphrase = tls.passphrase;
      options.rejectUnauthorized = tls.rejectUnauthorized ?? true;
      if (tls.servername !== undefined) options.servername = tls.servername;
    }
    return options;
  }

  protected override async openDevice(signal: AbortSignal): Promise<void> {
    const client = connect(this.mqttConfig.url, { ...this.clientOptions(), manualConnect: true });
    // MQTT.js traces each packet through a \`debug\` logger (DEBUG=mqttjs*); its enabled check alone was
    // ~4% of the per-message CPU. When tracing is off, skip the call altogether (on, it is kept).
    if ((client.log as { enabled?: unknown }).enabled !== true) client.log = skipTrace;
    const conn: Connection = { client, connected: false, held: null, stream: null, reader: null, chunkAt: 0, closeError: null };
    this.conn = conn;
    if (this.mqttConfig.leanPublishReader ?? MQTT_DEFAULTS.leanPublishReader) this.tapStream(conn);
    client.handleMessage = (packet, cb) => this.receive(conn, packet, cb);
    client.on('error', (err) => {
      conn.closeError = translate(err, this.mqttConfig.protocolVersion ?? 4, this.device);
      if (conn.connected) this.noteError(conn.closeError);
    });
    client.on('disconnect', (packet) => {
      // MQTT 5: the broker says why it is closing the connection.
      const code = packet.reasonCode ?? 0;
      if (code !== 0) conn.closeError = protocolError(code, 5, this.device, 'broker disconnected');
    });
    client.connect();

    await new Promise<void>((resolve, reject) => {
      const onConnect = (): void => {
        cleanup();
        resolve();
      };
      const onClose = (): void => {
        cleanup();
        reject(conn.closeError ?? new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `mqtt ${this.device}: connection to ${redact(this.mqttConfig.url)} closed before CONNACK`, { device: this.device }));
      };
      const onAbort = (): void => {
        cleanup();
        reject(new BridgeError('BRIDGE_STOPPED', 'stopped', { device: this.device }));
      };
      const cleanup = (): void => {
        client.off('connect', onConnect);
        client.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
      };
      client.once('connect', onConnect);
      client.once('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
    });

    conn.connected = true;
    client.on('close', () => {
      conn.connected = false;
      if (this.conn !== conn) return;
      this.deviceLost(conn.closeError ?? new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `mqtt ${this.device}: connection closed`, { device: this.device }));
    });

    const map: Record<string, { qos: 0 | 1 }> = {};
    for (const s of this.subscriptions) map[s.pattern.filter] = { qos: Math.max(s.qos, map[s.pattern.filter]?.qos ?? 0) as 0 | 1 };
    // The connection may drop (or stop() come) before the SUBACK: do not wait for it then.
    let onGone: () => void = () => {};
    const gone = new Promise<never>((_, reject) => {
      onGone = () => reject(conn.closeError ?? new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `mqtt ${this.device}: connection closed before SUBACK`, { device: this.device }));
      client.once('close', onGone);
      signal.addEventListener('abort', onGone, { once: true });
    });
    let granted: Awaited<ReturnType<MqttClient['subscribeAsync']>>;
    try {
      granted = await Promise.race([client.subscribeAsync(map), gone]);
    } catch (err) {
      if (err instanceof BridgeError) throw err;
      // MQTT.js itself rejects a SUBACK holding a failure code.
      throw new BridgeError('BRIDGE_PROTOCOL', `mqtt ${this.device}: the broker refused subscribing to ${Object.keys(map).join(', ')}: ${(err as Error).message}`, { device: this.device }, err);
    } finally {
      client.off('close', onGone);
      signal.removeEventListener('abort', onGone);
      gone.catch(() => {});
    }
    const refused = granted.filter((g) => g.qos === 0x80 || g.qos > 2);
    if (refused.length > 0) {
      throw new BridgeError(
        'BRIDGE_PROTOCOL',
        `mqtt ${this.device}: the broker refused subscription(s) ${refused.map((g) => `${g.topic} (${mqttReasonCode(g.qos, this.mqttConfig.protocolVersion ?? 4).name})`).join(', ')}`,
        { device: this.device, protocolCode: refused[0]!.qos },
      );
    }
  }

  protected override async closeDevice(): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    if (!this.isRunning) {
      // A stop: let what already arrived reach the sink and be acknowledged before we say goodbye.
      this.flush();
      await this.whenIdle();
    }
    if (this.conn === conn) this.conn = null;
    conn.connected = false;
    const held = conn.held;
    conn.held = null;
    const client = conn.client;
    await new Promise<void>((resolve) => {
      client.end(!client.connected, () => resolve());
    });
    client.removeAllListeners();
    // A late socket error after end() must not become an unhandled 'error' event.
    client.on('error', () => {});
    held?.(this.deferred);
  }

  protected override onBacklogCleared(): void {
    this.release();
  }

  /**
   * Puts a `MqttPublishReader` between the socket and MQTT.js's parser: the
   * client builds its socket through `streamBuilder` and pipes it into its
   * parser; we wrap the builder and, on that socket only, replace the pipe
   * by a 'data' listener that reads PUBLISH packets of QoS 0/1 itself
   * (`receiveLean`) and writes every other packet, whole and in order, into
   * MQTT.js's parser, which handles it as before (CONNACK, SUBACK,
   * PINGRESP, DISCONNECT, and QoS 2 or protocol errors). Verified against
   * MQTT.js 5.16 (`build/lib/client.js` `connect()`: `this.stream =
   * this.streamBuilder(this)` then `this.stream.pipe(writable)`, and nothing
   * else reads the stream). Should a later MQTT.js not have a
   * `streamBuilder`, nothing is tapped and MQTT.js reads every packet
   * (`receive`): slower, the same behaviour.
   */
  private tapStream(conn: Connection): void {
    const internals = conn.client as unknown as { streamBuilder?: (client: MqttClient) => Duplex };
    const build = internals.streamBuilder;
    if (typeof build !== 'function') return;
    const protocolVersion = this.mqttConfig.protocolVersion ?? MQTT_DEFAULTS.protocolVersion;
    internals.streamBuilder = (client) => {
      const stream = build.call(client, client);
      stream.pipe = <T extends NodeJS.WritableStream>(parser: T): T => {
        const reader = new MqttPublishReader(protocolVersion, {
          publish: (topic, payload, qos, messageId) => this.receiveLean(conn, topic, payload, qos, messageId),
          other: (bytes) => {
            parser.write(bytes);
          },
        });
        conn.stream = stream;
        conn.reader = reader;
        stream.on('data', (chunk: Buffer) => {
          // One clock read per chunk, not per message: its messages all arrived with it (those held back
          // while paused arrived no later, so it stays their receive time).
          conn.chunkAt = this.clock.now();
          reader.push(chunk);
        });
        return parser;
      };
      return stream;
    };
  }

  /** MQTT.js hands each PUBLISH it parsed here (`tapStream` off, or QoS 2); see the file comment for the callback contract. */
  private receive(conn: Connection, packet: IPublishPacket, cb: (err?: Error) => void): void {
    if (conn !== this.conn || !this.isRunning) {
      // A closing connection: do not ack; QoS 1 comes back with the next session.
      cb(this.deferred);
      return;
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    this.take(conn, packet.topic, payload, packet.qos, packet.messageId, this.clock.now());
    if (this.pendingCount + this.batchSize >= this.holdMark) {
      conn.held = cb;
    } else {
      cb(this.deferred);
    }
  }

  /** `MqttPublishReader` hands each PUBLISH of QoS 0/1 here; false (held for backpressure) stops it and pauses the socket until `release`. */
  private receiveLean(conn: Connection, topic: string, payload: Buffer, qos: 0 | 1, messageId: number): boolean {
    // A closing connection: do not ack; QoS 1 comes back with the next session.
    if (conn !== this.conn || !this.isRunning) return true;
    this.take(conn, topic, payload, qos, messageId, conn.chunkAt);
    if (this.pendingCount + this.batchSize < this.holdMark) return true;
    conn.stream?.pause();
    return false;
  }

  /**
   * Decodes one message into the current batch at once (the payload, a
   * view of the socket's read buffer, is not kept), notes its packet id to
   * ack, and schedules the batch's delivery for the end of this turn of
   * the event loop, so what arrives together is stored together.
   */
  private take(conn: Connection, topic: string, payload: Buffer, qos: number, messageId: number | undefined, receivedAt: number): void {
    this.capture?.write({ receivedAt, kind: 'mqtt', device: this.device, topic, data: payload });
    let batch = this.batch;
    if (batch !== null && batch.conn !== conn) {
      this.flush();
      batch = null;
    }
    if (batch === null) {
      batch = this.batch = { conn, readings: [], letters: [], ackIds: [] };
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    }
    const fast = this.fast;
    if (fast.decode(topic, payload)) {
      batch.readings.push(this.acceptScanned(fast.valueBytes!, fast.key, fast.eventTime, receivedAt, fast.logTopic));
    } else {
      const out = decodeMqttMessage(this.routes, topic, payload);
      const item = out.ok ? this.accept(out.value, out.raw, receivedAt, out.topic, out.valueJson) : this.reject(out.error, out.raw, receivedAt, out.topic);
      if ('intendedTopic' in item) batch.letters.push(item);
      else batch.readings.push(item);
    }
    this.batchSize++;
    if (qos === 1 && messageId !== undefined) batch.ackIds.push(messageId);
  }

  /** Hands the current batch to the sink as one delivery; acks its QoS 1 messages once stored. */
  private flush(): void {
    const batch = this.batch;
    if (batch === null) return;
    this.batch = null;
    this.batchSize = 0;
    this.outstanding++;
    this.deliver(batch.readings, batch.letters).then(
      () => this.acknowledge(batch.conn, batch.ackIds),
      () => {
        // Abandoned at stop: unacknowledged, so the broker redelivers QoS 1 to the next session.
      },
    ).finally(() => {
      this.outstanding--;
      this.release();
    });
  }

  /**
   * PUBACKs stored QoS 1 messages when they came on the live connection (a
   * dead connection's are redelivered instead), as one socket write. Wire
   * format, the same for 3.1.1 and 5 (5.0 §3.4.2.1 lets a success PUBACK
   * omit reason code and properties): 0x40, remaining length 2, packet id
   * big-endian.
   */
  private acknowledge(conn: Connection, ids: readonly number[]): void {
    if (conn !== this.conn || !conn.connected || ids.length === 0) return;
    const out = Buffer.allocUnsafe(ids.length * 4);
    let at = 0;
    for (const id of ids) {
      out[at] = 0x40;
      out[at + 1] = 0x02;
      out[at + 2] = id >> 8;
      out[at + 3] = id & 0xff;
      at += 4;
    }
    conn.client.stream.write(out);
  }

  /** Lets the client (or the lean reader and the socket) read on once the backlog is down to half the hold mark. */
  private release(): void {
    const conn = this.conn;
    if (!conn) return;
    if (this.pendingCount + this.batchSize > this.holdMark / 2) return;
    if (conn.held) {
      const cb = conn.held;
      conn.held = null;
      cb(this.deferred);
    }
    const reader = conn.reader;
    if (reader?.paused) {
      reader.resume();
      if (!reader.paused) conn.stream?.resume();
    }
  }

  /** Resolves once nothing is waiting for the sink. */
  private async whenIdle(): Promise<void> {
    while (this.outstanding > 0 || this.batch !== null) {
      this.flush();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** Stands in for MQTT.js's \`debug\` trace logger when its namespace is not enabled. */
function skipTrace(): void {}

/** URL without credentials, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

function protocolError(code: number, protocolVersion: 3 | 4 | 5, device: string, what: string): BridgeError {
  const reason = mqttReasonCode(code, protocolVersion);
  const err = new BridgeError('BRIDGE_PROTOCOL', `mqtt ${device}: ${what}: ${reason.name} (${code}): ${reason.message}`, { device, protocolCode: code, reason: reason.name });
  return err;
}

/** MQTT.js errors → BridgeError: CONNACK refusals by the reason-code table, socket errors by errno. */
function translate(err: Error & { code?: unknown }, protocolVersion: 3 | 4 | 5, device: string): BridgeError {
  if (err instanceof BridgeError) return err;
  if (typeof err.code === 'number') {
    const e = protocolError(err.code, protocolVersion, device, 'connection refused');
    (e as { cause?: unknown }).cause = err;
    return e;
  }
  const errno = typeof err.code === 'string' ? err.code : undefined;
  return new BridgeError('BRIDGE_DEVICE_UNAVAILABLE', `mqtt ${device}: ${errno ? `${errno} ` : ''}${err.message}`, { device, errno }, err);
}
