/**
 * mqtts:// with a CA, a client certificate and credentials, against real
 * brokers (aedes over node:tls in-process; Mosquitto with a TLS listener and
 * a password file). Fixtures: test/support/mqtt-tls/ (make-certs.sh).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttAdapter, type MqttAdapterConfig } from '../firmware-bridge/mqtt-adapter.ts';
import { brokerKinds, startBroker, type TestBroker } from './support/mqtt-broker.ts';
import { MemorySink, waitFor } from './support/mqtt-sink.ts';

const fixture = (name: string): string => fileURLToPath(new URL(`./support/mqtt-tls/${name}`, import.meta.url));
const pem = (name: string): string => readFileSync(fixture(name), 'utf8');

const USER = 'gateway-7';
const PASSWORD = 'correct horse battery staple';

describe.each(brokerKinds)('MQTT over TLS with credentials against $kind', ({ kind, available, skipReason }) => {
  let broker: TestBroker;
  let adapter: MqttAdapter | null = null;
  let publisher: MqttClient | null = null;
  let seq = 0;

  beforeAll(async () => {
    if (!available) return;
    broker = await startBroker(kind, {
      tls: { caFile: fixture('ca.pem'), certFile: fixture('server.pem'), keyFile: fixture('server-key.pem'), requireClientCert: true },
      users: { [USER]: PASSWORD },
    });
  });
  afterAll(async () => {
    await broker?.close();
  });
  afterEach(async () => {
    await adapter?.stop();
    await publisher?.endAsync(true);
    adapter = null;
    publisher = null;
  });

  function make(sink: MemorySink, overrides: Partial<MqttAdapterConfig>): MqttAdapter {
    adapter = new MqttAdapter(
      {
        device: 'secure-broker',
        topic: 'widgets',
        url: broker.url,
        clientId: `tls-${kind}-${++seq}`,
        username: USER,
        password: PASSWORD,
        tls: { ca: pem('ca.pem'), cert: pem('client.pem'), key: pem('client-key.pem') },
        subscriptions: [{ topic: 'factory/+line/+sensor_id/reading' }],
        reconnect: { initialMs: 50, maxMs: 200 },
        ...overrides,
      },
      { sink, gatewayId: 'gw-tls' },
    );
    return adapter;
  }

  it.skipIf(!available)(`CA, client certificate and password: readings flow${skipReason ? ` (skipped: ${skipReason})` : ''}`, async () => {
    expect(broker.url.startsWith('mqtts://')).toBe(true);
    const sink = new MemorySink();
    const a = make(sink, {});
    await a.start();
    expect(a.status()[0]).toMatchObject({ state: 'connected', connected: true });
    publisher = await connectAsync(broker.url, {
      clientId: `tls-pub-${kind}-${++seq}`,
      username: USER,
      password: PASSWORD,
      ca: pem('ca.pem'),
      cert: pem('client.pem'),
      key: pem('client-key.pem'),
    });
    await publisher.publishAsync('factory/w03/aa-303/reading', JSON.stringify({ sensor_id: 'aa-303', temp_celcius: 24 }), { qos: 1 });
    await waitFor(() => sink.readings.length === 1);
    expect(sink.readings[0]).toMatchObject({ key: 'aa-303', value: { line: 'w03', temp_celcius: 24 } });
  });

  it.skipIf(!available)('refuses a broker whose certificate its CA did not sign, and keeps retrying', async () => {
    const a = make(new MemorySink(), { tls: { ca: pem('other-ca.pem'), cert: pem('client.pem'), key: pem('client-key.pem') } });
    await a.start();
    await waitFor(() => a.status()[0]!.errors >= 2);
    const s = a.status()[0]!;
    expect(s.connected).toBe(false);
    expect(s.lastError).toMatch(/certificate/i);
    expect(['backoff', 'connecting']).toContain(s.state);
  });

  it.skipIf(!available)('a wrong password is a protocol error named by its CONNACK code', async () => {
    const a = make(new MemorySink(), { password: 'wrong' });
    await a.start();
    await waitFor(() => a.status()[0]!.errors >= 1);
    const s = a.status()[0]!;
    expect(s.connected).toBe(false);
    // 3.1.1 CONNACK return code 4 (Mosquitto may answer 5, not authorized).
    expect(s.lastError).toMatch(/connection refused: (BAD_USERNAME_OR_PASSWORD \(4\)|NOT_AUTHORIZED \(5\))/);
  });

  it.skipIf(!available)('without a client certificate the broker does not let it in', async () => {
    const a = make(new MemorySink(), { tls: { ca: pem('ca.pem') } });
    await a.start();
    await waitFor(() => a.status()[0]!.errors >= 1);
    expect(a.status()[0]!.connected).toBe(false);
    expect(a.status()[0]!.lastError).toEqual(expect.any(String));
  });
});

describe('MQTT adapter config', () => {
  it('config: tls on an mqtt:// url and a bad url are refused at construction, naming the key', () => {
    const base = { device: 'd', topic: 'widgets', clientId: 'c', subscriptions: [{ topic: 'a/#' }] };
    const deps = { sink: new MemorySink(), gatewayId: 'gw' };
    expect(() => new MqttAdapter({ ...base, url: 'mqtt://127.0.0.1:1883', tls: { ca: 'x' } }, deps)).toThrow('mqtt adapter d: tls is set but the url is not mqtts://');
    expect(() => new MqttAdapter({ ...base, url: 'http://127.0.0.1' }, deps)).toThrow('mqtt adapter d: url must use mqtt:// or mqtts:// (got http://)');
    expect(() => new MqttAdapter({ ...base, url: 'mqtt://h', subscriptions: [{ topic: 'a/#/b' }] }, deps)).toThrow(
      'mqtt adapter d: subscriptions[0].topic invalid MQTT subscription "a/#/b" at level 2: # must be the last level',
    );
    expect(() => new MqttAdapter({ ...base, url: 'mqtt://h', subscriptions: [{ topic: 'a', qos: 2 as 1 }] }, deps)).toThrow('mqtt adapter d: subscriptions[0].qos must be 0 or 1 (got 2)');
    expect(() => new MqttAdapter({ ...base, url: 'mqtt://h', subscriptions: [] }, deps)).toThrow('mqtt adapter d: subscriptions must list at least one subscription');
    expect(() => new MqttAdapter({ ...base, url: 'mqtt://h', clientId: '' }, deps)).toThrow('mqtt adapter d: clientId must be a non-empty string');
  });
});
