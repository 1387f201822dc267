/**
 * Recursive-descent parser of the rule dialect (ksqlDB's grammar, the subset
 * in issue 3); expressions by precedence climbing. Produces the syntax tree
 * of `ast.ts` with the position of each node's first token.
 *
 * Precedence, lowest first (as ksqlDB's SqlBase.g4):
 *   OR < AND < NOT < predicate (comparison, [NOT] BETWEEN/IN/LIKE, IS [NOT] NULL;
 *   not associative: `a = b = c` is an error) < `||` < `+ -` < `* / %`
 *   < unary `+ -` < postfix (`->field`, `[index]`) < primary.
 *
 * Grammar (keywords case-insensitive; `[]` optional, `{}` repeated):
 *
 *   file      := { statement ';' } [statement]
 *   statement := SET 'name' = 'value'
 *              | CREATE [OR REPLACE] [SOURCE] STREAM [IF NOT EXISTS] name
 *                  ( '(' column {',' column} ')' [WITH props] | WITH props )
 *              | CREATE [OR REPLACE] (STREAM|TABLE) [IF NOT EXISTS] name [WITH props] AS select
 *   column    := name type [[PRIMARY] KEY]
 *   type      := BOOLEAN | INT | INTEGER | BIGINT | DOUBLE | DECIMAL(p, s) | VARCHAR | STRING
 *              | BYTES | TIMESTAMP | DATE | TIME | ARRAY<type> | MAP<type, type> | STRUCT<name type, ...>
 *   props     := '(' key '=' literal {',' key '=' literal} ')'
 *   select    := SELECT item {',' item} FROM name [[AS] alias]
 *                [WINDOW [name] window] [WHERE expr] [GROUP BY exprs | GROUP BY '(' exprs ')']
 *                [PARTITION BY expr] [HAVING expr] [EMIT (CHANGES|FINAL)]
 *   item      := '*' | alias '.' '*' | expr [[AS] alias]
 *   window    := TUMBLING '(' SIZE n unit [, RETENTION n unit] [, GRACE PERIOD n unit] ')'
 *              | HOPPING '(' SIZE n unit, ADVANCE BY n unit [, RETENTION ...] [, GRACE PERIOD ...] ')'
 *              | SESSION '(' n unit [, RETENTION ...] [, GRACE PERIOD ...] ')'
 *   unit      := MILLISECOND(S) | SECOND(S) | MINUTE(S) | HOUR(S) | DAY(S)
 *   primary   := literal | column | alias.column | f(args) | f(*) | CASE ... END
 *              | CAST(expr AS type) | '(' expr ')' | primary '->' field | primary '[' expr ']'
 *
 * Not in the dialect (rejected with a message saying so): JOIN, LIMIT,
 * source tables (`CREATE TABLE x (cols)`), DROP/INSERT/other statements.
 *
 * Every failure is a `RulesError` with code `RULES_SYNTAX`, the position of
 * the offending token and a message naming it: `expected ')' but found 'GROUP'`.
 * The parser stops at the first error (no recovery): a broken file is
 * rejected as a whole.
 */

import type {
  BaseTypeName,
  Duration,
  EmitMode,
  Expr,
  Identifier,
  ParsedStatement,
  Position,
  Property,
  Select,
  SelectItem,
  Statement,
  TimeUnit,
  TypeNode,
  WindowNode,
  ColumnDef,
} from './ast.ts';
import { isRulesError, rulesErrorAt, type RulesError } from './errors.ts';
import { describeToken, tokenize, type Token } from './lexer.ts';

/**
 * Words that cannot be used as unquoted identifiers or aliases (back-quote
 * them to use them as names). Everything else, including SIZE, TIMESTAMP or
 * WINDOWSTART, may name a column.
 */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  'SELECT', 'FROM', 'WHERE', 'GROUP', 'BY', 'HAVING', 'WINDOW', 'EMIT', 'PARTITION', 'LIMIT',
  'AS', 'AND', 'OR', 'NOT', 'IN', 'IS', 'NULL', 'BETWEEN', 'LIKE', 'ESCAPE',
  'CASE', 'WHEN', 'THEN', 'ELSE', 'END', 'CAST', 'TRUE', 'FALSE',
  'CREATE', 'WITH', 'JOIN', 'ON', 'LEFT', 'RIGHT', 'INNER', 'FULL', 'OUTER',
  'INSERT', 'INTO', 'DROP', 'SET', 'UNSET', 'DISTINCT',
]);

