// The forwarding-engine contract (src/proxy/transport.ts): what every engine does, checked through a real
// gateway in front of real nodes on loopback (mutual TLS, no mocked sockets). transport.test.ts runs it for each
// engine; whatever an engine does differently must show up here as a failure.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { downloadSha256 } from '../../src/example-node/index.ts';
import { writePseudoRandom } from '../../src/example-node/download.ts';
import type { Engine } from '../../src/proxy/index.ts';
import { CA, cert, expectErrorShape, loginAdmin, rawRequest, request } from '../integration/setup.ts';
import { startGateway, startNode, waitFor, type Gw } from '../integration/upstream-setup.ts';

const MB = 1024 * 1024;

/** What a test node saw of one request. */
export interface Seen {
  method: string;
  /** The raw request-target, exactly as it arrived. */
  url: string;
  headers: Record<string, string | string[]>;
  bytes: number;
  sha256: string;
  /** The whole body arrived ('end'). */
  ended: boolean;
  /** The request closed before its end (client or gateway aborted it). */
  aborted: boolean;
  closed: boolean;
}

interface TestNode {
  url: string;
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

function rawHeaders(raw: string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const prev = out[name];
    out[name] = prev === undefined ? raw[i + 1]! : ([] as string[]).concat(prev, raw[i + 1]!);
  }
  return out;
}

/**
 * A node that misbehaves on request, over the same mutual TLS as a real one. Paths (after /t/):
 * sink = read the body, answer its size and SHA-256; slow = never answer; nocontent = 204; switch = an unrequested
 * 101; status099 = a status below 100; reset-cl / reset-chunked = send the
 * head and 64 KiB of a 1 MiB answer, then reset the connection; download?bytes=N = N pseudo-random bytes;
 * anything else = answer the request-target and headers it got.
 */
async function startTestNode(): Promise<TestNode> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const server = https.createServer({
    cert: readFileSync(cert('node.crt')),
    key: readFileSync(cert('node.key')),
    ca: CA,
    requestCert: true,
    rejectUnauthorized: true,
    keepAliveTimeout: 65_000,
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: rawHeaders(req.rawHeaders), bytes: 0, sha256: '', ended: false, aborted: false, closed: false };
    seen.push(s);
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => {
      s.bytes += c.length;
      hash.update(c);
    });
    req.on('error', () => {});
    res.on('error', () => {});
    req.once('end', () => {
      s.ended = true;
      s.sha256 = hash.digest('hex');
    });
    req.once('close', () => {
      s.closed = true;
      if (!s.ended) s.aborted = true;
    });
    const what = (req.url ?? '').slice(3).split('?')[0];
    const done = (fn: () => void): void => {
      if (s.ended) fn();
      else req.once('end', fn);
    };
    if (what === 'slow') return; // reads the request, never answers
    // Answers no client can be given: a 101 to a request that asked for no upgrade, a status below 100.
    if (what === 'switch') return done(() => void req.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    if (what === 'status099') return done(() => void req.socket.write('HTTP/1.1 099 Weird\r\nContent-Length: 2\r\n\r\nok'));
    // Reason phrases beyond ASCII: one latin1 byte, and UTF-8.
    // Written raw, then the connection closed: this server's own response for the request never ends.
    if (what === 'reason-latin1') return done(() => void req.socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 Tr'), Buffer.from([0xe8]), Buffer.from('s Bien\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')])));
    if (what === 'reason-utf8') return done(() => void req.socket.end(Buffer.from('HTTP/1.1 200 OK \u2713\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok', 'utf8')));
    // A whole answer with junk after it; an answer whose first chunk is broken.
    if (what === 'junk-after') return done(() => void req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA-GARBAGE\r\n\r\n'));
    if (what === 'bad-chunk') return done(() => void req.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n'));
    if (what === 'nocontent') return done(() => void res.writeHead(204, { 'x-answer': 'none' }).end());
    if (what === 'reset-cl' || what === 'reset-chunked') {
      res.writeHead(200, what === 'reset-cl' ? { 'content-type': 'application/octet-stream', 'content-length': String(MB) } : { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(64 * 1024, 7));
      setTimeout(() => req.socket.destroy(), 50);
      return;
    }
    if (what === 'download') {
      const bytes = Number(new URL(req.url ?? '', 'https://x').searchParams.get('bytes'));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes) });
      return done(() => writePseudoRandom(res, bytes));
    }
    done(() => {
      const body = what === 'sink' ? { bytes: s.bytes, sha256: s.sha256 } : { url: s.url, headers: s.headers };
      const json = JSON.stringify(body);
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(json)),
        connection: 'x-node-hop',
        'x-node-hop': 'must-not-arrive',
        'keep-alive': 'timeout=60',
      });
      res.end(json);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: number;
  sha256: string;
  text: string;
  /** The answer ended cleanly ('end'); false when it was cut. */
  complete: boolean;
  error: string | undefined;
}

