// The http-proxy-middleware engine: one middleware and one keep-alive mutual-TLS agent per node.
// It sends one attempt to one node and hands the answer back unread (selfHandleResponse); which node, retries and
// delivery to the client are the pool's business.
import https from 'node:https';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import tls, { type TLSSocket } from 'node:tls';
import { createProxyMiddleware, type Plugin, type RequestHandler } from 'http-proxy-middleware';
import { BadGateway, GatewayTimeout, PayloadTooLarge } from '../errors.ts';
import { stripRequestHeaders } from './headers.ts';
import {
  AttemptFailure,
  classifyUpstreamError,
  type Exchange,
  type NodeAnswer,
  type NodeTarget,
  type SmallAnswer,
  type SmallRequest,
  type Transport,
  type TransportOptions,
} from './transport.ts';

// The attempt in progress hangs on the client request and response (and the node request) under this symbol, and
// the listeners below are module-level functions: nothing is allocated per request but the attempt itself.
const kAttempt = Symbol('mlgate.hpmAttempt');
type Tagged<T> = T & { [kAttempt]?: Attempt | undefined };

/** One attempt to one node, and the promise the pool waits on. */
class Attempt {
  readonly node: NodeTarget;
  /** Path the node must receive (node base path + authorized target). */
  readonly path: string;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** The Host header http-proxy sets for this node (changeOrigin): tells this attempt's node request from others. */
  readonly host: string;
  settled = false;
  answered = false;
  /** TLS is up (new connection) or a kept-alive socket was reused. */
  connected = false;
  timedOut = false;
  proxyReq: ClientRequest | undefined;
  /** The node's answer, once its head arrived. */
  answer: IncomingMessage | undefined;
  timer: NodeJS.Timeout | undefined;
  resolve!: (answer: NodeAnswer) => void;
  reject!: (failure: AttemptFailure) => void;

  constructor(node: NodeTarget, path: string, opts: TransportOptions) {
    this.node = node;
    this.path = path;
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.responseTimeoutMs = opts.responseTimeoutMs;
    this.host = new URL(node.url).host;
  }

  connectedNow(): void {
    this.connected = true;
    clearTimeout(this.timer);
  }

  finish(outcome: NodeAnswer | AttemptFailure): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    if (outcome instanceof AttemptFailure) this.reject(outcome);
    else this.resolve(outcome);
  }
}

/**
 * The error a node request is destroyed with once its attempt is over (timed out, client gone): http-proxy reports
 * it on the client request, whose attempt may by then be the retry on another node, which it must not fail.
 */
const ABANDONED = 'MLGATE_ABANDONED';
const abandoned = (): Error => Object.assign(new Error('node request abandoned by mlgate'), { code: ABANDONED });

/** Covers waiting for a pooled socket and the TCP + TLS handshake. */
function onConnectTimeout(a: Attempt): void {
  if (a.connected || a.settled) return;
  a.timedOut = true;
  a.proxyReq?.destroy(abandoned());
  a.finish(new AttemptFailure(new GatewayTimeout(`no TLS connection to ${a.node.url} within ${a.connectTimeoutMs} ms`), 'connect'));
}

/** The client went away: stop the node request too (http-proxy misses this on current Node, PITFALLS 8). */
function onClientClose(this: Tagged<ServerResponse>): void {
  const a = this[kAttempt];
  if (!a) return;
  if (!a.settled) {
    a.proxyReq?.destroy(abandoned());
    a.finish(new AttemptFailure(new BadGateway('the client closed the connection'), 'client'));
  } else if (!this.writableFinished) {
    a.proxyReq?.destroy(abandoned());
  }
}

/**
 * The node request closed with neither an answer nor an error: Node drops the connection of an unrequested
 * 101 Switching Protocols that way. A 502, never a client left waiting; a tick later, so an error emitted with
 * the close is the one reported.
 */
function onNodeRequestClose(this: Tagged<ClientRequest>): void {
  const a = this[kAttempt];
  if (!a || a.settled) return;
  setImmediate(() => a.finish(new AttemptFailure(new BadGateway(`the node connection closed without an answer (${a.node.url})`), a.connected ? 'request' : 'connect')));
}

