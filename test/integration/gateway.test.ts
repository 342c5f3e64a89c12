// The ML Server wire contract through the real gateway, real example node and real mTLS.
import { createHash, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK } from 'jose';
import { ADMIN_PASSWORD, CA, expectErrorShape, loginAdmin, rawRequest, request, startStack, type Stack } from './setup.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');

describe('POST /login', () => {
  it('answers the ML Server token shape with a Bearer token', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await request(stack, 'POST', '/login', { json: { username: 'admin', password: ADMIN_PASSWORD } });
    expect(r.status).toBe(200);
    const body = r.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'expires_on', 'refresh_token', 'token_type']);
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(3600);
    expect(body.expires_on).toBeGreaterThanOrEqual(before + 3600);
    expect(body.expires_on).toBeLessThanOrEqual(before + 3602);
    expect(body.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const header = JSON.parse(Buffer.from(body.access_token.split('.')[0], 'base64url').toString());
    expect(header.alg).toBe('ES256');
    expect(typeof header.kid).toBe('string');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers.pragma).toBe('no-cache');
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('reads a chunked login body (no Content-Length)', async () => {
    const body = JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD });
    const head = `POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const half = Math.floor(body.length / 2);
    const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
    const r = await rawRequest(stack.port, head + chunk(body.slice(0, half)) + chunk(body.slice(half)) + '0\r\n\r\n', 5000, false);
    expect(r.status).toBe(200);
    expect(r.body).toContain('"refresh_token"');
  });

  it('refuses a chunked login body over the limit with 413 (no Content-Length to refuse it from)', async () => {
    const head = `POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const piece = 'x'.repeat(16 * 1024);
    const chunks = Array.from({ length: 8 }, () => `${piece.length.toString(16)}\r\n${piece}\r\n`).join('');
    const r = await rawRequest(stack.port, `${head}${chunks}0\r\n\r\n`);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error).toBe('payload_too_large');
  });

  it('gives an unknown user and a wrong password the identical 401 body', async () => {
    const wrong = await request(stack, 'POST', '/login', { json: { username: 'admin', password: 'nope' } });
    const unknown = await request(stack, 'POST', '/login', { json: { username: 'mallory', password: 'nope' } });
    expectErrorShape(wrong, 401, 'invalid_credentials');
    expectErrorShape(unknown, 401, 'invalid_credentials');
    const strip = (t: string) => ({ ...JSON.parse(t), requestId: undefined });
    expect(strip(unknown.text)).toEqual(strip(wrong.text));
  });

  it.each([
    ['malformed JSON', '{"username": "admin", ', 400, 'malformed_json'],
    ['a JSON array', '["admin"]', 400, 'malformed_json'],
    ['JSON null', 'null', 400, 'malformed_json'],
    ['an empty body', '', 400, 'malformed_json'],
    ['a missing password', '{"username":"admin"}', 400, 'missing_field'],
    ['a missing username', '{"password":"x"}', 400, 'missing_field'],
    ['a numeric password', '{"username":"admin","password":12345}', 400, 'invalid_field'],
    ['an object username', '{"username":{"$ne":""},"password":"x"}', 400, 'invalid_field'],
    ['an empty password', '{"username":"admin","password":""}', 400, 'invalid_field'],
    ['a whitespace password', '{"username":"admin","password":"   "}', 400, 'invalid_field'],
  ])('refuses %s with %i', async (_name, body, status, code) => {
    const r = await request(stack, 'POST', '/login', { body, headers: { 'content-type': 'application/json' } });
    expectErrorShape(r, status, code);
  });

  it('refuses a 1 MB body with 413 without reading it all', async () => {
    const big = JSON.stringify({ username: 'admin', password: 'x'.repeat(1024 * 1024) });
    const r = await request(stack, 'POST', '/login', { body: big, headers: { 'content-type': 'application/json' } });
    expectErrorShape(r, 413, 'payload_too_large');
  });

  it('refuses a form-encoded body with 415', async () => {
    const r = await request(stack, 'POST', '/login', {
      body: 'username=admin&password=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectErrorShape(r, 415, 'unsupported_media_type');
  });

  it('answers GET /login with 405 and an Allow header', async () => {
    const r = await request(stack, 'GET', '/login');
    expectErrorShape(r, 405, 'method_not_allowed');
    expect(r.headers.allow).toBe('POST');
  });
});

