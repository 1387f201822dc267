/**
 * The log store the rules tests run on: the real one, in a test's temporary
 * folder. No free-space floor (CI disks are small) and no retention timer
 * (tests close the store themselves).
 */
import { openLogStore, type LogStoreApi } from '../../log-store/index.ts';

export async function openTestLog(dataDir: string): Promise<LogStoreApi> {
  return openLogStore({ dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
}