/** Idle timeout while waiting for or streaming the answer. */
function onNodeSilent(this: Tagged<ClientRequest>): void {
  const a = this[kAttempt];
  if (a) a.timedOut = true;
  this.destroy(Object.assign(new Error(`the node sent nothing for ${a?.responseTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
}

interface Route {
  agent: https.Agent;
  middleware: RequestHandler;
  basePath: string;
}

const SMALL_ANSWER_LIMIT = 64 * 1024;

export class HpmTransport implements Transport {
  readonly engine = 'http-proxy-middleware';
  private readonly opts: TransportOptions;
  // Keyed by the node object itself (the pool's, stable): no key string built per request.
  private readonly routes = new WeakMap<NodeTarget, Route>();
  private readonly agents = new Map<string, https.Agent>();
  /** One TLS context (client certificate, key, node CA) for every agent, built once. */
  private secureContext: tls.SecureContext | undefined;
  private readonly counted = new WeakSet<IncomingMessage>();

  constructor(opts: TransportOptions) {
    this.opts = opts;
  }

  /** `control`: probes and service-account logins get sockets of their own, never queued behind client traffic. */
  private agent(origin: string, servername: string, control = false): https.Agent {
    const key = `${origin}|${servername}${control ? '|control' : ''}`;
    let agent = this.agents.get(key);
    if (!agent) {
      this.secureContext ??= tls.createSecureContext({ ca: this.opts.ca, cert: this.opts.cert, key: this.opts.key, minVersion: 'TLSv1.2' });
      const sockets = control ? 2 : this.opts.maxSockets;
      agent = new https.Agent({
        keepAlive: true,
        maxSockets: sockets,
        maxFreeSockets: sockets,
        // Idle sockets are closed before the node closes them (keep below its keep-alive timeout).
        timeout: this.opts.idleSocketTimeoutMs,
        scheduling: 'lifo',
        // A prebuilt context instead of ca/cert/key: the agent would otherwise put the three PEMs into the pool key
        // it builds for every request (getName) and build a context per new socket. The node's certificate is
        // still checked against the CA and the servername (rejectUnauthorized).
        secureContext: this.secureContext,
        servername,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private route(node: NodeTarget): Route {
    let route = this.routes.get(node);
    if (route) return route;
    const url = new URL(node.url);
    const agent = this.agent(url.origin, node.servername);
    const middleware = createProxyMiddleware<IncomingMessage, ServerResponse>({
      target: node.url,
      agent,
      changeOrigin: true,
      secure: true,
      xfwd: false,
      // toProxy: send req.url as is (http-proxy would url.parse it otherwise, which can re-escape characters).
      toProxy: true,
      // The answer comes back to the pool unread: it may be discarded (401 re-login) instead of delivered.
      selfHandleResponse: true,
      // No default plugins: the logger builds a URL for every answer and the debug plugin adds two listeners per
      // request, for nothing mlgate uses. Its own handlers (one plugin) include 'error', so http-proxy never throws.
      ejectPlugins: true,
      plugins: [this.events],
    });
    route = { agent, middleware, basePath: url.pathname.replace(/\/+$/, '') };
    this.routes.set(node, route);
    return route;
  }

  private readonly events: Plugin<IncomingMessage, ServerResponse> = (proxy) => {
    proxy.on('proxyReq', (proxyReq, req) => this.onProxyReq(proxyReq, req));
    proxy.on('proxyRes', (proxyRes, req) => this.onProxyRes(proxyRes, req));
    proxy.on('error', (err, req, res) => this.onError(err as NodeJS.ErrnoException, req, res as ServerResponse));
  };

  exchange(node: NodeTarget, req: IncomingMessage, res: ServerResponse, ex: Exchange): Promise<NodeAnswer> {
    const route = this.route(node);
    this.countChunkedBody(req);
    // http-proxy copies req.headers into the node request when it creates it, and may send them with the first body
    // chunk, before any hook runs: the headers are made right here, on the client request itself.
    stripRequestHeaders(req.headers, ex.dropAuthorization);
    Object.assign(req.headers, ex.headers);
    const a = new Attempt(node, route.basePath + ex.target, this.opts);
    const promise = new Promise<NodeAnswer>((resolve, reject) => {
      a.resolve = resolve;
      a.reject = reject;
    });
    a.timer = setTimeout(onConnectTimeout, this.opts.connectTimeoutMs, a);
    (req as Tagged<IncomingMessage>)[kAttempt] = a;
    const r = res as Tagged<ServerResponse>;
    // One listener for the whole exchange, also across retries (the latest attempt is the one on res).
    if (r[kAttempt] === undefined) res.once('close', onClientClose);
    r[kAttempt] = a;
    // http-proxy-middleware calls next only when it cannot proxy (router/path errors); never leave it hanging.
    void route.middleware(req, res, (err?: unknown) => {
      a.finish(new AttemptFailure(new BadGateway(err ? `proxy: ${String(err)}` : 'proxy declined the request'), 'connect'));
    });
    return promise;
  }

  /** Bodies sent without Content-Length are counted as they stream (a declared length is checked before). */
  private countChunkedBody(req: IncomingMessage): void {
    if (req.headers['transfer-encoding'] === undefined || this.counted.has(req)) return;
    this.counted.add(req);
    const limit = this.opts.bodyLimitBytes;
    let seen = 0;
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen <= limit) return;
      req.off('data', onData);
      const a = (req as Tagged<IncomingMessage>)[kAttempt];
      if (!a) return;
      req.unpipe();
      a.proxyReq?.destroy();
      a.finish(new AttemptFailure(new PayloadTooLarge(limit), 'client'));
    };
    req.on('data', onData);
    // on('data') started the flow; pause until http-proxy pipes the request (pipe resumes it), so no chunk is lost.
    req.pause();
  }

  private onProxyReq(proxyReq: Tagged<ClientRequest>, req: Tagged<IncomingMessage>): void {
    const a = req[kAttempt];
    // A node request of an earlier attempt that got its socket late (the client request now carries the retry's).
    if (!a || a.settled || proxyReq.getHeader('host') !== a.host) {
      proxyReq.destroy(abandoned());
      return;
    }
    if (proxyReq.path !== a.path) {
      // Defence in depth: never forward a path other than the authorized one.
      proxyReq.destroy();
      a.finish(new AttemptFailure(new BadGateway(`path mismatch: authorized ${a.path} but forwarding ${proxyReq.path}`), 'connect'));
      return;
    }
    a.proxyReq = proxyReq;
    proxyReq[kAttempt] = a;

    // http-proxy emits proxyReq on 'socket': a reused socket is connected, a new one still shakes hands.
    const socket = proxyReq.socket as TLSSocket | null;
    if (proxyReq.reusedSocket || !socket) a.connectedNow();
    else socket.once('secureConnect', () => a.connectedNow());

    proxyReq.setTimeout(this.opts.responseTimeoutMs, onNodeSilent);
    proxyReq.once('close', onNodeRequestClose);
  }

  private onProxyRes(proxyRes: IncomingMessage, req: Tagged<IncomingMessage>): void {
    const a = req[kAttempt];
    if (!a || a.settled) {
      proxyRes.resume();
      return;
    }
    a.answered = true;
    a.answer = proxyRes;
    a.connectedNow();
    a.finish({ status: proxyRes.statusCode ?? 502, statusMessage: proxyRes.statusMessage, headers: proxyRes.headers, body: proxyRes });
  }

  private onError(err: NodeJS.ErrnoException, req: Tagged<IncomingMessage>, res: ServerResponse): void {
    const a = req[kAttempt];
    if (!a || err.code === ABANDONED) return;
    if (a.settled) {
      if (!a.answered || res.writableFinished) return;
      // Junk after a whole answer (the node's connection dies after it): the answer still goes out.
      if (a.answer?.complete === true) return;
      // Broken before anything was relayed: the delivery sees the ended body and answers 502.
      if (!res.headersSent) {
        a.answer?.destroy();
        return;
      }
      // Broken while being relayed: all that can be done is cutting the client connection.
      res.destroy();
      return;
    }
    // Not req.destroyed: a request whose body was read to the end is destroyed (autoDestroy) while the client waits.
    const clientGone = res.destroyed || req.socket?.destroyed === true;
    const phase = clientGone ? 'client' : a.connected ? 'request' : 'connect';
    a.finish(new AttemptFailure(classifyUpstreamError(err, a.timedOut), phase));
  }

  discard(answer: NodeAnswer): void {
    answer.body.resume();
  }

  request(url: URL, opts: SmallRequest): Promise<SmallAnswer> {
    // A busy node is not a dead one: a probe waiting for a socket that client requests hold would time out.
    const agent = this.agent(url.origin, opts.servername, true);
    const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
    if (opts.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    return new Promise<SmallAnswer>((resolve, reject) => {
      let answered = false;
      const r = https.request(url, { method: opts.method, headers, agent }, (answer) => {
        answered = true;
        const chunks: Buffer[] = [];
        let size = 0;
        answer.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= SMALL_ANSWER_LIMIT) chunks.push(c);
        });
        answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        answer.on('error', reject);
        answer.on('close', () => {
          if (!answer.complete) reject(Object.assign(new Error(`the answer from ${url.origin} was cut`), { code: 'ECONNRESET' }));
        });
      });
      const timer = setTimeout(() => {
        r.destroy(Object.assign(new Error(`no answer from ${url.origin} within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, opts.timeoutMs);
      r.on('error', reject);
      r.on('close', () => {
        clearTimeout(timer);
        // No answer and no error (an unrequested 101 is dropped that way): settle, or a probe or a service-account
        // login would wait forever (a tick later, so an error emitted with the close wins).
        if (!answered) setImmediate(() => reject(Object.assign(new Error(`${url.origin} closed the connection without an answer`), { code: 'ECONNRESET' })));
      });
      r.end(opts.body);
    });
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
