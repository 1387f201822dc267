import { describe, expect, it } from 'vitest';
import { MQTT3_CONNACK_CODES, MQTT5_REASON_CODES, mqttReasonCode } from './mqtt-reason-codes.ts';

describe('mqttReasonCode', () => {
  const golden: Array<[number, 3 | 4 | 5, string, boolean]> = [
    [4, 4, 'BAD_USERNAME_OR_PASSWORD', false],
    [5, 4, 'NOT_AUTHORIZED', false],
    [3, 4, 'SERVER_UNAVAILABLE', true],
    [1, 3, 'UNACCEPTABLE_PROTOCOL_VERSION', false],
    [0x86, 5, 'BAD_USER_NAME_OR_PASSWORD', false],
    [0x89, 5, 'SERVER_BUSY', true],
    [0x8e, 5, 'SESSION_TAKEN_OVER', true],
    [0x97, 5, 'QUOTA_EXCEEDED', true],
    [0x80, 4, 'UNKNOWN', true],
    [0xfe, 5, 'UNKNOWN', true],
  ];
  it.each(golden)('%i (v%i) is %s', (code, version, name, retriable) => {
    expect(mqttReasonCode(code, version)).toMatchObject({ code, name, retriable });
  });

  it('tables are frozen data with unique names', () => {
    for (const table of [MQTT3_CONNACK_CODES, MQTT5_REASON_CODES]) {
      const names = [...table.values()].map((r) => r.name);
      expect(new Set(names).size).toBe(names.length);
      for (const r of table.values()) expect(Object.isFrozen(r)).toBe(true);
    }
  });
});
