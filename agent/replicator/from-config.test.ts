import { describe, expect, it } from 'vitest';
import { createReplicator } from './index.ts';
import { replicationPartitionRows, replicatorOptionsFromConfig } from './from-config.ts';
import { resolveOptions } from './options.ts';
import type { ReplicatorStatus } from './status.ts';
import { createMemoryLogStore } from './test-support/memory-log-store.ts';

const logger = { debug() {}, info() {}, warn() {}, error() {} };

describe('replication config → replicator options', () => {
  it('maps every key, reads TLS files, defaults the client id, and the result validates', async () => {
    const log = createMemoryLogStore();
    const files: Record<string, string> = { '/etc/ms/ca.pem': 'CA-PEM', '/etc/ms/c.pem': 'CERT-PEM', '/etc/ms/k.pem': 'KEY-PEM' };
    const opts = await replicatorOptionsFromConfig(
      'gw7',
      {
        enabled: true, brokers: ['k1:9093', 'k2:9093'], tls: { ca: '/etc/ms/ca.pem', cert: '/etc/ms/c.pem', key: '/etc/ms/k.pem' },
        sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
        topics: [{ topic: 'widgets', centralTopic: '{gateway}.{topic}' }, { topic: 'heavy_by_line', centralTopic: 'plant.heavy' }],
        compression: 'gzip', batchSize: 10_000, lingerMs: 50,
      },
      { log, logger, readText: async (p) => files[p] ?? Promise.reject(new Error('ENOENT')) },
    );
    expect(opts.kafka).toEqual({ brokers: ['k1:9093', 'k2:9093'], clientId: 'millstream-gw7', tls: { ca: ['CA-PEM'], cert: 'CERT-PEM', key: 'KEY-PEM' }, sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } });
    const r = resolveOptions({ ...opts, statusFile: null });
    expect(r.topics).toEqual([{ topic: 'widgets', centralTopic: 'gw7.widgets' }, { topic: 'heavy_by_line', centralTopic: 'plant.heavy' }]);
    expect(r).toMatchObject({ compression: 'gzip', batchRecords: 10_000, lingerMs: 50, gatewayId: 'gw7' });
    expect(() => createReplicator({ ...opts, statusFile: null })).not.toThrow();
  });
  it('TLS without a CA trusts the system CAs; an unreadable file names the key and path', async () => {
    const log = createMemoryLogStore();
    const base = { enabled: true, brokers: ['k:1'], topics: [{ topic: 'w', centralTopic: 'x' }], compression: 'none' as const, batchSize: 1, lingerMs: 0 };
    expect((await replicatorOptionsFromConfig('g', { ...base, tls: {} }, { log, logger })).kafka.tls).toEqual({ systemCa: true });
    await expect(replicatorOptionsFromConfig('g', { ...base, tls: { ca: '/nope/ca.pem' } }, { log, logger })).rejects.toThrow(/replication\.tls\.ca: cannot read \/nope\/ca\.pem/);
  });
});

describe('status rows for the agent', () => {
  it('one row per partition; a stopped topic shows its error; states map to the agent health vocabulary', () => {
    const status: ReplicatorStatus = {
      state: 'online', since: 0, gatewayId: 'g',
      topics: [
        { topic: 'a', centralTopic: 'g.a', state: 'running', lagRecords: 5, lagSeconds: 2, partitions: [
          { partition: 0, state: 'sending', position: 10, endOffset: 15, lagRecords: 5, lagSeconds: 2, sentRecords: 10, deadLettered: 0, gaps: [], lostRecords: 0 },
          { partition: 1, state: 'caught-up', position: 7, endOffset: 7, lagRecords: 0, lagSeconds: 0, sentRecords: 7, deadLettered: 0, gaps: [], lostRecords: 0 },
        ] },
        { topic: 'b', centralTopic: 'g.b', state: 'stopped', error: { code: 'KAFKA_TOPIC_AUTHORIZATION', message: 'TOPIC_AUTHORIZATION_FAILED: Not authorized', retriable: false, at: 1 }, lagRecords: 3, lagSeconds: 9, partitions: [
          { partition: 0, state: 'stopped', position: 0, endOffset: 3, lagRecords: 3, lagSeconds: 9, sentRecords: 0, deadLettered: 0, gaps: [], lostRecords: 0 },
        ] },
      ],
    };
    expect(replicationPartitionRows(status)).toEqual([
      { topic: 'a', partition: 0, centralTopic: 'g.a', position: 10, endOffset: 15, lagRecords: 5, lagSeconds: 2, state: 'running', lastError: null },
      { topic: 'a', partition: 1, centralTopic: 'g.a', position: 7, endOffset: 7, lagRecords: 0, lagSeconds: 0, state: 'caught-up', lastError: null },
      { topic: 'b', partition: 0, centralTopic: 'g.b', position: 0, endOffset: 3, lagRecords: 3, lagSeconds: 9, state: 'stopped', lastError: 'KAFKA_TOPIC_AUTHORIZATION: TOPIC_AUTHORIZATION_FAILED: Not authorized' },
    ]);
  });
});
