/**
 * A process running the MQTT adapter, for crash tests: the parent SIGKILLs
 * it and checks that the broker redelivers what was not stored.
 *
 * argv[2] is JSON: { url, clientId, sink: 'hang' | 'log', dataDir? }.
 * - 'hang': every sink write is reported and never resolves (a crash between
 *   receive and store, frozen).
 * - 'log': readings go to a real log store in `dataDir` (LogStoreSink).
 *
 * stdout, one JSON object a line: {"ready":true} once connected and
 * subscribed; {"received":n} with the running count of messages received
 * (captured, one line per message), {"attempted":n} with the readings handed to the sink so far.
 */
import { MqttAdapter } from '../../firmware-bridge/mqtt-adapter.ts';
import type { DeadLetter, Reading, ReadingSink } from '../../firmware-bridge/types.ts';
import { openLogStore } from '../../log-store/index.ts';
import { LogStoreSink } from './bridge-log-sink.ts';

interface ChildArgs {
  url: string;
  clientId: string;
  sink: 'hang' | 'log';
  dataDir?: string;
}

const args = JSON.parse(process.argv[2]!) as ChildArgs;
const say = (obj: object): void => {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
};

let attempted = 0;
let received = 0;
let sink: ReadingSink;
if (args.sink === 'log') {
  const log = await openLogStore({ dataDir: args.dataDir!, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
  const inner = new LogStoreSink(log);
  sink = {
    write: async (readings: readonly Reading[]) => {
      attempted += readings.length;
      say({ attempted });
      await inner.write(readings);
    },
    deadLetter: (letters: readonly DeadLetter[]) => inner.deadLetter(letters),
  };
} else {
  sink = {
    write: (readings: readonly Reading[]) => {
      attempted += readings.length;
      say({ attempted });
      return new Promise<void>(() => {});
    },
    deadLetter: () => new Promise<void>(() => {}),
  };
}

const adapter = new MqttAdapter(
  {
    device: 'crash-broker',
    topic: 'widgets',
    url: args.url,
    clientId: args.clientId,
    subscriptions: [{ topic: 'factory/+line/+sensor_id/reading', qos: 1 }],
    maxPendingReadings: 100_000,
  },
  {
    sink,
    gatewayId: 'gw-crash',
    capture: {
      dropped: 0,
      write: () => {
        received++;
        say({ received });
      },
      close: async () => {},
    },
  },
);
await adapter.start();
if (!adapter.status()[0]!.connected) throw new Error(`not connected: ${adapter.status()[0]!.lastError}`);
say({ ready: true });
// Runs until killed.
setInterval(() => {}, 60_000);
