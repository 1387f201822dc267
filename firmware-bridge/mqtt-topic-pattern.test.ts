import { describe, expect, it } from 'vitest';
import { parseTopicPattern, TopicPatternError } from './mqtt-topic-pattern.ts';

describe('parseTopicPattern: broker filter and fields', () => {
  const golden: Array<[pattern: string, filter: string, fields: string[]]> = [
    ['factory/+line/+sensor_id/reading', 'factory/+/+/reading', ['line', 'sensor_id']],
    ['factory/+/+/reading', 'factory/+/+/reading', []],
    ['factory/#', 'factory/#', []],
    ['factory/+line/#rest', 'factory/+/#', ['line', 'rest']],
    ['#', '#', []],
    ['+', '+', []],
    ['+site', '+', ['site']],
    ['a//+gap/b', 'a//+/b', ['gap']],
    ['/leading', '/leading', []],
    ['$share/g1/factory/+line/reading', '$share/g1/factory/+/reading', ['line']],
    ['$SYS/broker/+what', '$SYS/broker/+', ['what']],
    ['plant/+sensor-id/x', 'plant/+/x', ['sensor-id']],
  ];
  it.each(golden)('%s → %s', (pattern, filter, fields) => {
    const p = parseTopicPattern(pattern);
    expect(p.pattern).toBe(pattern);
    expect(p.filter).toBe(filter);
    expect(p.fields.map((f) => f.name)).toEqual(fields);
  });
});

describe('parseTopicPattern: match', () => {
  const golden: Array<[pattern: string, topic: string, fields: Record<string, string> | null]> = [
    ['factory/+line/+sensor_id/reading', 'factory/w01/aa-101/reading', { line: 'w01', sensor_id: 'aa-101' }],
    ['factory/+line/+sensor_id/reading', 'factory/w01/aa-101/reading/x', null],
    ['factory/+line/+sensor_id/reading', 'factory/w01/reading', null],
    ['factory/+line/+sensor_id/reading', 'factory/w01/aa-101/status', null],
    ['factory/+line/+sensor_id/reading', 'Factory/w01/aa-101/reading', null],
    ['factory/+line/+sensor_id/reading', 'factory//aa-101/reading', { line: '', sensor_id: 'aa-101' }],
    ['factory/+/+/reading', 'factory/w01/aa-101/reading', {}],
    ['factory/#', 'factory', {}],
    ['factory/#', 'factory/w01/aa-101/reading', {}],
    ['factory/#', 'factoryx/a', null],
    ['factory/+line/#rest', 'factory/w01/aa-101/reading', { line: 'w01', rest: 'aa-101/reading' }],
    ['factory/+line/#rest', 'factory/w01', { line: 'w01', rest: '' }],
    ['factory/+line/#rest', 'factory', null],
    ['#', 'anything/at/all', {}],
    ['#all', 'a/b', { all: 'a/b' }],
    // MQTT 4.7.2: a filter starting with a wildcard does not match $-topics...
    ['#', '$SYS/broker/load', null],
    ['+/broker/+', '$SYS/broker/load', null],
    // ...but a literal $ level does.
    ['$SYS/broker/+what', '$SYS/broker/load', { what: 'load' }],
    ['+', 'a', {}],
    ['+', 'a/b', null],
    ['+', '/a', null],
    ['+/+', '/a', {}],
    ['/leading', '/leading', {}],
    ['a//+gap/b', 'a//x/b', { gap: 'x' }],
    ['$share/g1/factory/+line/reading', 'factory/w01/reading', { line: 'w01' }],
    // A topic name never holds wildcards; an empty topic is not a topic.
    ['factory/+line', 'factory/+', null],
    ['#', '', null],
    ['plant/+sensor-id/x', 'plant/ü-7/x', { 'sensor-id': 'ü-7' }],
  ];
  it.each(golden)('%s ∋ %s', (pattern, topic, fields) => {
    expect(parseTopicPattern(pattern).match(topic)).toEqual(fields);
  });
});

describe('parseTopicPattern: invalid patterns', () => {
  const golden: Array<[pattern: string, message: string]> = [
    ['', 'invalid MQTT subscription "": empty'],
    ['a/#/b', 'invalid MQTT subscription "a/#/b" at level 2: # must be the last level'],
    ['a/b#', 'invalid MQTT subscription "a/b#" at level 2: "b#": + and # may only start a level'],
    ['a/x+y', 'invalid MQTT subscription "a/x+y" at level 2: "x+y": + and # may only start a level'],
    ['a/++', 'invalid MQTT subscription "a/++" at level 2: "++": a wildcard takes the whole level, optionally followed by a field name (letters, digits, _ and -)'],
    ['a/+1x', 'invalid MQTT subscription "a/+1x" at level 2: "+1x": a wildcard takes the whole level, optionally followed by a field name (letters, digits, _ and -)'],
    ['+id/+id', 'invalid MQTT subscription "+id/+id" at level 2: field "id" named twice'],
    ['$share/g1', 'invalid MQTT subscription "$share/g1": a shared subscription is $share/<group>/<filter> with a group name free of + and #'],
    ['$share/g1/', 'invalid MQTT subscription "$share/g1/": shared subscription without a filter'],
    ['$share/+/a', 'invalid MQTT subscription "$share/+/a": a shared subscription is $share/<group>/<filter> with a group name free of + and #'],
    ['a\u0000b', 'invalid MQTT subscription "a\\u0000b": contains NUL'],
  ];
  it.each(golden)('%j', (pattern, message) => {
    let caught: unknown;
    try {
      parseTopicPattern(pattern);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TopicPatternError);
    expect((caught as TopicPatternError).message).toBe(message);
    expect((caught as TopicPatternError).code).toBe('BRIDGE_CONFIG');
    expect((caught as TopicPatternError).retriable).toBe(false);
  });

  it('rejects a filter longer than MQTT allows', () => {
    expect(() => parseTopicPattern('a/'.repeat(33_000))).toThrow(/longer than 65535 bytes/);
  });
});