describe('calls forwarded to the node', () => {
  it('GET /status with a token returns the node answer, with identity asserted and client headers scrubbed', async () => {
    const { access_token } = await loginAdmin(stack);
    const before = stack.node.received.length;
    const r = await request(stack, 'GET', '/status', {
      token: access_token,
      headers: {
        'x-mlgate-assertion': 'forged',
        'x-mlgate-user': 'root',
        'x-forwarded-for': '10.9.9.9',
        forwarded: 'for=10.9.9.9',
        'x-http-method-override': 'DELETE',
      },
    });
    expect(r.status).toBe(200);
    expect(r.json().statusCode).toBe('Pass');
    expect(r.headers['x-request-id']).toBeTruthy();
    const got = stack.node.received.slice(before);
    expect(got).toHaveLength(1);
    const h = got[0]!.headers;
    expect(got[0]!.url).toBe('/status');
    expect(h.authorization).toBeUndefined();
    expect(h['x-mlgate-user']).toBeUndefined();
    expect(h['x-http-method-override']).toBeUndefined();
    expect(h.forwarded).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(typeof h['x-mlgate-assertion']).toBe('string');
    expect(h['x-mlgate-assertion']).not.toBe('forged');
    expect(h['x-request-id']).toBe(r.headers['x-request-id']);
  });

  it('GET /user shows the node verified the assertion for admin as Owner', async () => {
    const { access_token } = await loginAdmin(stack);
    const r = await request(stack, 'GET', '/user', { token: access_token });
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.assertion).toBe('verified');
    expect(body.claims.sub).toBe('admin');
    expect(body.claims.roles).toEqual(['Owner']);
  });

  it('mints the node assertion once per token, not per request', async () => {
    const { access_token } = await loginAdmin(stack);
    const minted = stack.gateway.assertions.stats.minted;
    for (let i = 0; i < 5; i++) expect((await request(stack, 'GET', '/status', { token: access_token })).status).toBe(200);
    expect(stack.gateway.assertions.stats.minted - minted).toBe(1);
  });

  it('accepts the Bearer scheme in any case', async () => {
    const { access_token } = await loginAdmin(stack);
    const r = await request(stack, 'GET', '/status', { headers: { authorization: `bEaReR ${access_token}` } });
    expect(r.status).toBe(200);
  });

  it('publishes, lists and deletes a web service through the gateway', async () => {
    const { access_token } = await loginAdmin(stack);
    const svc = { code: 'x <- 1', inputParameterDefinitions: [], outputParameterDefinitions: [] };
    const pub = await request(stack, 'POST', '/services/gw-svc/1.0', { token: access_token, json: svc });
    expect(pub.status).toBe(201);
    const list = await request(stack, 'GET', '/services', { token: access_token });
    expect(list.json().map((s: { name: string }) => s.name)).toContain('gw-svc');
    const consume = await request(stack, 'POST', '/api/gw-svc/1.0', { token: access_token, json: { x: 42 } });
    expect(consume.status).toBe(200);
    expect(consume.json().outputParameters.answer).toEqual({ x: 42 });
    const del = await request(stack, 'DELETE', '/services/gw-svc/1.0', { token: access_token });
    expect(del.status).toBe(200);
    expect(stack.node.services.has('gw-svc/1.0')).toBe(false);
  });

  it('streams a 5 MB body to the node unchanged', async () => {
    const { access_token } = await loginAdmin(stack);
    await request(stack, 'POST', '/services/stream/1', { token: access_token, json: { code: 'x' } });
    const body = Buffer.alloc(5 * 1024 * 1024, 7);
    const r = await request(stack, 'POST', '/api/stream/1', {
      token: access_token,
      body,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(r.status).toBe(200);
    expect(r.json().sha256).toBe(createHash('sha256').update(body).digest('hex'));
  });
});

describe('bearer checking', () => {
  async function forged(): Promise<Record<string, string>> {
    const { access_token } = await loginAdmin(stack);
    const [h, p, s] = access_token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const jwk = stack.gateway.keys.jwks().keys[0]!;
    const hs = (hdr: object, pl: object, secret: string) => {
      const input = `${b64(JSON.stringify(hdr))}.${b64(JSON.stringify(pl))}`;
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    };
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return {
      garbage: 'not-a-jwt',
      empty: '',
      'alg none': `${b64(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.`,
      'tampered payload': `${h}.${b64(JSON.stringify({ ...payload, sub: 'someone-else' }))}.${s}`,
      'tampered signature': `${h}.${p}.${s.slice(0, -4)}AAAA`,
      'HS256 with the public key as secret': hs({ ...header, alg: 'HS256' }, payload, JSON.stringify(jwk)),
      'signed by another key with the same kid': await new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', kid: header.kid })
        .sign(other.privateKey),
      'another key embedded as jwk header': await new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', jwk: await exportJWK(other.publicKey) })
        .sign(other.privateKey),
      expired: await new SignJWT({ ...payload, exp: Math.floor(Date.now() / 1000) - 3600 })
        .setProtectedHeader({ alg: 'ES256', kid: header.kid })
        .sign(other.privateKey),
    };
  }

  it('refuses a missing Authorization header with 401 and the node receives nothing', async () => {
    const before = stack.node.received.length;
    const r = await request(stack, 'GET', '/status');
    expectErrorShape(r, 401, 'missing_token');
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect(stack.node.received.length).toBe(before);
  });

  it('refuses the Basic scheme', async () => {
    const r = await request(stack, 'GET', '/status', { headers: { authorization: 'Basic YWRtaW46eA==' } });
    expectErrorShape(r, 401, 'invalid_token');
  });

  it('refuses every forged token with 401 and forwards none of them', async () => {
    const tokens = await forged();
    const before = stack.node.received.length;
    for (const [name, token] of Object.entries(tokens)) {
      const r = await request(stack, 'GET', '/status', { headers: { authorization: `Bearer ${token}` } });
      expect(r.status, name).toBe(401);
      expectErrorShape(r, 401);
    }
    expect(stack.node.received.length).toBe(before);
  });

  it('refuses an expired token signed with the real key as token_expired', async () => {
    const { access_token } = await loginAdmin(stack);
    const payload = JSON.parse(Buffer.from(access_token.split('.')[1]!, 'base64url').toString());
    const signer = stack.gateway.keys.signer;
    const expired = await new SignJWT({ ...payload, iat: payload.iat - 7200, exp: payload.iat - 3600 })
      .setProtectedHeader({ alg: 'ES256', kid: signer.kid })
      .sign(signer.privateKey);
    expectErrorShape(await request(stack, 'GET', '/status', { token: expired }), 401, 'token_expired');
  });
});

describe('refresh and revoke', () => {
  it('rotates: a new refresh token works, the consumed one is 401 and ends the family', async () => {
    const first = await loginAdmin(stack);
    const r1 = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token } });
    expect(r1.status).toBe(200);
    const second = r1.json();
    expect(Object.keys(second).sort()).toEqual(['access_token', 'expires_in', 'expires_on', 'refresh_token', 'token_type']);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect((await request(stack, 'GET', '/status', { token: second.access_token })).status).toBe(200);

    // Reuse of the consumed token: 401, and the whole family (its newer tokens too) is revoked.
    const reuse = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token } });
    expectErrorShape(reuse, 401, 'invalid_refresh_token');
    expectErrorShape(await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: second.refresh_token } }), 401);
    expectErrorShape(await request(stack, 'GET', '/status', { token: second.access_token }), 401, 'token_revoked');
    expectErrorShape(await request(stack, 'GET', '/status', { token: first.access_token }), 401, 'token_revoked');
  });

  it('sends refresh answers, good and refused, with no-store, Pragma, JSON and the request id', async () => {
    const first = await loginAdmin(stack);
    const ok = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: first.refresh_token }, headers: { 'x-request-id': 'refresh-ok-1' } });
    expect(ok.status).toBe(200);
    const refused = await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: 'A'.repeat(43) } });
    expectErrorShape(refused, 401, 'invalid_refresh_token');
    for (const r of [ok, refused]) {
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers.pragma).toBe('no-cache');
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.text));
    }
    expect(ok.headers['x-request-id']).toBe('refresh-ok-1');
    expect(refused.headers['x-request-id']).toBe(refused.json().requestId);
    // A gateway answer built by hono still carries the request id set on the Node response.
    expect((await request(stack, 'GET', '/mlgate/health', { headers: { 'x-request-id': 'health-1' } })).headers['x-request-id']).toBe('health-1');
  });

  it('of 50 concurrent refreshes of one token exactly one succeeds', async () => {
    const { refresh_token } = await loginAdmin(stack);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: refresh_token } })),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(results.filter((r) => r.status === 401)).toHaveLength(49);
    // Strict mode (ML Server): the concurrent reuse revoked the family, including the winner's new token.
    const winner = ok[0]!.json();
    expectErrorShape(await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: winner.refresh_token } }), 401);
  });

  it('DELETE /login/refreshToken revokes the refresh token and its access token', async () => {
    const t = await loginAdmin(stack);
    const del = await request(stack, 'DELETE', `/login/refreshToken?refreshToken=${encodeURIComponent(t.refresh_token)}`);
    expect(del.status).toBe(200);
    expectErrorShape(await request(stack, 'POST', '/login/refreshToken', { json: { refreshToken: t.refresh_token } }), 401);
    expectErrorShape(await request(stack, 'GET', '/status', { token: t.access_token }), 401, 'token_revoked');
    // Deleting it again: 401 unknown token, never 500.
    expectErrorShape(await request(stack, 'DELETE', `/login/refreshToken?refreshToken=${t.refresh_token}`), 401);
  });

  it.each([
    ['an unknown token', { refreshToken: 'A'.repeat(43) }, 401],
    ['a malformed token', { refreshToken: 'short' }, 401],
    ['a numeric token', { refreshToken: 42 }, 400],
    ['no token', {}, 400],
  ])('refresh with %s (%j) answers %i', async (_n, json, status) => {
    expectErrorShape(await request(stack, 'POST', '/login/refreshToken', { json }), status);
  });

  it('DELETE without the query parameter is 400', async () => {
    expectErrorShape(await request(stack, 'DELETE', '/login/refreshToken'), 400, 'missing_field');
  });
});