interface SendOptions {
  token?: string;
  headers?: Record<string, string>;
  /** Bytes to send; `stream` streams pseudo-random bytes of that length. */
  body?: Buffer | { stream: number; chunked?: boolean };
  timeoutMs?: number;
}

/** One request on its own connection; never rejects: a cut or failed exchange is in `error`/`complete`. */
function send(g: Gw, method: string, path: string, opts: SendOptions = {}): Promise<Got & { sent: string }> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    const stream = opts.body && !Buffer.isBuffer(opts.body) ? opts.body : undefined;
    if (stream && !stream.chunked) headers['content-length'] = String(stream.stream);
    const sentHash = createHash('sha256');
    const got: Got = { status: 0, headers: {}, bytes: 0, sha256: '', text: '', complete: false, error: undefined };
    const chunks: Buffer[] = [];
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      got.text = Buffer.concat(chunks).toString('utf8');
      resolve({ ...got, sent: sentHash.digest('hex') });
    };
    // path as given: sent byte for byte (new URL() would re-encode some characters of it).
    const req = https.request({ host: '127.0.0.1', port: g.port, path, method, headers, ca: CA, servername: 'localhost', agent: false }, (res) => {
      got.status = res.statusCode ?? 0;
      got.headers = res.headers;
      const hash = createHash('sha256');
      res.on('data', (c: Buffer) => {
        got.bytes += c.length;
        hash.update(c);
        if (got.bytes <= 64 * 1024) chunks.push(c);
      });
      res.on('end', () => {
        got.complete = true;
        got.sha256 = hash.digest('hex');
        finish();
      });
      res.on('error', (e) => {
        got.error = e.message;
        finish();
      });
      res.on('close', () => {
        if (!got.complete) got.error ??= 'closed before the end';
        finish();
      });
    });
    const timer = setTimeout(() => req.destroy(new Error('client timeout')), opts.timeoutMs ?? 15_000);
    req.on('error', (e) => {
      got.error ??= e.message;
      finish();
    });
    if (!stream) {
      if (Buffer.isBuffer(opts.body)) sentHash.update(opts.body);
      req.end(opts.body);
      return;
    }
    writePseudoRandom(req, stream.stream, (chunk) => sentHash.update(chunk));
  });
}

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const CONTRACT_ROUTES = { policy: { extraRoutes: [{ id: 'contract', methods: ALL_METHODS, pattern: '/t/{rest*}', roles: ['Owner'] }] } };

