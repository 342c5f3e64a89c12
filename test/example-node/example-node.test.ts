import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadSha256, startExampleNode } from '../../src/example-node/index.ts';
import type { ExampleNode } from '../../src/example-node/index.ts';

const certs = (f: string): Buffer => readFileSync(fileURLToPath(new URL(`../../certs-example/${f}`, import.meta.url)));
const ca = certs('ca.crt');
const clientCert = certs('gateway-client.crt');
const clientKey = certs('gateway-client.key');

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  json: () => any; // test convenience: parsed JSON body
}

interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  clientCert?: boolean; // default true
}

function call(node: ExampleNode, r: Req): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const withCert = r.clientCert ?? true;
    const req = request(
      {
        host: '127.0.0.1',
        port: node.port,
        method: r.method ?? 'GET',
        path: r.path,
        headers: r.headers,
        ca,
        servername: 'localhost',
        ...(withCert ? { cert: clientCert, key: clientKey } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body.toString('utf8')),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(r.body);
  });
}

const jsonHeaders = { 'content-type': 'application/json' };

function fakeJwt(payload: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'ES256', typ: 'JWT' })}.${b64(payload)}.c2ln`;
}

describe('example node (mTLS, ML-Server-like)', () => {
  let node: ExampleNode;

  beforeAll(async () => {
    node = await startExampleNode({ port: 0, cert: certs('node.crt'), key: certs('node.key'), ca });
  });
  afterAll(async () => {
    await node?.close();
  });

  it('rejects a client without a certificate in the TLS handshake and records nothing', async () => {
    const before = node.received.length;
    await expect(call(node, { path: '/status', clientCert: false })).rejects.toThrow();
    expect(node.received.length).toBe(before);
  });

  it('answers GET /status with the client certificate', async () => {
    const r = await call(node, { path: '/status' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json()).toMatchObject({ statusCode: 'Pass', node: 'example-node' });
    expect(node.url).toBe(`https://127.0.0.1:${node.port}`);
  });

  it('publishes, lists, gets, patches and deletes a service', async () => {
    const sub = 'alice@example.com';
    const created = await call(node, {
      method: 'POST',
      path: '/services/transmission/1.0.0',
      headers: { ...jsonHeaders, 'x-mlgate-assertion': fakeJwt({ sub, name: 'Alice', roles: ['Owner'] }) },
      body: JSON.stringify({
        description: 'manual transmission',
        code: 'manualTransmission <- function(hp, wt) 1',
        runtimeType: 'R',
        inputParameterDefinitions: [
          { name: 'hp', type: 'numeric' },
          { name: 'wt', type: 'numeric' },
        ],
        outputParameterDefinitions: [{ name: 'answer', type: 'numeric' }],
      }),
    });
    expect(created.status).toBe(201);
    const rec = created.json();
    expect(rec).toMatchObject({
      name: 'transmission',
      version: '1.0.0',
      description: 'manual transmission',
      runtimeType: 'R',
      publishedBy: sub,
      snapshotId: null,
    });
    expect(Date.parse(rec.creationTime)).not.toBeNaN();
    expect(node.services.get('transmission/1.0.0')?.publishedBy).toBe(sub);

    await call(node, { method: 'POST', path: '/services/transmission/2.0.0', headers: jsonHeaders, body: '{}' });

    const all = await call(node, { path: '/services' });
    expect(all.status).toBe(200);
    expect(all.json().map((s: { version: string }) => s.version)).toEqual(
      expect.arrayContaining(['1.0.0', '2.0.0']),
    );
    const versions = await call(node, { path: '/services/transmission' });
    expect(versions.json().map((s: { version: string }) => s.version)).toEqual(['1.0.0', '2.0.0']);

    const one = await call(node, { path: '/services/transmission/1.0.0' });
    expect(one.status).toBe(200);
    expect(one.json().inputParameterDefinitions).toEqual([
      { name: 'hp', type: 'numeric' },
      { name: 'wt', type: 'numeric' },
    ]);

    const swagger = await call(node, { path: '/api/transmission/1.0.0/swagger.json' });
    expect(swagger.status).toBe(200);
    expect(swagger.json()).toMatchObject({ swagger: '2.0', info: { title: 'transmission', version: '1.0.0' } });

    const patched = await call(node, {
      method: 'PATCH',
      path: '/services/transmission/1.0.0',
      headers: jsonHeaders,
      body: JSON.stringify({ description: 'v1, patched' }),
    });
    expect(patched.status).toBe(200);
    expect(patched.json()).toMatchObject({ description: 'v1, patched', publishedBy: sub });

    const consumed = await call(node, {
      method: 'POST',
      path: '/api/transmission/1.0.0',
      headers: jsonHeaders,
      body: JSON.stringify({ hp: 120, wt: 2.8 }),
    });
    expect(consumed.status).toBe(200);
    expect(consumed.json()).toEqual({
      success: true,
      outputParameters: { answer: { hp: 120, wt: 2.8 } },
      errorMessage: '',
      consoleOutput: '',
      changedFiles: [],
      outputFiles: {},
    });

    const batch = await call(node, {
      method: 'POST',
      path: '/api/transmission/1.0.0/batch',
      headers: jsonHeaders,
      body: JSON.stringify([{ hp: 1 }, { hp: 2 }]),
    });
    expect(batch.status).toBe(201);
    const id = batch.json().batchExecutionId as string;
    const status = await call(node, { path: `/api/transmission/1.0.0/batch/${id}` });
    expect(status.status).toBe(200);
    expect(status.json()).toMatchObject({ batchExecutionId: id, state: 'Complete', totalItemCount: 2 });

    const deleted = await call(node, { method: 'DELETE', path: '/services/transmission/1.0.0' });
    expect(deleted.status).toBe(200);
    expect((await call(node, { path: '/services/transmission/1.0.0' })).status).toBe(404);
    expect((await call(node, { method: 'DELETE', path: '/services/transmission/1.0.0' })).status).toBe(404);
    expect((await call(node, { method: 'PATCH', path: '/services/transmission/1.0.0', body: '{}' })).status).toBe(
      404,
    );
    const gone = await call(node, { method: 'POST', path: '/api/transmission/1.0.0', headers: jsonHeaders, body: '{}' });
    expect(gone.status).toBe(404);
    expect(node.services.has('transmission/1.0.0')).toBe(false);
  });

  it('answers 409 on a duplicate publish', async () => {
    const first = await call(node, { method: 'POST', path: '/services/dup/1', headers: jsonHeaders, body: '{}' });
    expect(first.status).toBe(201);
    const again = await call(node, { method: 'POST', path: '/services/dup/1', headers: jsonHeaders, body: '{}' });
    expect(again.status).toBe(409);
    expect(again.json()).toMatchObject({ error: 'conflict' });
  });

  it('publishes with a server-generated version on POST /services/{name}', async () => {
    const r = await call(node, { method: 'POST', path: '/services/auto', headers: jsonHeaders, body: '{"description":"d"}' });
    expect(r.status).toBe(201);
    const api: string = r.json();
    expect(api).toMatch(/^\/api\/auto\/[0-9a-f-]{36}$/);
    expect(r.headers.location).toBe(api);
    const version = api.split('/')[3]!;
    expect(node.services.get(`auto/${version}`)).toMatchObject({ name: 'auto', version, description: 'd' });
    const again = await call(node, { method: 'POST', path: '/services/auto', headers: jsonHeaders, body: '{}' });
    expect(again.json()).not.toBe(api);
  });

  it('answers 400 JSON to malformed JSON', async () => {
    const r = await call(node, { method: 'POST', path: '/services/bad/1', headers: jsonHeaders, body: '{"code":' });
    expect(r.status).toBe(400);
    expect(r.json()).toMatchObject({ error: 'bad_request' });
    expect(node.services.has('bad/1')).toBe(false);
    const sessions = await call(node, { method: 'POST', path: '/sessions', headers: jsonHeaders, body: '[nope' });
    expect(sessions.status).toBe(400);
  });

  it('answers 413 to a JSON body over 1 MiB', async () => {
    const big = JSON.stringify({ code: 'x'.repeat(1024 * 1024) });
    const r = await call(node, { method: 'POST', path: '/services/big/1', headers: jsonHeaders, body: big });
    expect(r.status).toBe(413);
    expect(node.received.at(-1)?.bodyBytes).toBe(Buffer.byteLength(big));
  });

  it('streams a 2 MB octet-stream body and returns its sha256', async () => {
    await call(node, { method: 'POST', path: '/services/x/1', headers: jsonHeaders, body: '{}' });
    const data = randomBytes(2 * 1024 * 1024);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const r = await call(node, {
      method: 'POST',
      path: '/api/x/1',
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ bytes: data.length, sha256 });
    const rec = node.received.at(-1);
    expect(rec).toMatchObject({ method: 'POST', url: '/api/x/1', bodyBytes: data.length, bodySha256: sha256 });
  });

  it('streams GET /download?bytes=N deterministically', async () => {
    const n = 1_000_003;
    const r = await call(node, { path: `/download?bytes=${n}` });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(n);
    expect(createHash('sha256').update(r.body).digest('hex')).toBe(downloadSha256(n));
    expect((await call(node, { path: '/download?bytes=1073741825' })).status).toBe(400);
  });

  it('records raw request targets and headers unchanged', async () => {
    const paths = ['/services/a/1?x=%2F', '/services/%61/1', '/api/a/..%2F..%2Fadmin', '/nowhere/./x'];
    for (const p of paths) await call(node, { path: p, headers: { 'x-test': 'raw' } });
    const urls = node.received.filter((r) => r.headers['x-test'] === 'raw').map((r) => r.url);
    expect(urls).toEqual(paths);
    const unknown = await call(node, { path: '/nowhere' });
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ error: 'not_found' });
  });

  it('returns the identity from the assertion on GET /user', async () => {
    const r = await call(node, {
      path: '/user',
      headers: { 'x-mlgate-assertion': fakeJwt({ sub: 'bob', name: 'Bob', roles: ['Reader'] }) },
    });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ sub: 'bob', name: 'Bob', roles: ['Reader'], assertion: 'unverified' });
  });

  it('manages sessions and lists snapshots', async () => {
    const created = await call(node, {
      method: 'POST',
      path: '/sessions',
      headers: jsonHeaders,
      body: JSON.stringify({ name: 'Session One' }),
    });
    expect(created.status).toBe(201);
    const id = created.json().sessionId as string;
    expect((await call(node, { path: '/sessions' })).json()).toEqual(
      expect.arrayContaining([expect.objectContaining({ sessionId: id, name: 'Session One' })]),
    );
    expect((await call(node, { method: 'DELETE', path: `/sessions/${id}` })).status).toBe(200);
    expect((await call(node, { method: 'DELETE', path: `/sessions/${id}` })).status).toBe(404);
    expect((await call(node, { path: '/snapshots' })).json()).toEqual([]);
  });
});

