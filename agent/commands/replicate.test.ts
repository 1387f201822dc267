import { describe, expect, it } from 'vitest';
import { createMemoryLogStore } from '../replicator/test-support/memory-log-store.ts';
import type { ReplicatorStatus } from '../replicator/status.ts';
import { formatReport, replicationReport } from './replicate.ts';

describe('replicate status report', () => {
  it('positions and lag from the log, states and errors from the status file', async () => {
    const now = 1_700_000_100_000;
    const log = createMemoryLogStore();
    await log.ensureTopic('widgets', { partitions: 2 });
    for (let i = 0; i < 10; i++) await log.append('widgets', { key: null, value: `v${i}`, timestamp: 1_700_000_000_000 + i * 1000, partition: i % 2 });
    await (await log.consumer('replicator')).commit([
      { topic: 'widgets', partition: 0, offset: 5 },
      { topic: 'widgets', partition: 1, offset: 2 },
    ]);
    const status: ReplicatorStatus = {
      state: 'offline', since: now - 5000, gatewayId: 'gw1',
      topics: [{
        topic: 'widgets', centralTopic: 'gw1.widgets', state: 'running', lagRecords: 3, lagSeconds: 0,
        partitions: [
          { partition: 0, state: 'caught-up', position: 5, endOffset: 5, lagRecords: 0, lagSeconds: 0, sentRecords: 5, deadLettered: 0, gaps: [], lostRecords: 0 },
          { partition: 1, state: 'backoff', position: 2, endOffset: 5, lagRecords: 3, lagSeconds: 0, sentRecords: 2, deadLettered: 0, gaps: [], lostRecords: 4,
            lastError: { code: 'KAFKA_CONNECTION', message: 'Connection error: connect ECONNREFUSED', retriable: true, at: now - 4000 } },
        ],
      }],
    };
    const report = await replicationReport(log, { writtenAt: now - 1500, status }, now);
    expect(report.state).toBe('offline');
    expect(report.statusAgeSeconds).toBe(1.5);
    expect(report.rows).toEqual([
      { topic: 'widgets', partition: 0, state: 'caught-up', position: 5, endOffset: 5, lagRecords: 0, lagSeconds: 0, lostRecords: 0, lastError: null },
      // offset 2 of partition 1 is record i=5, timestamp …005000: 95 s before now
      { topic: 'widgets', partition: 1, state: 'backoff', position: 2, endOffset: 5, lagRecords: 3, lagSeconds: 95, lostRecords: 4, lastError: 'KAFKA_CONNECTION: Connection error: connect ECONNREFUSED' },
    ]);
    const text = formatReport(report).split('\n');
    expect(text[0]).toBe('replicator: offline (status 1.5s old)');
    expect(text[1]).toMatch(/^TOPIC\s+PART\s+STATE\s+POSITION\s+END\s+LAG\s+LAG_S\s+LOST\s+LAST_ERROR$/);
    expect(text[3]).toMatch(/^widgets\s+1\s+backoff\s+2\s+5\s+3\s+95\s+4\s+KAFKA_CONNECTION: Connection error/);
  });

  it('without a status file the state is unknown, positions still shown', async () => {
    const log = createMemoryLogStore();
    await log.ensureTopic('widgets', { partitions: 1 });
    await log.append('widgets', { key: 'a', value: 'v', timestamp: 1000, partition: 0 });
    await (await log.consumer('replicator')).commit([{ topic: 'widgets', partition: 0, offset: 0 }]);
    const report = await replicationReport(log, undefined, 11_000);
    expect(report).toEqual({ state: 'unknown', statusAgeSeconds: null, rows: [{ topic: 'widgets', partition: 0, state: 'unknown', position: 0, endOffset: 1, lagRecords: 1, lagSeconds: 10, lostRecords: 0, lastError: null }] });
    expect(formatReport(report).split('\n')[0]).toMatch(/no status file/);
  });
});