describe('routing and paths', () => {
  it('answers an unknown route with 404 route_not_found and forwards nothing', async () => {
    const { access_token } = await loginAdmin(stack);
    const before = stack.node.received.length;
    expectErrorShape(await request(stack, 'GET', '/no/such/route', { token: access_token }), 404, 'route_not_found');
    expectErrorShape(await request(stack, 'GET', '/mlgate/nothing', { token: access_token }), 404, 'route_not_found');
    expect(stack.node.received.length).toBe(before);
  });

  it('answers refusals with their headers: Allow on 405, WWW-Authenticate on 401, no body for HEAD', async () => {
    const notAllowed = await request(stack, 'PUT', '/login');
    expectErrorShape(notAllowed, 405);
    expect(notAllowed.headers.allow).toBe('POST');
    expect(notAllowed.headers['cache-control']).toBe('no-store');
    const unauthenticated = await request(stack, 'GET', '/status');
    expectErrorShape(unauthenticated, 401);
    expect(unauthenticated.headers['www-authenticate']).toMatch(/^Bearer/);
    const head = await request(stack, 'HEAD', '/no/such/route');
    expect(head.status).toBe(404);
    expect(head.text).toBe('');
    expect(head.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ['/services/../status', 'dot_segment'],
    ['/services/a%2Fb/1', 'encoded_slash'],
    ['/services//a', 'empty_segment'],
    ['/services/a;x=1/1', 'path_parameter'],
    ['/status%00', 'control_character'],
    ['/services/%C0%AF/1', 'invalid_utf8'],
  ])('refuses %s with 400 before authentication', async (path, reason) => {
    const before = stack.node.received.length;
    const r = await rawRequest(stack.port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toContain(reason);
    expect(stack.node.received.length).toBe(before);
  });

  it('answers HTTP/1.1 without Host (400) and an Expect other than 100-continue (417) in JSON too', async () => {
    const noHost = await rawRequest(stack.port, 'GET /status HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(noHost.status).toBe(400);
    expect(JSON.parse(noHost.body)).toMatchObject({ error: 'malformed_request' });
    const expect417 = await rawRequest(stack.port, 'GET /mlgate/health HTTP/1.1\r\nHost: localhost\r\nExpect: bogus\r\nConnection: close\r\n\r\n');
    expect(expect417.status).toBe(417);
    expect(JSON.parse(expect417.body)).toMatchObject({ error: 'expectation_failed' });
  });

  it('a login body that breaks HTTP framing (a bad chunk size) gets a JSON 400, and the gateway stays up', async () => {
    const r = await rawRequest(stack.port, 'POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', 5000, false);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'malformed_request' });
    expect((await request(stack, 'GET', '/mlgate/health')).status).toBe(200);
  });

  it('refuses to start with a tokens.graceKeyFile that does not hold 32 bytes, naming the file', async () => {
    const graceKeyFile = join(mkdtempSync(join(tmpdir(), 'mlgate-grace-')), 'grace.key');
    writeFileSync(graceKeyFile, randomBytes(16).toString('base64'));
    await expect(startStack({ config: { tokens: { reuseGraceSeconds: 5, graceKeyFile } } })).rejects.toThrow(/graceKeyFile: .*holds 16 bytes; it must hold 32/);
  });

  it('answers CONNECT (a tunnel request) with a JSON 405 and forwards nothing', async () => {
    const before = stack.node.received.length;
    const r = await rawRequest(stack.port, 'CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n');
    expect(r.status).toBe(405);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'method_not_allowed' });
    expect(stack.node.received.length).toBe(before);
    expect((await request(stack, 'GET', '/mlgate/health')).status).toBe(200);
  });

  it('answers malformed HTTP with a JSON 400 and stays up', async () => {
    const r = await rawRequest(stack.port, 'THIS IS NOT HTTP\r\n\r\n');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toBe('malformed_request');
    expect((await request(stack, 'GET', '/mlgate/health')).status).toBe(200);
  });

  it('serves the JWKS with public keys only', async () => {
    const r = await request(stack, 'GET', '/.well-known/jwks.json');
    expect(r.status).toBe(200);
    const { keys } = r.json();
    expect(keys).toHaveLength(1);
    expect(keys[0].kid).toBe(stack.gateway.keys.signer.kid);
    expect(keys[0].d).toBeUndefined();
  });

  it('reports ready when the store and revocation view are fine', async () => {
    const r = await request(stack, 'GET', '/mlgate/ready');
    expect(r.status).toBe(200);
    expect(r.json().status).toBe('ready');
  });
});

