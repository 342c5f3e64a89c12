// Several operationalization nodes behind one upstream: round robin over the healthy ones, active health probes,
// passive ejection, retries on another node when that cannot repeat anything, identity per node, delivery.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { BadGateway, GatewayError, LengthRequired, PayloadTooLarge, UpstreamUnavailable } from '../errors.ts';
import { responseHeaderList } from './headers.ts';
import type { ServiceAccount } from './service-account.ts';
import { AttemptFailure, type NodeAnswer, type NodeTarget, type Transport } from './transport.ts';

export type IdentityMode = 'assertion' | 'passthrough' | 'serviceAccount';

export interface NodeConfig {
  url: string;
  servername: string;
  assertionAudience: string;
}

/** A node as the app sees it (to mint the assertion for its audience). */
export interface UpstreamNode extends NodeTarget {
  readonly assertionAudience: string;
}

export interface HealthCheckOptions {
  enabled: boolean;
  path: string;
  intervalMs: number;
  timeoutMs: number;
  unhealthyAfter: number;
  healthyAfter: number;
}

export interface PoolOptions {
  nodes: NodeConfig[];
  identity: IdentityMode;
  healthCheck: HealthCheckOptions;
  ejectAfterFailures: number;
  ejectForMs: number;
  bodyLimitBytes: number;
}

/** What the app tells the pool about one already-authorized request. */
export interface ForwardRequest {
  requestId: string;
  /** The exact path+query that was authorized; nothing else is sent. */
  target: string;
  clientAddress: string;
  /** X-MLGate-Assertion for this node (assertion and serviceAccount modes): minted per (access token, node audience). */
  assertionFor?: ((node: UpstreamNode) => string | Promise<string>) | undefined;
  /**
   * Called with the node's status once its headers arrive (ownership bookkeeping), before the answer is piped to
   * the client; `answer` may be tapped (tapSmallAnswer), never consumed.
   */
  onNodeResponse?: ((status: number, answer: Readable & { headers: IncomingHttpHeaders }) => void) | undefined;
}

export interface PoolLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface NodeStatus {
  url: string;
  /** Taken by requests now: healthy by the probes and not ejected. */
  available: boolean;
  healthy: boolean;
  ejectedForMs: number;
  consecutiveFailures: number;
  inflight: number;
  requests: number;
  failures: number;
  /** Passive ejections since start. */
  ejections: number;
  /** Round trip of the last health probe that got an HTTP answer; null before one (or with probes off). */
  probeLatencyMs: number | null;
}

interface NodeState extends UpstreamNode {
  healthy: boolean;
  probeFailures: number;
  probeSuccesses: number;
  probing: boolean;
  /** Attempts in a row that ended without an HTTP answer. */
  failures: number;
  ejectedUntil: number;
  inflight: number;
  requests: number;
  failed: number;
  ejections: number;
  probeLatencyMs: number | null;
}

