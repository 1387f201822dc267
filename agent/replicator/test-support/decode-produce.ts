/**
 * Decodes what the replicator hands a (fake) producer: each batch of an
 * `EncodedProduce` read back with kafkajs's own record batch decoder, so
 * unit tests see the records a broker would store.
 */
import { createRequire } from 'node:module';
import type { EncodedProduce } from '../../kafka-client.ts';

const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buf: Buffer) => unknown;
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{ records: KafkajsRecord[] }>;

interface KafkajsRecord {
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers: Record<string, Buffer | Buffer[]>;
}

export interface DecodedRecord {
  partition: number;
  key: string | null;
  value: string | null;
  timestamp: number;
  headers: Record<string, string>;
}

/** The records of every batch, batch by batch, in order. */
export async function decodeEncodedProduce(encoded: EncodedProduce): Promise<DecodedRecord[]> {
  const out: DecodedRecord[] = [];
  for (const b of encoded.batches) {
    const { records } = await decodeRecordBatch(new Decoder(b.body.subarray(b.batchStart)));
    for (const r of records) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.headers)) headers[k] = (Array.isArray(v) ? v.at(-1)! : v).toString();
      out.push({ partition: b.partition, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null, timestamp: Number(r.timestamp), headers });
    }
  }
  return out;
}
