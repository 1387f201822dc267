/**
 * The rules module's error catalogue. Every error the module throws is a
 * `RulesError` with a stable `code`; callers branch on `code` or `retriable`,
 * never on message text. Errors that point into a rule file carry the file,
 * 1-based line and column and the offending token in `context`, and their
 * message is the bare text (`expected ')' but found 'GROUP'`); `formatted`
 * gives `file:line:col: message`.
 */

export type RulesErrorCode =
  /** The lexer or parser rejected the text (bad token, unexpected token, unterminated string or comment). */
  | 'RULES_SYNTAX'
  /** The statement parsed but is not valid: unknown column or function, aggregate misplaced, wrong argument count, type mismatch. */
  | 'RULES_ANALYSIS'
  /** The statement is valid SQL but cannot be planned: unknown stream, duplicate rule name, unsupported property or option. */
  | 'RULES_PLAN'
  /** Reading a rule file or folder failed. */
  | 'RULES_IO'
  /** Aggregate state or its checkpoint is unusable (runtime). */
  | 'RULES_STATE'
  /** A running rule failed (runtime). */
  | 'RULES_RUNTIME';

const RETRIABLE: Readonly<Record<RulesErrorCode, boolean>> = Object.freeze({
  RULES_SYNTAX: false,
  RULES_ANALYSIS: false,
  RULES_PLAN: false,
  RULES_IO: true,
  RULES_STATE: false,
  RULES_RUNTIME: true,
});

/** Context fields that make an error actionable. */
export interface RulesErrorContext {
  /** Rule file path as given to the loader. */
  file?: string;
  /** 1-based line of the offending token. */
  line?: number;
  /** 1-based column of the offending token. */
  col?: number;
  /** 0-based character offset of the offending token. */
  offset?: number;
  /** The offending token's text, as written. */
  token?: string;
  /** The rule concerned. */
  rule?: string;
  [extra: string]: unknown;
}

export class RulesError extends Error {
  readonly code: RulesErrorCode;
  readonly retriable: boolean;
  readonly context: RulesErrorContext;

  constructor(code: RulesErrorCode, message: string, context: RulesErrorContext = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'RulesError';
    this.code = code;
    this.retriable = RETRIABLE[code];
    this.context = context;
  }

  /** `file:line:col: message` when the error has a position, else the message. */
  get formatted(): string {
    const { file, line, col } = this.context;
    if (line === undefined || col === undefined) return file === undefined ? this.message : `${file}: ${this.message}`;
    return `${file ?? '<input>'}:${line}:${col}: ${this.message}`;
  }
}

export function isRulesError(err: unknown, code?: RulesErrorCode): err is RulesError {
  return err instanceof RulesError && (code === undefined || err.code === code);
}

/** A position-bearing error: `at` is any syntax-tree position (`{line, col, offset}`). */
export function rulesErrorAt(
  code: RulesErrorCode,
  message: string,
  at: { line: number; col: number; offset: number },
  context: RulesErrorContext = {},
): RulesError {
  return new RulesError(code, message, { ...context, line: at.line, col: at.col, offset: at.offset });
}