const TIME_UNITS: Readonly<Record<string, { unit: TimeUnit; ms: number }>> = Object.freeze({
  MILLISECOND: { unit: 'MILLISECOND', ms: 1 },
  MILLISECONDS: { unit: 'MILLISECOND', ms: 1 },
  SECOND: { unit: 'SECOND', ms: 1_000 },
  SECONDS: { unit: 'SECOND', ms: 1_000 },
  MINUTE: { unit: 'MINUTE', ms: 60_000 },
  MINUTES: { unit: 'MINUTE', ms: 60_000 },
  HOUR: { unit: 'HOUR', ms: 3_600_000 },
  HOURS: { unit: 'HOUR', ms: 3_600_000 },
  DAY: { unit: 'DAY', ms: 86_400_000 },
  DAYS: { unit: 'DAY', ms: 86_400_000 },
});

/** Type names and their canonical base type (aliases normalised). */
const BASE_TYPES: Readonly<Record<string, BaseTypeName>> = Object.freeze({
  BOOLEAN: 'BOOLEAN',
  INT: 'INT',
  INTEGER: 'INT',
  BIGINT: 'BIGINT',
  DOUBLE: 'DOUBLE',
  DECIMAL: 'DECIMAL',
  VARCHAR: 'VARCHAR',
  STRING: 'VARCHAR',
  BYTES: 'BYTES',
  TIMESTAMP: 'TIMESTAMP',
  DATE: 'DATE',
  TIME: 'TIME',
});

const COMPARISON: Readonly<Record<string, '=' | '<>' | '<' | '<=' | '>' | '>='>> = Object.freeze({
  '=': '=',
  '<>': '<>',
  '!=': '<>',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
});

/** Binary value operators and their precedence (higher binds tighter). */
const VALUE_OPS: Readonly<Record<string, number>> = Object.freeze({
  '||': 1,
  '+': 2,
  '-': 2,
  '*': 3,
  '/': 3,
  '%': 3,
});

/** Deepest expression (or type) nesting accepted; deeper input is a RULES_SYNTAX error. */
export const MAX_EXPRESSION_DEPTH = 200;

/** True when the tree is deeper than `limit` (recursion stops at limit + 1). */
function exceedsDepth(e: Expr, limit: number): boolean {
  if (limit < 0) return true;
  switch (e.kind) {
    case 'FieldAccess':
      return exceedsDepth(e.base, limit - 1);
    case 'Subscript':
      return exceedsDepth(e.base, limit - 1) || exceedsDepth(e.index, limit - 1);
    case 'Unary':
      return exceedsDepth(e.operand, limit - 1);
    case 'Binary':
      return exceedsDepth(e.left, limit - 1) || exceedsDepth(e.right, limit - 1);
    case 'InList':
      return exceedsDepth(e.expr, limit - 1) || e.list.some((x) => exceedsDepth(x, limit - 1));
    case 'Between':
      return exceedsDepth(e.expr, limit - 1) || exceedsDepth(e.low, limit - 1) || exceedsDepth(e.high, limit - 1);
    case 'Like':
      return exceedsDepth(e.expr, limit - 1) || exceedsDepth(e.pattern, limit - 1);
    case 'IsNull':
    case 'Cast':
      return exceedsDepth(e.expr, limit - 1);
    case 'Case':
      return (
        (e.operand !== null && exceedsDepth(e.operand, limit - 1)) ||
        e.whens.some((w) => exceedsDepth(w.when, limit - 1) || exceedsDepth(w.then, limit - 1)) ||
        (e.else !== null && exceedsDepth(e.else, limit - 1))
      );
    case 'Call':
      return e.args.some((a) => exceedsDepth(a, limit - 1));
    default:
      return false;
  }
}

