// The hono-hpm stack floor (../shared/bench/stack-floor/hono-hpm.mjs, on this repo's own node_modules): the
// packages mlgate's default engine is built on, with NO auth, NO routing, NO header hygiene: @hono/node-server
// (https) + one Hono route that hands the raw request to http-proxy-middleware on a keep-alive mTLS agent and
// returns RESPONSE_ALREADY_SENT. What mlgate-hpm costs above this is the price of its auth and bookkeeping.
//
// Env: PORT, UPSTREAM (https://127.0.0.1:29443), CERT_DIR (edge.*, gateway-client.*, ca.crt), SERVERNAME.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import url from 'node:url';
import { serve, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { createProxyMiddleware } from 'http-proxy-middleware';

// The same Node 24 fix as src/main.ts (PITFALLS 38): without it http-proxy's url.parse() costs ~8% more CPU,
// which would flatter every ratio against this floor.
url.parse('http://127.0.0.1/');

const dir = process.env.CERT_DIR!;
const file = (n: string): Buffer => readFileSync(join(dir, n));
const agent = new https.Agent({
  keepAlive: true,
  maxSockets: 64,
  cert: file('gateway-client.crt'),
  key: file('gateway-client.key'),
  ca: file('ca.crt'),
  servername: process.env.SERVERNAME ?? 'localhost',
  rejectUnauthorized: true,
});
const proxy = createProxyMiddleware<IncomingMessage, ServerResponse>({ target: process.env.UPSTREAM, agent, secure: true, changeOrigin: false });

const app = new Hono<{ Bindings: HttpBindings }>();
// The mount pattern of stack-floor/hono-mount.mjs: wait until the answer is written (or next() was called).
app.all('*', (c, next) =>
  new Promise<Response | void>((resolve, reject) => {
    const { incoming, outgoing } = c.env;
    let done = false;
    const onClose = (): void => {
      if (!done) {
        done = true;
        resolve(RESPONSE_ALREADY_SENT);
      }
    };
    outgoing.once('close', onClose);
    void proxy(incoming, outgoing, (err?: unknown) => {
      if (done) return;
      done = true;
      outgoing.off('close', onClose);
      if (err) reject(err as Error);
      else resolve(next());
    });
  }),
);

const server = serve(
  {
    fetch: app.fetch,
    port: Number(process.env.PORT),
    hostname: '127.0.0.1',
    createServer: https.createServer,
    serverOptions: { cert: file('edge.crt'), key: file('edge.key'), keepAliveTimeout: 65_000 },
  },
  () => console.log(`hono-hpm-floor listening on ${process.env.PORT} upstream=${process.env.UPSTREAM}`),
);
const stop = (): void => {
  server.close();
  agent.destroy();
  setTimeout(() => process.exit(0), 300).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