describe('upstream failures', () => {
  it('answers 503 upstream_unavailable when the node is down, never a stack trace', async () => {
    const down = await startStack();
    const { access_token } = await loginAdmin(down);
    await down.node.close();
    const r = await request(down, 'GET', '/status', { token: access_token });
    expectErrorShape(r, 503, 'upstream_unavailable');
    await down.close();
  });
});

describe('HEAD and adapter-level refusals', () => {
  it('passes a proxied HEAD answer through without a second write of the headers', async () => {
    const { access_token } = await loginAdmin(stack);
    const errors = vi.spyOn(console, 'error');
    const before = stack.node.received.length;
    const r = await request(stack, 'HEAD', '/status', { token: access_token });
    // The example node, like ML Server, routes GET only: its 404 comes back unchanged, without a body.
    expect(stack.node.received.slice(before).map((x) => x.method)).toEqual(['HEAD']);
    expect(r.status).toBe(404);
    expect(r.text).toBe('');
    await new Promise((res) => setTimeout(res, 50));
    expect(errors.mock.calls.flat().join(' ')).not.toContain('ERR_HTTP_HEADERS_SENT');
    errors.mockRestore();
  });

  it('answers a request without a Host header with the JSON error shape', async () => {
    const r = await rawRequest(stack.port, 'GET /status HTTP/1.0\r\n\r\n');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toBe('malformed_request');
  });
});

