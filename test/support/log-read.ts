/** Reads every retained record of a topic, partition by partition, copying values out of the read buffers. */
import type { LogRecord, LogStoreApi } from '../../log-store/index.ts';

export async function readAllRecords(log: LogStoreApi, topic: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  if (!log.hasTopic(topic)) return out;
  for (let p = 0; p < log.describe(topic).partitionsInfo.length; p++) {
    let offset = log.earliestOffset(topic, p);
    const end = log.endOffset(topic, p);
    while (offset < end) {
      const { records, nextOffset } = await log.read(topic, p, offset, { maxRecords: 10_000 });
      if (records.length === 0) break;
      for (const r of records) out.push({ ...r, value: Buffer.from(r.value) });
      offset = nextOffset;
    }
  }
  return out;
}