export function transportContract(engine: Engine): void {
  const tracked: { close(): Promise<void> | void }[] = [];
  afterEach(async () => {
    while (tracked.length) await tracked.pop()!.close();
  });
  async function gw(upstream: Record<string, unknown>, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<Gw> {
    const g = await startGateway(upstream, { ...CONTRACT_ROUTES, ...extra, proxy: { engine } }, env);
    tracked.push(g);
    expect(g.gateway.upstream.engine).toBe(engine === 'hpm' ? 'http-proxy-middleware' : 'undici');
    return g;
  }
  async function testNode(): Promise<TestNode> {
    const n = await startTestNode();
    tracked.push(n);
    return n;
  }
  const idle = (g: Gw) => () => g.gateway.upstream.status().every((s) => s.inflight === 0);

  describe('streaming', () => {
    let node: TestNode;
    let g: Gw;
    let token: string;
    beforeAll(async () => {
      node = await startTestNode();
      g = await startGateway({ url: node.url }, { ...CONTRACT_ROUTES, proxy: { engine } });
      token = (await loginAdmin(g)).access_token;
    });
    afterAll(async () => {
      await g?.close();
      await node?.close();
    });

    it('streams 100 MB up and 100 MB down with the SHA-256 equal at both ends', async () => {
      const t0 = Date.now();
      const up = await send(g, 'POST', '/t/sink', { token, body: { stream: 100 * MB }, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: 120_000 });
      const upMs = Date.now() - t0;
      expect(up.error).toBeUndefined();
      expect(up.status).toBe(200);
      expect(JSON.parse(up.text)).toEqual({ bytes: 100 * MB, sha256: up.sent });
      const t1 = Date.now();
      const down = await send(g, 'GET', `/t/download?bytes=${100 * MB}`, { token, timeoutMs: 120_000 });
      const downMs = Date.now() - t1;
      expect(down.status).toBe(200);
      expect(down.complete).toBe(true);
      expect(down.bytes).toBe(100 * MB);
      expect(down.sha256).toBe(downloadSha256(100 * MB));
      console.log(`[contract ${engine}] 100 MB up in ${upMs} ms, 100 MB down in ${downMs} ms (gateway, client and node in one process)`);
    }, 180_000);

    it('streams a chunked upload (no Content-Length) whole', async () => {
      const up = await send(g, 'PUT', '/t/sink', { token, body: { stream: 3 * MB + 17, chunked: true } });
      expect(up.status).toBe(200);
      expect(JSON.parse(up.text)).toEqual({ bytes: 3 * MB + 17, sha256: up.sent });
      expect(node.seen.at(-1)!.headers['transfer-encoding']).toBe('chunked');
    });
  });

  describe('aborts and cuts', () => {
    it('client abort mid-upload: the node sees its request aborted, nothing stays in flight, the gateway keeps serving', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url });
      const { access_token } = await loginAdmin(g);
      await new Promise<void>((resolve, reject) => {
        const req = https.request(new URL('/t/sink', g.url), {
          method: 'POST',
          ca: CA,
          agent: false,
          headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/octet-stream', 'content-length': String(64 * MB) },
        });
        req.on('error', () => {});
        req.write(Buffer.alloc(1 * MB, 1));
        waitFor('the node to receive part of the body', () => (node.seen[0]?.bytes ?? 0) > 0).then(() => {
          req.destroy();
          resolve();
        }, reject);
      });
      await waitFor('the node request to close', () => node.seen[0]!.closed, 5000);
      expect(node.seen[0]!.aborted).toBe(true);
      expect(node.seen[0]!.bytes).toBeLessThan(64 * MB);
      await waitFor('no request in flight', idle(g), 5000);
      const after = await send(g, 'GET', '/t/after', { token: access_token });
      expect(after.status).toBe(200);
    });

    it.each(['reset-cl', 'reset-chunked'])('upstream reset mid-response (%s): the client sees a cut answer, not a hang or a complete one', async (what) => {
      const node = await testNode();
      const g = await gw({ url: node.url });
      const { access_token } = await loginAdmin(g);
      const t0 = Date.now();
      const r = await send(g, 'GET', `/t/${what}`, { token: access_token, timeoutMs: 10_000 });
      expect(r.status).toBe(200);
      expect(r.complete).toBe(false);
      expect(r.error).toBeDefined();
      expect(r.error).not.toBe('client timeout');
      expect(r.bytes).toBeLessThan(MB);
      expect(Date.now() - t0).toBeLessThan(5000);
      await waitFor('no request in flight', idle(g), 5000);
      expect((await send(g, 'GET', '/t/after', { token: access_token })).status).toBe(200);
    });
  });

  describe('failures become JSON errors', () => {
    it('slow upstream: 504 upstream_timeout after responseTimeoutMs, and the node request is closed', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url, responseTimeoutMs: 300 });
      const { access_token } = await loginAdmin(g);
      const t0 = Date.now();
      expectErrorShape(await request(g, 'GET', '/t/slow', { token: access_token }), 504, 'upstream_timeout');
      // hpm: ~300 ms; undici's parser timers tick every ~0.5 s, so ~1 s there (responseTimeoutMs is 120 s by default).
      expect(Date.now() - t0).toBeLessThan(3000);
      await waitFor('the node request to close', () => node.seen[0]!.closed, 5000);
    });

    it('a TLS handshake that never completes: 504 after connectTimeoutMs', async () => {
      const sockets = new Set<net.Socket>();
      const mute = net.createServer((c) => void sockets.add(c));
      await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
      tracked.push({ close: () => void (sockets.forEach((c) => c.destroy()), mute.close()) });
      const g = await gw({ url: `https://127.0.0.1:${(mute.address() as net.AddressInfo).port}`, connectTimeoutMs: 300 });
      const { access_token } = await loginAdmin(g);
      const t0 = Date.now();
      expectErrorShape(await request(g, 'GET', '/t/x', { token: access_token }), 504, 'upstream_timeout');
      expect(Date.now() - t0).toBeLessThan(3000);
    });

    it('a node whose TLS handshake never completes: the GET goes to the other node, which is not blamed for it', async () => {
      const sockets = new Set<net.Socket>();
      const mute = net.createServer((c) => void sockets.add(c));
      await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
      tracked.push({ close: () => void (sockets.forEach((c) => c.destroy()), mute.close()) });
      const good = await testNode();
      const g = await gw({ nodes: [{ url: `https://127.0.0.1:${(mute.address() as net.AddressInfo).port}` }, { url: good.url }], connectTimeoutMs: 300, ejectAfterFailures: 100 });
      const { access_token } = await loginAdmin(g);
      for (let i = 0; i < 4; i++) {
        const r = await send(g, 'GET', `/t/round-${i}`, { token: access_token, timeoutMs: 5_000 });
        expect(r.status, `round ${i}: ${r.text}`).toBe(200);
      }
      const [muted, healthy] = g.gateway.upstream.status();
      expect(muted!.failures).toBeGreaterThanOrEqual(1);
      expect(healthy!.failures).toBe(0);
      await waitFor('nothing in flight', idle(g), 5000);
    });

    it('upstream down (connection refused): 503 upstream_unavailable', async () => {
      const node = await testNode();
      const url = node.url;
      await node.close();
      const g = await gw({ url });
      const { access_token } = await loginAdmin(g);
      expectErrorShape(await request(g, 'GET', '/t/x', { token: access_token }), 503, 'upstream_unavailable');
      expect(g.logs('node request failed').some((l) => String(l.reason).includes('ECONNREFUSED'))).toBe(true);
    });

    it('a node that does not speak HTTP: 502 bad_gateway', async () => {
      const garbage = tls.createServer({ cert: readFileSync(cert('node.crt')), key: readFileSync(cert('node.key')) }, (s) => {
        s.on('data', () => s.end('SSH-2.0-OpenSSH_9.6\r\n'));
        s.on('error', () => {});
      });
      await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
      tracked.push({ close: () => void garbage.close() });
      const g = await gw({ url: `https://127.0.0.1:${(garbage.address() as net.AddressInfo).port}` });
      const { access_token } = await loginAdmin(g);
      expectErrorShape(await request(g, 'GET', '/t/x', { token: access_token }), 502, 'bad_gateway');
    });

    it("a node certificate for another name: 502, the reason in the log", async () => {
      const node = await testNode();
      const g = await gw({ url: node.url, servername: 'other.example' });
      const { access_token } = await loginAdmin(g);
      expectErrorShape(await request(g, 'GET', '/t/x', { token: access_token }), 502, 'bad_gateway');
      expect(g.logs('node request failed').some((l) => /ALTNAME|does not match/.test(String(l.reason)))).toBe(true);
      expect(node.seen).toHaveLength(0);
    });

    it('413 for a body over bodyLimitBytes, declared or chunked; the node never gets a complete body', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url, bodyLimitBytes: 64 * 1024 });
      const { access_token } = await loginAdmin(g);
      const declared = await request(g, 'POST', '/t/sink', { token: access_token, body: Buffer.alloc(100 * 1024, 1), headers: { 'content-type': 'application/octet-stream' } });
      expectErrorShape(declared, 413, 'payload_too_large');
      expect(node.seen).toHaveLength(0);
      const chunked = await send(g, 'POST', '/t/sink', { token: access_token, body: { stream: 512 * 1024, chunked: true } });
      expect(chunked.status).toBe(413);
      expect(JSON.parse(chunked.text).error).toBe('payload_too_large');
      await waitFor('the node request to close', () => node.seen.every((s) => s.closed), 5000);
      expect(node.seen.every((s) => !s.ended && s.bytes <= 64 * 1024 + 64 * 1024)).toBe(true);
      await waitFor('no request in flight', idle(g), 5000);
      const ok = await send(g, 'POST', '/t/sink', { token: access_token, body: { stream: 60 * 1024, chunked: true } });
      expect(JSON.parse(ok.text)).toEqual({ bytes: 60 * 1024, sha256: ok.sent });
    });
  });

  describe('what the node receives', () => {
    it('the request-target byte for byte', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url });
      const { access_token } = await loginAdmin(g);
      const targets = [
        "/t/A%41b/%7Euser/~x!$&'()*+,=:@/%C3%A9/a.b/-_",
        '/t/q?x=a%2Fb&y=%25&z=1+2&w=;&v=/?&u="{}|\\^`[]&t=%zz&&s',
        '/t/e?',
        '/t/UPPER/MiXeD',
      ];
      for (const target of targets) {
        const r = await send(g, 'GET', target, { token: access_token });
        expect(r.status, target).toBe(200);
        expect(JSON.parse(r.text).url, target).toBe(target);
      }
      expect(node.seen.map((s) => s.url)).toEqual(targets);
    });

    it('no hop-by-hop or client-asserted identity headers; X-Forwarded-*, X-Request-Id and the assertion set by mlgate; none of the node hop-by-hop answer headers', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url });
      const { access_token } = await loginAdmin(g);
      const r = await send(g, 'POST', '/t/echo', {
        token: access_token,
        body: Buffer.from('{"a":1}'),
        headers: {
          'content-type': 'application/json',
          connection: 'keep-alive, x-secret-hop',
          'x-secret-hop': 'must-not-arrive',
          'keep-alive': 'timeout=5',
          te: 'trailers',
          'proxy-authorization': 'Basic eDp5',
          'proxy-connection': 'keep-alive',
          forwarded: 'for=6.6.6.6',
          'x-forwarded-for': '6.6.6.6',
          'x-forwarded-host': 'evil.example',
          'x-real-ip': '6.6.6.6',
          'x-http-method-override': 'DELETE',
          'x-mlgate-assertion': 'forged',
          'x-mlgate-user': 'root',
          'x-request-id': 'client-chosen-id-123',
          'x-keep-me': 'yes',
          accept: 'application/json',
        },
      });
      expect(r.status).toBe(200);
      const h = node.seen[0]!.headers;
      for (const name of ['x-secret-hop', 'keep-alive', 'te', 'proxy-authorization', 'proxy-connection', 'forwarded', 'x-real-ip', 'x-http-method-override', 'x-mlgate-user', 'authorization', 'expect', 'upgrade']) {
        expect(h[name], name).toBeUndefined();
      }
      expect(h['x-keep-me']).toBe('yes');
      expect(h.accept).toBe('application/json');
      expect(h['content-type']).toBe('application/json');
      expect(h['content-length']).toBe('7');
      expect(h.host).toBe(`127.0.0.1:${node.port}`);
      expect(h['x-forwarded-for']).toBe('127.0.0.1');
      expect(h['x-forwarded-proto']).toBe('https');
      expect(h['x-forwarded-host']).toBe(`127.0.0.1:${g.port}`);
      expect(h['x-request-id']).toBe(r.headers['x-request-id']);
      expect(h['x-request-id']).toBe('client-chosen-id-123'); // a well-formed client id is kept, set by mlgate
      expect(decodeJwt(String(h['x-mlgate-assertion']))).toMatchObject({ sub: 'admin', aud: 'mlserver-node', roles: ['Owner'] });
      // Every name appears once (nothing doubled by copying).
      for (const [name, v] of Object.entries(h)) expect(Array.isArray(v), name).toBe(false);
      expect(r.headers['x-node-hop']).toBeUndefined();
      expect(r.headers['keep-alive']).not.toBe('timeout=60'); // the node's; the edge sets its own
    });

    it('a body reaches the node framed as the client framed it: nothing inside it becomes a request of its own', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url });
      const { access_token } = await loginAdmin(g);
      // A complete request hidden in a body: if the framing were lost on the way, the node would run it unauthorized.
      const hidden = 'GET /t/hidden HTTP/1.1\r\nHost: localhost\r\n\r\n';
      const chunked = `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
      const head = (method: string, path: string, framing: string) => `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${access_token}\r\n${framing}\r\n`;
      // Connection: close and no half-close: the gateway answers, then closes (a half-closed client counts as gone).
      const raw = (text: string) => rawRequest(g.port, text, 5000, false);
      // Connection naming the framing header does not make it hop-by-hop.
      const byLength = await raw(head('GET', '/t/by-length', `Connection: close, content-length\r\nContent-Length: ${hidden.length}\r\n`) + hidden);
      const byChunks = await raw(head('GET', '/t/by-chunks', 'Connection: close, transfer-encoding\r\nTransfer-Encoding: chunked\r\n') + chunked);
      // http-proxy sends a DELETE without Content-Length as "Content-Length: 0" followed by its body: refused, for every engine.
      const del = await raw(head('DELETE', '/t/del', 'Connection: close\r\nTransfer-Encoding: chunked\r\n') + chunked);
      // Bodies with a declared length on methods that usually have none go through framed.
      const headWithBody = await raw(head('HEAD', '/t/head', `Connection: close\r\nContent-Length: ${hidden.length}\r\n`) + hidden);
      const delWithLength = await raw(head('DELETE', '/t/del-length', `Connection: close\r\nContent-Length: ${hidden.length}\r\n`) + hidden);
      const after = await send(g, 'GET', '/t/after', { token: access_token });
      expect(byLength.status, byLength.body).toBe(200);
      expect(byChunks.status, byChunks.body).toBe(200);
      expect(del.status, del.body).toBe(411);
      expect(JSON.parse(del.body)).toMatchObject({ error: 'length_required' });
      expect(headWithBody.status).toBe(200);
      expect(delWithLength.status).toBe(200);
      expect(after.status).toBe(200);
      expect(JSON.parse(after.text).url).toBe('/t/after');
      expect(node.seen.map((s) => `${s.method} ${s.url} ${s.bytes}`)).toEqual([
        `GET /t/by-length ${hidden.length}`,
        `GET /t/by-chunks ${hidden.length}`,
        `HEAD /t/head ${hidden.length}`,
        `DELETE /t/del-length ${hidden.length}`,
        'GET /t/after 0',
      ]);
    });

    it('HEAD and 204: the head only, its headers intact, and the connection reusable after them', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url });
      const { access_token } = await loginAdmin(g);
      const agent = new https.Agent({ ca: CA, keepAlive: true, maxSockets: 1 });
      tracked.push({ close: () => agent.destroy() });
      const one = (method: string, path: string) =>
        new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
          const r = https.request(new URL(path, g.url), { method, agent, headers: { authorization: `Bearer ${access_token}` } }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          });
          r.on('error', reject);
          r.end();
        });
      const head = await one('HEAD', '/t/echo');
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
      expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
      const none = await one('DELETE', '/t/nocontent');
      expect(none.status).toBe(204);
      expect(none.headers['x-answer']).toBe('none');
      const after = await one('GET', '/t/echo');
      expect(JSON.parse(after.body).url).toBe('/t/echo');
      expect(node.seen.map((s) => s.method)).toEqual(['HEAD', 'DELETE', 'GET']);
    });

    it('Expect: 100-continue is answered at the edge; the node gets the body without the header', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url });
      const { access_token } = await loginAdmin(g);
      const body = JSON.stringify({ code: 'x <- 1' });
      const status = await new Promise<number>((resolve, reject) => {
        const req = https.request(
          new URL('/t/sink', g.url),
          { method: 'POST', ca: CA, agent: false, headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json', expect: '100-continue' } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('continue', () => req.end(body));
        req.on('error', reject);
      });
      expect(status).toBe(200);
      expect(node.seen[0]!.headers.expect).toBeUndefined();
      expect(node.seen[0]!.bytes).toBe(body.length);
    });

    it('passthrough: the client Authorization unchanged and no assertion', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url, identity: 'passthrough' });
      const { access_token } = await loginAdmin(g);
      expect((await send(g, 'GET', '/t/echo', { token: access_token })).status).toBe(200);
      expect(node.seen[0]!.headers.authorization).toBe(`Bearer ${access_token}`);
      expect(node.seen[0]!.headers['x-mlgate-assertion']).toBeUndefined();
    });

    it("serviceAccount: the node's own token (logged in through the engine) and the user in the assertion", async () => {
      const node = await startNode({ requireLogin: { username: 'svc', password: 'Svc-pw-1', tokenTtlSeconds: 3600 } });
      tracked.push(node);
      const g = await gw(
        { url: node.url, identity: 'serviceAccount', serviceAccount: { username: 'svc', passwordEnv: 'MLGATE_CONTRACT_SVC_PW' } },
        {},
        { MLGATE_CONTRACT_SVC_PW: 'Svc-pw-1' },
      );
      const { access_token } = await loginAdmin(g);
      for (let i = 0; i < 3; i++) expect((await request(g, 'GET', '/services', { token: access_token })).status).toBe(200);
      expect(node.loginStats).toMatchObject({ logins: 1, rejected: 0 });
      const h = node.received.filter((r) => r.headers['x-request-id'] !== undefined).at(-1)!.headers;
      expect(h.authorization).toMatch(/^Bearer [A-Za-z0-9_-]{32}$/);
      expect(decodeJwt(String(h['x-mlgate-assertion']))).toMatchObject({ sub: 'admin' });
    });
  });

  describe('answers no client can be given', () => {
    /** A test node behind a gateway of this engine, and an admin token. */
    async function oneNode(): Promise<{ g: Gw; token: string }> {
      const node = await testNode();
      const g = await gw({ url: node.url });
      return { g, token: (await loginAdmin(g)).access_token };
    }

    it('a 101 to a plain request, or a status below 100: 502 JSON, nothing left in flight, the node still used', async () => {
      const { g, token: access_token } = await oneNode();
      for (const what of ['switch', 'status099']) {
        const r = await send(g, 'GET', `/t/${what}`, { token: access_token, timeoutMs: 5_000 });
        expect(r.status, `${what}: ${r.error ?? r.text}`).toBe(502);
        expect(JSON.parse(r.text)).toMatchObject({ error: 'bad_gateway' });
      }
      await waitFor('nothing in flight', idle(g), 5000);
      expect((await send(g, 'GET', '/t/after', { token: access_token })).status).toBe(200);
    });

    it('a whole answer followed by junk is delivered; a broken answer is never presented as complete', async () => {
      const { g, token: access_token } = await oneNode();
      const whole = await send(g, 'GET', '/t/junk-after', { token: access_token, timeoutMs: 5_000 });
      expect(whole.status, whole.error).toBe(200);
      expect(whole.complete).toBe(true);
      expect(whole.text).toBe('ok');
      const broken = await send(g, 'GET', '/t/bad-chunk', { token: access_token, timeoutMs: 5_000 });
      expect(broken.status === 502 || !broken.complete, `${broken.status} ${broken.text}`).toBe(true);
      if (engine === 'hpm') expect(broken.status).toBe(502); // the head is not yet relayed when the chunk breaks
      await waitFor('nothing in flight', idle(g), 5000);
    });

    it('a reason phrase beyond ASCII (latin1 or UTF-8) is relayed or replaced, never a crash', async () => {
      const { g, token: access_token } = await oneNode();
      for (const what of ['reason-latin1', 'reason-utf8']) {
        const r = await send(g, 'GET', `/t/${what}`, { token: access_token, timeoutMs: 5_000 });
        expect([r.status, r.text], `${what}: ${r.error ?? ''}`).toEqual([200, 'ok']);
      }
      expect((await send(g, 'GET', '/t/after', { token: access_token })).status).toBe(200);
    });

    it('health probes go on after a probe got a 101 (none waits forever)', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url, healthCheck: { enabled: true, path: '/t/switch', intervalMs: 100, timeoutMs: 1000, unhealthyAfter: 1, healthyAfter: 1 } });
      await waitFor('the node out after a 101', () => !g.gateway.upstream.status()[0]!.healthy, 5000);
      const probes = () => node.seen.filter((x) => x.url === '/t/switch').length;
      const seen = probes();
      await waitFor('three more probes', () => probes() >= seen + 3, 5000);
    });
  });

  describe('health checks through the engine', () => {
    it('a node whose every connection is busy with slow client requests stays healthy (probes do not queue behind them)', async () => {
      const node = await testNode();
      const g = await gw({ url: node.url, maxSockets: 2, responseTimeoutMs: 10_000, healthCheck: { enabled: true, intervalMs: 100, timeoutMs: 300, unhealthyAfter: 1, healthyAfter: 1 } });
      const { access_token } = await loginAdmin(g);
      const slow = [send(g, 'GET', '/t/slow', { token: access_token, timeoutMs: 2_500 }), send(g, 'GET', '/t/slow', { token: access_token, timeoutMs: 2_500 })];
      await waitFor('both connections busy', () => node.seen.filter((x) => x.url === '/t/slow').length === 2, 5000);
      const probesBefore = node.seen.filter((x) => x.url === '/status').length;
      await new Promise((r) => setTimeout(r, 1_000));
      expect(node.seen.filter((x) => x.url === '/status').length).toBeGreaterThan(probesBefore);
      expect(g.gateway.upstream.status()[0]!.healthy).toBe(true);
      await Promise.all(slow);
    });

    it('probe a live node (round trip recorded) and take a closed one out', async () => {
      const [a, b] = [await testNode(), await testNode()];
      const g = await gw({ nodes: [{ url: a.url }, { url: b.url }], healthCheck: { enabled: true, intervalMs: 100, timeoutMs: 1000, unhealthyAfter: 2, healthyAfter: 1 } });
      await waitFor('a probe round trip', () => g.gateway.upstream.status().every((s) => s.probeLatencyMs !== null), 5000);
      await b.close();
      await waitFor('the closed node out', () => !g.gateway.upstream.status()[1]!.healthy, 5000);
      expect(g.gateway.upstream.status()[0]!.healthy).toBe(true);
      expect(a.seen.some((s) => s.url === '/status' && s.headers['x-request-id'] === undefined)).toBe(true);
    });
  });
}