/** Parses a whole rule file: statements separated by `;` (the last `;` may be omitted). */
export function parseRules(text: string): ParsedStatement[] {
  const { statements, errors } = parseRulesRecovering(text);
  if (errors.length > 0) throw errors[0]!;
  return statements;
}

/**
 * Parses a whole rule file, continuing after a syntax error at the next
 * `;` so that one pass reports every broken statement. A lexical error
 * (bad character, unterminated string or comment) ends the file: what
 * follows it cannot be tokenized reliably. `statements` holds the
 * statements that parsed.
 */
export function parseRulesRecovering(text: string): { statements: ParsedStatement[]; errors: RulesError[] } {
  let p: Parser;
  try {
    p = new Parser(text);
  } catch (e) {
    return { statements: [], errors: [e as RulesError] };
  }
  return p.parseFile();
}

/** Parses one expression (the whole text must be the expression). For tests and tools. */
export function parseExpression(text: string): Expr {
  const p = new Parser(text);
  const e = p.expression();
  p.expectEof();
  return e;
}

class Parser {
  private readonly tokens: Token[];
  private i = 0;

  constructor(private readonly text: string) {
    this.tokens = tokenize(text);
  }

  // -- token helpers -------------------------------------------------------

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  private isWord(word: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'word' && t.value === word;
  }

  private isOp(op: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'op' && t.value === op;
  }

  private acceptWord(word: string): Token | null {
    return this.isWord(word) ? this.next() : null;
  }

  private acceptOp(op: string): Token | null {
    return this.isOp(op) ? this.next() : null;
  }

  private error(message: string, t: Token = this.peek()): RulesError {
    return rulesErrorAt('RULES_SYNTAX', message, t.pos, { token: t.kind === 'eof' ? '' : t.text });
  }

  private expected(what: string, t: Token = this.peek()): RulesError {
    return this.error(`expected ${what} but found ${describeToken(t)}`, t);
  }

  private expectWord(word: string): Token {
    if (!this.isWord(word)) throw this.expected(word);
    return this.next();
  }

  private expectOp(op: string): Token {
    if (!this.isOp(op)) throw this.expected(`'${op}'`);
    return this.next();
  }

  expectEof(): void {
    if (this.peek().kind !== 'eof') throw this.expected('end of input');
  }

  /** An identifier: an unreserved word or a quoted name. `what` names it in errors. */
  private identifier(what = 'identifier'): Identifier {
    const t = this.peek();
    if (t.kind === 'quoted') {
      this.next();
      return { kind: 'Identifier', pos: t.pos, name: t.value, quoted: true };
    }
    if (t.kind === 'word' && !RESERVED_WORDS.has(t.value)) {
      this.next();
      return { kind: 'Identifier', pos: t.pos, name: t.text, quoted: false };
    }
    throw this.expected(what);
  }

  private isIdentifierStart(ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'quoted' || (t.kind === 'word' && !RESERVED_WORDS.has(t.value));
  }

  // -- statements ----------------------------------------------------------

  parseFile(): { statements: ParsedStatement[]; errors: RulesError[] } {
    const statements: ParsedStatement[] = [];
    const errors: RulesError[] = [];
    for (;;) {
      while (this.acceptOp(';')) {
        // empty statements are allowed
      }
      if (this.peek().kind === 'eof') return { statements, errors };
      const first = this.peek();
      try {
        this.depth = 0;
        const statement = this.statement();
        const end = this.peek();
        if (end.kind !== 'eof' && !this.isOp(';')) throw this.expected("';'");
        statements.push({ statement, text: this.text.slice(first.pos.offset, end.pos.offset).trimEnd() });
      } catch (e) {
        if (!isRulesError(e)) throw e;
        errors.push(e);
        // Resume after the next ';' (the statement's end, as far as we can tell).
        while (this.peek().kind !== 'eof' && !this.isOp(';')) this.next();
      }
    }
  }

