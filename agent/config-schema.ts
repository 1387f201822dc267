/**
 * The one schema of `millstream.yaml`. Every option has a `description` that
 * states its unit and a `default` where it has one; `docs/CONFIG.md` is
 * generated from this file (`millstream config reference`), so the reference
 * cannot drift from what is validated. Unknown keys are errors everywhere
 * (`additionalProperties: false`): a misspelt key must not be silently ignored.
 */

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Schema = {}): Schema => ({ type: 'integer', description, ...extra });
const num = (description: string, extra: Schema = {}): Schema => ({ type: 'number', description, ...extra });
const bool = (description: string, extra: Schema = {}): Schema => ({ type: 'boolean', description, ...extra });
const obj = (description: string, properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  description,
  additionalProperties: false,
  properties,
  ...extra,
});
const arr = (description: string, items: Schema, extra: Schema = {}): Schema => ({ type: 'array', description, items, ...extra });

export const TOPIC_NAME_PATTERN = '^[A-Za-z0-9._-]{1,200}$';

const topicSettings = obj('Settings of one log topic.', {
  partitions: int('Number of partitions, fixed once the topic exists.', { minimum: 1, maximum: 1024, default: 1 }),
  retentionMs: int('Delete closed segments whose newest record is older than this, in ms; -1 keeps forever.', {
    minimum: -1,
    default: 604_800_000,
  }),
  retentionBytes: int('Delete the oldest closed segments while a partition holds more than this many bytes; -1: no limit.', {
    minimum: -1,
    default: -1,
  }),
  segmentBytes: int('Roll the active segment when it would grow past this many bytes.', { minimum: 1024, default: 67_108_864 }),
  segmentMs: int('Roll the active segment when its first record is older than this, in ms.', { minimum: 1, default: 604_800_000 }),
  flushIntervalMs: int('Group commit: wait at most this many ms to gather appends into one fsync.', { minimum: 0, default: 0 }),
  flushBytes: int('Group commit: fsync at once when this many bytes are waiting.', { minimum: 1, default: 1_048_576 }),
  schema: str('Path of a JSON Schema file (relative to the config file) every reading bound for this topic must pass; failures go to the dead-letter topic.'),
});

const captureSetting = str('Write every raw frame of this source, with its receive time, to this capture file (replay with `millstream capture replay`). Default: off.');

const commonSource: Record<string, Schema> = {
  name: str('Device name: shown in status, metrics and the `device` header; unique across sources.', { pattern: '^[A-Za-z0-9._:-]{1,100}$' }),
  topic: str('Log topic the readings go to.', { pattern: TOPIC_NAME_PATTERN, default: 'widgets' }),
  keyField: str('Field of the reading whose value is the record key (partitioning).', { default: 'sensor_id' }),
  maxClockSkewMs: int('Flag the device when its own clock (reading_ts) is off by more than this many ms.', { minimum: 0, default: 300_000 }),
  capture: captureSetting,
};

const serialPort = {
  path: str('Serial device path, e.g. /dev/ttyUSB0.'),
  baudRate: int('Baud rate in bit/s.', { minimum: 50, default: 9600 }),
  dataBits: { enum: [5, 6, 7, 8], description: 'Data bits per character.', default: 8 },
  parity: { enum: ['none', 'even', 'odd', 'mark', 'space'], description: 'Parity.', default: 'none' },
  stopBits: { enum: [1, 1.5, 2], description: 'Stop bits.', default: 1 },
  rtscts: bool('RTS/CTS hardware flow control.', { default: false }),
};

const serialSource = obj('A sensor line on a serial port.', {
  ...serialPort,
  framing: {
    enum: ['json', 'csv', 'kv'],
    description: 'Line format: newline-delimited JSON objects, CSV (header from `csvHeader` or the first line), or key=value pairs.',
    default: 'json',
  },
  csvHeader: arr('Column names of CSV lines; omit to take them from the first line the device sends.', { type: 'string' }),
  delimiter: str('CSV field separator.', { default: ',', minLength: 1, maxLength: 1 }),
  maxLineBytes: int('A longer line is a decode error (dead letter), not a memory leak.', { minimum: 16, default: 65_536 }),
  reopenIntervalMs: int('Initial back-off in ms before reopening a port that disappeared (doubles up to 30 s, with jitter).', {
    minimum: 10,
    default: 1000,
  }),
}, { required: ['path'] });

