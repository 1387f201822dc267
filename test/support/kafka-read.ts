/**
 * Reads a topic back from the Kafka peer: Metadata for the leaders, then
 * Fetch requests from offset 0 until every partition reached its high
 * watermark. Requests and record batches (gzip included) are encoded and
 * decoded by kafkajs's own protocol modules over plain connections (no
 * consumer group, so no rebalance wait). Used by tests to check what the
 * replicator delivered. With `sasl`, each connection first authenticates
 * with SASL/PLAIN (SaslHandshake v1, SaslAuthenticate v1).
 */
import { RawKafkaConnection, kafkajsProtocol } from './kafka-raw-client.ts';

/** SASL/PLAIN credentials for a peer started with `sasl` (kafka-mock.ts). */
export interface ReadBackSasl {
  username: string;
  password: string;
}

async function open(address: string, sasl: ReadBackSasl | undefined): Promise<RawKafkaConnection> {
  const conn = await RawKafkaConnection.open(address);
  if (!sasl) return conn;
  try {
    const hs = kafkajsProtocol('saslHandshake', 1);
    const h = await conn.send<{ errorCode: number }>(hs.request({ mechanism: 'PLAIN' }), hs.response);
    if (h.errorCode !== 0) throw new Error(`SaslHandshake: error ${h.errorCode}`);
    const au = kafkajsProtocol('saslAuthenticate', 1);
    const token = Buffer.from(`\u0000${sasl.username}\u0000${sasl.password}`, 'utf8');
    const bytes = Buffer.concat([Buffer.alloc(4), token]);
    bytes.writeInt32BE(token.length, 0);
    const a = await conn.send<{ errorCode: number; errorMessage: string | null }>(au.request({ authBytes: bytes }), au.response);
    if (a.errorCode !== 0) throw new Error(`SaslAuthenticate: error ${a.errorCode} ${a.errorMessage ?? ''}`);
    return conn;
  } catch (err) {
    conn.close();
    throw err;
  }
}

export interface ReadBackRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string;
  timestamp: number;
  headers: Record<string, string>;
}

interface MetadataV1 {
  brokers: Array<{ nodeId: number; host: string; port: number }>;
  topicMetadata: Array<{ topic: string; topicErrorCode: number; partitionMetadata: Array<{ partitionId: number; leader: number }> }>;
}

interface FetchMessage {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | Buffer[]>;
}
interface FetchV4 {
  responses: Array<{ partitions: Array<{ partition: number; errorCode: number; highWatermark: string; messages: FetchMessage[] }> }>;
}

async function withLeaders<T>(
  bootstrap: string[],
  topic: string,
  sasl: ReadBackSasl | undefined,
  fn: (leaders: Map<number, RawKafkaConnection>) => Promise<T>,
): Promise<T> {
  const any = await open(bootstrap[0], sasl);
  const conns = new Map<string, RawKafkaConnection>();
  try {
    const md = kafkajsProtocol('metadata', 1);
    const meta = await any.send<MetadataV1>(md.request({ topics: [topic] }), md.response);
    const t = meta.topicMetadata.find((x) => x.topic === topic);
    if (!t || t.topicErrorCode !== 0) throw new Error(`topic ${topic}: metadata error ${t?.topicErrorCode ?? 'missing'}`);
    const leaders = new Map<number, RawKafkaConnection>();
    for (const p of t.partitionMetadata) {
      const b = meta.brokers.find((x) => x.nodeId === p.leader);
      if (!b) throw new Error(`partition ${p.partitionId} has no leader`);
      const addr = `${b.host}:${b.port}`;
      if (!conns.has(addr)) conns.set(addr, await open(addr, sasl));
      leaders.set(p.partitionId, conns.get(addr)!);
    }
    return await fn(leaders);
  } finally {
    any.close();
    for (const c of conns.values()) c.close();
  }
}

async function fetchOnce(conn: RawKafkaConnection, topic: string, partition: number, fetchOffset: number) {
  const f = kafkajsProtocol('fetch', 4);
  const res = await conn.send<FetchV4>(
    f.request({ replicaId: -1, maxWaitTime: 0, minBytes: 0, maxBytes: 32 << 20, isolationLevel: 0, topics: [{ topic, partitions: [{ partition, fetchOffset: String(fetchOffset), maxBytes: 8 << 20 }] }] }),
    f.response,
  );
  const p = res.responses[0].partitions[0];
  if (p.errorCode !== 0) throw new Error(`fetch ${topic}[${partition}]@${fetchOffset}: error ${p.errorCode}`);
  return p;
}

/** High watermark (end offset) per partition. */
export async function endOffsets(bootstrap: string[], topic: string, sasl?: ReadBackSasl): Promise<Map<number, number>> {
  return withLeaders(bootstrap, topic, sasl, async (leaders) => {
    const out = new Map<number, number>();
    for (const [partition, conn] of leaders) out.set(partition, Number((await fetchOnce(conn, topic, partition, 0)).highWatermark));
    return out;
  });
}

/** Every record of `topic`, per partition in offset order. */
export async function readBack(bootstrap: string[], topic: string, sasl?: ReadBackSasl): Promise<Map<number, ReadBackRecord[]>> {
  return withLeaders(bootstrap, topic, sasl, async (leaders) => {
    const out = new Map<number, ReadBackRecord[]>();
    for (const [partition, conn] of leaders) {
      const list: ReadBackRecord[] = [];
      out.set(partition, list);
      let offset = 0;
      for (;;) {
        const p = await fetchOnce(conn, topic, partition, offset);
        const high = Number(p.highWatermark);
        for (const m of p.messages) {
          const o = Number(m.offset);
          if (o < offset) continue; // a batch can start before the requested offset
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = (Array.isArray(v) ? v[0] : v).toString();
          list.push({ partition, offset: o, key: m.key === null ? null : m.key.toString(), value: m.value?.toString() ?? '', timestamp: Number(m.timestamp), headers });
          offset = o + 1;
        }
        if (offset >= high) break;
        if (p.messages.length === 0) throw new Error(`fetch ${topic}[${partition}]@${offset} returned nothing below high watermark ${high}`);
      }
    }
    return out;
  });
}