  private statement(): Statement {
    const t = this.peek();
    if (this.isWord('SET')) return this.setStatement();
    if (this.isWord('CREATE')) return this.createStatement();
    if (t.kind === 'word' && ['DROP', 'INSERT', 'SELECT', 'DESCRIBE', 'SHOW', 'LIST', 'TERMINATE', 'UNSET', 'EXPLAIN'].includes(t.value)) {
      throw this.error(`unsupported statement '${t.text}': a rule file holds CREATE STREAM, CREATE TABLE and SET statements`, t);
    }
    throw this.expected("'CREATE' or 'SET'");
  }

  private setStatement(): Statement {
    const pos = this.next().pos;
    const name = this.peek();
    if (name.kind !== 'string') throw this.expected("a quoted property name like 'auto.offset.reset'");
    this.next();
    this.expectOp('=');
    const value = this.peek();
    if (value.kind !== 'string') throw this.expected('a quoted property value');
    this.next();
    return { kind: 'SetStatement', pos, property: name.value, value: value.value };
  }

  private createStatement(): Statement {
    const pos = this.next().pos;
    let orReplace = false;
    if (this.acceptWord('OR')) {
      this.expectWord('REPLACE');
      orReplace = true;
    }
    this.acceptWord('SOURCE');
    const kindTok = this.peek();
    let objectType: 'STREAM' | 'TABLE';
    if (this.acceptWord('STREAM')) objectType = 'STREAM';
    else if (this.acceptWord('TABLE')) objectType = 'TABLE';
    else throw this.expected("'STREAM' or 'TABLE'");
    let ifNotExists = false;
    if (this.acceptWord('IF')) {
      this.expectWord('NOT');
      this.expectWord('EXISTS');
      ifNotExists = true;
    }
    const name = this.identifier(`a ${objectType.toLowerCase()} name`);
    let columns: ColumnDef[] | null = null;
    if (this.isOp('(')) columns = this.columnDefs();
    const properties = this.isWord('WITH') ? this.properties() : [];
    if (this.isWord('AS')) {
      const asTok = this.next();
      if (columns !== null) throw this.error('CREATE ... AS SELECT cannot also declare columns', asTok);
      const query = this.select();
      return { kind: 'CreateAsSelect', pos, objectType, name, orReplace, ifNotExists, properties, query };
    }
    if (objectType === 'TABLE') {
      throw this.error(`source tables are not supported: write CREATE TABLE ${name.name} AS SELECT ...`, kindTok);
    }
    if (columns === null && properties.length === 0) throw this.expected("'(', 'WITH' or 'AS'");
    return { kind: 'CreateSource', pos, name, orReplace, ifNotExists, columns: columns ?? [], properties };
  }

  private columnDefs(): ColumnDef[] {
    this.expectOp('(');
    const cols: ColumnDef[] = [];
    do {
      const name = this.identifier('a column name');
      const type = this.type();
      let key = false;
      if (this.acceptWord('PRIMARY')) {
        this.expectWord('KEY');
        key = true;
      } else if (this.acceptWord('KEY')) key = true;
      cols.push({ kind: 'ColumnDef', pos: name.pos, name, type, key });
    } while (this.acceptOp(','));
    this.expectOp(')');
    return cols;
  }

  private type(): TypeNode {
    const t = this.peek();
    this.enter(t);
    try {
      return this.typeInner(t);
    } finally {
      this.depth--;
    }
  }

  private typeInner(t: Token): TypeNode {
    if (t.kind !== 'word') throw this.expected('a type');
    if (t.value === 'ARRAY') {
      this.next();
      this.expectOp('<');
      const element = this.type();
      this.expectOp('>');
      return { kind: 'ArrayType', pos: t.pos, element };
    }
    if (t.value === 'MAP') {
      this.next();
      this.expectOp('<');
      const keyType = this.type();
      this.expectOp(',');
      const valueType = this.type();
      this.expectOp('>');
      return { kind: 'MapType', pos: t.pos, keyType, valueType };
    }
    if (t.value === 'STRUCT') {
      this.next();
      this.expectOp('<');
      const fields: Array<{ name: Identifier; type: TypeNode }> = [];
      if (!this.isOp('>')) {
        do {
          const name = this.identifier('a field name');
          fields.push({ name, type: this.type() });
        } while (this.acceptOp(','));
      }
      this.expectOp('>');
      return { kind: 'StructType', pos: t.pos, fields };
    }
    const base = BASE_TYPES[t.value];
    if (base === undefined) throw this.expected('a type');
    this.next();
    const params: number[] = [];
    if (this.acceptOp('(')) {
      do {
        const n = this.peek();
        if (n.kind !== 'number' || !/^\d+$/.test(n.text)) throw this.expected('an integer type parameter');
        this.next();
        params.push(Number(n.text));
      } while (this.acceptOp(','));
      this.expectOp(')');
    }
    return { kind: 'BaseType', pos: t.pos, name: base, params };
  }

