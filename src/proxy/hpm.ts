// Forwarding to the operationalization node: http-proxy-middleware on the raw Node request, over mutual TLS.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createProxyMiddleware, type RequestHandler } from 'http-proxy-middleware';
import { BadGateway, GatewayTimeout, PayloadTooLarge, UpstreamUnavailable, type GatewayError } from '../errors.ts';
import { applyRequestHygiene } from './headers.ts';

export interface UpstreamOptions {
  url: string;
  servername?: string | undefined;
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
  /** assertion: drop the client Authorization; passthrough: forward it unchanged. */
  identity: 'assertion' | 'passthrough';
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  maxSockets: number;
  idleSocketTimeoutMs: number;
  bodyLimitBytes: number;
}

/** What the app tells the proxy about one already-authorized request. */
export interface ForwardRequest {
  requestId: string;
  /** The exact path+query that was authorized; the proxy refuses to send anything else. */
  target: string;
  clientAddress: string;
  /** X-MLGate-Assertion value (assertion mode). */
  assertion?: string | undefined;
  /**
   * Called with the node's status once its headers arrive (ownership bookkeeping, metrics), before the answer is
   * piped to the client; `answer` may be tapped (tapSmallAnswer), never consumed.
   */
  onNodeResponse?: ((status: number, answer: IncomingMessage) => void) | undefined;
}

export interface ProxyLog {
  warn(obj: Record<string, unknown>, msg: string): void;
}

interface InFlight extends ForwardRequest {
  fail: (err: GatewayError) => void;
  /** The node's answer started: errors after this can only cut the connection. */
  answered: boolean;
  /** forward() has resolved or rejected. */
  done: boolean;
  timedOut: boolean;
}

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|EPROTO|ERR_SSL|ERR_TLS|HANDSHAKE/i;
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** Maps a transport error to the gateway's typed error; the reason goes to the log only. */
export function classifyUpstreamError(err: NodeJS.ErrnoException, timedOut: boolean): GatewayError {
  const code = err.code ?? '';
  const reason = `${code || err.name}: ${err.message}`;
  if (timedOut) return new GatewayTimeout(reason);
  if (UNREACHABLE.has(code)) return new UpstreamUnavailable(reason);
  if (TLS_ERROR.test(code) || TLS_ERROR.test(err.message)) return new BadGateway(`upstream TLS: ${reason}`);
  if (code === 'ETIMEDOUT') return new GatewayTimeout(reason);
  return new BadGateway(reason);
}

export class Upstream {
  readonly agent: https.Agent;
  private readonly opts: UpstreamOptions;
  private readonly middleware: RequestHandler;
  private readonly inflight = new WeakMap<IncomingMessage, InFlight>();
  private readonly log: ProxyLog;

