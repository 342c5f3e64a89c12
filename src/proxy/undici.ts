// The undici engine (proxy.engine: undici): one undici Pool per node with the mutual-TLS connect options.
// Same contract as hpm.ts: one attempt to one node, the answer handed back unread; the pool does the rest.
//
// The hot path is one dispatch() per request with a handler object (no per-request closures, no
// Request/Response conversion, no fetch): the answer streams through a small Readable that pauses undici when
// the client is slow, and a request body goes through another one, so that undici never destroys the client's
// request (it destroys a body stream on every error path, which would cut the client before its 502/413).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import { BadGateway, GatewayTimeout, PayloadTooLarge } from '../errors.ts';
import { forwardedHeaderList } from './headers.ts';
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

type Controller = Dispatcher.DispatchController;
type Headers = NodeAnswer['headers'];

const SMALL_ANSWER_LIMIT = 64 * 1024;
/** A discarded answer up to this size is read to its end so its connection is reused; a larger one is cut. */
const DRAIN_LIMIT = 128 * 1024;
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

interface Route {
  pool: Pool;
  basePath: string;
}

const kCall = Symbol('mlgate.undiciCall');
type Tagged<T> = T & { [kCall]?: Call | undefined };

/** The client went away while the node had not answered yet (a module-level listener: no closure per request). */
function onClientClose(this: Tagged<ServerResponse>): void {
  this[kCall]?.clientGone();
}
function onConnectTimeout(call: Call): void {
  call.connectTimedOut();
}

/** One attempt: the undici dispatch handler and the promise the pool waits on. */
class Call implements Dispatcher.DispatchHandler {
  controller: Controller | null = null;
  /** Aborted before undici gave a controller (still queued): applied at onRequestStart. */
  pending: Error | null = null;
  settled = false;
  timedOut = false;
  connected = false;
  ended = false;
  /** The answer arrived whole (onResponseEnd). */
  complete = false;
  answer: AnswerBody | null = null;
  upload: RequestBody | null = null;
  timer: NodeJS.Timeout | undefined;
  readonly res: Tagged<ServerResponse>;
  readonly node: NodeTarget;
  readonly connectTimeoutMs: number;
  resolve!: (a: NodeAnswer) => void;
  reject!: (f: AttemptFailure) => void;

  constructor(res: ServerResponse, node: NodeTarget, connectTimeoutMs: number) {
    this.res = res;
    this.node = node;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** Stops the node request: now if it is on a connection, else as soon as undici hands it one. */
  abort(reason: Error): void {
    if (this.controller) this.controller.abort(reason);
    else this.pending ??= reason;
  }

  fail(failure: AttemptFailure): void {
    if (this.settled) return;
    this.settle();
    this.reject(failure);
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.res.off('close', onClientClose);
    this.res[kCall] = undefined;
  }

  // Each of these settles first: undici reports an abort back through onResponseError at once.
  clientGone(): void {
    const err = new BadGateway('the client closed the connection');
    this.fail(new AttemptFailure(err, 'client'));
    this.abort(err);
  }

  connectTimedOut(): void {
    if (this.connected || this.settled) return;
    this.timedOut = true;
    const err = new GatewayTimeout(`no TLS connection to ${this.node.url} within ${this.connectTimeoutMs} ms`);
    this.fail(new AttemptFailure(err, 'connect'));
    this.abort(err);
  }

  tooLarge(limit: number): void {
    const err = new PayloadTooLarge(limit);
    this.fail(new AttemptFailure(err, 'client'));
    this.abort(err);
  }

  // ---- undici's handler interface -------------------------------------------------------------------
  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.pending) {
      controller.abort(this.pending);
      return;
    }
    // undici has a connected (TLS up) socket for this request and starts writing it.
    this.connected = true;
    clearTimeout(this.timer);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode < 200) return; // 1xx: the final answer follows
    if (this.settled) {
      controller.abort(new Error('attempt already settled'));
      return;
    }
    const body = new AnswerBody(this, headers as Headers);
    this.answer = body;
    this.settle();
    this.resolve({ status: statusCode, statusMessage, headers: body.headers, body });
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.answer && !this.answer.push(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.ended = true;
    this.complete = true;
    this.answer?.push(null);
  }

  onResponseError(_controller: Controller | null, err: Error): void {
    this.ended = true;
    if (this.answer) {
      // Cut off while the answer streams: the pool cuts the client connection (never a complete-looking answer).
      if (!this.answer.destroyed) this.answer.destroy(err);
      return;
    }
    if (this.settled) return;
    const e = err as NodeJS.ErrnoException;
    const timedOut = this.timedOut || TIMEOUT_CODES.has(e.code ?? '');
    const clientGone = this.res.destroyed;
    this.fail(new AttemptFailure(classifyUpstreamError(e, timedOut), clientGone ? 'client' : this.connected ? 'request' : 'connect'));
  }
}