describe('user revocation and a new login in the same second', () => {
  it('refuses the old token and accepts one issued right after the revocation', async () => {
    const before = await loginAdmin(stack);
    await stack.gateway.store.revokeSubject('admin', Date.now(), Date.now());
    const after = await loginAdmin(stack);
    expectErrorShape(await request(stack, 'GET', '/status', { token: before.access_token }), 401, 'token_revoked');
    expect((await request(stack, 'GET', '/status', { token: after.access_token })).status).toBe(200);
  });
});

describe('readiness follows the nodes', () => {
  it('answers 503 naming the nodes check when no node takes requests', async () => {
    const s = await startStack({ config: { upstream: { healthCheck: { enabled: true, intervalMs: 100, timeoutMs: 500, unhealthyAfter: 1, healthyAfter: 1 } } } });
    try {
      expect((await request(s, 'GET', '/mlgate/ready')).status).toBe(200);
      await s.node.close();
      let r = await request(s, 'GET', '/mlgate/ready');
      for (let i = 0; i < 50 && r.status === 200; i++) {
        await new Promise((res) => setTimeout(res, 100));
        r = await request(s, 'GET', '/mlgate/ready');
      }
      expect(r.status, JSON.stringify(s.gateway.upstream.status())).toBe(503);
      expect(r.json()).toMatchObject({ status: 'not_ready', checks: { nodes: 'none_available', store: 'ok' } });
      // /mlgate/health only says the process is up.
      expect((await request(s, 'GET', '/mlgate/health')).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('slow clients (slowloris)', () => {
  it('cuts a client that sends its headers too slowly, and keeps serving others', async () => {
    const s = await startStack({ config: { server: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } } });
    try {
      const socket = tls.connect({ host: '127.0.0.1', port: s.port, ca: CA, servername: 'localhost' });
      await new Promise<void>((r) => socket.once('secureConnect', () => r()));
      const t0 = Date.now();
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d));
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      socket.write('GET /status HTTP/1.1\r\nHost: localhost\r\n');
      // One header line every 300 ms, never the blank line that ends them.
      const drip = setInterval(() => socket.writable && socket.write(`X-Slow-${Date.now()}: 1\r\n`), 300);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 8000))]);
      clearInterval(drip);
      const took = Date.now() - t0;
      expect(socket.destroyed || socket.closed).toBe(true);
      expect(took).toBeLessThan(4000);
      if (answer) expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect((await request(s, 'GET', '/mlgate/health')).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