  private properties(): Property[] {
    this.expectWord('WITH');
    this.expectOp('(');
    const props: Property[] = [];
    do {
      const t = this.peek();
      if (t.kind !== 'word' && t.kind !== 'quoted' && t.kind !== 'string') throw this.expected('a property name');
      this.next();
      this.expectOp('=');
      const v = this.peek();
      let value: Property['value'];
      if (v.kind === 'string') value = { kind: 'StringLiteral', pos: v.pos, value: v.value };
      else if (v.kind === 'number') value = this.numberLiteral(this.next());
      else if (this.isWord('TRUE') || this.isWord('FALSE')) value = { kind: 'BooleanLiteral', pos: v.pos, value: v.value === 'TRUE' };
      else throw this.expected('a property value');
      if (v.kind !== 'number') this.next();
      const name = t.kind === 'word' ? t.value : t.value.toUpperCase();
      props.push({ kind: 'Property', pos: t.pos, name, value });
    } while (this.acceptOp(','));
    this.expectOp(')');
    return props;
  }

  // -- queries -------------------------------------------------------------

  private select(): Select {
    const pos = this.expectWord('SELECT').pos;
    const items: SelectItem[] = [];
    do items.push(this.selectItem());
    while (this.acceptOp(','));
    const fromTok = this.peek();
    this.expectWord('FROM');
    const name = this.identifier('a stream name');
    let alias: Identifier | null = null;
    if (this.acceptWord('AS')) alias = this.identifier('an alias');
    else if (this.isIdentifierStart()) alias = this.identifier();
    const j = this.peek();
    if (j.kind === 'word' && ['JOIN', 'LEFT', 'RIGHT', 'INNER', 'FULL', 'OUTER'].includes(j.value)) {
      throw this.error(`JOIN is not supported (found '${j.text}')`, j);
    }
    if (this.isOp(',')) throw this.error("JOIN is not supported (found ',')");
    const window = this.isWord('WINDOW') ? this.window() : null;
    const where = this.acceptWord('WHERE') ? this.expression() : null;
    let groupBy: Expr[] = [];
    if (this.acceptWord('GROUP')) {
      this.expectWord('BY');
      groupBy = this.groupByList();
    }
    let partitionBy: Expr[] = [];
    if (this.acceptWord('PARTITION')) {
      this.expectWord('BY');
      partitionBy = this.expressionList();
    }
    const having = this.acceptWord('HAVING') ? this.expression() : null;
    let emit: EmitMode | null = null;
    let emitPos: Position | null = null;
    if (this.isWord('EMIT')) {
      emitPos = this.next().pos;
      if (this.acceptWord('CHANGES')) emit = 'CHANGES';
      else if (this.acceptWord('FINAL')) emit = 'FINAL';
      else throw this.expected("'CHANGES' or 'FINAL'");
    }
    if (this.isWord('LIMIT')) throw this.error('LIMIT is not supported in a rule (rules run continuously)');
    const late = this.peek();
    if (late.kind === 'word' && ['WINDOW', 'WHERE', 'GROUP', 'PARTITION', 'HAVING', 'EMIT'].includes(late.value)) {
      throw this.error(`'${late.text}' is out of place: the clauses go in the order FROM, WINDOW, WHERE, GROUP BY, PARTITION BY, HAVING, EMIT`, late);
    }
    return { kind: 'Select', pos, items, from: { pos: fromTok.pos, name, alias }, window, where, groupBy, partitionBy, having, emit, emitPos };
  }