/** The node's answer body as the pool sees it: pushes what undici reads, pauses undici while the client is slow. */
class AnswerBody extends Readable {
  readonly headers: Headers;
  private readonly call: Call;
  constructor(call: Call, headers: Headers) {
    super();
    this.call = call;
    this.headers = headers;
  }
  /** The node finished sending: everything is in this stream's buffer or already read (same as IncomingMessage). */
  get complete(): boolean {
    return this.call.complete;
  }
  override _read(): void {
    this.call.controller?.resume();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Destroyed before its end (client gone, discarded): the node connection cannot be reused, close it.
    if (!this.call.ended) this.call.abort(err ?? new Error('answer dropped'));
    cb(err);
  }
}

function onUploadData(this: Tagged<IncomingMessage>, chunk: Buffer): void {
  this[kCall]?.upload?.data(chunk);
}
function onUploadEnd(this: Tagged<IncomingMessage>): void {
  this[kCall]?.upload?.push(null);
}
function onUploadClose(this: Tagged<IncomingMessage>): void {
  const upload = this[kCall]?.upload;
  // Closed before its end: the client aborted the upload; undici aborts the node request in turn.
  if (upload && !this.complete && !upload.destroyed) upload.destroy(new Error('the client aborted the request body'));
}

/**
 * The client's request body as undici reads it: data goes through as it arrives (backpressure both ways),
 * bodies without Content-Length are counted against the limit, and undici may destroy this stream on an
 * error path without destroying the client's request. Nothing is read from the client before undici has a
 * connection and starts writing (first _read), so a request that could not connect can go to another node.
 */
class RequestBody extends Readable {
  private readonly req: Tagged<IncomingMessage>;
  private readonly call: Call;
  private readonly limit: number;
  private seen = 0;
  private attached = false;
  constructor(req: IncomingMessage, call: Call, limit: number) {
    super();
    this.req = req;
    this.call = call;
    this.limit = limit;
  }
  data(chunk: Buffer): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      this.detach();
      this.call.tooLarge(this.limit);
      return;
    }
    if (!this.push(chunk)) this.req.pause();
  }
  override _read(): void {
    const req = this.req;
    if (!this.attached) {
      this.attached = true;
      req[kCall] = this.call;
      req.on('data', onUploadData);
      req.once('end', onUploadEnd);
      req.once('close', onUploadClose);
    }
    req.resume();
  }
  private detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.req[kCall] = undefined;
    this.req.off('data', onUploadData);
    this.req.off('end', onUploadEnd);
    this.req.off('close', onUploadClose);
    // The rest of a refused body is read and dropped (the client gets its answer on a usable connection).
    if (!this.req.complete) this.req.resume();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.detach();
    cb(err);
  }
}

export class UndiciTransport implements Transport {
  readonly engine = 'undici';
  private readonly opts: TransportOptions;
  // Keyed by the node object itself (the pool's, stable): no key string built per request.
  private readonly routes = new WeakMap<NodeTarget, Route>();
  private readonly pools = new Map<string, Pool>();
  private secureContext: tls.SecureContext | undefined;

  constructor(opts: TransportOptions) {
    this.opts = opts;
  }