const registerTypes = ['bool', 'int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'string'];

const modbusRegister = obj('One field read from the register map.', {
  field: str('Name of the field in the reading.'),
  function: {
    enum: ['coil', 'discrete', 'holding', 'input'],
    description: 'Register table: coils (FC1), discrete inputs (FC2), holding registers (FC3), input registers (FC4).',
    default: 'holding',
  },
  address: int('Zero-based register (or bit) address.', { minimum: 0, maximum: 65535 }),
  type: { enum: registerTypes, description: 'Value type. Default: bool for coil and discrete, uint16 for holding and input registers.' },
  length: int('For `string`: length in bytes (characters); occupies ceil(length / 2) registers.', { minimum: 1, maximum: 250 }),
  bit: int('For `bool` read from a register: which bit, 0 (least significant) to 15. Default: any non-zero value is true.', { minimum: 0, maximum: 15 }),
  byteOrder: {
    enum: ['ABCD', 'CDAB', 'BADC', 'DCBA'],
    description: 'Byte and word order of multi-register values (ABCD: big-endian words, big-endian bytes).',
    default: 'ABCD',
  },
  scale: num('Multiply the raw value by this.', { default: 1 }),
  offset: num('Then add this.', { default: 0 }),
  unit: str('Unit, for documentation and the status page.'),
}, { required: ['field', 'address'] });

const modbusDevice = obj('One slave on the line.', {
  unitId: int('Modbus unit (slave) id.', { minimum: 0, maximum: 255 }),
  sensorId: str('Sensor id of this slave: the record key and the `sensor_id` field.'),
  pollIntervalMs: int('Poll every this many ms.', { minimum: 10 }),
  registers: arr('Register map of this slave; default: the source-level `registers`.', modbusRegister),
  fields: { type: 'object', description: 'Constant fields added to every reading of this slave (e.g. production_line).', additionalProperties: { type: ['string', 'number', 'boolean'] } },
}, { required: ['unitId', 'sensorId'] });

const modbusSource = obj('Modbus devices polled over TCP or RTU (serial).', {
  transport: { enum: ['tcp', 'rtu'], description: 'Modbus TCP or RTU over a serial port.', default: 'tcp' },
  host: str('TCP: host name or address of the device or gateway.'),
  port: int('TCP: port.', { minimum: 1, maximum: 65535, default: 502 }),
  ...serialPort,
  pollIntervalMs: int('Poll every slave every this many ms.', { minimum: 10, default: 1000 }),
  timeoutMs: int('Per-request timeout in ms.', { minimum: 10, default: 1000 }),
  retries: int('Retries of a failed request before the poll counts as failed.', { minimum: 0, default: 1 }),
  maxRegistersPerRequest: int('Adjacent registers are read together, up to this many per request.', { minimum: 1, maximum: 125, default: 125 }),
  registers: arr('Register map shared by every slave of this source.', modbusRegister),
  devices: arr('The slaves on this line.', modbusDevice, { minItems: 1 }),
}, { required: ['devices'] });

const mqttSource = obj('Readings from an MQTT broker.', {
  url: str('Broker URL: mqtt://host:1883 or mqtts://host:8883.', { pattern: '^mqtts?://' }),
  protocolVersion: {
    enum: [4, 5],
    description: 'MQTT 3.1.1 (4) or 5. With 5 the client asks the broker to keep at most receiveMaximum (= maxInFlight) messages unacknowledged instead of its own inflight setting, which suits acks that wait for the log; Mosquitto 2 was measured sending up to about twice that once acknowledgements flow, so the adapter stops reading only at twice maxInFlight.',
    default: 4,
  },
  sessionExpiryS: int('MQTT 5: how long the broker keeps the session after a disconnect, in s. Default: never expires (persistent session), 0 with cleanSession.', { minimum: 0, maximum: 4294967295 }),
  connectTimeoutMs: int('Give up a connection attempt without CONNACK after this many ms.', { minimum: 100, default: 10_000 }),
  clientId: str('Client id; keep it stable so the broker keeps the persistent session. Default: millstream-<gateway>-<name>.'),
  username: str('User name.'),
  password: str('Password.'),
  ca: str('TLS: path of a CA bundle (PEM) to trust instead of the system CAs.'),
  cert: str('TLS: path of a client certificate (PEM).'),
  key: str('TLS: path of the client key (PEM).'),
  servername: str("TLS: host name to verify the broker's certificate against. Default: the URL's host."),
  rejectUnauthorized: bool('TLS: refuse a broker whose certificate does not verify. Keep true outside a lab.', { default: true }),
  cleanSession: bool('Start a clean session; false keeps QoS 1 messages at the broker while the gateway is away.', { default: false }),
  keepaliveS: int('Keep-alive interval in seconds.', { minimum: 0, default: 30 }),
  subscriptions: arr(
    'Topic filters. `+name` matches one level and feeds field `name`, e.g. factory/+line/+sensor_id/reading; `#` matches the rest.',
    obj('One subscription.', {
      topic: str('Topic filter.'),
      qos: { enum: [0, 1], description: 'QoS: 1 acknowledges only after the log stored the reading.', default: 1 },
      logTopic: str("Log topic for this subscription's readings. Default: the source's `topic`.", { pattern: TOPIC_NAME_PATTERN }),
    }, { required: ['topic'] }),
    { minItems: 1 },
  ),
  maxInFlight: int('At most this many unacknowledged messages are held in memory.', { minimum: 1, default: 10_000 }),
}, { required: ['url', 'subscriptions'] });

const source = {
  type: 'object',
  description: 'One source: exactly one of `serial`, `modbus` or `mqtt`, plus the common keys.',
  additionalProperties: false,
  properties: {
    ...commonSource,
    serial: serialSource,
    modbus: modbusSource,
    mqtt: mqttSource,
  },
  required: ['name'],
};

const replication = obj('Store-and-forward replication to the central Kafka cluster. Off unless `enabled`.', {
  enabled: bool('Replicate at all.', { default: false }),
  brokers: arr('Bootstrap brokers, host:port.', str('host:port', { pattern: '^[^:\\s]+:[0-9]+$' }), { minItems: 1 }),
  clientId: str('Kafka client id. Default: millstream-<gateway>.'),
  tls: obj('TLS to the cluster. Omit for plaintext.', {
    ca: str('Path of a CA bundle (PEM); omit to trust the system CAs.'),
    cert: str('Path of a client certificate (PEM).'),
    key: str('Path of the client key (PEM).'),
  }),
  sasl: obj('SASL authentication.', {
    mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'], description: 'SASL mechanism.' },
    username: str('User name.'),
    password: str('Password.'),
  }, { required: ['mechanism', 'username', 'password'] }),
  topics: arr(
    'Local topics to replicate.',
    obj('One replicated topic.', {
      topic: str('Local topic.', { pattern: TOPIC_NAME_PATTERN }),
      centralTopic: str('Central topic name or template; {gateway} and {topic} are replaced.', { default: '{gateway}.{topic}' }),
    }, { required: ['topic'] }),
  ),
  compression: { enum: ['none', 'gzip'], description: 'Compression of produced batches.', default: 'gzip' },
  batchSize: int('At most this many records per produce request.', { minimum: 1, default: 10_000 }),
  lingerMs: int('Wait up to this many ms for a batch to fill once caught up.', { minimum: 0, default: 50 }),
}, { required: ['enabled'] });

export const configSchema: Schema = {
  $id: 'https://millstream.invalid/config.json',
  ...obj('The millstream agent configuration (millstream.yaml).', {
    gateway: obj('This gateway.', {
      id: str('Gateway id: a header on every reading and in replicated records. Default: the host name.', { pattern: '^[A-Za-z0-9._-]{1,100}$' }),
    }),
    dataDir: str('Directory of the log, rule state and positions (relative to the config file).', { default: './data' }),
    log: obj('Process logging (pino, JSON lines on stdout).', {
      level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], description: 'Log level.', default: 'info' },
    }),
    store: obj('The log store as a whole.', {
      minFreeBytes: int('Appends are refused while the data directory has less free space than this many bytes; sources slow down.', {
        minimum: 0,
        default: 67_108_864,
      }),
      retentionCheckIntervalMs: int('Run retention every this many ms.', { minimum: 0, default: 60_000 }),
    }),
    topics: {
      type: 'object',
      description: 'Log topics by name, with their settings. Topics named by sources and rules but not listed here get the defaults.',
      propertyNames: { pattern: TOPIC_NAME_PATTERN },
      additionalProperties: topicSettings,
      default: {},
    },
    deadLetterTopic: str('Topic of readings that failed decoding or their schema, with the reason.', { pattern: TOPIC_NAME_PATTERN, default: 'dead_letters' }),
    sources: arr('Device sources.', source, { default: [] }),
    rules: obj('SQL rules.', {
      dir: str('Folder of *.sql rule files, watched for changes (relative to the config file). Omit to run no rules.'),
      idleCloseMs: int('Close a window that has had no input for this many ms of wall-clock time, so EMIT FINAL does not wait forever.', {
        minimum: 0,
        default: 60_000,
      }),
    }),
    replication,
    http: obj('Status page, /healthz, /metrics and /api/status.', {
      enabled: bool('Serve HTTP at all.', { default: true }),
      host: str('Listen address. Keep 127.0.0.1 unless a reverse proxy fronts it.', { default: '127.0.0.1' }),
      port: int('Listen port; 0 picks a free one (printed at start).', { minimum: 0, maximum: 65535, default: 8080 }),
    }),
    shutdown: obj('Stopping.', {
      timeoutMs: int('Budget in ms for a clean stop on SIGTERM (sources, flush, rules checkpoint, replicator). Keep below systemd TimeoutStopSec.', {
        minimum: 100,
        default: 20_000,
      }),
    }),
  }),
};
