/**
 * MQTT CONNACK return codes (3.1.1 §3.2.2.3) and reason codes (5.0 §2.4)
 * as data: name, message and whether reconnecting may help without an
 * operator changing something (credentials, client id, protocol).
 */

export interface MqttReasonCode {
  code: number;
  name: string;
  message: string;
  /** True when a later reconnect can succeed unchanged (server busy, unavailable). */
  retriable: boolean;
}

const table = (rows: Array<[number, string, string, boolean]>): ReadonlyMap<number, MqttReasonCode> =>
  new Map(rows.map(([code, name, message, retriable]) => [code, Object.freeze({ code, name, message, retriable })]));

/** MQTT 3.1.1 CONNACK return codes. */
export const MQTT3_CONNACK_CODES = table([
  [1, 'UNACCEPTABLE_PROTOCOL_VERSION', 'the broker does not support the requested MQTT protocol level', false],
  [2, 'IDENTIFIER_REJECTED', 'the client id is not allowed by the broker', false],
  [3, 'SERVER_UNAVAILABLE', 'the MQTT service is unavailable', true],
  [4, 'BAD_USERNAME_OR_PASSWORD', 'the user name or password is malformed or wrong', false],
  [5, 'NOT_AUTHORIZED', 'the client is not authorized to connect', false],
]);

/** MQTT 5 reason codes a CONNACK, SUBACK or DISCONNECT may carry (>= 0x80 are failures). */
export const MQTT5_REASON_CODES = table([
  [0x80, 'UNSPECIFIED_ERROR', 'unspecified error', true],
  [0x81, 'MALFORMED_PACKET', 'malformed packet', false],
  [0x82, 'PROTOCOL_ERROR', 'protocol error', false],
  [0x83, 'IMPLEMENTATION_SPECIFIC_ERROR', 'implementation-specific error', true],
  [0x84, 'UNSUPPORTED_PROTOCOL_VERSION', 'unsupported protocol version', false],
  [0x85, 'CLIENT_IDENTIFIER_NOT_VALID', 'client identifier not valid', false],
  [0x86, 'BAD_USER_NAME_OR_PASSWORD', 'bad user name or password', false],
  [0x87, 'NOT_AUTHORIZED', 'not authorized', false],
  [0x88, 'SERVER_UNAVAILABLE', 'server unavailable', true],
  [0x89, 'SERVER_BUSY', 'server busy', true],
  [0x8a, 'BANNED', 'banned', false],
  [0x8b, 'SERVER_SHUTTING_DOWN', 'server shutting down', true],
  [0x8c, 'BAD_AUTHENTICATION_METHOD', 'bad authentication method', false],
  [0x8d, 'KEEP_ALIVE_TIMEOUT', 'keep alive timeout', true],
  [0x8e, 'SESSION_TAKEN_OVER', 'session taken over by another client with the same client id', true],
  [0x8f, 'TOPIC_FILTER_INVALID', 'topic filter invalid', false],
  [0x90, 'TOPIC_NAME_INVALID', 'topic name invalid', false],
  [0x93, 'RECEIVE_MAXIMUM_EXCEEDED', 'receive maximum exceeded', true],
  [0x95, 'PACKET_TOO_LARGE', 'packet too large', false],
  [0x97, 'QUOTA_EXCEEDED', 'quota exceeded', true],
  [0x99, 'PAYLOAD_FORMAT_INVALID', 'payload format invalid', false],
  [0x9a, 'RETAIN_NOT_SUPPORTED', 'retain not supported', false],
  [0x9b, 'QOS_NOT_SUPPORTED', 'QoS not supported', false],
  [0x9c, 'USE_ANOTHER_SERVER', 'use another server', true],
  [0x9d, 'SERVER_MOVED', 'server moved', false],
  [0x9e, 'SHARED_SUBSCRIPTIONS_NOT_SUPPORTED', 'shared subscriptions not supported', false],
  [0x9f, 'CONNECTION_RATE_EXCEEDED', 'connection rate exceeded', true],
  [0xa2, 'WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED', 'wildcard subscriptions not supported', false],
]);

/** SUBACK failure in MQTT 3.1.1 (one byte per filter). */
export const MQTT3_SUBACK_FAILURE = 0x80;

/** Looks a code up for the given protocol level; unknown codes get a generic entry. */
export function mqttReasonCode(code: number, protocolVersion: 3 | 4 | 5): MqttReasonCode {
  const known = protocolVersion === 5 ? MQTT5_REASON_CODES.get(code) : code === MQTT3_SUBACK_FAILURE ? undefined : MQTT3_CONNACK_CODES.get(code);
  if (known) return known;
  return { code, name: 'UNKNOWN', message: `reason code ${code}`, retriable: true };
}
