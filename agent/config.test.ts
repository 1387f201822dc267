import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config.ts';
import { renderConfigReference } from './config-reference.ts';

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'gw.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('CONFIG_INVALID');
    return (err as Error).message.split('\n');
  }
  throw new Error('config was accepted');
}

const modbus = (regs: string) => `sources:
  - name: plc
    modbus:
      host: 10.0.0.5
      registers: ${regs}
      devices: [{ unitId: 1, sensorId: aa-1 }]
`;

/** Bad config → the exact messages, each naming file:line:col and the key path. */
const BAD: Array<[string, string, string[]]> = [
  ['unknown top-level key', 'gatway: {id: x}\n', ['gw.yaml:1:1: gatway: unknown key']],
  ['unknown nested key', 'http:\n  prot: 80\n', ['gw.yaml:2:3: http.prot: unknown key']],
  ['wrong type', 'http:\n  port: eighty\n', ['gw.yaml:2:9: http.port: expected integer']],
  ['out of range', 'http:\n  port: 70000\n', ['gw.yaml:2:9: http.port: expected a number <= 65535']],
  ['bad enum deep in an array', modbus('[{ field: t, address: 0 }, { field: u, address: 1, type: int99 }]'), [
    'gw.yaml:5:75: sources[0].modbus.registers[1].type: expected one of bool, int16, uint16, int32, uint32, float32, float64, string',
  ]],
  ['missing required key', modbus('[{ field: t }]'), ['gw.yaml:5:19: sources[0].modbus.registers[0].address: required key is missing']],
  ['string register without length', modbus('[{ field: t, address: 0, type: string }]'), [
    'gw.yaml:5:19: sources[0].modbus.registers[0].length: required key is missing (type string)',
  ]],
  ['coil that is not bool', modbus('[{ field: t, address: 0, function: coil, type: int16 }]'), [
    'gw.yaml:5:65: sources[0].modbus.registers[0].type: expected bool for function coil',
  ]],
  ['two source kinds', 'sources:\n  - name: x\n    serial: {path: /dev/ttyS0}\n    mqtt: {url: "mqtt://h", subscriptions: [{topic: a}]}\n', [
    'gw.yaml:2:5: sources[0]: expected exactly one of serial, modbus, mqtt (found serial, mqtt)',
  ]],
  ['no source kind', 'sources:\n  - name: x\n', ['gw.yaml:2:5: sources[0]: expected exactly one of serial, modbus, mqtt']],
  ['duplicate source names', 'sources:\n  - {name: a, serial: {path: /dev/a}}\n  - {name: a, serial: {path: /dev/b}}\n', [
    'gw.yaml:3:12: sources[1].name: duplicate source name (also sources[0])',
  ]],
  ['tcp modbus without host', 'sources:\n  - name: p\n    modbus:\n      registers: [{field: t, address: 0}]\n      devices: [{unitId: 1, sensorId: s}]\n', [
    'gw.yaml:3:5: sources[0].modbus.host: required key is missing (transport tcp)',
  ]],
  ['bad mqtt url', 'sources:\n  - name: m\n    mqtt: {url: "http://h", subscriptions: [{topic: a}]}\n', [
    'gw.yaml:3:17: sources[0].mqtt.url: must match ^mqtts?://',
  ]],
  ['replication on without brokers', 'replication:\n  enabled: true\n  topics: [{topic: widgets}]\n', [
    'gw.yaml:1:1: replication.brokers: required key is missing (replication enabled)',
  ]],
  ['bad sasl mechanism', 'replication:\n  enabled: false\n  sasl: {mechanism: md5, username: u, password: p}\n', [
    'gw.yaml:3:21: replication.sasl.mechanism: expected one of plain, scram-sha-256, scram-sha-512',
  ]],
  ['bad topic name', 'topics:\n  "bad topic": {partitions: 3}\n', ['gw.yaml:2:3: topics.bad topic: invalid name']],
  ['zero partitions', 'topics:\n  widgets: {partitions: 0}\n', ['gw.yaml:2:25: topics.widgets.partitions: expected a number >= 1']],
  ['YAML syntax error', 'gateway:\n  id: [\n', ['gw.yaml:3:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]']],
  ['duplicate YAML key', 'http: {}\nhttp: {}\n', ['gw.yaml:2:1: YAML: Map keys must be unique']],
  ['top level not a mapping', '- a\n- b\n', ['gw.yaml: expected a mapping of keys at the top level']],
];

describe('config validation', () => {
  it.each(BAD)('%s', (_name, yaml, expected) => {
    expect(problems(yaml)).toEqual(expected);
  });

  it('reports every problem at once, not just the first', () => {
    expect(problems('gatway: 1\nhttp:\n  port: x\n  prot: 1\n')).toHaveLength(3);
  });

  it('applies documented defaults, resolves paths against the config file and freezes the result', () => {
    const cfg = parseConfig(
      'gateway: {id: gw-7}\ntopics:\n  widgets: {partitions: 3, schema: schemas/w.json}\nrules: {dir: rules}\n' +
        'sources:\n  - name: s1\n    serial: {path: /dev/ttyUSB0}\n',
      '/etc/millstream/millstream.yaml',
    );
    expect(cfg.gateway.id).toBe('gw-7');
    expect(cfg.dataDir).toBe('/etc/millstream/data');
    expect(cfg.rules).toEqual({ dir: '/etc/millstream/rules', idleCloseMs: 60_000 });
    expect(cfg.topics.widgets).toMatchObject({ partitions: 3, retentionMs: 604_800_000, flushIntervalMs: 0, schema: '/etc/millstream/schemas/w.json' });
    expect(cfg.sources[0]).toMatchObject({ name: 's1', topic: 'widgets', keyField: 'sensor_id' });
    expect(cfg.sources[0]!.serial).toMatchObject({ path: '/dev/ttyUSB0', baudRate: 9600, dataBits: 8, parity: 'none', framing: 'json', maxLineBytes: 65_536 });
    expect(cfg.http).toEqual({ enabled: true, host: '127.0.0.1', port: 8080 });
    expect(cfg.replication.enabled).toBe(false);
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.sources[0]!.serial)).toBe(true);
    expect(() => {
      (cfg.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('accepts the shipped example config', async () => {
    const text = await readFile(new URL('../systemd/millstream.example.yaml', import.meta.url), 'utf8');
    const cfg = parseConfig(text, '/etc/millstream/millstream.yaml');
    expect(cfg.sources.length).toBeGreaterThanOrEqual(3);
  });

  it('docs/CONFIG.md is the reference generated from the schema', async () => {
    const committed = await readFile(new URL('../docs/CONFIG.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderConfigReference());
  });
});
