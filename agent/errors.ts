/**
 * The agent's error catalogue. Every error the agent raises on purpose is an
 * `AgentError` with a stable `code`; callers branch on `code` or
 * `retriable`, never on message text. Errors of the modules (LogError, rule
 * and bridge errors) pass through unchanged; third-party errors are
 * translated at the edge that imports them (kafkajs: kafka-client.ts).
 *
 * Extend the catalogue by adding a row to `AGENT_ERRORS`: the code, whether
 * retrying the same operation later can succeed, and a one-line meaning
 * (shown by status pages next to the code).
 */

export const AGENT_ERRORS = Object.freeze({
  /** The config file (or a component's options) failed validation; the message names the key. */
  CONFIG_INVALID: { retriable: false, meaning: 'invalid configuration' },
  /** The config file could not be read. */
  CONFIG_UNREADABLE: { retriable: false, meaning: 'config file unreadable' },
  /** A component did not start or stop within its budget. */
  COMPONENT_TIMEOUT: { retriable: true, meaning: 'lifecycle phase timed out' },
  /** A component failed to start. */
  COMPONENT_FAILED: { retriable: true, meaning: 'component failed to start' },
  /** The HTTP listener could not bind. */
  HTTP_LISTEN: { retriable: false, meaning: 'HTTP listener could not bind' },
  /** A command-line argument is wrong. */
  USAGE: { retriable: false, meaning: 'bad command-line usage' },

  // Kafka (central cluster), translated from kafkajs in agent/kafka-client.ts.
  /** No connection to any broker, connection closed, request timed out. */
  KAFKA_CONNECTION: { retriable: true, meaning: 'cannot reach the Kafka cluster' },
  /** The TLS handshake failed: certificate not trusted, expired or for another name. Retried (an operator may fix it); shown as the reason for being offline. */
  KAFKA_TLS: { retriable: true, meaning: 'TLS handshake with the cluster failed' },
  /** Leadership moved, replicas missing, broker busy: the cluster recovers by itself. */
  KAFKA_UNAVAILABLE: { retriable: true, meaning: 'partition temporarily unavailable' },
  /** The central topic does not exist (and is not auto-created). Retried: an operator may create it. */
  KAFKA_UNKNOWN_TOPIC: { retriable: true, meaning: 'central topic or partition does not exist' },
  /** The producer id or sequence is out of step with the broker; recover with a new producer (may duplicate, see dedup headers). */
  KAFKA_PRODUCER_STATE: { retriable: true, meaning: 'producer id or sequence rejected by the broker' },
  /** ACLs deny writing to the topic. */
  KAFKA_TOPIC_AUTHORIZATION: { retriable: false, meaning: 'not authorized to write the central topic' },
  /** ACLs deny the cluster-level operation (e.g. IdempotentWrite). */
  KAFKA_CLUSTER_AUTHORIZATION: { retriable: false, meaning: 'not authorized on the cluster' },
  /** SASL handshake or credentials failed. */
  KAFKA_AUTHENTICATION: { retriable: false, meaning: 'SASL authentication failed' },
  /** A record (or batch) exceeds the cluster's size limit. */
  KAFKA_MESSAGE_TOO_LARGE: { retriable: false, meaning: 'record larger than the cluster accepts' },
  /** The broker rejected the records as invalid (bad timestamp, corrupt, policy). */
  KAFKA_INVALID_RECORD: { retriable: false, meaning: 'records rejected as invalid' },
  /** The broker does not support a request or version we need. */
  KAFKA_UNSUPPORTED: { retriable: false, meaning: 'the cluster does not support this request' },
  /** Anything else kafkajs reported; retriable as kafkajs classified it. */
  KAFKA_OTHER: { retriable: true, meaning: 'other Kafka error' },

  // Replicator.
  /** Retention deleted local records before they were replicated. */
  REPL_RETENTION_GAP: { retriable: false, meaning: 'records deleted by retention before replication' },
  /** Reading the local log failed. */
  REPL_LOCAL_LOG: { retriable: true, meaning: 'reading the local log failed' },
} as const satisfies Record<string, { retriable: boolean; meaning: string }>);

export type AgentErrorCode = keyof typeof AGENT_ERRORS;

/** Context fields that make an error actionable. */
export interface AgentErrorContext {
  topic?: string;
  partition?: number;
  offset?: number;
  /** Kafka protocol error code and name, when the error came from a broker. */
  kafkaCode?: number;
  kafkaType?: string;
  [extra: string]: unknown;
}

export class AgentError extends Error {
  readonly code: AgentErrorCode;
  readonly retriable: boolean;
  readonly context: AgentErrorContext;

  /** `retriable` defaults to the catalogue's value for `code`. */
  constructor(code: AgentErrorCode, message: string, context: AgentErrorContext = {}, cause?: unknown, retriable?: boolean) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AgentError';
    this.code = code;
    this.retriable = retriable ?? AGENT_ERRORS[code].retriable;
    this.context = context;
  }
}

export function isAgentError(err: unknown, code?: AgentErrorCode): err is AgentError {
  return err instanceof AgentError && (code === undefined || err.code === code);
}
