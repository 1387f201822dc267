/**
 * The firmware bridge's public entry point; the agent imports only from here:
 *
 *   import { createAdapter, SchemaCheck, openCaptureWriter } from '../firmware-bridge/index.ts';
 *   const schemaCheck = new SchemaCheck({ schemas: { widgets: widgetSchema } });
 *   const adapter = createAdapter(
 *     { kind: 'serial', device: 'line-1', topic: 'widgets', path: '/dev/ttyUSB0', baudRate: 9600, framing: { format: 'json' } },
 *     { sink, gatewayId: 'gw-01', schemaCheck, logger },
 *   );
 *   await adapter.start();   // keeps reconnecting in the background
 *   adapter.status();        // DeviceStatus[] (one per device; a Modbus line lists its slaves)
 *   await adapter.stop();
 *
 * `config` is one entry of the agent YAML's sources list (validated by the
 * adapter's constructor, BRIDGE_CONFIG errors name the device and key);
 * `deps` is what the agent injects (sink, gateway id, schemas, capture,
 * clock, timers, random, logger).
 */
import type { AdapterDeps } from './adapter-base.ts';
import { BridgeError } from './errors.ts';
import { ModbusAdapter, type ModbusAdapterConfig } from './modbus-adapter.ts';
import { MqttAdapter, type MqttAdapterConfig } from './mqtt-adapter.ts';
import { SerialAdapter, type SerialAdapterConfig } from './serial-adapter.ts';
import type { DeviceAdapter } from './types.ts';

export type * from './types.ts';
export * from './errors.ts';
export { AdapterBase, ADAPTER_DEFAULTS, type AdapterDeps, type CommonAdapterConfig } from './adapter-base.ts';
export { Backoff, BACKOFF_DEFAULTS, sleep, systemTimers, type BackoffOptions } from './backoff.ts';
export { HEADERS, parseEventTime, ReadingBuilder, READING_BUILDER_DEFAULTS, type ReadingBuilderOptions } from './reading-builder.ts';
export { DEFAULT_DEAD_LETTER_TOPIC, rawPayload, ReadingPipeline, type PipelineResult } from './reading-pipeline.ts';
export { SchemaCheck, type SchemaCheckOptions, type SchemaFailure } from './schema-check.ts';
export {
  CAPTURE_FORMAT,
  CAPTURE_VERSION,
  encodeCaptureFrame,
  openCaptureWriter,
  parseCaptureLine,
  readCapture,
  type CaptureEntry,
  type CaptureFrame,
  type CaptureWriter,
  type CaptureWriterOptions,
} from './capture.ts';
export { LineFramer, type FramedLine } from './line-framer.ts';
export { createLineDecoder, type FramingConfig, type LineDecoder } from './line-decoders.ts';
export { LineProcessor, type LineOutput } from './line-processor.ts';
export { replayCapture, type ReplayOptions, type ReplayOutput } from './capture-replay.ts';
export { SerialAdapter, SERIAL_DEFAULTS, type SerialAdapterConfig } from './serial-adapter.ts';
export { ModbusAdapter, type ModbusAdapterConfig } from './modbus-adapter.ts';
export { MqttAdapter, type MqttAdapterConfig } from './mqtt-adapter.ts';

/** One source of the agent config: the adapter's own config plus its `kind`. */
export type AdapterConfig = SerialAdapterConfig | ({ kind: 'modbus' } & ModbusAdapterConfig) | ({ kind: 'mqtt' } & MqttAdapterConfig);

/** Kind → constructor. A table, so a new source kind is one entry. */
const FACTORIES: Readonly<Record<AdapterConfig['kind'], (config: never, deps: AdapterDeps) => DeviceAdapter>> = Object.freeze({
  serial: (config: SerialAdapterConfig, deps: AdapterDeps) => new SerialAdapter(config, deps),
  modbus: (config: ModbusAdapterConfig, deps: AdapterDeps) => new ModbusAdapter(config, deps),
  mqtt: (config: MqttAdapterConfig, deps: AdapterDeps) => new MqttAdapter(config, deps),
});

/** Builds the adapter for one configured source. Throws BRIDGE_CONFIG for an unknown kind or invalid options. */
export function createAdapter(config: AdapterConfig, deps: AdapterDeps): DeviceAdapter {
  const factory = FACTORIES[config?.kind as AdapterConfig['kind']];
  if (!factory) {
    throw new BridgeError('BRIDGE_CONFIG', `source ${config?.device ?? '?'}: kind must be one of ${Object.keys(FACTORIES).join(', ')} (got ${JSON.stringify(config?.kind)})`, {
      device: config?.device,
      key: 'kind',
    });
  }
  return factory(config as never, deps);
}