  private selectItem(): SelectItem {
    const t = this.peek();
    if (this.acceptOp('*')) return { kind: 'Star', pos: t.pos, qualifier: null };
    if (this.isIdentifierStart() && this.isOp('.', 1) && this.isOp('*', 2)) {
      const qualifier = this.identifier();
      this.next();
      this.next();
      return { kind: 'Star', pos: t.pos, qualifier };
    }
    const expr = this.expression();
    let alias: Identifier | null = null;
    if (this.acceptWord('AS')) alias = this.identifier('an alias');
    else if (this.isIdentifierStart()) alias = this.identifier();
    return { kind: 'SelectExpr', pos: t.pos, expr, alias };
  }

  private groupByList(): Expr[] {
    // ksqlDB accepts `GROUP BY a, b` and `GROUP BY (a, b)`; `(a + b)` alone is an expression.
    if (this.isOp('(')) {
      const save = this.i;
      this.next();
      if (this.acceptOp(')')) return [];
      const first = this.expression();
      if (this.isOp(',')) {
        const list = [first];
        while (this.acceptOp(',')) list.push(this.expression());
        this.expectOp(')');
        return list;
      }
      this.i = save;
    }
    return this.expressionList();
  }

  private expressionList(): Expr[] {
    const list: Expr[] = [];
    do list.push(this.expression());
    while (this.acceptOp(','));
    return list;
  }

  private window(): WindowNode {
    this.expectWord('WINDOW');
    // ksqlDB allows an optional window name before the kind: `WINDOW w TUMBLING (...)`.
    if (this.isIdentifierStart() && ['TUMBLING', 'HOPPING', 'SESSION'].includes(this.peek(1).value) && this.peek(1).kind === 'word') this.next();
    const t = this.peek();
    if (t.kind !== 'word' || !['TUMBLING', 'HOPPING', 'SESSION'].includes(t.value)) throw this.expected("'TUMBLING', 'HOPPING' or 'SESSION'");
    this.next();
    this.expectOp('(');
    let size: Duration | null = null;
    let advance: Duration | null = null;
    let gap: Duration | null = null;
    if (t.value === 'SESSION') gap = this.duration();
    else {
      this.expectWord('SIZE');
      size = this.duration();
      if (t.value === 'HOPPING') {
        this.expectOp(',');
        this.expectWord('ADVANCE');
        this.expectWord('BY');
        advance = this.duration();
      }
    }
    let retention: Duration | null = null;
    let grace: Duration | null = null;
    while (this.acceptOp(',')) {
      const c = this.peek();
      if (retention === null && this.acceptWord('RETENTION')) retention = this.duration();
      else if (grace === null && this.acceptWord('GRACE')) {
        this.expectWord('PERIOD');
        grace = this.duration();
      } else throw this.expected(retention === null && grace === null ? "'RETENTION' or 'GRACE PERIOD'" : grace === null ? "'GRACE PERIOD'" : "'RETENTION'", c);
    }
    this.expectOp(')');
    if (t.value === 'TUMBLING') return { kind: 'TumblingWindow', pos: t.pos, size: size!, retention, grace };
    if (t.value === 'HOPPING') return { kind: 'HoppingWindow', pos: t.pos, size: size!, advance: advance!, retention, grace };
    return { kind: 'SessionWindow', pos: t.pos, gap: gap!, retention, grace };
  }

  private duration(): Duration {
    const n = this.peek();
    if (n.kind !== 'number' || !/^\d+$/.test(n.text)) throw this.expected('a whole number of time units');
    this.next();
    const u = this.peek();
    const unit = u.kind === 'word' ? TIME_UNITS[u.value] : undefined;
    if (unit === undefined) throw this.expected('a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS)');
    this.next();
    const value = Number(n.text);
    return { kind: 'Duration', pos: n.pos, value, unit: unit.unit, ms: value * unit.ms };
  }

  // -- expressions ---------------------------------------------------------

