/**
 * The agent's error catalogue. Every error the agent raises itself is an
 * `AgentError` with a stable `code`; callers branch on `code` or `retriable`,
 * never on message text. Errors of the modules (LogError, rule and bridge
 * errors) pass through unchanged; third-party errors are translated where
 * they enter (see kafka-client.ts).
 */

export type AgentErrorCode =
  /** The config file failed validation; the message lists every problem. */
  | 'CONFIG_INVALID'
  /** The config file could not be read. */
  | 'CONFIG_UNREADABLE'
  /** A component did not start or stop within its budget. */
  | 'COMPONENT_TIMEOUT'
  /** A component failed to start. */
  | 'COMPONENT_FAILED'
  /** The HTTP listener could not bind. */
  | 'HTTP_LISTEN'
  /** A command-line argument is wrong. */
  | 'USAGE';

const RETRIABLE: Readonly<Record<AgentErrorCode, boolean>> = Object.freeze({
  CONFIG_INVALID: false,
  CONFIG_UNREADABLE: false,
  COMPONENT_TIMEOUT: true,
  COMPONENT_FAILED: true,
  HTTP_LISTEN: false,
  USAGE: false,
});

export class AgentError extends Error {
  readonly code: AgentErrorCode;
  readonly retriable: boolean;
  readonly context: Record<string, unknown>;

  constructor(code: AgentErrorCode, message: string, context: Record<string, unknown> = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AgentError';
    this.code = code;
    this.retriable = RETRIABLE[code];
    this.context = context;
  }
}