// RFC 9110 9.2.2; POST and PATCH are never repeated.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export class UpstreamPool {
  readonly nodes: readonly UpstreamNode[];
  private readonly states: NodeState[];
  private readonly opts: PoolOptions;
  private readonly transport: Transport;
  readonly serviceAccount: ServiceAccount | undefined;
  private readonly log: PoolLog;
  private readonly timers: NodeJS.Timeout[] = [];
  private next = 0;
  private closed = false;

  constructor(opts: PoolOptions, transport: Transport, log: PoolLog, serviceAccount?: ServiceAccount) {
    if (opts.nodes.length === 0) throw new Error('upstream: no nodes');
    if (opts.identity === 'serviceAccount' && !serviceAccount) throw new Error('upstream: identity serviceAccount needs a service account');
    this.opts = opts;
    this.transport = transport;
    this.log = log;
    this.serviceAccount = serviceAccount;
    this.states = opts.nodes.map((n) => ({
      url: n.url.replace(/\/+$/, ''),
      servername: n.servername,
      assertionAudience: n.assertionAudience,
      healthy: true,
      probeFailures: 0,
      probeSuccesses: 0,
      probing: false,
      failures: 0,
      ejectedUntil: 0,
      inflight: 0,
      requests: 0,
      failed: 0,
      ejections: 0,
      probeLatencyMs: null,
    }));
    this.nodes = this.states;
  }

  get engine(): string {
    return this.transport.engine;
  }

  /** Starts the health probes (first round now); their timers never keep the process alive. */
  start(): void {
    const hc = this.opts.healthCheck;
    if (!hc.enabled || this.timers.length > 0) return;
    for (const node of this.states) {
      void this.probe(node);
      const t = setInterval(() => void this.probe(node), hc.intervalMs);
      t.unref();
      this.timers.push(t);
    }
  }

  status(now = Date.now()): NodeStatus[] {
    return this.states.map((n) => ({
      url: n.url,
      available: this.available(n, now),
      healthy: n.healthy,
      ejectedForMs: Math.max(0, n.ejectedUntil - now),
      consecutiveFailures: n.failures,
      inflight: n.inflight,
      requests: n.requests,
      failures: n.failed,
      ejections: n.ejections,
      probeLatencyMs: n.probeLatencyMs,
    }));
  }

  private available(n: NodeState, now: number): boolean {
    return n.healthy && n.ejectedUntil <= now;
  }

  /** Round robin over available nodes, skipping those already tried for this request. */
  private pick(tried: Set<NodeState>): NodeState | undefined {
    const now = Date.now();
    const count = this.states.length;
    for (let i = 0; i < count; i++) {
      const index = (this.next + i) % count;
      const node = this.states[index]!;
      if (tried.has(node) || !this.available(node, now)) continue;
      this.next = (index + 1) % count;
      return node;
    }
    return undefined;
  }

  /**
   * Streams req to a node and the answer back to res. Resolves when res is closed; rejects with a typed error
   * (before any byte of the answer was sent) so the app's error handler writes the JSON error.
   */
  async forward(req: IncomingMessage, res: ServerResponse, fwd: ForwardRequest): Promise<void> {
    const limit = this.opts.bodyLimitBytes;
    if (Number(req.headers['content-length'] ?? 0) > limit) throw new PayloadTooLarge(limit);
    const method = req.method ?? 'GET';
    if ((method === 'DELETE' || method === 'OPTIONS') && req.headers['transfer-encoding'] !== undefined) throw new LengthRequired(method);
    const tried = new Set<NodeState>();
    let again: NodeState | undefined; // the same node once more, after a service-account re-login
    let reloggedIn = false;
    let last: GatewayError | undefined;
    // Bounded: every node once, plus one repeat after a re-login.
    for (let round = 0; round <= this.states.length; round++) {
      if (res.destroyed) return; // the client went away: nobody to answer
      const node = again ?? this.pick(tried);
      again = undefined;
      if (!node) break;
      tried.add(node);

      let answer: NodeAnswer;
      let sentToken: string | undefined;
      node.inflight++;
      node.requests++;
      try {
        const headers: Record<string, string> = {
          'x-request-id': fwd.requestId,
          'x-forwarded-for': fwd.clientAddress,
          'x-forwarded-proto': 'https',
        };
        if (req.headers.host) headers['x-forwarded-host'] = req.headers.host;
        if (this.opts.identity !== 'passthrough' && fwd.assertionFor) headers['x-mlgate-assertion'] = await fwd.assertionFor(node);
        if (this.serviceAccount) {
          sentToken = await this.serviceAccount.token(node);
          headers.authorization = `Bearer ${sentToken}`;
        }
        answer = await this.transport.exchange(node, req, res, {
          requestId: fwd.requestId,
          target: fwd.target,
          clientAddress: fwd.clientAddress,
          dropAuthorization: this.opts.identity !== 'passthrough',
          headers,
        });
      } catch (err) {
        node.inflight--;
        // A failed service-account login counts like a failed connection: nothing of the request was sent.
        const failure = err instanceof AttemptFailure ? err : err instanceof GatewayError ? new AttemptFailure(err, 'connect') : undefined;
        if (!failure) throw err;
        if (failure.phase === 'client') {
          if (res.destroyed && !(failure.error instanceof PayloadTooLarge)) return; // the client went away: nobody to answer
          throw failure.error;
        }
        this.failed(node, failure, fwd.requestId);
        last = failure.error;
        if (this.repeatable(method, req) && !res.destroyed) continue;
        throw failure.error;
      }
      this.succeeded(node);

      if (answer.status === 401 && this.serviceAccount) {
        // The node no longer takes mlgate's token (restarted, revoked): log in again once.
        node.inflight--;
        this.transport.discard(answer);
        this.serviceAccount.invalidate(node, sentToken);
        if (!reloggedIn && this.repeatable(method, req) && !res.destroyed) {
          reloggedIn = true;
          again = node;
          continue;
        }
        throw new BadGateway(
          reloggedIn
            ? `node ${node.url} refused the service-account token again after a fresh login`
            : `node ${node.url} refused the service-account token; not repeated (${IDEMPOTENT.has(method) ? 'the body was sent' : `${method} is not idempotent`})`,
          "The operationalization node refused the gateway's service account token; the gateway logs in again, retry the request.",
        );
      }

      if (answer.status < 100 || answer.status > 599) {
        // Not an HTTP status a client could be given (Node's writeHead would throw on it): the node is broken.
        node.inflight--;
        answer.body.destroy();
        throw new BadGateway(`node ${node.url} answered with status ${answer.status}`);
      }
      fwd.onNodeResponse?.(answer.status, answer.body);
      try {
        await deliver(answer, res, fwd.requestId);
      } finally {
        node.inflight--;
      }
      return;
    }
    throw last ?? new UpstreamUnavailable(`no node available: ${this.summary()}`);
  }

  /** Another node may get the request only if nothing of it can have been acted on twice. */
  private repeatable(method: string, req: IncomingMessage): boolean {
    // readableDidRead: a chunk of the body left the client request (it went to a node, or was counted): not repeatable.
    return IDEMPOTENT.has(method) && !req.readableDidRead;
  }

  private failed(node: NodeState, failure: AttemptFailure, requestId: string): void {
    node.failed++;
    node.failures++;
    const now = Date.now();
    this.log.warn(
      { requestId, node: node.url, phase: failure.phase, status: failure.error.status, reason: failure.error.detail ?? failure.error.message },
      'node request failed',
    );
    if (node.failures >= this.opts.ejectAfterFailures && node.ejectedUntil <= now) {
      node.ejectedUntil = now + this.opts.ejectForMs;
      node.ejections++;
      this.log.warn({ node: node.url, failures: node.failures, forMs: this.opts.ejectForMs }, 'node ejected');
    }
  }

  private succeeded(node: NodeState): void {
    if (node.failures === 0 && node.ejectedUntil === 0) return;
    if (node.ejectedUntil > Date.now()) this.log.info({ node: node.url }, 'node answered again: ejection lifted');
    node.failures = 0;
    node.ejectedUntil = 0;
  }

  private async probe(node: NodeState): Promise<void> {
    if (node.probing || this.closed) return;
    node.probing = true;
    const hc = this.opts.healthCheck;
    let ok = false;
    let reason = '';
    const started = performance.now();
    try {
      const token = this.serviceAccount?.cached(node);
      const r = await this.transport.request(new URL(node.url + hc.path), {
        method: 'GET',
        headers: token ? { authorization: `Bearer ${token}` } : {},
        timeoutMs: hc.timeoutMs,
        servername: node.servername,
      });
      // Any HTTP answer below 500 shows the node is up and its TLS is right (401: it wants a token on /status).
      ok = r.status < 500;
      reason = `status ${r.status}`;
      node.probeLatencyMs = Math.round((performance.now() - started) * 10) / 10;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      reason = `${e.code ?? e.name}: ${e.message}`;
    } finally {
      node.probing = false;
    }
    if (this.closed) return;
    if (ok) {
      node.probeFailures = 0;
      node.probeSuccesses++;
      if (!node.healthy && node.probeSuccesses >= hc.healthyAfter) {
        node.healthy = true;
        node.failures = 0;
        node.ejectedUntil = 0;
        this.log.info({ node: node.url, reason }, 'node healthy again');
      }
    } else {
      node.probeSuccesses = 0;
      node.probeFailures++;
      if (node.healthy && node.probeFailures >= hc.unhealthyAfter) {
        node.healthy = false;
        this.log.warn({ node: node.url, reason, probes: node.probeFailures }, 'node unhealthy: no requests until it answers probes again');
      }
    }
  }

  private summary(): string {
    const now = Date.now();
    return this.states.map((n) => `${n.url} ${n.healthy ? (n.ejectedUntil > now ? 'ejected' : 'up') : 'unhealthy'}`).join(', ');
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    this.transport.close();
  }
}