  /**
   * Parses an expression. Nesting is bounded (MAX_EXPRESSION_DEPTH) both
   * while parsing (parentheses, NOT, signs, types) and in the finished tree
   * (long operator chains), so that no later recursion (analysis, compiling,
   * evaluating) can exhaust the stack on a hostile or generated rule file.
   */
  expression(): Expr {
    const start = this.peek();
    this.enter(start);
    try {
      const e = this.or();
      if (this.depth === 1 && exceedsDepth(e, MAX_EXPRESSION_DEPTH)) throw this.tooDeep(start);
      return e;
    } finally {
      this.depth--;
    }
  }

  private depth = 0;

  private enter(t: Token): void {
    if (++this.depth > MAX_EXPRESSION_DEPTH) throw this.tooDeep(t);
  }

  private tooDeep(t: Token): RulesError {
    return this.error(`expression nested too deeply (more than ${MAX_EXPRESSION_DEPTH} levels)`, t);
  }

  private or(): Expr {
    let left = this.and();
    while (this.isWord('OR')) {
      this.next();
      const right = this.and();
      left = { kind: 'Binary', pos: left.pos, op: 'OR', left, right };
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isWord('AND')) {
      this.next();
      const right = this.not();
      left = { kind: 'Binary', pos: left.pos, op: 'AND', left, right };
    }
    return left;
  }

  private not(): Expr {
    if (this.isWord('NOT')) {
      const t = this.next();
      this.enter(t);
      try {
        return { kind: 'Unary', pos: t.pos, op: 'NOT', operand: this.not() };
      } finally {
        this.depth--;
      }
    }
    return this.predicate();
  }

  private predicate(): Expr {
    const left = this.value(1);
    const t = this.peek();
    const pos = left.pos;
    if (t.kind === 'op' && COMPARISON[t.value] !== undefined) {
      this.next();
      return { kind: 'Binary', pos, op: COMPARISON[t.value]!, left, right: this.value(1) };
    }
    if (this.isWord('IS')) {
      this.next();
      const negated = this.acceptWord('NOT') !== null;
      this.expectWord('NULL');
      return { kind: 'IsNull', pos, expr: left, negated };
    }
    let negated = false;
    if (this.isWord('NOT') && (this.isWord('BETWEEN', 1) || this.isWord('IN', 1) || this.isWord('LIKE', 1))) {
      this.next();
      negated = true;
    }
    if (this.acceptWord('BETWEEN')) {
      const low = this.value(1);
      this.expectWord('AND');
      const high = this.value(1);
      return { kind: 'Between', pos, expr: left, low, high, negated };
    }
    if (this.acceptWord('IN')) {
      this.expectOp('(');
      const list = this.expressionList();
      this.expectOp(')');
      return { kind: 'InList', pos, expr: left, list, negated };
    }
    if (this.acceptWord('LIKE')) {
      const pattern = this.value(1);
      let escape: Expr | null = null;
      if (this.acceptWord('ESCAPE')) {
        const e = this.peek();
        if (e.kind !== 'string') throw this.expected('a quoted escape character');
        this.next();
        escape = { kind: 'StringLiteral', pos: e.pos, value: e.value };
      }
      return { kind: 'Like', pos, expr: left, pattern, escape, negated };
    }
    return left;
  }

