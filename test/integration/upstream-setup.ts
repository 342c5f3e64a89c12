// Helpers for the upstream*.test.ts suites: several real example nodes, a real gateway in front of them, and a
// bounded load generator. Everything on loopback, nothing mocked.
import https from 'node:https';
import { afterEach } from 'vitest';
import { readFileSync } from 'node:fs';
import { createGateway, type Gateway } from '../../src/app.ts';
import { hashPassword } from '../../src/auth/index.ts';
import { deepMerge, loadConfig, type JsonObject } from '../../src/config/index.ts';
import { startExampleNode, type ExampleNode, type ExampleNodeOptions } from '../../src/example-node/index.ts';
import { createLogger } from '../../src/observability/index.ts';
import { listen, type RunningServer } from '../../src/server.ts';
import { KeyRing } from '../../src/tokens/index.ts';
import { ADMIN_PASSWORD, CA, NODE_CLIENT_TLS, cert } from './setup.ts';

type Json = Record<string, unknown>;

/** Call at a test file's top level: `track(server)` has that server closed after the test (newest first). */
export function closedAfterEach(): <T extends { close(): Promise<void> | void }>(server: T) => T {
  const started: { close(): Promise<void> | void }[] = [];
  afterEach(async () => {
    while (started.length) await started.pop()!.close();
  });
  return (server) => {
    started.push(server);
    return server;
  };
}

let adminHash: Promise<string> | undefined;
export const adminPasswordHash = (): Promise<string> => (adminHash ??= hashPassword(ADMIN_PASSWORD));

export function startNode(opts: Partial<ExampleNodeOptions> = {}): Promise<ExampleNode> {
  return startExampleNode({ cert: readFileSync(cert('node.crt')), key: readFileSync(cert('node.key')), ca: CA, ...opts });
}

export interface Gw {
  gateway: Gateway;
  server: RunningServer;
  url: string;
  port: number;
  logLines: string[];
  logs(msg: string): Json[];
  close(): Promise<void>;
}

const merge = (a: Json, b: Json): Json => deepMerge(a as JsonObject, b as JsonObject) as Json;

/** A gateway whose upstream is `upstream` (url or nodes, plus any upstream keys); health probes off unless given. */
export async function startGateway(upstream: Json, extra: Json = {}, env: Record<string, string> = {}): Promise<Gw> {
  const base: Json = {
    mode: 'dev',
    server: { host: '127.0.0.1', port: 0, tls: { certFile: cert('edge.crt'), keyFile: cert('edge.key') } },
    auth: { providers: ['admin'], admin: { enabled: true, passwordHash: await adminPasswordHash() } },
    upstream: {
      ...NODE_CLIENT_TLS,
      healthCheck: { enabled: false },
      ...upstream,
    },
    log: { level: 'debug' },
  };
  const config = loadConfig({ base: merge(base, extra) as never, env: {} });
  const logLines: string[] = [];
  const logger = createLogger(config.log.level, { write: (line: string) => void logLines.push(line) });
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  let gateway: Gateway;
  try {
    gateway = await createGateway(config, { logger, keys: await KeyRing.generate('ES256') });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const server = await listen(gateway, logger);
  return {
    gateway,
    server,
    url: server.url,
    port: server.port,
    logLines,
    logs: (msg) => logLines.map((l) => JSON.parse(l) as Json).filter((l) => l.msg === msg),
    async close() {
      await server.close(100);
      await gateway.close();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 25 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export interface Answer {
  status: number;
  body: string;
}

/** One request over a shared keep-alive agent; never rejects (a transport error is status 0). */
export function call(
  agent: https.Agent,
  base: string,
  method: string,
  path: string,
  opts: { token?: string; json?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers['content-type'] = 'application/json';
    }
    const req = https.request(new URL(path, base), { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', () => resolve({ status: 0, body: 'response error' }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end(body);
  });
}

export const clientAgent = (maxSockets = 16): https.Agent => new https.Agent({ ca: CA, keepAlive: true, maxSockets });
