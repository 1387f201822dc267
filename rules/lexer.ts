/**
 * Lexer of the rule dialect. Turns rule-file text into tokens with
 * positions; skips whitespace, `-- line` and `/* block *\/` comments.
 *
 * Tokens:
 * - `word`: an unquoted identifier or keyword (letters, digits, `_`, `@`;
 *   not starting with a digit). Keywords are not distinguished here:
 *   the parser decides by context, which lets non-reserved keywords such as
 *   SIZE or TIMESTAMP be used as column names.
 * - `quoted`: a back-quoted or double-quoted identifier; a doubled quote
 *   inside stands for one. `value` holds the name without the quotes.
 * - `string`: a single-quoted literal; `''` stands for one quote.
 * - `number`: digits with an optional fraction and exponent (`12`, `1.5`, `.5`, `2E3`).
 * - `op`: punctuation and operators, longest match first.
 * - `eof`: end of input (always the last token).
 *
 * Errors are `RulesError` with code `RULES_SYNTAX` and the position of the
 * offending character.
 */

import type { Position } from './ast.ts';
import { rulesErrorAt } from './errors.ts';

export type TokenKind = 'word' | 'quoted' | 'string' | 'number' | 'op' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** The token as written in the source (with quotes for strings and quoted identifiers). */
  readonly text: string;
  /** Words: upper-cased text. Quoted identifiers and strings: the unescaped content. Ops and numbers: the text. */
  readonly value: string;
  readonly pos: Position;
}

/** Operators, longest first so that `<=` wins over `<`. */
const OPERATORS: readonly string[] = [
  '->', '<>', '!=', '<=', '>=', '||',
  '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ',', ';', '.', '[', ']',
];

function isWordStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
}

function isWordPart(c: string): boolean {
  return isWordStart(c) || isDigit(c) || c === '@';
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/** Describes a token for messages: `'GROUP'`, `string 'abc'`, `end of input`. */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of input';
    case 'string':
      return `string ${t.text}`;
    default:
      return `'${t.text}'`;
  }
}

/** Splits `text` into tokens; the last is always `eof`. Throws RULES_SYNTAX on a bad character or an unterminated string or comment. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = text.length;

  const posAt = (offset: number): Position => ({ line, col: offset - lineStart + 1, offset });
  // Advances over text[from, to) keeping line/lineStart right across newlines.
  const advance = (from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      if (text.charCodeAt(k) === 10) {
        line++;
        lineStart = k + 1;
      }
    }
  };

  while (i < n) {
    const c = text[i]!;
    // A byte-order mark (editors on some systems write one) counts as whitespace.
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\f' || c === '\v' || c === '\uFEFF') {
      advance(i, i + 1);
      i++;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw rulesErrorAt('RULES_SYNTAX', "unterminated comment: missing '*/'", posAt(i), { token: '/*' });
      advance(i, end + 2);
      i = end + 2;
      continue;
    }
    const pos = posAt(i);
    if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordPart(text[j]!)) j++;
      const word = text.slice(i, j);
      tokens.push({ kind: 'word', text: word, value: word.toUpperCase(), pos });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(text[i + 1] ?? ''))) {
      let j = i;
      while (j < n && isDigit(text[j]!)) j++;
      if (text[j] === '.') {
        j++;
        while (j < n && isDigit(text[j]!)) j++;
      }
      if (text[j] === 'e' || text[j] === 'E') {
        let k = j + 1;
        if (text[k] === '+' || text[k] === '-') k++;
        if (isDigit(text[k] ?? '')) {
          while (k < n && isDigit(text[k]!)) k++;
          j = k;
        }
      }
      if (j < n && isWordStart(text[j]!)) {
        let k = j;
        while (k < n && isWordPart(text[k]!)) k++;
        const bad = text.slice(i, k);
        throw rulesErrorAt('RULES_SYNTAX', `invalid number '${bad}'`, pos, { token: bad });
      }
      const num = text.slice(i, j);
      tokens.push({ kind: 'number', text: num, value: num, pos });
      i = j;
      continue;
    }
    if (c === "'" || c === '`' || c === '"') {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= n) {
          const what = c === "'" ? 'string literal' : 'quoted identifier';
          throw rulesErrorAt('RULES_SYNTAX', `unterminated ${what}: missing closing ${c}`, pos, { token: text.slice(i, Math.min(n, i + 20)) });
        }
        const d = text[j]!;
        if (d === c) {
          if (text[j + 1] === c) {
            value += c;
            j += 2;
            continue;
          }
          break;
        }
        value += d;
        j++;
      }
      const raw = text.slice(i, j + 1);
      if (c !== "'" && value.length === 0) throw rulesErrorAt('RULES_SYNTAX', `empty quoted identifier ${raw}`, pos, { token: raw });
      tokens.push({ kind: c === "'" ? 'string' : 'quoted', text: raw, value, pos });
      advance(i, j + 1);
      i = j + 1;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op !== undefined) {
      tokens.push({ kind: 'op', text: op, value: op, pos });
      i += op.length;
      continue;
    }
    const ch = String.fromCodePoint(text.codePointAt(i)!);
    throw rulesErrorAt('RULES_SYNTAX', `unexpected character '${ch}'`, pos, { token: ch });
  }
  tokens.push({ kind: 'eof', text: '', value: '', pos: posAt(n) });
  return tokens;
}
