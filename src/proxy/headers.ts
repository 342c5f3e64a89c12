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

/** Names to drop from a forwarded request, given the client's headers. */
export function strippedRequestHeaders(headers: IncomingHttpHeaders, dropAuthorization: boolean): string[] {
  const out = [...HOP_BY_HOP, ...CLIENT_ASSERTED];
  if (dropAuthorization) out.push('authorization');
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-mlgate-') || name.startsWith('x-forwarded-')) out.push(name);
  }
  // Headers the client listed in Connection are hop-by-hop too (RFC 9110 7.6.1).
  const conn = headers.connection;
  if (typeof conn === 'string') {
    for (const token of conn.split(',')) {
      const name = token.trim().toLowerCase();
      if (name && name !== 'close' && name !== 'keep-alive') out.push(name);
    }
  }
  return out;
}

const RESPONSE_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'];

/** Names not to copy from a node's answer to the client: hop-by-hop, and those the node listed in Connection. */
export function droppedResponseHeaders(headers: IncomingHttpHeaders): Set<string> {
  const out = new Set(RESPONSE_HOP_BY_HOP);
  const conn = headers.connection;
  if (typeof conn === 'string') {
    for (const token of conn.split(',')) {
      const name = token.trim().toLowerCase();
      if (name) out.add(name);
    }
  }
  return out;
}
