// Path-confusion corpus: request targets a client library would normalize, sent byte for byte over raw TLS
// sockets through the real gateway to the real example node. Each is either refused (4xx, and node.received shows
// the node got nothing) or forwarded exactly once, as the very bytes that were sent, which are also exactly what
// the policy checked (normalizeTarget -> matchRoute -> authorize, recomputed here).
//
// Who refuses is part of the expectation, because three layers see a target before the node could:
//   parser  - Node's HTTP parser (llhttp): not HTTP at all -> 400 malformed_request / 431, from server.ts
//   adapter - @hono/node-server builds a URL before the app runs and refuses what it cannot: 400 malformed_request
//   gateway - normalizeTarget: 400 invalid_path naming the reason; route: 404 route_not_found; policy: 403
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, matchRoute, normalizeTarget, type Role } from '../../src/policy/index.ts';
import { CA, request, startStack, type Stack } from './setup.ts';
import { login, ROLES, TestDirectory, type Tokens } from './users.ts';

const directory = new TestDirectory({ olive: ['owners'], rita: ['readers'] });
const ROLE_OF = { olive: 'Owner', rita: 'Reader' } as const;

let stack: Stack;
const tokens: Record<string, Tokens> = {};

beforeAll(async () => {
  stack = await startStack({ config: { auth: { roles: ROLES } }, providers: [directory] });
  tokens.olive = await login(stack, 'olive');
  tokens.rita = await login(stack, 'rita');
  const pub = await request(stack, 'POST', '/services/y/1', { token: tokens.olive.access_token, json: { code: 'x' } });
  expect(pub.status).toBe(201);
});
afterAll(async () => {
  await stack?.close();
});

type Refusal =
  | ['gateway', 400, string] // invalid_path (reason)
  | ['route', 404]
  | ['policy', 403, 'role_required' | 'ownership_required']
  | ['parser', 400 | 431]
  | ['adapter', 400];
type Expectation = { forward: string } | { refuse: Refusal };
type User = keyof typeof ROLE_OF;

interface Case {
  what: string;
  method: string;
  target: string;
  as: User;
  expect: Expectation;
  headers?: Record<string, string>;
}

const fwd = (rule: string): Expectation => ({ forward: rule });
const bad = (reason: string): Expectation => ({ refuse: ['gateway', 400, reason] });
const NOT_FOUND: Expectation = { refuse: ['route', 404] };
const ROLE: Expectation = { refuse: ['policy', 403, 'role_required'] };
const PARSER: Expectation = { refuse: ['parser', 400] };
const ADAPTER: Expectation = { refuse: ['adapter', 400] };

const c = (what: string, as: User, method: string, target: string, expect: Expectation, headers?: Record<string, string>): Case => ({
  what,
  as,
  method,
  target,
  expect,
  ...(headers ? { headers } : {}),
});

