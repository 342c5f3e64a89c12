// The seam between the pool (which node, retries, identity) and an engine that moves bytes to one node.
// http-proxy-middleware is the engine today (hpm.ts); a second one (undici) implements the same interface.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { BadGateway, GatewayTimeout, UpstreamUnavailable, type GatewayError } from '../errors.ts';

/** One node as an engine sees it. */
export interface NodeTarget {
  /** Base URL without a trailing slash, e.g. https://node1.example.com:12800 */
  readonly url: string;
  /** Name expected on the node's certificate (SNI and host name check). */
  readonly servername: string;
}

export interface TransportOptions {
  ca: string | Buffer;
  cert: string | Buffer;
  key: string | Buffer;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  maxSockets: number;
  idleSocketTimeoutMs: number;
  bodyLimitBytes: number;
}

/** What one attempt sends, besides the client's request itself. */
export interface Exchange {
  requestId: string;
  /** The exact path+query that was authorized; an engine refuses to send anything else. */
  target: string;
  clientAddress: string;
  /** Remove the client's Authorization (assertion and serviceAccount modes). */
  dropAuthorization: boolean;
  /** Headers mlgate sets after the hygiene pass (identity, X-Forwarded-*, X-Request-Id). */
  headers: Record<string, string>;
}

/** The node's answer, headers read, body not yet: the pool delivers it to the client or discards it. */
export interface NodeAnswer {
  status: number;
  statusMessage: string | undefined;
  headers: IncomingHttpHeaders;
  /**
   * The body as it streams; `headers` on it too, so a tap (tapSmallAnswer) can read both. `complete`: the node
   * finished sending and the whole body waits in the stream's buffer (IncomingMessage has it; undici's body too).
   */
  body: Readable & { headers: IncomingHttpHeaders; readonly complete?: boolean };
}

export type FailurePhase = 'connect' | 'request' | 'client';

/** Why an attempt ended without an answer. */
export class AttemptFailure extends Error {
  readonly error: GatewayError;
  /** connect: no connection was made; request: sent (some of) the request; client: the client went away or broke a limit. */
  readonly phase: FailurePhase;
  constructor(error: GatewayError, phase: FailurePhase) {
    super(error.detail ?? error.message);
    this.error = error;
    this.phase = phase;
  }
  /** Counts against the node for passive ejection. */
  get nodeFault(): boolean {
    return this.phase !== 'client';
  }
}

export interface SmallRequest {
  method: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  servername: string;
}

export interface SmallAnswer {
  status: number;
  body: string;
}

export interface Transport {
  readonly engine: string;
  /**
   * Sends the client request to `node`. Resolves when the node's answer headers arrive (body unread); rejects with
   * AttemptFailure before that. Never writes to `res`; it only watches it to stop the node request when the client
   * goes away.
   */
  exchange(node: NodeTarget, req: IncomingMessage, res: ServerResponse, ex: Exchange): Promise<NodeAnswer>;
  /** Drops an answer that will not be delivered, so its connection can be reused. */
  discard(answer: NodeAnswer): void;
  /** A small request of mlgate's own (health probe, service-account login), same TLS material; body capped at 64 KiB. */
  request(url: URL, opts: SmallRequest): Promise<SmallAnswer>;
  close(): void;
}

const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET|ALTNAME|EPROTO|ERR_SSL|ERR_TLS|HANDSHAKE|SSL routines/i;
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const TLS_MESSAGE = "The gateway could not set up a trusted TLS connection to the operationalization node (its certificate was not accepted); the gateway log has the reason.";

export function isTlsError(err: NodeJS.ErrnoException): boolean {
  return TLS_ERROR.test(err.code ?? '') || TLS_ERROR.test(err.message);
}

/** Maps a transport error to the gateway's typed error; the reason goes to the log (detail) only. */
export function classifyUpstreamError(err: NodeJS.ErrnoException, timedOut: boolean): GatewayError {
  const code = err.code ?? '';
  const reason = `${code || err.name}: ${err.message}`;
  if (timedOut) return new GatewayTimeout(reason);
  if (UNREACHABLE.has(code)) return new UpstreamUnavailable(reason);
  if (isTlsError(err)) return new BadGateway(`upstream TLS: ${reason}`, TLS_MESSAGE);
  if (code === 'ETIMEDOUT') return new GatewayTimeout(reason);
  if (code === 'ECONNRESET' || code === 'EPIPE') return new BadGateway(reason, 'The connection to the operationalization node broke before it answered.');
  return new BadGateway(reason);
}
