// example-node: a small Machine-Learning-Server-9.x-like operationalization node, behind mutual TLS.
//
// It stands in for a FOREIGN server (dev mode, docker-compose, tests), so it shares no code with the gateway
// and uses node:https directly: no framework between the socket and what it records. Every request, including
// rejected ones, is appended to `received` with the raw request target exactly as it arrived.
//
// Routing is deliberately literal: the request target is split on '/', each segment is percent-decoded
// (like ASP.NET Core; an encoded '/' stays inside its segment), the fixed words (services, api, batch,
// sessions, ...) match case-sensitively, no empty segments, no trailing slash. Unknown -> 404 not_found.

import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writePseudoRandom } from './download.ts';

export { downloadSha256 } from './download.ts';

export interface ReceivedRequest {
  method: string;
  /** raw request target exactly as received (req.url, not normalized or decoded) */
  url: string;
  /** built from the raw header lines: lower-case names; a name sent once -> string, several times -> string[] */
  headers: Record<string, string | string[] | undefined>;
  /** bytes of request body the node read (final once the response has been sent) */
  bodyBytes: number;
  /** hex SHA-256 of those bytes */
  bodySha256: string;
}

export interface ExampleNodeOptions {
  host?: string; // default 127.0.0.1
  port?: number; // default 0 = free port
  cert: string | Buffer; // PEM of the node's server certificate
  key: string | Buffer; // PEM of its private key
  /** PEM of the CA that client certificates must chain to; a client certificate is REQUIRED */
  ca: string | Buffer;
  /** when set, every request except GET /status must carry a valid X-MLGate-Assertion header, else 401 JSON */
  verifyAssertion?: (token: string) => Promise<Record<string, unknown>>;
  /** default 256 MiB; bodies are streamed and hashed; JSON bodies are buffered up to 1 MiB (more -> 413) */
  maxBodyBytes?: number;
  /**
   * Like an ML Server web node with its own accounts: it serves POST /login (JSON username/password) and
   * POST /login/refreshToken (JSON refreshToken, rotated) with ML Server's token answer, and every other request
   * must carry `Authorization: Bearer <access_token>` it issued and that has not expired (else 401 JSON).
   */
  requireLogin?: { username: string; password: string; tokenTtlSeconds: number };
}

export interface LoginStats {
  logins: number;
  refreshes: number;
  /** requests refused with 401 for a missing, unknown or expired bearer token */
  rejected: number;
  /** refresh requests refused (unknown or already used refresh token) */
  refusedRefreshes: number;
}

export interface ParameterDefinition {
  name: string;
  type: string;
}

export interface ServiceRecord {
  name: string;
  version: string;
  description: string;
  runtimeType: string; // "R" | "Python"
  code: string;
  initCode: string;
  model: string | null;
  snapshotId: string | null;
  operationId: string;
  inputParameterDefinitions: ParameterDefinition[];
  outputParameterDefinitions: ParameterDefinition[];
  outputFileNames: string[];
  publishedBy: string | null;
  creationTime: string; // ISO 8601
}