  constructor(opts: UpstreamOptions, log: ProxyLog) {
    this.opts = opts;
    this.log = log;
    const url = new URL(opts.url);
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: opts.maxSockets,
      maxFreeSockets: opts.maxSockets,
      // Idle sockets are closed before the node closes them (keep below its keep-alive timeout).
      timeout: opts.idleSocketTimeoutMs,
      scheduling: 'lifo',
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      servername: opts.servername ?? url.hostname,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    });
    this.middleware = createProxyMiddleware<IncomingMessage, ServerResponse>({
      target: opts.url,
      agent: this.agent,
      changeOrigin: true,
      secure: true,
      xfwd: false,
      // toProxy: send req.url as is (http-proxy would url.parse it otherwise, which can re-escape characters).
      toProxy: true,
      on: {
        proxyReq: (proxyReq, req, res) => this.onProxyReq(proxyReq, req, res),
        proxyRes: (proxyRes, req) => {
          const f = this.inflight.get(req);
          if (f) {
            f.answered = true;
            f.onNodeResponse?.(proxyRes.statusCode ?? 502, proxyRes);
          }
          for (const h of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']) {
            if (h !== 'transfer-encoding') delete proxyRes.headers[h];
          }
          if (f) proxyRes.headers['x-request-id'] = f.requestId;
        },
        error: (err, req, res) => this.onError(err as NodeJS.ErrnoException, req as IncomingMessage, res as ServerResponse | Socket),
      },
    });
  }

  private onProxyReq(proxyReq: import('node:http').ClientRequest, req: IncomingMessage, res: ServerResponse): void {
    const f = this.inflight.get(req);
    if (!f || proxyReq.path !== f.target) {
      // Defence in depth: never forward a path other than the authorized one.
      proxyReq.destroy();
      f?.fail(new BadGateway(`path mismatch: authorized ${f?.target} but forwarding ${proxyReq.path}`));
      return;
    }
    applyRequestHygiene(proxyReq, req.headers, this.opts.identity === 'assertion');
    if (f.assertion !== undefined) proxyReq.setHeader('x-mlgate-assertion', f.assertion);
    proxyReq.setHeader('x-request-id', f.requestId);
    proxyReq.setHeader('x-forwarded-for', f.clientAddress);
    proxyReq.setHeader('x-forwarded-proto', 'https');
    if (req.headers.host) proxyReq.setHeader('x-forwarded-host', req.headers.host);

    // Bodies sent without Content-Length (chunked) are counted as they stream.
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] !== undefined) {
      let seen = 0;
      const limit = this.opts.bodyLimitBytes;
      const onData = (chunk: Buffer): void => {
        seen += chunk.length;
        if (seen > limit) {
          req.off('data', onData);
          req.unpipe(proxyReq);
          proxyReq.destroy();
          f.fail(new PayloadTooLarge(limit));
        }
      };
      req.on('data', onData);
    }

    proxyReq.on('socket', (socket) => {
      if ((socket as Socket).connecting) {
        const t = setTimeout(() => {
          f.timedOut = true;
          proxyReq.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
        }, this.opts.connectTimeoutMs);
        socket.once('secureConnect', () => clearTimeout(t));
        socket.once('close', () => clearTimeout(t));
      }
    });
    // Idle timeout while waiting for or streaming the answer.
    proxyReq.setTimeout(this.opts.responseTimeoutMs, () => {
      f.timedOut = true;
      proxyReq.destroy(Object.assign(new Error('node did not answer in time'), { code: 'ETIMEDOUT' }));
    });
    // The client went away: stop the upstream request too (http-proxy misses this on current Node).
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
  }

  private onError(err: NodeJS.ErrnoException, req: IncomingMessage, res: ServerResponse | Socket): void {
    const f = this.inflight.get(req);
    const mapped = classifyUpstreamError(err, f?.timedOut ?? false);
    this.log.warn({ requestId: f?.requestId, err: `${err.code ?? err.name}: ${err.message}`, status: mapped.status }, 'upstream error');
    if (f && !f.answered) {
      if (f.done) return; // already failing (e.g. 413), the error answer is on its way
      if ('headersSent' in res && !res.headersSent) {
        f.fail(mapped);
        return;
      }
    }
    // Headers already went out: all we can do is cut the connection so the client sees a truncated answer.
    if ('destroy' in res) res.destroy();
  }

  /**
   * Streams req to the node and the answer back to res. Resolves when res is closed; rejects with a typed
   * error (before any byte of the answer was sent) so the app's error handler writes the JSON error.
   */
  forward(req: IncomingMessage, res: ServerResponse, fwd: ForwardRequest): Promise<void> {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.opts.bodyLimitBytes) return Promise.reject(new PayloadTooLarge(this.opts.bodyLimitBytes));
    return new Promise<void>((resolve, reject) => {
      const f: InFlight = {
        ...fwd,
        answered: false,
        done: false,
        timedOut: false,
        fail: (err) => {
          if (f.done || f.answered) return;
          f.done = true;
          res.off('close', onClose);
          reject(err);
        },
      };
      const onClose = (): void => {
        f.done = true;
        resolve();
      };
      this.inflight.set(req, f);
      res.once('close', onClose);
      void this.middleware(req, res, (err?: unknown) => {
        f.fail(err ? new BadGateway(String(err)) : new BadGateway('proxy declined the request'));
      });
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
