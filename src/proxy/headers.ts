// Header hygiene for requests that cross to a node: no hop-by-hop, no client-asserted identity.
import type { IncomingHttpHeaders } from 'node:http';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate'];

// Headers a client could use to claim an identity, an origin or a different method/path at the node.
const CLIENT_ASSERTED = [
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-request-id',
  // The edge already answered 100 Continue; http-proxy would skip its request hook for it, undici refuses it.
  'expect',
];

const ALWAYS_DROPPED = new Set([...HOP_BY_HOP, ...CLIENT_ASSERTED]);
// Set by the engine itself for the node (undici): the node's host, the body framing of this hop.
const ENGINE_OWNED = new Set(['host', 'transfer-encoding']);

/**
 * The headers a node receives, as undici takes them (a flat name/value list, built in one pass without copying
 * the client's object): the client's after the same hygiene as strippedRequestHeaders, then mlgate's own `set`.
 * Host and Transfer-Encoding are left to the engine (its connection's host; undici frames a body itself and
 * refuses those names, PITFALLS 15).
 */
export function forwardedHeaderList(headers: IncomingHttpHeaders, dropAuthorization: boolean, set: Record<string, string>): (string | string[])[] {
  const out: (string | string[])[] = [];
  const listed = connectionListed(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || ALWAYS_DROPPED.has(name) || ENGINE_OWNED.has(name) || name in set) continue;
    if (dropAuthorization && name === 'authorization') continue;
    if (name.startsWith('x-mlgate-') || name.startsWith('x-forwarded-')) continue;
    if (listed?.has(name)) continue;
    out.push(name, value);
  }
  for (const name in set) out.push(name, set[name]!);
  return out;
}

// The body's framing belongs to the message, not the connection: a client naming it in Connection must not make the
// gateway drop it, or the body would reach the node unframed and be read as further, unauthorized requests.
const NEVER_CONNECTION_LISTED = new Set(['close', 'keep-alive', 'content-length', 'transfer-encoding']);

/** Names the client listed in Connection (other than close / keep-alive and the body framing); parsed only when there are any. */
function connectionListed(conn: string | undefined): Set<string> | undefined {
  if (conn === undefined || conn === 'keep-alive' || conn === 'close') return undefined;
  let listed: Set<string> | undefined;
  for (const token of conn.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && !NEVER_CONNECTION_LISTED.has(name)) (listed ??= new Set()).add(name);
  }
  return listed;
}

/** Removes in place, in one pass over the names present, what strippedRequestHeaders lists (the hpm engine's way). */
export function stripRequestHeaders(headers: IncomingHttpHeaders, dropAuthorization: boolean): void {
  const listed = connectionListed(headers.connection);
  for (const name in headers) {
    if (
      ALWAYS_DROPPED.has(name) ||
      (dropAuthorization && name === 'authorization') ||
      name.startsWith('x-mlgate-') ||
      name.startsWith('x-forwarded-') ||
      listed?.has(name)
    ) {
      delete headers[name];
    }
  }
}

/** Names to drop from a forwarded request, given the client's headers. */
export function strippedRequestHeaders(headers: IncomingHttpHeaders, dropAuthorization: boolean): string[] {
  const out = [...ALWAYS_DROPPED];
  if (dropAuthorization) out.push('authorization');
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-mlgate-') || name.startsWith('x-forwarded-')) out.push(name);
  }
  // Headers the client listed in Connection are hop-by-hop too (RFC 9110 7.6.1), except the body framing.
  const listed = connectionListed(headers.connection);
  if (listed) out.push(...listed);
  return out;
}

const RESPONSE_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'];
const RESPONSE_DROPPED = new Set(RESPONSE_HOP_BY_HOP);

/**
 * The node's answer headers as the client gets them, a flat name/value list for res.writeHead (Node stores it as is,
 * no header map): without hop-by-hop names and those the node listed in Connection, with mlgate's X-Request-Id.
 */
export function responseHeaderList(headers: IncomingHttpHeaders, requestId: string): (string | string[])[] {
  const conn = headers.connection;
  const listed = conn === undefined || conn === 'keep-alive' || conn === 'close' ? undefined : droppedResponseHeaders(headers);
  const out: (string | string[])[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || RESPONSE_DROPPED.has(name) || name === 'x-request-id' || listed?.has(name)) continue;
    out.push(name, value);
  }
  out.push('x-request-id', requestId);
  return out;
}

/** Names not to copy from a node's answer to the client: hop-by-hop, and those the node listed in Connection. */
export function droppedResponseHeaders(headers: IncomingHttpHeaders): Set<string> {
  const out = new Set(RESPONSE_HOP_BY_HOP);
  // Several Connection lines arrive as an array from undici (Node's parser joins them): every one counts.
  const conn: unknown = headers.connection;
  const text = Array.isArray(conn) ? conn.join(',') : conn;
  if (typeof text === 'string') {
    for (const token of text.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) out.add(name);
    }
  }
  return out;
}