  /** Precedence climbing over the binary value operators of at least `minPrec`. */
  private value(minPrec: number): Expr {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      const prec = t.kind === 'op' ? VALUE_OPS[t.value] : undefined;
      if (prec === undefined || prec < minPrec) return left;
      this.next();
      const right = this.value(prec + 1);
      left = { kind: 'Binary', pos: left.pos, op: t.value as '+' | '-' | '*' | '/' | '%' | '||', left, right };
    }
  }

  private unary(): Expr {
    const t = this.peek();
    if (this.isOp('-') || this.isOp('+')) {
      this.next();
      this.enter(t);
      try {
        return { kind: 'Unary', pos: t.pos, op: t.value as '-' | '+', operand: this.unary() };
      } finally {
        this.depth--;
      }
    }
    return this.postfix();
  }

  private postfix(): Expr {
    let e = this.primary();
    for (;;) {
      if (this.acceptOp('->')) {
        // Any word may name a field after '->' (reserved words too: `payload->inner`).
        const f = this.peek();
        const field: Identifier =
          f.kind === 'word' ? (this.next(), { kind: 'Identifier', pos: f.pos, name: f.text, quoted: false }) : this.identifier('a field name');
        e = { kind: 'FieldAccess', pos: e.pos, base: e, field };
      } else if (this.acceptOp('[')) {
        const index = this.expression();
        this.expectOp(']');
        e = { kind: 'Subscript', pos: e.pos, base: e, index };
      } else return e;
    }
  }

  private numberLiteral(t: Token): Expr & { kind: 'NumberLiteral' } {
    const integer = /^\d+$/.test(t.text);
    return { kind: 'NumberLiteral', pos: t.pos, value: Number(t.text), text: t.text, integer };
  }

  private primary(): Expr {
    const t = this.peek();
    switch (t.kind) {
      case 'number':
        this.next();
        return this.numberLiteral(t);
      case 'string':
        this.next();
        return { kind: 'StringLiteral', pos: t.pos, value: t.value };
      case 'op':
        if (t.value === '(') {
          this.next();
          const e = this.expression();
          this.expectOp(')');
          return e;
        }
        throw this.expected('an expression');
      case 'eof':
        throw this.expected('an expression');
      default:
        break;
    }
    if (t.kind === 'word') {
      switch (t.value) {
        case 'TRUE':
        case 'FALSE':
          this.next();
          return { kind: 'BooleanLiteral', pos: t.pos, value: t.value === 'TRUE' };
        case 'NULL':
          this.next();
          return { kind: 'NullLiteral', pos: t.pos };
        case 'CASE':
          return this.caseExpr();
        case 'CAST': {
          this.next();
          this.expectOp('(');
          const expr = this.expression();
          this.expectWord('AS');
          const type = this.type();
          this.expectOp(')');
          return { kind: 'Cast', pos: t.pos, expr, type };
        }
        default:
          break;
      }
    }
    // A function call may use a non-reserved word; `LEFT(...)`-like reserved names are not functions here.
    if (t.kind === 'word' && this.isOp('(', 1) && !RESERVED_WORDS.has(t.value)) return this.call();
    if (!this.isIdentifierStart()) throw this.expected('an expression');
    const first = this.identifier();
    if (this.isOp('.') && this.isIdentifierStart(1)) {
      this.next();
      const column = this.identifier();
      return { kind: 'ColumnRef', pos: first.pos, qualifier: first, column };
    }
    return { kind: 'ColumnRef', pos: first.pos, qualifier: null, column: first };
  }

  private call(): Expr {
    const nameTok = this.next();
    const name: Identifier = { kind: 'Identifier', pos: nameTok.pos, name: nameTok.text, quoted: false };
    this.expectOp('(');
    if (this.acceptOp('*')) {
      this.expectOp(')');
      return { kind: 'Call', pos: nameTok.pos, name, args: [], star: true, distinct: false };
    }
    const distinct = this.acceptWord('DISTINCT') !== null;
    const args: Expr[] = [];
    if (!this.isOp(')')) {
      do args.push(this.expression());
      while (this.acceptOp(','));
    }
    this.expectOp(')');
    return { kind: 'Call', pos: nameTok.pos, name, args, star: false, distinct };
  }

  private caseExpr(): Expr {
    const pos = this.next().pos;
    if (this.isWord('END')) throw this.expected("'WHEN'");
    const operand = this.isWord('WHEN') ? null : this.expression();
    const whens: Array<{ when: Expr; then: Expr }> = [];
    while (this.acceptWord('WHEN')) {
      const when = this.expression();
      this.expectWord('THEN');
      whens.push({ when, then: this.expression() });
    }
    if (whens.length === 0) throw this.expected("'WHEN'");
    const elseExpr = this.acceptWord('ELSE') ? this.expression() : null;
    this.expectWord('END');
    return { kind: 'Case', pos, operand, whens, else: elseExpr };
  }
}
