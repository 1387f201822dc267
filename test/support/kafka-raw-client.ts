/**
 * A bare Kafka protocol client for peer tests: requests are encoded and
 * responses decoded by kafkajs's own protocol modules (so the shim is
 * checked against bytes kafkajs itself produces), sent over one plain TCP
 * connection with no retries, no metadata cache and no sequence bookkeeping.
 */
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { FrameReader } from './kafka-shim-codec.ts';

const require = createRequire(import.meta.url);

/** A kafkajs request object (see kafkajs/src/protocol/requests/*). */
export interface KafkajsRequest {
  apiKey: number;
  apiVersion: number;
  encode(): Promise<{ buffer: Buffer }>;
}
export interface KafkajsResponse {
  decode(raw: Buffer): Promise<unknown>;
}

/** Loads a kafkajs request builder and response decoder: `kafkajsProtocol('produce', 7)`. */
export function kafkajsProtocol(name: string, version: number): { request: (args: object) => KafkajsRequest; response: KafkajsResponse } {
  return {
    request: require(`kafkajs/src/protocol/requests/${name}/v${version}/request.js`) as (args: object) => KafkajsRequest,
    response: require(`kafkajs/src/protocol/requests/${name}/v${version}/response.js`) as KafkajsResponse,
  };
}

/** kafkajs's frame encoder: size, api key, version, correlation id, client id, body. */
export async function encodeRequestFrame(request: KafkajsRequest, correlationId: number, clientId = 'raw-client'): Promise<Buffer> {
  const encodeRequest = require('kafkajs/src/protocol/request.js') as (a: object) => Promise<{ buffer: Buffer }>;
  return (await encodeRequest({ correlationId, clientId, request })).buffer;
}

export class RawKafkaConnection {
  private correlationId = 0;
  private readonly waiting = new Map<number, (body: Buffer) => void>();
  private readonly frames = new FrameReader();
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.frames.push(chunk)) {
        const id = f.readInt32BE(4);
        this.waiting.get(id)?.(f.subarray(8));
        this.waiting.delete(id);
      }
    });
    socket.on('close', () => {
      this.closedError = new Error('connection closed');
      for (const w of this.waiting.values()) w(Buffer.alloc(0));
      this.waiting.clear();
    });
  }

  static open(address: string): Promise<RawKafkaConnection> {
    const i = address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const s = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) }, () => resolve(new RawKafkaConnection(s)));
      s.once('error', reject);
    });
  }

  /** Sends one request and returns kafkajs's decoding of the response body (errors stay as codes: no parse step). */
  async send<T>(request: KafkajsRequest, response: KafkajsResponse): Promise<T> {
    if (this.closedError) throw this.closedError;
    const id = ++this.correlationId;
    const body = new Promise<Buffer>((r) => this.waiting.set(id, r));
    this.socket.write(await encodeRequestFrame(request, id));
    const raw = await body;
    if (raw.length === 0 && this.closedError) throw this.closedError;
    return (await response.decode(raw)) as T;
  }

  close(): void {
    this.socket.destroy();
  }
}
