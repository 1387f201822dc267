/**
 * The log store's public entry point. Other modules import only from here:
 *
 *   import { openLogStore, LogError, isLogError } from '../log-store/index.ts';
 *   const log = await openLogStore({ dataDir: './data' });
 *   await log.ensureTopic('widgets', { partitions: 3 });
 *   await log.appendBatch('widgets', [{ key: 'aa-101', value: JSON.stringify(reading), timestamp }]);
 *   for await (const records of log.follow('widgets', 0, 0)) { ... }
 *
 * The API (types.ts) is stable: change it only with every caller.
 */
export * from './types.ts';
export * from './errors.ts';
export { openLogStore } from './log-store.ts';
export { kafkaPartition, murmur2 } from './partitioner.ts';
export { nodeFileSystem } from './file-system.ts';
export type { LogFileHandle, LogFileStat, LogFileSystem } from './file-system.ts';
export { TOPIC_DEFAULTS, resolveTopicConfig } from './topic-config.ts';
export { blockHeaders, blockKey, blockRecord, blockValue, recordBlockOf } from './record-block.ts';
