import { describe, expect, it } from 'vitest';
import { isRulesError, type RulesError } from './errors.ts';
import { tokenize } from './lexer.ts';

const compact = (text: string): string[] => tokenize(text).map((t) => `${t.kind}:${t.value}@${t.pos.line}:${t.pos.col}`);

describe('lexer', () => {
  it('tokenizes words, numbers, strings, quoted names and operators with positions', () => {
    expect(compact("SELECT a_1, `My Col`, \"dq\", 'it''s', 12, 1.5, .5, 2E3, 4e-2 FROM x")).toEqual([
      'word:SELECT@1:1',
      'word:A_1@1:8',
      'op:,@1:11',
      'quoted:My Col@1:13',
      'op:,@1:21',
      'quoted:dq@1:23',
      'op:,@1:27',
      "string:it's@1:29",
      'op:,@1:36',
      'number:12@1:38',
      'op:,@1:40',
      'number:1.5@1:42',
      'op:,@1:45',
      'number:.5@1:47',
      'op:,@1:49',
      'number:2E3@1:51',
      'op:,@1:54',
      'number:4e-2@1:56',
      'word:FROM@1:61',
      'word:X@1:66',
      'eof:@1:67',
    ]);
  });

  it('takes the longest operator and skips both comment styles across lines', () => {
    expect(compact("a<=b<>c!=d->e||f -- note\n/* multi\nline */ >= ;")).toEqual([
      'word:A@1:1',
      'op:<=@1:2',
      'word:B@1:4',
      'op:<>@1:5',
      'word:C@1:7',
      'op:!=@1:8',
      'word:D@1:10',
      'op:->@1:11',
      'word:E@1:13',
      'op:||@1:14',
      'word:F@1:16',
      'op:>=@3:9',
      'op:;@3:12',
      'eof:@3:13',
    ]);
  });

  it('counts lines inside multi-line strings and keeps the text as written', () => {
    const tokens = tokenize("'a\nb' x");
    expect(tokens[0]).toMatchObject({ kind: 'string', value: 'a\nb', text: "'a\nb'", pos: { line: 1, col: 1, offset: 0 } });
    expect(tokens[1]).toMatchObject({ kind: 'word', text: 'x', pos: { line: 2, col: 4, offset: 6 } });
  });

  it('ignores a byte-order mark and handles CRLF line ends', () => {
    expect(compact('\uFEFFa\r\n  b')).toEqual(['word:A@1:2', 'word:B@2:3', 'eof:@2:4']);
  });

  it('keeps doubled back-quotes as one and upper-cases only words', () => {
    const [t] = tokenize('`a``b`');
    expect(t).toMatchObject({ kind: 'quoted', value: 'a`b', text: '`a``b`' });
    expect(tokenize('Colour')[0]).toMatchObject({ value: 'COLOUR', text: 'Colour' });
  });

  it.each([
    ["'open", "1:1: unterminated string literal: missing closing '"],
    ['`open', '1:1: unterminated quoted identifier: missing closing `'],
    ['a /* open', "1:3: unterminated comment: missing '*/'"],
    ['a ? b', "1:3: unexpected character '?'"],
    ['x\n  12ab', "2:3: invalid number '12ab'"],
    ['``', '1:1: empty quoted identifier ``'],
    ['a 😀', "1:3: unexpected character '😀'"],
  ])('rejects %j with a positioned RULES_SYNTAX error', (text, want) => {
    try {
      tokenize(text);
      expect.unreachable();
    } catch (e) {
      expect(isRulesError(e, 'RULES_SYNTAX')).toBe(true);
      const err = e as RulesError;
      expect(`${err.context.line}:${err.context.col}: ${err.message}`).toBe(want);
    }
  });
});
