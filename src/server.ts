// The edge listener: HTTPS (or explicitly configured plain HTTP) with limits that stop slow clients.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { getRequestListener, RequestError, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Gateway } from './app.ts';
import type { Logger } from './observability/index.ts';
import { EdgeTlsReloader, edgeTlsOptions } from './tls/index.ts';

export interface RunningServer {
  server: http.Server | https.Server;
  port: number;
  url: string;
  /** Edge TLS: reads the certificate and key again (SIGHUP); true when new connections get a new certificate. */
  reloadTls(): boolean;
  /** The edge certificate's sha-256 fingerprint new connections get (undefined for plain HTTP). */
  tlsFingerprint(): string | undefined;
  close(graceMs?: number): Promise<void>;
}

export function listen(gateway: Gateway, log: Logger): Promise<RunningServer> {
  const s = gateway.config.server;
  const limits = {
    requestTimeout: s.requestTimeoutMs,
    headersTimeout: s.headersTimeoutMs,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    maxHeaderSize: s.maxHeaderBytes,
    // HTTP/1.1 without Host is still refused (400), by the adapter with the JSON error instead of Node's empty body.
    requireHostHeader: false,
    // Node checks the header and request timeouts only this often (default 30 s): slow clients must be cut on time.
    connectionsCheckingInterval: Math.max(250, Math.min(1000, Math.floor(s.headersTimeoutMs / 4))),
  };
  const useTls = !s.allowPlainHttp;
  if (useTls && !s.tls) throw new Error('server.tls is required unless server.allowPlainHttp is true');
  if (!useTls) log.warn({ port: s.port }, 'PLAIN HTTP: tokens and passwords cross the network in clear; use only behind a TLS-terminating proxy');

  const listener = getRequestListener(
    async (req: Request, env: HttpBindings | Http2Bindings) => {
      const res = await gateway.app.fetch(req, env);
      // HEAD runs the GET handler and hono re-wraps its answer; a proxied answer is already on the wire.
      return (env.outgoing as http.ServerResponse).headersSent ? RESPONSE_ALREADY_SENT : res;
    },
    {
      // Requests the adapter cannot even turn into a Request (bad Host, asterisk-form, backslash) get JSON too.
      errorHandler: (err: unknown) =>
        Response.json(
          {
            error: err instanceof RequestError ? 'malformed_request' : 'internal_error',
            message: err instanceof RequestError ? `The request is not valid: ${err.message}.` : 'An internal error occurred.',
            requestId: 'none',
          },
          { status: err instanceof RequestError ? 400 : 500 },
        ),
    },
  );

  return new Promise((resolve, reject) => {
    const server = useTls
      // A connection that never completes its TLS handshake is held no longer than a slow header block.
      ? https.createServer({ ...limits, handshakeTimeout: s.headersTimeoutMs, ...edgeTlsOptions(s.tls!) }, listener)
      : http.createServer(limits, listener);
    // Certificate and key changes on disk reach new connections without a restart (and on SIGHUP, main.ts).
    const reloader = useTls ? new EdgeTlsReloader(server as https.Server, s.tls!, log) : undefined;
    reloader?.watch();
    if (useTls) edgeClientChecks(server as https.Server, s.tls!, log);
    // Every raw connection, also those still in their TLS handshake (closeAllConnections sees HTTP ones only):
    // shutdown destroys what is left when its grace time is up.
    const sockets = new Set<Socket>();
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    server.listen(s.port, s.host, () => {
      const info = server.address() as AddressInfo;
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolve({
        server,
        port: info.port,
        url: `${useTls ? 'https' : 'http'}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${info.port}`,
        reloadTls: () => reloader?.reload('SIGHUP') ?? false,
        tlsFingerprint: () => reloader?.fingerprint,
        close: (graceMs = 10_000) => {
          reloader?.close();
          return closeServer(server, sockets, graceMs);
        },
      });
    });
    server.keepAliveTimeout = s.keepAliveTimeoutMs;
    server.headersTimeout = s.headersTimeoutMs;
    server.requestTimeout = s.requestTimeoutMs;
    server.once('error', reject);
    // Malformed HTTP never reaches hono: answer it here, in the same JSON shape, then drop the connection.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // As Node's own handler: answer unless an answer already started on this connection (a request in progress
      // whose body turned out malformed has written nothing yet: it gets the 400 too).
      if (!socket.writable || (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage?.headersSent) {
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
    // An Expect other than 100-continue: Node answers 417 with no body unless told otherwise.
    server.on('checkExpectation', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      const body = JSON.stringify({ error: 'expectation_failed', message: 'Only "Expect: 100-continue" is supported.', requestId: 'none' });
      res.writeHead(417, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
    });
    // CONNECT (a tunnel request) never reaches the request handler either: Node would drop the socket unanswered.
    server.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
      const body = JSON.stringify({ error: 'method_not_allowed', message: 'CONNECT is not supported: mlgate is not a forward proxy.', requestId: 'none' });
      socket.on('error', () => socket.destroy());
      socket.end(`HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
  });
}

/** Refused handshakes (TLS 1.0/1.1, no client certificate when one is required) and bad optional client certificates. */
function edgeClientChecks(server: https.Server, tls: NonNullable<Gateway['config']['server']['tls']>, log: Logger): void {
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    log.debug({ err: `${err.code ?? err.name}: ${err.message.split('\n')[0]}`, client: socket.remoteAddress }, 'edge TLS handshake refused');
    socket.destroy();
  });
  if (!tls.requestClientCert || tls.requireClientCert) return;
  // Optional client certificates: none is fine, but one that was sent must chain to clientCaFile.
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.authorized) return;
    const peer = socket.getPeerCertificate();
    if (peer && Object.keys(peer).length > 0) {
      log.info({ client: socket.remoteAddress, subject: peer.subject?.CN, reason: String(socket.authorizationError) }, 'edge client certificate refused');
      socket.destroy();
    }
  });
}

/** Stop accepting, let in-flight requests finish for up to graceMs, then cut what is left. */
function closeServer(server: http.Server, sockets: ReadonlySet<Socket>, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** The optional separate metrics port: plain HTTP, GET /mlgate/metrics only. */
export function listenMetrics(gateway: Gateway, log: Logger): Promise<{ port: number; url: string; close(graceMs?: number): Promise<void> } | undefined> {
  const m = gateway.config.metrics;
  if (!m.enabled || m.port === undefined) return Promise.resolve(undefined);
  const server = http.createServer({ headersTimeout: 5000, requestTimeout: 10_000 }, (req, res) => {
    if (req.method !== 'GET' || req.url !== '/mlgate/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'route_not_found', message: 'No such route.', requestId: 'none' }));
      return;
    }
    gateway.readMetrics().then(
      (text) => res.writeHead(200, { 'content-type': gateway.metrics.registry.contentType }).end(text),
      (err: unknown) => {
        log.warn({ err: String(err) }, 'metrics failed');
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'metrics_unavailable', message: 'Metrics are unavailable right now.', requestId: 'none' }));
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(m.port, m.host, () => {
      const port = (server.address() as AddressInfo).port;
      log.info({ port, host: m.host }, 'metrics listening');
      resolve({ port, url: `http://${m.host}:${port}`, close: (graceMs = 1000) => closeServer(server, new Set(), graceMs) });
    });
  });
}
