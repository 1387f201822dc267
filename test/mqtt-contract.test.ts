/**
 * The shared device-adapter contract, run by the MQTT adapter against a real
 * broker: aedes in-process, and Mosquitto where it is installed.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { describe, it } from 'vitest';
import { MqttAdapter } from '../firmware-bridge/mqtt-adapter.ts';
import { adapterContract, type ContractWorld } from './support/adapter-contract.ts';
import { brokerKinds, startBroker, type BrokerKind } from './support/mqtt-broker.ts';

async function mqttWorld(kind: BrokerKind, n: number): Promise<ContractWorld> {
  const broker = await startBroker(kind);
  const publisher: MqttClient = await connectAsync(broker.url, { clientId: `contract-pub-${n}`, reconnectPeriod: 50 });
  const publish = async (topic: string, payload: string): Promise<void> => {
    await publisher.publishAsync(topic, payload, { qos: 1 });
  };
  return {
    kind: 'mqtt',
    // One PUBLISH per read: the adapter holds the client's callback at the mark, so at most one more message is taken.
    maxReadingsPerRead: 1,
    create: (deps, common) =>
      new MqttAdapter(
        {
          device: `broker-${kind}`,
          topic: 'widgets',
          url: broker.url,
          clientId: `contract-${kind}-${n}`,
          subscriptions: [{ topic: 'factory/+line/+sensor_id/reading', qos: 1 }],
          ...common,
        },
        deps,
      ),
    sendReading: (sensorId, seq) => publish(`factory/w01/${sensorId}/reading`, JSON.stringify({ sensor_id: sensorId, seq, temp_celcius: 21 })),
    sendGarbage: () => publish('factory/w01/garbage/reading', 'temp=21 colour=RED'),
    takeDown: () => broker.stop(),
    bringUp: () => broker.start(),
    async teardown() {
      await publisher.endAsync(true);
      await broker.close();
    },
  };
}

let worlds = 0;
for (const { kind, available, skipReason } of brokerKinds) {
  if (available) {
    adapterContract(`mqtt (${kind})`, () => mqttWorld(kind, ++worlds));
  } else {
    describe.skip(`mqtt (${kind}): device adapter contract`, () => {
      it(`skipped: ${skipReason}`, () => {});
    });
  }
}