describe('example node with verifyAssertion', () => {
  let node: ExampleNode;
  const seen: string[] = [];

  beforeAll(async () => {
    node = await startExampleNode({
      port: 0,
      cert: certs('node.crt'),
      key: certs('node.key'),
      ca,
      verifyAssertion: async (token) => {
        seen.push(token);
        if (token !== 'good') throw new Error('signature verification failed');
        return { sub: 'carol', name: 'Carol', roles: ['Contributor'] };
      },
    });
  });
  afterAll(async () => {
    await node?.close();
  });

  it('answers 401 when the assertion is missing or rejected, and records the request', async () => {
    const missing = await call(node, { path: '/services' });
    expect(missing.status).toBe(401);
    expect(missing.json()).toMatchObject({ error: 'unauthorized' });

    const bad = await call(node, {
      method: 'POST',
      path: '/services/s/1',
      headers: { ...jsonHeaders, 'x-mlgate-assertion': 'forged' },
      body: '{}',
    });
    expect(bad.status).toBe(401);
    expect(seen).toContain('forged');
    expect(node.services.size).toBe(0);
    expect(node.received.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /services', 'POST /services/s/1']);
    expect(node.received[1]?.bodyBytes).toBe(2);
  });

  it('lets GET /status through without an assertion', async () => {
    expect((await call(node, { path: '/status' })).status).toBe(200);
  });

  it('uses the verified claims', async () => {
    const pub = await call(node, {
      method: 'POST',
      path: '/services/s/1',
      headers: { ...jsonHeaders, 'x-mlgate-assertion': 'good' },
      body: '{}',
    });
    expect(pub.status).toBe(201);
    expect(pub.json().publishedBy).toBe('carol');
    const user = await call(node, { path: '/user', headers: { 'x-mlgate-assertion': 'good' } });
    expect(user.json()).toMatchObject({ sub: 'carol', roles: ['Contributor'], assertion: 'verified' });
  });
});

describe('requireLogin: the node has its own login, like an ML Server web node', () => {
  let node: ExampleNode;
  beforeAll(async () => {
    node = await startExampleNode({
      cert: certs('node.crt'),
      key: certs('node.key'),
      ca,
      requireLogin: { username: 'svc', password: 'svc-pw-1', tokenTtlSeconds: 1 },
    });
  });
  afterAll(async () => {
    await node?.close();
  });
  const json = { 'content-type': 'application/json' };
  const login = (username: string, password: string) =>
    call(node, { method: 'POST', path: '/login', headers: json, body: JSON.stringify({ username, password }) });

  it('answers 401 without a token, or with a wrong password', async () => {
    expect((await call(node, { path: '/status' })).status).toBe(401);
    expect((await call(node, { path: '/status', headers: { authorization: 'Bearer made-up' } })).status).toBe(401);
    expect((await login('svc', 'wrong')).status).toBe(401);
  });

  it('logs in with the ML Server token answer, accepts the token, rotates the refresh token and lets tokens expire', async () => {
    const r = await login('svc', 'svc-pw-1');
    expect(r.status).toBe(200);
    const t = r.json();
    expect(Object.keys(t).sort()).toEqual(['access_token', 'expires_in', 'expires_on', 'refresh_token', 'token_type']);
    expect(t.expires_in).toBe(1);
    expect((await call(node, { path: '/status', headers: { authorization: `Bearer ${t.access_token}` } })).status).toBe(200);

    const refresh = (token: string) =>
      call(node, { method: 'POST', path: '/login/refreshToken', headers: json, body: JSON.stringify({ refreshToken: token }) });
    const r2 = await refresh(t.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.json().access_token).not.toBe(t.access_token);
    expect((await refresh(t.refresh_token)).status).toBe(401); // used once
    expect(node.loginStats).toMatchObject({ logins: 1, refreshes: 1, refusedRefreshes: 1 });

    await new Promise((res) => setTimeout(res, 1100));
    const expired = await call(node, { path: '/status', headers: { authorization: `Bearer ${r2.json().access_token}` } });
    expect(expired.status).toBe(401);
    expect(expired.json().message).toContain('expired');
  });
});