  /** `control`: probes and service-account logins get connections of their own, never queued behind client traffic. */
  private pool(origin: string, servername: string, control = false): Pool {
    const key = `${origin}|${servername}${control ? '|control' : ''}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const o = this.opts;
      pool = new Pool(origin, {
        connections: control ? 2 : o.maxSockets,
        pipelining: 1,
        // HTTP/1.1 like the other engine and nginx: the node's hop-by-hop semantics stay the same.
        allowH2: false,
        // Idle sockets are closed before the node closes them (keep below its keep-alive timeout).
        keepAliveTimeout: o.idleSocketTimeoutMs,
        keepAliveMaxTimeout: o.idleSocketTimeoutMs,
        headersTimeout: o.responseTimeoutMs,
        bodyTimeout: o.responseTimeoutMs,
        connect: {
          // One TLS context (client certificate, key, node CA, TLS 1.2+) for every connection of every pool,
          // instead of one built per new connection; the node's certificate is still checked (CA and servername).
          secureContext: (this.secureContext ??= tls.createSecureContext({ ca: o.ca, cert: o.cert, key: o.key, minVersion: 'TLSv1.2' })),
          servername,
          rejectUnauthorized: true,
          timeout: o.connectTimeoutMs,
        },
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  private route(node: NodeTarget): Route {
    let route = this.routes.get(node);
    if (!route) {
      const url = new URL(node.url);
      route = { pool: this.pool(url.origin, node.servername), basePath: url.pathname.replace(/\/+$/, '') };
      this.routes.set(node, route);
    }
    return route;
  }

  exchange(node: NodeTarget, req: IncomingMessage, res: ServerResponse, ex: Exchange): Promise<NodeAnswer> {
    const route = this.route(node);
    const call = new Call(res, node, this.opts.connectTimeoutMs);
    const promise = new Promise<NodeAnswer>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    const h = req.headers;
    // A body comes with Content-Length > 0 or Transfer-Encoding (Node's parser refuses anything else).
    const hasBody = h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
    if (hasBody && !req.readableEnded) {
      // A declared length is checked by the pool before (413); an undeclared one is counted as it streams.
      call.upload = new RequestBody(req, call, h['transfer-encoding'] !== undefined ? this.opts.bodyLimitBytes : Infinity);
    }
    (res as Tagged<ServerResponse>)[kCall] = call;
    res.once('close', onClientClose);
    // Covers waiting for a free connection of the pool and the TCP + TLS handshake.
    call.timer = setTimeout(onConnectTimeout, this.opts.connectTimeoutMs, call);
    route.pool.dispatch(
      {
        method: req.method ?? 'GET',
        path: route.basePath + ex.target,
        headers: forwardedHeaderList(h, ex.dropAuthorization, ex.headers) as string[],
        body: call.upload,
      },
      call,
    );
    return promise;
  }

  discard(answer: NodeAnswer): void {
    const declared = Number(answer.headers['content-length'] ?? NaN);
    if (declared <= DRAIN_LIMIT) answer.body.resume();
    else answer.body.destroy();
  }

  async request(url: URL, opts: SmallRequest): Promise<SmallAnswer> {
    // A busy node is not a dead one: a probe waiting for a connection that client requests hold would time out.
    const pool = this.pool(url.origin, opts.servername, true);
    const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
    if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
    const signal = AbortSignal.timeout(opts.timeoutMs);
    try {
      const answer = await pool.request({
        method: opts.method as Dispatcher.HttpMethod,
        path: url.pathname + url.search,
        headers,
        body: opts.body ?? null,
        signal,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of answer.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size <= SMALL_ANSWER_LIMIT) chunks.push(chunk);
      }
      return { status: answer.statusCode, body: Buffer.concat(chunks).toString('utf8') };
    } catch (err) {
      if (signal.aborted) {
        throw Object.assign(new Error(`no answer from ${url.origin} within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' });
      }
      throw err;
    }
  }

  close(): void {
    for (const pool of this.pools.values()) void pool.destroy().catch(() => {});
    this.pools.clear();
  }
}