export interface ExampleNode {
  url: string; // https://host:port (no trailing slash)
  port: number;
  received: ReceivedRequest[];
  /** key: `${name}/${version}` (names and versions cannot contain '/') */
  services: Map<string, ServiceRecord>;
  /** requireLogin counters (all zero without it) */
  loginStats: LoginStats;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 256 * 1024 * 1024;
const JSON_BODY_CAP = 1024 * 1024;
const DOWNLOAD_CAP = 1024 * 1024 * 1024;
const EMPTY_SHA256 = createHash('sha256').digest('hex');
const ASSERTION_HEADER = 'x-mlgate-assertion';

interface SessionRecord {
  sessionId: string;
  name: string;
  runtimeType: string;
  owner: string | null;
  creationTime: string;
}

interface BatchRecord {
  batchExecutionId: string;
  service: string;
  state: string;
  totalItemCount: number;
  completedItemCount: number;
  batchExecutionResults: unknown[];
  createdBy: string | null;
  creationTime: string;
}

interface Identity {
  claims: Record<string, unknown>;
  verified: boolean;
}

interface Body {
  bytes: number;
  sha256: string;
  /** the bytes, when the route asked for them and they fit the cap */
  buffer: Buffer | null;
  overCap: boolean;
  /** more than maxBodyBytes: reading stopped, 413 was sent */
  overLimit: boolean;
  /** the client went away before the end of the body */
  aborted: boolean;
}

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function startExampleNode(opts: ExampleNodeOptions): Promise<ExampleNode> {
  const host = opts.host ?? '127.0.0.1';
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const received: ReceivedRequest[] = [];
  const services = new Map<string, ServiceRecord>();
  const sessions = new Map<string, SessionRecord>();
  const batches = new Map<string, BatchRecord>();
  const startedAt = Date.now();
  const loginStats: LoginStats = { logins: 0, refreshes: 0, rejected: 0, refusedRefreshes: 0 };
  /** requireLogin: access token -> expiry (ms epoch); refresh tokens still usable */
  const accessTokens = new Map<string, number>();
  const refreshTokens = new Set<string>();

  const server = createServer({
    cert: opts.cert,
    key: opts.key,
    ca: opts.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  // Longer than the gateway's agent idle timeout, so the node never closes a socket the gateway is reusing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 600_000;

  server.on('tlsClientError', (_err, socket) => {
    socket.destroy();
  });
  server.on('clientError', (_err, socket) => {
    // Unparseable HTTP: answer 400 if we still can, never crash.
    if (socket.writable && !socket.destroyed) {
      const body = '{"error":"bad_request","message":"malformed HTTP request"}';
      socket.end(
        'HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    } else {
      socket.destroy();
    }
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const entry: ReceivedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: rawHeaders(req.rawHeaders),
      bodyBytes: 0,
      bodySha256: EMPTY_SHA256,
    };
    received.push(entry);
    req.on('error', () => {});
    res.on('error', () => {});
    const requestId = req.headers['x-request-id'];
    if (typeof requestId === 'string') res.setHeader('x-request-id', requestId);

    handle(req, res, entry).catch((err: unknown) => {
      if (err instanceof HttpError) {
        sendJson(res, err.status, { error: err.code, message: err.message });
      } else {
        sendJson(res, 500, { error: 'internal_error', message: String(err) });
      }
    });
  });

  function issueTokens(ttlSeconds: number): Record<string, unknown> {
    const now = Date.now();
    const access = randomBytes(24).toString('base64url');
    const refresh = randomBytes(24).toString('base64url');
    accessTokens.set(access, now + ttlSeconds * 1000);
    refreshTokens.add(refresh);
    for (const [t, exp] of accessTokens) if (exp <= now) accessTokens.delete(t);
    return {
      token_type: 'Bearer',
      access_token: access,
      expires_in: ttlSeconds,
      expires_on: Math.floor(now / 1000) + ttlSeconds,
      refresh_token: refresh,
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, entry: ReceivedRequest): Promise<void> {
    const method = entry.method;
    const target = entry.url;
    const route = parseTarget(target);

    // Start reading (and hashing) the body at once, whatever the answer will be; buffer only JSON bodies.
    const wantsJson = route.ok && jsonRoute(method, route.segments, req);
    const bodyPromise = readBody(req, res, entry, maxBodyBytes, wantsJson ? JSON_BODY_CAP : 0);
    const body = async (): Promise<Body> => {
      const b = await bodyPromise;
      if (b.aborted || b.overLimit) throw new Aborted();
      return b;
    };

    try {
      if (!route.ok) {
        await body();
        throw new HttpError(400, 'bad_request', route.reason);
      }
      const s = route.segments;
      const isStatus = method === 'GET' && s.length === 1 && s[0] === 'status';

      // ---- requireLogin: the node's own /login, /login/refreshToken and bearer check ----------------
      const login = opts.requireLogin;
      if (login && s[0] === 'login' && method === 'POST' && s.length <= 2) {
        const input = jsonObject(await body());
        if (s.length === 1) {
          if (!sameText(input.username, login.username) || !sameText(input.password, login.password)) {
            throw new HttpError(401, 'unauthorized', 'invalid credentials');
          }
          loginStats.logins++;
          return sendJson(res, 200, issueTokens(login.tokenTtlSeconds));
        }
        if (s[1] === 'refreshToken') {
          const presented = input.refreshToken;
          if (typeof presented !== 'string' || !refreshTokens.delete(presented)) {
            loginStats.refusedRefreshes++;
            throw new HttpError(401, 'unauthorized', 'invalid or expired refresh token');
          }
          loginStats.refreshes++;
          return sendJson(res, 200, issueTokens(login.tokenTtlSeconds));
        }
      }
      if (login) {
        const auth = headerValue(req, 'authorization') ?? '';
        const token = /^Bearer (\S+)$/i.exec(auth)?.[1];
        const expires = token === undefined ? undefined : accessTokens.get(token);
        if (expires === undefined || expires <= Date.now()) {
          loginStats.rejected++;
          await body();
          throw new HttpError(401, 'unauthorized', expires === undefined ? 'missing or unknown bearer token' : 'expired bearer token');
        }
      }

      let identity: Identity | null = null;
      const assertion = headerValue(req, ASSERTION_HEADER);
      if (opts.verifyAssertion && !isStatus) {
        if (assertion === undefined) {
          await body();
          throw new HttpError(401, 'unauthorized', 'missing X-MLGate-Assertion');
        }
        try {
          identity = { claims: await opts.verifyAssertion(assertion), verified: true };
        } catch (err) {
          await body();
          throw new HttpError(401, 'unauthorized', `invalid X-MLGate-Assertion: ${errorMessage(err)}`);
        }
      } else if (assertion !== undefined) {
        // Decoded, NOT verified: used only to show who the gateway said the caller is.
        const claims = decodeJwtPayload(assertion);
        identity = claims ? { claims, verified: false } : null;
      }
      const sub = identity && typeof identity.claims.sub === 'string' ? identity.claims.sub : null;

      // ---- GET /status ---------------------------------------------------------------------------
      if (isStatus) {
        await body();
        return sendJson(res, 200, {
          statusCode: 'Pass',
          components: {
            computeNode: { statusCode: 'Pass', details: { services: services.size, sessions: sessions.size } },
            tls: { statusCode: 'Pass', details: { clientCertificate: 'required' } },
          },
          node: 'example-node',
          uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
        });
      }

      // ---- GET /user ----------------------------------------------------------------------------
      if (method === 'GET' && s.length === 1 && s[0] === 'user') {
        await body();
        const c = identity?.claims ?? {};
        return sendJson(res, 200, {
          sub: c.sub ?? null,
          name: c.name ?? null,
          roles: Array.isArray(c.roles) ? c.roles : [],
          assertion: identity ? (identity.verified ? 'verified' : 'unverified') : 'absent',
          claims: c,
        });
      }

      // ---- /services ----------------------------------------------------------------------------
      if (s[0] === 'services') {
        if (method === 'GET' && s.length === 1) {
          await body();
          return sendJson(res, 200, sortedServices([...services.values()]));
        }
        if (method === 'GET' && s.length === 2) {
          await body();
          const name = s[1];
          return sendJson(res, 200, sortedServices([...services.values()].filter((r) => r.name === name)));
        }
        // POST /services/{name}: publish with a version the server generates (a GUID, as ML Server does). The
        // azureml SDK types this answer `str`; here it is the JSON string of the new service's consumption path,
        // also sent as Location.
        if (method === 'POST' && s.length === 2) {
          const name = checkName(s[1] ?? '', 'name');
          const input = jsonObject(await body());
          const version = randomUUID();
          services.set(`${name}/${version}`, newService(name, version, sub, input));
          const api = `/api/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;
          res.setHeader('location', api);
          return sendJson(res, 201, api);
        }
        if (s.length === 3) {
          const name = checkName(s[1] ?? '', 'name');
          const version = checkName(s[2] ?? '', 'version');
          const key = `${name}/${version}`;
          const existing = services.get(key);
          if (method === 'GET') {
            await body();
            if (!existing) throw serviceNotFound(name, version);
            return sendJson(res, 200, existing);
          }
          if (method === 'POST') {
            const input = jsonObject(await body());
            if (existing) {
              throw new HttpError(409, 'conflict', `Service ${name} version ${version} already exists.`);
            }
            const record = newService(name, version, sub, input);
            services.set(key, record);
            res.setHeader('location', `/api/${encodeURIComponent(name)}/${encodeURIComponent(version)}`);
            return sendJson(res, 201, record);
          }
          if (method === 'PATCH') {
            const input = jsonObject(await body());
            if (!existing) throw serviceNotFound(name, version);
            const updated = applyServiceFields({ ...existing }, input);
            services.set(key, updated);
            return sendJson(res, 200, updated);
          }
          if (method === 'DELETE') {
            await body();
            if (!existing) throw serviceNotFound(name, version);
            services.delete(key);
            for (const [id, b] of batches) if (b.service === key) batches.delete(id);
            return sendJson(res, 200, {
              name,
              version,
              message: `Service ${name} version ${version} deleted.`,
            });
          }
        }
      }

      // ---- /api/{name}/{version}[...] -----------------------------------------------------------
      if (s[0] === 'api' && s.length >= 3) {
        const name = s[1] ?? '';
        const version = s[2] ?? '';
        const key = `${name}/${version}`;
        const service = services.get(key);
        const rest = s.slice(3);
        const known =
          (method === 'POST' && rest.length === 0) ||
          (method === 'GET' && rest.length === 1 && rest[0] === 'swagger.json') ||
          (rest[0] === 'batch' &&
            ((rest.length === 1 && (method === 'POST' || method === 'GET')) ||
              (rest.length === 2 && (method === 'GET' || method === 'DELETE'))));
        if (known) {
          if (!service) {
            await body();
            throw serviceNotFound(name, version);
          }
          if (rest.length === 0) {
            if (isOctetStream(req)) {
              const b = await body();
              return sendJson(res, 200, { bytes: b.bytes, sha256: b.sha256 });
            }
            const inputs = jsonValue(await body(), {});
            return sendJson(res, 200, executionResult(inputs));
          }
          if (rest[0] === 'swagger.json') {
            await body();
            return sendJson(res, 200, swaggerFor(service, headerValue(req, 'host')));
          }
          // batch
          if (rest.length === 1 && method === 'POST') {
            const inputs = jsonValue(await body(), []);
            const items: unknown[] = Array.isArray(inputs) ? inputs : [inputs];
            const id = randomUUID();
            batches.set(id, {
              batchExecutionId: id,
              service: key,
              state: 'Complete',
              totalItemCount: items.length,
              completedItemCount: items.length,
              batchExecutionResults: items.map(executionResult),
              createdBy: sub,
              creationTime: new Date().toISOString(),
            });
            return sendJson(res, 201, { batchExecutionId: id });
          }
          if (rest.length === 1 && method === 'GET') {
            await body();
            const ids = [...batches.values()].filter((b) => b.service === key).map((b) => b.batchExecutionId);
            return sendJson(res, 200, ids);
          }
          const id = rest[1] ?? '';
          const batch = batches.get(id);
          await body();
          if (!batch || batch.service !== key) {
            throw new HttpError(404, 'not_found', `Batch execution ${id} not found.`);
          }
          if (method === 'DELETE') {
            batches.delete(id);
            return sendJson(res, 200, { batchExecutionId: id, message: 'Batch execution deleted.' });
          }
          const { service: _service, ...status } = batch;
          return sendJson(res, 200, { name, version, ...status });
        }
      }

      // ---- /sessions, /snapshots ----------------------------------------------------------------
      if (s[0] === 'sessions') {
        if (method === 'GET' && s.length === 1) {
          await body();
          return sendJson(res, 200, [...sessions.values()]);
        }
        if (method === 'POST' && s.length === 1) {
          const input = jsonObject(await body());
          const sessionId = randomUUID();
          sessions.set(sessionId, {
            sessionId,
            name: typeof input.name === 'string' ? input.name : '',
            runtimeType: typeof input.runtimeType === 'string' ? input.runtimeType : 'R',
            owner: sub,
            creationTime: new Date().toISOString(),
          });
          return sendJson(res, 201, { sessionId });
        }
        if (method === 'DELETE' && s.length === 2) {
          await body();
          const id = s[1] ?? '';
          if (!sessions.delete(id)) throw new HttpError(404, 'not_found', `Session ${id} not found.`);
          return sendJson(res, 200, { sessionId: id, message: 'Session deleted.' });
        }
      }
      if (method === 'GET' && s.length === 1 && s[0] === 'snapshots') {
        await body();
        return sendJson(res, 200, []);
      }

      // ---- GET /download?bytes=N ----------------------------------------------------------------
      if (method === 'GET' && s.length === 1 && s[0] === 'download') {
        await body();
        const raw = new URLSearchParams(route.query).get('bytes') ?? '';
        if (!/^(0|[1-9][0-9]{0,9})$/.test(raw) || Number(raw) > DOWNLOAD_CAP) {
          throw new HttpError(400, 'bad_request', `bytes must be an integer from 0 to ${DOWNLOAD_CAP}`);
        }
        return streamDownload(res, Number(raw));
      }

      await body();
      throw new HttpError(404, 'not_found', `No route for ${method} ${target}`);
    } catch (err) {
      if (err instanceof Aborted) return; // 413 already sent, or nobody left to answer
      // Answer errors only after the whole body has been read, so `received` is final when the client sees them.
      const b = await bodyPromise;
      if (b.aborted || b.overLimit) return;
      throw err;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => {}); // after listen: errors belong to single sockets

  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | null = null;

  return {
    url: `https://${urlHost}:${port}`,
    port,
    received,
    services,
    loginStats,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// request helpers

class Aborted extends Error {}

type Target = { ok: true; segments: string[]; query: string } | { ok: false; reason: string };

function parseTarget(target: string): Target {
  if (!target.startsWith('/')) return { ok: false, reason: 'request target must be origin-form' };
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  const segments: string[] = [];
  for (const raw of path.slice(1).split('/')) {
    try {
      segments.push(decodeURIComponent(raw));
    } catch {
      return { ok: false, reason: 'invalid percent-encoding in path' };
    }
  }
  // "/" and paths with empty segments ("//x", "/x/") route nowhere.
  if (segments.some((x) => x === '')) return { ok: true, segments: ['\u0000'], query };
  return { ok: true, segments, query };
}

function jsonRoute(method: string, s: string[], req: IncomingMessage): boolean {
  if (s[0] === 'login' && method === 'POST') return true;
  if (s[0] === 'services' && s.length === 3) return method === 'POST' || method === 'PATCH';
  if (s[0] === 'services' && s.length === 2) return method === 'POST';
  if (s[0] === 'sessions' && s.length === 1) return method === 'POST';
  if (s[0] === 'api' && method === 'POST') {
    if (s.length === 3) return !isOctetStream(req);
    if (s.length === 4 && s[3] === 'batch') return true;
  }
  return false;
}

function isOctetStream(req: IncomingMessage): boolean {
  const ct = req.headers['content-type'];
  return typeof ct === 'string' && ct.split(';')[0]?.trim().toLowerCase() === 'application/octet-stream';
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function rawHeaders(raw: string[]): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = Object.create(null);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

/**
 * Reads the whole body as it streams: counts, hashes, and keeps the bytes only up to `collectCap`.
 * Over `maxBodyBytes` it stops reading, answers 413 and closes the connection.
 */
function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  entry: ReceivedRequest,
  maxBodyBytes: number,
  collectCap: number,
): Promise<Body> {
  return new Promise<Body>((resolve) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let bytes = 0;
    let overCap = false;
    let done = false;
    const finish = (extra: { overLimit?: boolean; aborted?: boolean }) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      const sha256 = hash.digest('hex');
      entry.bodyBytes = bytes;
      entry.bodySha256 = sha256;
      const collected = collectCap > 0 && !overCap;
      resolve({
        bytes,
        sha256,
        buffer: collected ? Buffer.concat(chunks) : null,
        overCap,
        overLimit: extra.overLimit ?? false,
        aborted: extra.aborted ?? false,
      });
    };
    const tooLarge = () => {
      res.setHeader('connection', 'close');
      sendJson(res, 413, { error: 'payload_too_large', message: `body exceeds ${maxBodyBytes} bytes` });
      finish({ overLimit: true });
      req.pause();
    };
    const onData = (chunk: Buffer) => {
      if (done) return;
      if (bytes + chunk.length > maxBodyBytes) return tooLarge();
      bytes += chunk.length;
      hash.update(chunk);
      if (collectCap > 0 && !overCap) {
        if (bytes > collectCap) {
          overCap = true;
          chunks.length = 0;
        } else {
          chunks.push(chunk);
        }
      }
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) return tooLarge();
    req.on('data', onData);
    req.once('end', () => finish({}));
    req.once('error', () => finish({ aborted: true }));
    req.once('close', () => finish({ aborted: !req.complete }));
  });
}

function parseJson(b: Body): unknown {
  if (b.overCap) throw new HttpError(413, 'payload_too_large', `JSON body exceeds ${JSON_BODY_CAP} bytes`);
  const text = (b.buffer ?? Buffer.alloc(0)).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, 'bad_request', `malformed JSON: ${errorMessage(err)}`);
  }
}

function jsonValue(b: Body, ifEmpty: unknown): unknown {
  const v = parseJson(b);
  return v === undefined ? ifEmpty : v;
}

function jsonObject(b: Body): Record<string, unknown> {
  const v = jsonValue(b, {});
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new HttpError(400, 'bad_request', 'JSON body must be an object');
  }
  return v as Record<string, unknown>;
}

function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function sameText(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------------
// responses

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  if (res.headersSent || res.destroyed || res.writableEnded) return;
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function streamDownload(res: ServerResponse, total: number): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
  writePseudoRandom(res, total);
}

function executionResult(inputs: unknown): Record<string, unknown> {
  return {
    success: true,
    outputParameters: { answer: inputs },
    errorMessage: '',
    consoleOutput: '',
    changedFiles: [],
    outputFiles: {},
  };
}

function serviceNotFound(name: string, version: string): HttpError {
  return new HttpError(404, 'not_found', `Service ${name} version ${version} not found.`);
}

function checkName(v: string, what: string): string {
  if (v.includes('/') || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new HttpError(400, 'bad_request', `invalid service ${what}`);
  }
  return v;
}

function newService(name: string, version: string, publishedBy: string | null, input: Record<string, unknown>): ServiceRecord {
  return applyServiceFields(
    {
      name,
      version,
      description: '',
      runtimeType: 'R',
      code: '',
      initCode: '',
      model: null,
      snapshotId: null,
      operationId: defaultOperationId(name),
      inputParameterDefinitions: [],
      outputParameterDefinitions: [],
      outputFileNames: [],
      publishedBy,
      creationTime: new Date().toISOString(),
    },
    input,
  );
}

function defaultOperationId(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(id) ? id : `_${id}`;
}

function sortedServices(list: ServiceRecord[]): ServiceRecord[] {
  return list.sort((a, b) =>
    a.name === b.name ? (a.version < b.version ? -1 : a.version > b.version ? 1 : 0) : a.name < b.name ? -1 : 1,
  );
}

function applyServiceFields(record: ServiceRecord, input: Record<string, unknown>): ServiceRecord {
  const str = (k: string): string | undefined => {
    const v = input[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new HttpError(400, 'bad_request', `${k} must be a string`);
    return v;
  };
  const strOrNull = (k: string): string | null | undefined => (input[k] === null ? null : str(k));
  const params = (k: string): ParameterDefinition[] | undefined => {
    const v = input[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw new HttpError(400, 'bad_request', `${k} must be an array`);
    return v.map((p: unknown) => {
      const o = p as { name?: unknown; type?: unknown } | null;
      if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || typeof o.type !== 'string') {
        throw new HttpError(400, 'bad_request', `${k} items must be {"name":string,"type":string}`);
      }
      return { name: o.name, type: o.type };
    });
  };
  const strings = (k: string): string[] | undefined => {
    const v = input[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new HttpError(400, 'bad_request', `${k} must be an array of strings`);
    }
    return v as string[];
  };
  const out = { ...record };
  out.description = str('description') ?? out.description;
  out.runtimeType = str('runtimeType') ?? out.runtimeType;
  out.code = str('code') ?? out.code;
  out.initCode = str('initCode') ?? out.initCode;
  const model = strOrNull('model');
  if (model !== undefined) out.model = model;
  const snapshotId = strOrNull('snapshotId');
  if (snapshotId !== undefined) out.snapshotId = snapshotId;
  out.operationId = str('operationId') ?? str('alias') ?? out.operationId;
  out.inputParameterDefinitions = params('inputParameterDefinitions') ?? out.inputParameterDefinitions;
  out.outputParameterDefinitions = params('outputParameterDefinitions') ?? out.outputParameterDefinitions;
  out.outputFileNames = strings('outputFileNames') ?? out.outputFileNames;
  return out;
}

/** ML Server parameter types -> JSON schema types. */
function schemaFor(type: string): Record<string, unknown> {
  switch (type) {
    case 'numeric':
      return { type: 'number', format: 'double' };
    case 'integer':
      return { type: 'integer', format: 'int32' };
    case 'logical':
      return { type: 'boolean' };
    case 'character':
      return { type: 'string' };
    case 'vector':
      return { type: 'array', items: {} };
    case 'matrix':
      return { type: 'array', items: { type: 'array', items: {} } };
    default: // data.frame and anything else
      return { type: 'object' };
  }
}

function objectSchema(defs: ParameterDefinition[]): Record<string, unknown> {
  return {
    type: 'object',
    properties: Object.fromEntries(defs.map((d) => [d.name, schemaFor(d.type)])),
  };
}

function swaggerFor(service: ServiceRecord, host: string | undefined): Record<string, unknown> {
  const base = `/api/${encodeURIComponent(service.name)}/${encodeURIComponent(service.version)}`;
  return {
    swagger: '2.0',
    info: { title: service.name, description: service.description, version: service.version },
    ...(host ? { host } : {}),
    schemes: ['https'],
    consumes: ['application/json'],
    produces: ['application/json'],
    securityDefinitions: {
      Bearer: { type: 'apiKey', name: 'Authorization', in: 'header', description: 'Bearer <access_token>' },
    },
    security: [{ Bearer: [] }],
    paths: {
      [base]: {
        post: {
          operationId: service.operationId,
          description: `Consume the ${service.name} web service.`,
          parameters: [
            { name: 'WebServiceParameters', in: 'body', required: true, schema: { $ref: '#/definitions/InputParameters' } },
          ],
          responses: {
            '200': { description: 'OK', schema: { $ref: '#/definitions/WebServiceResult' } },
            default: { description: 'Error' },
          },
        },
      },
    },
    definitions: {
      InputParameters: objectSchema(service.inputParameterDefinitions),
      OutputParameters: objectSchema(service.outputParameterDefinitions),
      WebServiceResult: {
        type: 'object',
        properties: {
          success: { type: 'boolean' },
          errorMessage: { type: 'string' },
          consoleOutput: { type: 'string' },
          changedFiles: { type: 'array', items: { type: 'string' } },
          outputParameters: { $ref: '#/definitions/OutputParameters' },
          outputFiles: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
  };
}
