/**
 * The agent's HTTP endpoints on localhost (node:http, no framework):
 *
 *   GET /            the status page (agent/status-page.html, self-contained)
 *   GET /healthz     200 `ok` or 503 `degraded` with one reason per line
 *   GET /metrics     Prometheus text format
 *   GET /api/status  the status model as JSON
 *
 * Anything else is 404; methods other than GET/HEAD are 405.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { AgentError } from './errors.ts';
import type { AgentMetrics } from './metrics.ts';
import type { AgentStatus } from './status.ts';

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  status: () => AgentStatus;
  metrics: AgentMetrics;
}

export interface HttpServer {
  /** The URL the server listens on, e.g. http://127.0.0.1:8080/. */
  readonly url: string;
  close(): Promise<void>;
}

const PAGE = readFileSync(new URL('./status-page.html', import.meta.url), 'utf8');

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    switch (path) {
      case '/':
      case '/index.html':
        send(res, 200, 'text/html; charset=utf-8', PAGE);
        return;
      case '/healthz': {
        const { health } = options.status();
        const body = health.status === 'ok' ? 'ok\n' : `degraded\n${health.reasons.map((r) => `- ${r}`).join('\n')}\n`;
        send(res, health.status === 'ok' ? 200 : 503, 'text/plain; charset=utf-8', body);
        return;
      }
      case '/metrics':
        send(res, 200, options.metrics.registry.contentType, await options.metrics.render());
        return;
      case '/api/status':
        send(res, 200, 'application/json', JSON.stringify(options.status()));
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(new AgentError('HTTP_LISTEN', `http: cannot listen on ${options.host}:${options.port}: ${err.code ?? err.message}`, { host: options.host, port: options.port }, err));
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${addr.port}/`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
