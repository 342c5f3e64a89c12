// The edge listener: HTTPS (or explicitly configured plain HTTP) with limits that stop slow clients.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { serve } from '@hono/node-server';
import type { Gateway } from './app.ts';
import type { Logger } from './observability/index.ts';
import { edgeTlsOptions } from './tls/index.ts';

export interface RunningServer {
  server: http.Server | https.Server;
  port: number;
  url: string;
  close(graceMs?: number): Promise<void>;
}

export function listen(gateway: Gateway, log: Logger): Promise<RunningServer> {
  const s = gateway.config.server;
  const limits = {
    requestTimeout: s.requestTimeoutMs,
    headersTimeout: s.headersTimeoutMs,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    maxHeaderSize: s.maxHeaderBytes,
  };
  const useTls = !s.allowPlainHttp;
  if (useTls && !s.tls) throw new Error('server.tls is required unless server.allowPlainHttp is true');
  if (!useTls) log.warn({ port: s.port }, 'PLAIN HTTP: tokens and passwords cross the network in clear; use only behind a TLS-terminating proxy');

  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: gateway.app.fetch,
        port: s.port,
        hostname: s.host,
        ...(useTls
          ? { createServer: https.createServer, serverOptions: { ...limits, ...edgeTlsOptions(s.tls!) } }
          : { createServer: http.createServer, serverOptions: limits }),
      },
      (info: AddressInfo) => {
        const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
        resolve({
          server: server as http.Server,
          port: info.port,
          url: `${useTls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${info.port}`,
          close: (graceMs = 10_000) => closeServer(server as http.Server, graceMs),
        });
      },
    ) as http.Server;
    server.keepAliveTimeout = s.keepAliveTimeoutMs;
    server.headersTimeout = s.headersTimeoutMs;
    server.requestTimeout = s.requestTimeoutMs;
    server.once('error', reject);
    // Malformed HTTP never reaches hono: answer it here, in the same JSON shape, then drop the connection.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
        socket.destroy();
        return;
      }
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const status = tooLarge ? 431 : timeout ? 408 : 400;
      const body = JSON.stringify({
        error: tooLarge ? 'headers_too_large' : timeout ? 'request_timeout' : 'malformed_request',
        message: tooLarge ? 'The request headers are too large.' : timeout ? 'The request took too long.' : 'The request is not valid HTTP.',
        requestId: 'none',
      });
      const reason = http.STATUS_CODES[status];
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
  });
}

/** Stop accepting, let in-flight requests finish for up to graceMs, then cut what is left. */
function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
