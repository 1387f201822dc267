/**
 * MQTT adapter units that need no broker: reconnect back-off driven by
 * injected timers and randomness (a port nobody listens on refuses every
 * attempt), config defaults, and a scripted MQTT 5 broker that ignores our
 * receiveMaximum.
 */
import { createServer, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { MemorySink, waitFor } from '../test/support/mqtt-sink.ts';
import { MQTT_DEFAULTS, MqttAdapter } from './mqtt-adapter.ts';
import type { DeadLetter, Reading, ReadingSink, Timers } from './types.ts';

/** Timers that only fire when the test says so; records every delay asked for. */
class ManualTimers implements Timers {
  readonly delays: number[] = [];
  private readonly pending = new Map<number, () => void>();
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.delays.push(ms);
    this.pending.set(id, fn);
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  get live(): number {
    return this.pending.size;
  }
  /** Fires the oldest pending timer. */
  fire(): void {
    const [id, fn] = this.pending.entries().next().value!;
    this.pending.delete(id);
    fn();
  }
}

const nullSink: ReadingSink = {
  write: async (_r: readonly Reading[]) => {},
  deadLetter: async (_l: readonly DeadLetter[]) => {},
};

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

describe('MqttAdapter reconnect back-off', () => {
  it('retries a refused broker after exponentially growing, jittered, capped delays; stop clears the timer', async () => {
    const timers = new ManualTimers();
    const states: string[] = [];
    const adapter = new MqttAdapter(
      {
        device: 'nowhere',
        topic: 'widgets',
        url: `mqtt://127.0.0.1:${await closedPort()}`,
        clientId: 'backoff-1',
        subscriptions: [{ topic: 'a/#' }],
        reconnect: { initialMs: 100, maxMs: 800, multiplier: 2, jitter: 0.5 },
      },
      // random() = 0: the full jitter is taken off, each delay is half its base.
      { sink: nullSink, gatewayId: 'gw', timers, random: () => 0 },
    );
    adapter.on('state', (s) => states.push(s.state));
    await adapter.start();
    for (let attempt = 1; attempt <= 5; attempt++) {
      await until(() => timers.delays.length === attempt);
      expect(adapter.status()[0]).toMatchObject({ state: 'backoff', connected: false, errors: attempt });
      timers.fire();
    }
    await until(() => timers.delays.length === 6);
    expect(timers.delays).toEqual([50, 100, 200, 400, 400, 400]);
    expect(adapter.status()[0]!.lastError).toMatch(/ECONNREFUSED/);
    expect(states.slice(0, 4)).toEqual(['connecting', 'backoff', 'connecting', 'backoff']);
    await adapter.stop();
    expect(timers.live).toBe(0);
    expect(adapter.status()[0]!.state).toBe('stopped');
  });
});

/**
 * A scripted MQTT 5 broker on a real socket: CONNACK, SUBACK, then `count`
 * QoS 1 PUBLISHes in one write, whatever receiveMaximum the client asked
 * for; records the packet ids the client PUBACKs.
 */
async function floodingBroker(count: number): Promise<{ port: number; acked: number[]; close(): Promise<void> }> {
  const acked: number[] = [];
  const sockets = new Set<Socket>();
  const opts = { protocolVersion: 5 as const };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const parser = mqttPacket.parser(opts);
    parser.on('packet', (packet) => {
      if (packet.cmd === 'connect') socket.write(mqttPacket.generate({ cmd: 'connack', sessionPresent: false, reasonCode: 0 }, opts));
      else if (packet.cmd === 'subscribe') {
        socket.write(mqttPacket.generate({ cmd: 'suback', messageId: packet.messageId, granted: [1] }, opts));
        const publishes = Array.from({ length: count }, (_, i) =>
          mqttPacket.generate({ cmd: 'publish', topic: `f/w01/s-${i}/reading`, payload: Buffer.from(JSON.stringify({ n: i })), qos: 1, messageId: i + 1, dup: false, retain: false }, opts),
        );
        socket.write(Buffer.concat(publishes));
      } else if (packet.cmd === 'puback') acked.push(packet.messageId!);
      else if (packet.cmd === 'disconnect') socket.end();
    });
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    acked,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('MqttAdapter against a broker that ignores receiveMaximum (MQTT 5)', () => {
  for (const leanPublishReader of [true, false]) {
    it(`stops reading at twice receiveMaximum until half is stored, then takes and acks every message once${leanPublishReader ? '' : ' (MQTT.js parses every PUBLISH)'}`, async () => {
      const total = 300;
      const broker = await floodingBroker(total);
      const sink = new MemorySink();
      sink.hold();
      let received = 0;
      const adapter = new MqttAdapter(
        {
          device: 'flood',
          topic: 'widgets',
          url: `mqtt://127.0.0.1:${broker.port}`,
          clientId: 'flood-1',
          protocolVersion: 5,
          subscriptions: [{ topic: 'f/+line/+sensor_id/reading' }],
          maxPendingReadings: 10,
          leanPublishReader,
        },
        { sink, gatewayId: 'gw', capture: { dropped: 0, write: () => void received++, close: async () => {} } },
      );
      try {
        await adapter.start();
        await waitFor(() => received >= 20);
        // Give the socket every chance to deliver more: nothing more is read while the sink holds.
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
        expect(received).toBe(20);
        expect(broker.acked).toEqual([]);
        sink.release();
        await waitFor(() => broker.acked.length === total);
        expect(sink.readings.map((r) => r.value.n)).toEqual(Array.from({ length: total }, (_, n) => n));
        expect([...broker.acked].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      } finally {
        await adapter.stop();
        await broker.close();
      }
    });
  }
});

describe('MqttAdapter config', () => {
  it('defaults: QoS 1, persistent session, MQTT 3.1.1, keep-alive 30 s', () => {
    expect(MQTT_DEFAULTS).toMatchObject({ qos: 1, cleanSession: false, protocolVersion: 4, keepaliveSec: 30, connectTimeoutMs: 10_000, sessionExpiryNeverSec: 0xffff_ffff });
  });

  it('rejects bad options with BRIDGE_CONFIG naming the key', () => {
    const base = { device: 'd', topic: 'widgets', url: 'mqtt://h', clientId: 'c', subscriptions: [{ topic: 'a/#' }] };
    const deps = { sink: nullSink, gatewayId: 'gw' };
    const cases: Array<[object, string]> = [
      [{ protocolVersion: 3 }, 'protocolVersion must be 4 or 5 (got 3)'],
      [{ keepaliveSec: -1 }, 'keepaliveSec must be an integer 0..65535'],
      [{ sessionExpirySec: 1.5 }, 'sessionExpirySec must be an integer 0..4294967295'],
      [{ connectTimeoutMs: 0 }, 'connectTimeoutMs must be > 0'],
      [{ subscriptions: [{ topic: 'a', logTopic: '' }] }, 'subscriptions[0].logTopic must be a non-empty string'],
      [{ url: 'not a url' }, 'url must be mqtt://host[:port] or mqtts://host[:port] (got "not a url")'],
    ];
    for (const [override, message] of cases) {
      let caught: unknown;
      try {
        new MqttAdapter({ ...base, ...override } as never, deps);
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code: 'BRIDGE_CONFIG', message: `mqtt adapter d: ${message}` });
    }
  });
});
