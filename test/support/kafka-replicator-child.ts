/**
 * A replicator process for crash tests (run with `node --import tsx`).
 * argv[2] is JSON: { dataDir, bootstrap: string[], mode: 'ingest' | 'drain' }.
 *
 * Opens the log store, starts the replicator for topic `widgets` (3
 * partitions) → central `gw1.widgets`, then:
 * - ingest: appends batches of keyed readings continuously (reading numbers
 *   continue from the log's total end offset), so a SIGKILL lands at any moment;
 * - drain: appends nothing and prints `{"drained":true}` once every partition
 *   is replicated.
 * Prints `{"ready":true}` after start. SIGTERM stops cleanly.
 */
import { openLogStore } from '../../log-store/index.ts';
import { createReplicator } from '../../agent/replicator/index.ts';

const { dataDir, bootstrap, mode } = JSON.parse(process.argv[2]) as { dataDir: string; bootstrap: string[]; mode: 'ingest' | 'drain' };
const log = await openLogStore({ dataDir, minFreeBytes: 0, retentionCheckIntervalMs: 0 });
await log.ensureTopic('widgets', { partitions: 3 });
const replicator = createReplicator({
  gatewayId: 'gw1',
  log,
  kafka: { brokers: bootstrap, clientId: 'gw1-crash', retries: 1, initialRetryTimeMs: 20, connectionTimeoutMs: 1000 },
  topics: [{ topic: 'widgets' }],
  batchRecords: 100,
  lingerMs: 1,
  backoffInitialMs: 20,
  backoffMaxMs: 200,
});
await replicator.start();
const positions = replicator.status().topics[0].partitions.map((p) => p.position);
process.stdout.write(`${JSON.stringify({ ready: true, positions })}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
  void replicator
    .stop()
    .then(() => log.close())
    .then(() => process.exit(0));
});

if (mode === 'ingest') {
  let i = [0, 1, 2].reduce((n, p) => n + log.endOffset('widgets', p), 0);
  while (!stopping) {
    const batch = Array.from({ length: 50 }, () => {
      const n = i++;
      const sensor = `aa-${n % 37}`;
      return { key: sensor, value: JSON.stringify({ n, sensor_id: sensor, temp_celcius: 20 + (n % 9) }), timestamp: 1_700_000_000_000 + n, headers: { device: `d${n % 4}` } };
    });
    await log.appendBatch('widgets', batch);
    await new Promise((r) => setTimeout(r, 5));
  }
} else {
  for (;;) {
    const t = replicator.status().topics[0];
    if (t.partitions.every((p) => p.lagRecords === 0 && p.state === 'caught-up')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  process.stdout.write(`${JSON.stringify({ drained: true })}\n`);
}
