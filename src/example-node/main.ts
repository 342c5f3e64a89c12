// CLI for the example operationalization node (dev mode, docker-compose):
//
//   node src/example-node/main.ts --port 9443 --cert certs-example/node.crt --key certs-example/node.key \
//        --ca certs-example/ca.crt [--host 0.0.0.0] [--max-body-bytes N]
//        [--jwks-url https://gateway:8443/.well-known/jwks.json --audience <aud> [--issuer <iss>]]
//        [--login-user <name> --login-password-env <VAR> [--login-token-ttl <seconds>]]
//
// With --jwks-url, every request except GET /status must carry an X-MLGate-Assertion JWT (ES256) that verifies
// against that JWKS (and --audience / --issuer when given); for a private CA set NODE_EXTRA_CA_CERTS.
// With --login-user, the node has its own login like an ML Server web node (POST /login, /login/refreshToken;
// tokens live --login-token-ttl seconds, default 3600) and every other request needs its bearer token: the
// counterpart of mlgate's upstream.identity serviceAccount.
// Logs one JSON line when listening: {"msg":"example-node listening","url":"https://..."}. SIGTERM/SIGINT stop it.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startExampleNode } from './index.ts';
import type { ExampleNodeOptions } from './index.ts';

function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

function fail(message: string): never {
  process.stderr.write(`${JSON.stringify({ level: 'error', msg: message })}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '9443' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        'max-body-bytes': { type: 'string' },
        'jwks-url': { type: 'string' },
        audience: { type: 'string' },
        issuer: { type: 'string' },
        'login-user': { type: 'string' },
        'login-password-env': { type: 'string' },
        'login-token-ttl': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }

  if (!values.cert || !values.key || !values.ca) fail('--cert, --key and --ca are required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${values.port}`);

  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      return fail(`cannot read ${flag} ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const opts: ExampleNodeOptions = {
    host: values.host,
    port,
    cert: read('--cert', values.cert),
    key: read('--key', values.key),
    ca: read('--ca', values.ca),
  };
  if (values['max-body-bytes'] !== undefined) {
    const n = Number(values['max-body-bytes']);
    if (!Number.isSafeInteger(n) || n < 0) fail(`invalid --max-body-bytes ${values['max-body-bytes']}`);
    opts.maxBodyBytes = n;
  }
  if (values['login-user'] !== undefined) {
    const envName = values['login-password-env'];
    const password = envName === undefined ? undefined : process.env[envName];
    if (!password) fail('--login-user needs --login-password-env naming a set environment variable');
    const ttl = Number(values['login-token-ttl'] ?? 3600);
    if (!Number.isInteger(ttl) || ttl < 1) fail(`invalid --login-token-ttl ${values['login-token-ttl']}`);
    opts.requireLogin = { username: values['login-user'], password, tokenTtlSeconds: ttl };
  }
  if (values['jwks-url'] !== undefined) {
    const { createRemoteJWKSet, jwtVerify } = await import('jose');
    const jwks = createRemoteJWKSet(new URL(values['jwks-url']));
    const audience = values.audience;
    const issuer = values.issuer;
    opts.verifyAssertion = async (token) => {
      const { payload } = await jwtVerify(token, jwks, {
        algorithms: ['ES256'],
        requiredClaims: ['exp'],
        clockTolerance: 5,
        ...(audience !== undefined ? { audience } : {}),
        ...(issuer !== undefined ? { issuer } : {}),
      });
      return payload as Record<string, unknown>;
    };
  }

  const node = await startExampleNode(opts);
  log({
    level: 'info',
    msg: 'example-node listening',
    url: node.url,
    port: node.port,
    assertion: opts.verifyAssertion ? 'required' : 'optional',
    login: opts.requireLogin ? 'required' : 'none',
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log({ level: 'info', msg: 'example-node stopping', signal });
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    node.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