const CORPUS: Case[] = [
  // Controls: plain targets are forwarded as sent.
  c('control: list', 'olive', 'GET', '/services', fwd('services.list')),
  c('control: get', 'rita', 'GET', '/services/y/1', fwd('services.get')),
  c('control: consume', 'rita', 'POST', '/api/y/1', fwd('api.consume')),
  c('control: HEAD where GET is allowed', 'rita', 'HEAD', '/services', fwd('services.list')),
  c('control: reader delete is a role denial', 'rita', 'DELETE', '/services/y/1', ROLE),
  c('control: reader patch is a role denial', 'rita', 'PATCH', '/services/y/1', ROLE),

  // Encoded slashes and backslashes (any hex case).
  c('encoded slash', 'olive', 'GET', '/services/y%2F1', bad('encoded_slash')),
  c('encoded slash, lower-case hex', 'rita', 'DELETE', '/services/y%2f1/1', bad('encoded_slash')),
  c('encoded slash traversal to node config', 'rita', 'DELETE', '/services/x%2F..%2F..%2Fcomputenodes/1', bad('encoded_slash')),
  c('encoded slash and dots in one segment', 'olive', 'GET', '/services/%2F%2e%2E/1', bad('encoded_slash')),
  c('encoded backslash', 'olive', 'GET', '/services/y%5C1/1', bad('encoded_backslash')),
  c('encoded backslash, lower-case hex', 'olive', 'GET', '/services%5cy/1', bad('encoded_backslash')),

  // Encoded dots: a whole segment of dots is a dot segment, however it is spelled.
  c('encoded dot-dot', 'rita', 'DELETE', '/services/%2e%2e/y/1', bad('dot_segment')),
  c('encoded dot-dot from the api family to services', 'rita', 'DELETE', '/api/x/1/%2E%2E/%2E%2E/services/y/1', bad('dot_segment')),
  c('half-encoded dot-dot', 'olive', 'GET', '/services/.%2e/computenodes', bad('dot_segment')),
  c('encoded single dot', 'olive', 'GET', '/services/y/%2e', bad('dot_segment')),
  c('dots inside a name are data, and a reader still cannot delete', 'rita', 'DELETE', '/services/Y%2e%2E/1', ROLE),

  // Double encoding.
  c('double-encoded slash', 'olive', 'GET', '/services/y%252F1/1', bad('double_encoding')),
  c('double-encoded dot-dot', 'rita', 'DELETE', '/services/%252e%252e/y/1', bad('double_encoding')),
  c('triple encoding', 'olive', 'GET', '/services/%25252e/1', bad('double_encoding')),

  // Raw dot segments.
  c('dot-dot from api to services (DELETE)', 'rita', 'DELETE', '/api/x/1/../../services/y/1', bad('dot_segment')),
  c('dot-dot from api to services (PATCH)', 'rita', 'PATCH', '/api/x/1/../../services/y/1', bad('dot_segment')),
  c('trailing dot-dot', 'olive', 'DELETE', '/services/y/1/..', bad('dot_segment')),
  c('leading dot', 'olive', 'GET', '/./services', bad('dot_segment')),

  // Duplicate slashes and trailing slashes.
  c('leading double slash', 'olive', 'GET', '//services', bad('empty_segment')),
  c('double slash inside', 'rita', 'DELETE', '/services//y/1', bad('empty_segment')),
  c('double slash before a delete', 'rita', 'DELETE', '//services/y/1', bad('empty_segment')),
  c('double trailing slash', 'olive', 'GET', '/services/y/1//', bad('empty_segment')),
  c('trailing slash', 'olive', 'GET', '/services/', bad('trailing_slash')),

  // Raw backslashes: the adapter refuses them in the path (before the app); in the query they are data.
  c('backslash in the path', 'olive', 'GET', '/services\\y/1', ADAPTER),
  c('backslash traversal', 'rita', 'DELETE', '/services\\..\\computenodes', ADAPTER),
  c('backslash in the query is data', 'olive', 'GET', '/services/y/1?q=a\\b', fwd('services.get')),

  // Case: fixed words match case-sensitively and are never forwarded in another case, not even for an Owner.
  c('upper-case word', 'olive', 'GET', '/SERVICES', NOT_FOUND),
  c('capitalized word', 'olive', 'GET', '/Services', NOT_FOUND),
  c('capitalized word, reader delete', 'rita', 'DELETE', '/Services/y/1', NOT_FOUND),
  c('upper-case word, owner delete', 'olive', 'DELETE', '/SERVICES/y/1', NOT_FOUND),
  c('upper-case api', 'rita', 'POST', '/API/y/1', NOT_FOUND),
  c('camel-case node config', 'rita', 'GET', '/computeNodes', NOT_FOUND),
  c('encoded letter in a fixed word', 'rita', 'DELETE', '/service%73/y/1', NOT_FOUND),
  c('case in a name is data', 'olive', 'GET', '/services/Y/1', fwd('services.get')),
  c('encoded letter in a name is data, reader still denied', 'rita', 'DELETE', '/services/%79/1', ROLE),

  // ';' path parameters.
  c('parameter on a fixed word', 'olive', 'GET', '/services;x=1', bad('path_parameter')),
  c('parameter on a name', 'rita', 'DELETE', '/services/y;v=2/1', bad('path_parameter')),
  c('parameter on the version', 'rita', 'DELETE', '/services/y/1;.json', bad('path_parameter')),
  c('encoded semicolon', 'olive', 'GET', '/services/y%3B1/1', bad('path_parameter')),
  c('encoded semicolon, lower-case hex', 'olive', 'GET', '/services/y%3b1/1', bad('path_parameter')),

  // NUL and other control characters.
  c('encoded NUL', 'olive', 'GET', '/services/y%00/1', bad('control_character')),
  c('raw NUL', 'olive', 'GET', '/status\u0000', PARSER),
  c('encoded tab', 'olive', 'GET', '/services/y%09/1', bad('control_character')),
  c('raw tab', 'olive', 'GET', '/services/y\t/1', PARSER),
  c('encoded CRLF header injection', 'olive', 'GET', '/services/y%0d%0aX-Evil:1/1', bad('control_character')),
  c('encoded C1 control (NEL)', 'olive', 'GET', '/services/%C2%85/1', bad('control_character')),
  c('encoded NUL in the query is data', 'olive', 'GET', '/services/y/1?x=%00', fwd('services.get')),

  // Overlong and invalid UTF-8.
  c("overlong '/'", 'olive', 'GET', '/services/%C0%AF/1', bad('invalid_utf8')),
  c("overlong '..'", 'rita', 'DELETE', '/services/%C0%AE%C0%AE/y/1', bad('invalid_utf8')),
  c("3-byte overlong '/'", 'olive', 'GET', '/services/%E0%80%AF/1', bad('invalid_utf8')),
  c("4-byte overlong '/'", 'olive', 'GET', '/services/%F0%80%80%AF/1', bad('invalid_utf8')),
  c("overlong '\\'", 'olive', 'GET', '/services/%C1%9C/1', bad('invalid_utf8')),
  c('UTF-16 surrogate', 'olive', 'GET', '/services/%ED%A0%80/1', bad('invalid_utf8')),
  c('invalid percent-encoding', 'olive', 'GET', '/services/y%zz/1', bad('invalid_percent_encoding')),

  // Absolute-form, asterisk-form and authority-form targets.
  c('absolute-form', 'olive', 'GET', 'https://localhost/services', bad('absolute_form')),
  c('absolute-form delete', 'rita', 'DELETE', 'http://127.0.0.1/services/y/1', bad('absolute_form')),
  c('absolute-form to another host', 'olive', 'GET', 'https://evil.example/services/y/1', bad('absolute_form')),
  c('asterisk-form OPTIONS', 'olive', 'OPTIONS', '*', ADAPTER),
  c('asterisk-form GET', 'olive', 'GET', '*', ADAPTER),
  c('authority-form GET', 'olive', 'GET', 'localhost:443', PARSER),

  // Mixed-case percent-encodings of valid UTF-8 are data, forwarded exactly as sent.
  c('encoded UTF-8, upper-case hex', 'olive', 'GET', '/services/caf%C3%A9/1', fwd('services.get')),
  c('encoded UTF-8, mixed-case hex', 'olive', 'GET', '/services/caf%c3%A9/1', fwd('services.get')),
  c("encoded '?' is data", 'olive', 'GET', '/services/y%3F/1', fwd('services.get')),

  // Unicode.
  c('raw UTF-8 in the path', 'olive', 'GET', '/services/caf\u00e9/1', PARSER),
  c('raw UTF-8 in the query', 'olive', 'GET', '/services/y/1?x=\u00e9', PARSER),
  c('raw space in the path', 'olive', 'GET', '/services/y 1/1', PARSER),
  c('fullwidth solidus is not a slash', 'olive', 'GET', '/services/%EF%BC%8F/1', fwd('services.get')),
  c('division slash is not a slash', 'olive', 'GET', '/services/%E2%88%95/1', fwd('services.get')),
  c('fullwidth dots are not dots', 'olive', 'GET', '/services/%EF%BC%8E%EF%BC%8E/1', fwd('services.get')),
  c('right-to-left override is data', 'olive', 'GET', '/services/%E2%80%AE1y/1', fwd('services.get')),

  // Very long paths.
  c('path over 2048 characters', 'olive', 'GET', `/services/${'a'.repeat(3000)}/1`, bad('path_too_long')),
  c('path over the header limit', 'olive', 'GET', `/services/${'a'.repeat(20000)}/1`, { refuse: ['parser', 431] }),
  c('more than 32 segments', 'olive', 'GET', '/s'.repeat(40), bad('too_many_segments')),

  // Fragments and methods.
  c('fragment', 'olive', 'GET', '/services/y/1#x', bad('fragment')),
  c('lower-case method', 'rita', 'delete', '/services/y/1', PARSER),
  c('method override header is not honoured', 'rita', 'GET', '/services/y/1', fwd('services.get'), { 'X-HTTP-Method-Override': 'DELETE' }),
  c('method override header on a denied delete', 'rita', 'DELETE', '/services/y/1', ROLE, { 'X-HTTP-Method-Override': 'GET' }),
];

