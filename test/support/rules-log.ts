/**
 * The log store the rules tests run on. TEMPORARY: the in-memory stand-in
 * until the log-store implementation lands on main; then this returns
 * `openLogStore({ dataDir })` and rules-memory-log.ts is deleted.
 */
import type { LogStoreApi } from '../../log-store/types.ts';
import { memoryLog } from './rules-memory-log.ts';

export async function openTestLog(_dataDir: string): Promise<LogStoreApi> {
  return memoryLog();
}
