/**
 * `millstream replicate status`: per replicated topic and partition, the
 * replication position, the local end offset, the lag (records and seconds)
 * and, from the running agent's status file, the state and last error.
 *
 * Positions and end offsets come from the log store itself (opened
 * read-only, so this works while the agent runs); states and errors from
 * `<data-dir>/replicator-status.json`, which the replicator rewrites on every
 * state change and every few seconds (its age is shown). Without the file
 * the state column says `unknown`.
 *
 * Exit codes: 0 success; 1 an error (one line on stderr naming the file or topic).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Option } from 'commander';
import type { Command } from 'commander';
import { LogError, openLogStore } from '../../log-store/index.ts';
import type { LogStoreApi } from '../../log-store/index.ts';
import { readStatusFile } from '../replicator/status-file.ts';
import type { StatusSnapshot } from '../replicator/status-file.ts';

export interface ReplicationRow {
  topic: string;
  partition: number;
  state: string;
  position: number;
  endOffset: number;
  lagRecords: number;
  lagSeconds: number;
  lostRecords: number;
  lastError: string | null;
}

export interface ReplicationReport {
  /** Replicator state from the status file, or 'unknown'. */
  state: string;
  /** Age of the status file in seconds, or null without one. */
  statusAgeSeconds: number | null;
  rows: ReplicationRow[];
}

/** Builds the report from the log (positions of consumer `consumerName`, end offsets, record timestamps) and the status snapshot. */
export async function replicationReport(log: LogStoreApi, snapshot: StatusSnapshot | undefined, now: number, consumerName = 'replicator'): Promise<ReplicationReport> {
  const positions = (await log.consumer(consumerName)).all();
  const topics = new Set<string>([...Object.keys(positions), ...(snapshot?.status.topics.map((t) => t.topic) ?? [])]);
  const rows: ReplicationRow[] = [];
  for (const topic of [...topics].sort()) {
    if (!log.hasTopic(topic)) continue;
    const live = snapshot?.status.topics.find((t) => t.topic === topic);
    for (const p of log.describe(topic).partitionsInfo) {
      const fromFile = live?.partitions.find((x) => x.partition === p.partition);
      const position = positions[topic]?.[p.partition] ?? fromFile?.position ?? p.earliestOffset;
      const lagRecords = Math.max(0, p.endOffset - position);
      let lagSeconds = 0;
      if (lagRecords > 0 && position >= p.earliestOffset) {
        const oldest = (await log.read(topic, p.partition, position, { maxRecords: 1 })).records[0];
        if (oldest) lagSeconds = Math.max(0, (now - oldest.timestamp) / 1000);
      }
      const error = fromFile?.lastError ?? (live?.state === 'stopped' ? live.error : undefined);
      rows.push({
        topic,
        partition: p.partition,
        state: live?.state === 'stopped' ? 'stopped' : (fromFile?.state ?? 'unknown'),
        position,
        endOffset: p.endOffset,
        lagRecords,
        lagSeconds: Math.round(lagSeconds * 10) / 10,
        lostRecords: fromFile?.lostRecords ?? 0,
        lastError: error ? `${error.code}: ${error.message}` : null,
      });
    }
  }
  return {
    state: snapshot?.status.state ?? 'unknown',
    statusAgeSeconds: snapshot ? Math.max(0, Math.round((now - snapshot.writtenAt) / 100) / 10) : null,
    rows,
  };
}

/** A plain text table, one line per partition. */
export function formatReport(report: ReplicationReport): string {
  const head = `replicator: ${report.state}${report.statusAgeSeconds === null ? ' (no status file: is the agent running with replication?)' : ` (status ${report.statusAgeSeconds}s old)`}`;
  const cols = ['TOPIC', 'PART', 'STATE', 'POSITION', 'END', 'LAG', 'LAG_S', 'LOST', 'LAST_ERROR'];
  const cells = report.rows.map((r) => [r.topic, String(r.partition), r.state, String(r.position), String(r.endOffset), String(r.lagRecords), String(r.lagSeconds), String(r.lostRecords), r.lastError ?? '-']);
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (row: string[]) => row.map((v, i) => (i === row.length - 1 ? v : v.padEnd(widths[i]))).join('  ');
  return [head, line(cols), ...cells.map(line)].join('\n');
}

export function register(program: Command): void {
  const replicate = program.command('replicate').description('replication to the central Kafka cluster');
  replicate
    .command('status')
    .description('per topic/partition: position, end offset, lag (records, seconds), state, last error')
    .addOption(new Option('-d, --data-dir <dir>', 'data directory of the log').default('./data'))
    .option('--status-file <file>', 'status file the replicator writes (default <data-dir>/replicator-status.json)')
    .option('--consumer <name>', 'log store consumer holding the replication positions', 'replicator')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { dataDir: string; statusFile?: string; consumer: string; json?: boolean }) => {
      if (!existsSync(opts.dataDir)) {
        throw new LogError('LOG_INVALID_ARGUMENT', `no data directory at ${opts.dataDir} (pass --data-dir)`, { file: opts.dataDir });
      }
      const statusFile = opts.statusFile ?? join(opts.dataDir, 'replicator-status.json');
      const snapshot = await readStatusFile(statusFile);
      const log = await openLogStore({ dataDir: opts.dataDir, readOnly: true, retentionCheckIntervalMs: 0 });
      try {
        const report = await replicationReport(log, snapshot, Date.now(), opts.consumer);
        process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
      } finally {
        await log.close();
      }
    });
}