interface RawAnswer {
  status: number;
  head: string;
  body: string;
}

/**
 * One request over a fresh TLS socket, bytes exactly as given. Unlike setup.ts rawRequest, the socket is not
 * half-closed after writing: Node's HTTP server treats a client FIN as the client leaving and aborts anything
 * that answers asynchronously (every forwarded request). `Connection: close` makes the server close afterwards.
 */
function exchange(port: number, raw: Buffer, timeoutMs = 5000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost' }, () => socket.write(raw));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw exchange timed out'));
    }, timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {}); // a server that closes early (431) may reset; what arrived is still read
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split === -1 ? text : text.slice(0, split);
      let body = split === -1 ? '' : text.slice(split + 4);
      if (/^transfer-encoding:\s*chunked/im.test(head)) body = dechunk(body);
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), head, body });
    });
  });
}

function dechunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', i);
    if (eol === -1) return out;
    const size = parseInt(s.slice(i, eol), 16);
    if (!(size > 0)) return out;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

let seq = 0;

describe('path-confusion corpus over raw TLS sockets', () => {
  it('has at least 40 variants, each with a distinct target', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CORPUS.map((k) => `${k.as} ${k.method} ${k.target} ${JSON.stringify(k.headers ?? {})}`)).size).toBe(CORPUS.length);
  });

  it.each(CORPUS.map((k) => [k.what, k] as const))('%s', async (_what, k) => {
    const requestId = `corpus-${++seq}-${Date.now()}`;
    const extra = Object.entries(k.headers ?? {})
      .map(([n, v]) => `${n}: ${v}\r\n`)
      .join('');
    const raw = Buffer.concat([
      Buffer.from(`${k.method} `, 'latin1'),
      Buffer.from(k.target, 'utf8'),
      Buffer.from(
        ` HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${tokens[k.as]!.access_token}\r\nX-Request-Id: ${requestId}\r\n` +
          `${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`,
        'latin1',
      ),
    ]);
    const before = stack.node.received.length;
    const r = await exchange(stack.port, raw);
    const got = stack.node.received.slice(before);

    if ('forward' in k.expect) {
      // Forwarded once, as the exact bytes sent...
      expect(got.map((g) => [g.method, g.url])).toEqual([[k.method, k.target]]);
      expect(got[0]!.headers['x-request-id']).toBe(requestId);
      expect(got[0]!.headers['x-http-method-override']).toBeUndefined();
      expect(r.status, r.head).toBeGreaterThanOrEqual(200);
      // ...which is exactly what the policy checked: unchanged by the path check, this rule, allowed for this user.
      const n = normalizeTarget(k.target);
      expect(n.ok && n.path + n.search).toBe(k.target);
      if (!n.ok) return;
      const m = matchRoute(stack.gateway.routes, k.method, n.path);
      expect(m.ok && m.match.rule.id).toBe(k.expect.forward);
      if (!m.ok) return;
      const { params, rule } = m.match;
      const owner =
        rule.ownership && params.name !== undefined && params.version !== undefined
          ? await stack.gateway.store.getOwner(`${params.name}/${params.version}`)
          : undefined;
      expect(authorize({ subject: k.as, role: ROLE_OF[k.as] as Role }, rule, owner).effect).toBe('allow');
      return;
    }

    // Refused: a 4xx from the expected layer, and nothing at all reached the node.
    const [layer, status, detail] = k.expect.refuse;
    expect(got).toEqual([]);
    expect(r.status, r.head + r.body).toBe(status);
    switch (layer) {
      case 'gateway': {
        const body = JSON.parse(r.body);
        expect(body.error).toBe('invalid_path');
        expect(body.message).toBe(`The request path is not allowed (${detail}).`);
        expect(body.requestId).toBe(requestId);
        break;
      }
      case 'route':
        expect(JSON.parse(r.body).error).toBe('route_not_found');
        break;
      case 'policy':
        expect(JSON.parse(r.body).error).toBe(detail);
        break;
      case 'parser':
        expect(JSON.parse(r.body).error).toBe(status === 431 ? 'headers_too_large' : 'malformed_request');
        break;
      case 'adapter':
        // refused by the adapter before the app runs; still the JSON error shape
        expect(JSON.parse(r.body).error).toBe('malformed_request');
        break;
    }
  });

  it('left the service every bypass attempt aimed at untouched, and forwarded nothing else', () => {
    expect(stack.node.services.has('y/1')).toBe(true);
    const allowed = new Set(['POST /services/y/1', ...CORPUS.filter((k) => 'forward' in k.expect).map((k) => `${k.method} ${k.target}`)]);
    const unexpected = stack.node.received.map((g) => `${g.method} ${g.url}`).filter((x) => !allowed.has(x));
    expect(unexpected).toEqual([]);
    expect(stack.node.received.filter((g) => g.method === 'DELETE' || g.method === 'PATCH')).toEqual([]);
  });
});
