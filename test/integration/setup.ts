// Shared setup for integration tests: a real example node over real mTLS and a real gateway, on free loopback ports.
import https from 'node:https';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { createGateway, type Gateway } from '../../src/app.ts';
import { hashPassword, type CredentialProvider } from '../../src/auth/index.ts';
import { deepMerge, loadConfig, type JsonObject } from '../../src/config/index.ts';
import { startExampleNode, type ExampleNode } from '../../src/example-node/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { listen, type RunningServer } from '../../src/server.ts';
import type { TokenStore } from '../../src/store/index.ts';
import { KeyRing } from '../../src/tokens/index.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CERTS = join(ROOT, 'certs-example');
export const cert = (name: string): string => join(CERTS, name);
export const CA = readFileSync(cert('ca.crt'));
export const ADMIN_PASSWORD = 'integration-Admin-pw-1';
/** How the gateway reaches the example nodes in tests: certs-example's CA, node name and client certificate. */
export const NODE_CLIENT_TLS = {
  servername: 'localhost',
  caFile: cert('ca.crt'),
  clientCertFile: cert('gateway-client.crt'),
  clientKeyFile: cert('gateway-client.key'),
} as const;

let adminHash: Promise<string> | undefined;

export interface Stack {
  gateway: Gateway;
  server: RunningServer;
  node: ExampleNode;
  url: string;
  port: number;
  /** Log lines the gateway wrote (JSON strings), for tests that read logs. */
  logLines: string[];
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

export interface StackOptions {
  config?: Json;
  store?: TokenStore;
  /** The node verifies X-MLGate-Assertion against the gateway's keys (default true). */
  nodeVerifiesAssertion?: boolean;
  /** Extra credential providers after the configured ones (createGateway's `providers`). */
  providers?: CredentialProvider[];
  /** Signing keys (instances that share a store share these); default: a key generated for this stack. */
  keys?: KeyRing;
}

const merge = (a: Json, b: Json): Json => deepMerge(a as JsonObject, b as JsonObject) as Json;

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  adminHash ??= hashPassword(ADMIN_PASSWORD);
  const keys = opts.keys ?? (await KeyRing.generate('ES256'));
  const verifier = keys.getVerificationKey;
  const node = await startExampleNode({
    cert: readFileSync(cert('node.crt')),
    key: readFileSync(cert('node.key')),
    ca: CA,
    ...(opts.nodeVerifiesAssertion === false
      ? {}
      : {
          verifyAssertion: async (token: string) =>
            (await jwtVerify(token, verifier, { issuer: 'mlgate', audience: 'mlserver-node', algorithms: ['ES256'] })).payload,
        }),
  });
  const base: Json = {
    mode: 'dev',
    server: { host: '127.0.0.1', port: 0, tls: { certFile: cert('edge.crt'), keyFile: cert('edge.key') } },
    auth: { providers: ['admin'], admin: { enabled: true, passwordHash: await adminHash } },
    upstream: {
      url: node.url,
      ...NODE_CLIENT_TLS,
      // Probes would show up in node.received, which many tests count; upstream*.test.ts turn them on.
      healthCheck: { enabled: false },
    },
    log: { level: 'debug' },
  };
  const config = loadConfig({ base: merge(base, opts.config ?? {}) as never, env: {} });
  const logLines: string[] = [];
  const logger = createLogger(config.log.level, { write: (line: string) => void logLines.push(line) });
  const gateway = await createGateway(config, {
    logger,
    keys,
    ...(opts.store ? { store: opts.store } : {}),
    ...(opts.providers ? { providers: opts.providers } : {}),
  });
  const server = await listen(gateway, logger);
  return {
    gateway,
    server,
    node,
    url: server.url,
    port: server.port,
    logLines,
    async close() {
      await server.close(100);
      await gateway.close();
      await node.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => any;
}

const agent = new https.Agent({ ca: CA, keepAlive: false });

export function request(
  stack: { url: string },
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; json?: unknown; token?: string } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['content-type'] ??= 'application/json';
  }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, stack.url), { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One request on a connection of its own (agent: false), to a gateway running as a separate process: with cluster
 * workers, the kernel spreads new connections over them.
 */
export function requestOnce(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const r = https.request({ host: '127.0.0.1', port, method, path, headers, ca: CA, servername: 'localhost', agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Sends bytes exactly as given (no client-side normalization) and returns the raw answer. */
/** halfClose: false keeps the write side open (send Connection: close), for handlers slower than the client's FIN. */
export function rawRequest(port: number, raw: string | Buffer, timeoutMs = 5000, halfClose = true): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: CA, servername: 'localhost' }, () => (halfClose ? socket.end(raw) : socket.write(raw)));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('raw request timed out'));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n', 2);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body });
    });
  });
}

export async function loginAdmin(stack: { url: string }): Promise<{ access_token: string; refresh_token: string; expires_in: number; expires_on: number; token_type: string }> {
  const r = await request(stack, 'POST', '/login', { json: { username: 'admin', password: ADMIN_PASSWORD } });
  if (r.status !== 200) throw new Error(`admin login failed: ${r.status} ${r.text}`);
  return r.json();
}

/** The error body every gateway error has (DESIGN section 2). */
export function expectErrorShape(r: Reply, status: number, code?: string): void {
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.text}`);
  const body = r.json();
  const keys = Object.keys(body).sort().join(',');
  if (keys !== 'error,message,requestId') throw new Error(`error body keys were ${keys}: ${r.text}`);
  if (code !== undefined && body.error !== code) throw new Error(`expected error ${code}, got ${body.error}: ${r.text}`);
  if (/\bat .+:\d+:\d+/.test(r.text)) throw new Error(`stack trace in body: ${r.text}`);
}
export * from './servers/slapd.ts';
export * from './servers/redis.ts';