/** What Node accepts in a status line's reason phrase (HTAB, SP, visible ASCII, obs-text). */
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Writes the node's answer to the client as it streams; resolves when the client response is closed. */
function deliver(answer: NodeAnswer, res: ServerResponse, requestId: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const body = answer.body;
    if (res.destroyed || res.headersSent) {
      body.destroy();
      resolve();
      return;
    }
    if (body.destroyed && !(body as Readable & { complete?: boolean }).complete) {
      reject(new BadGateway('the node answer broke before any of it could be relayed'));
      return;
    }
    // One writeHead with a name/value list: no per-header setHeader calls, no header map on the response.
    const headers = responseHeaderList(answer.headers, requestId);
    try {
      // A reason phrase Node would refuse (undici decodes it as UTF-8): the standard one instead.
      if (answer.statusMessage && REASON_PHRASE.test(answer.statusMessage)) res.writeHead(answer.status, answer.statusMessage, headers);
      else res.writeHead(answer.status, headers);
    } catch (err) {
      // A head Node refuses to write (nothing was sent yet): the client gets a 502 instead. Node keeps what it
      // refused on the response; the error answer must not inherit it.
      res.statusMessage = '';
      body.destroy();
      reject(new BadGateway(`the node's answer head cannot be relayed: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    if (body.complete === true && body.listenerCount('data') === 0) {
      // The whole answer came with its head (small answers, one socket read): one end(), no pipe, no stream
      // listeners. read() hands over everything buffered and lets the body end, which frees the node connection.
      const chunk = body.read() as Buffer | null;
      res.once('close', resolve);
      res.end(chunk ?? undefined);
      return;
    }
    // Cut off by the node (died, timed out): the client must see a truncated answer, not a complete one.
    const cut = (): void => {
      if (!res.writableFinished) res.destroy();
    };
    body.once('error', cut);
    body.once('close', () => {
      if (!body.readableEnded) cut();
    });
    res.once('close', () => {
      if (!body.readableEnded) body.destroy();
      resolve();
    });
    body.pipe(res);
  });
}
