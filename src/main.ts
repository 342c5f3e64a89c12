// Start mlgate: load config (or dev mode when there is none), build the gateway, listen, handle signals.
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import url from 'node:url';
import { parseArgs } from 'node:util';
import { jwtVerify } from 'jose';
import { createGateway } from './app.ts';
import { supervise, workerCount, workerMetrics } from './cluster.ts';
import { hashPassword } from './auth/index.ts';
import { ConfigError, loadConfig, productionProblems, type Config } from './config/index.ts';
import { startExampleNode, type ExampleNode } from './example-node/index.ts';
import { createLogger } from './observability/index.ts';
import { listen, listenMetrics } from './server.ts';
import { KeyRing } from './tokens/index.ts';

// Node 24 runs a stack-walking deprecation check on every url.parse() called from node_modules until one
// call from app code closes it; http-proxy calls url.parse() per request (PITFALLS 38, ~8% CPU).
url.parse('http://127.0.0.1/');

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE_CERTS = join(ROOT, 'certs-example');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
  const file = values.config ?? process.env.MLGATE_CONFIG;
  const env = process.env;

  let config: Config;
  let devNode: ExampleNode | undefined;
  let keys: KeyRing | undefined;
  let devPassword: string | undefined;
  try {
    if (file) {
      config = loadConfig({ file, env });
      const problems = productionProblems(config, EXAMPLE_CERTS);
      if (problems.length > 0) throw new ConfigError(problems);
    } else {
      // Dev mode: example node + certs-example + a generated key + the admin account.
      keys = await KeyRing.generate('ES256');
      const cert = (n: string) => join(EXAMPLE_CERTS, n);
      const { readFileSync } = await import('node:fs');
      const verifier = keys.getVerificationKey;
      devNode = await startExampleNode({
        cert: readFileSync(cert('node.crt')),
        key: readFileSync(cert('node.key')),
        ca: readFileSync(cert('ca.crt')),
        verifyAssertion: async (token) =>
          (await jwtVerify(token, verifier, { issuer: 'mlgate', audience: 'mlserver-node', algorithms: ['ES256'] })).payload,
      });
      devPassword = env.MLGATE_ADMIN_PASSWORD ?? randomBytes(12).toString('base64url');
      config = loadConfig({
        env,
        base: {
          mode: 'dev',
          server: {
            host: '127.0.0.1',
            port: 8443,
            tls: { certFile: cert('edge.crt'), keyFile: cert('edge.key') },
          },
          auth: { providers: ['admin'], admin: { enabled: true, passwordHash: await hashPassword(devPassword) } },
          upstream: {
            url: devNode.url,
            servername: 'localhost',
            caFile: cert('ca.crt'),
            clientCertFile: cert('gateway-client.crt'),
            clientKeyFile: cert('gateway-client.key'),
          },
        },
      });
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mlgate: ${err.message}\n`);
      await devNode?.close();
      process.exit(2);
    }
    throw err;
  }

  const workers = workerCount(config.server.workers, availableParallelism());
  if (workers > 1 && !file) {
    process.stderr.write('mlgate: server.workers > 1 needs a config file (shared Redis store and signing key files)\n');
    await devNode?.close();
    process.exit(2);
  }
  const baseLog = createLogger(config.log.level);
  if (workers > 1 && cluster.isPrimary) {
    supervise(workers, baseLog);
    return;
  }
  const log = cluster.isWorker ? baseLog.child({ worker: cluster.worker?.id }) : baseLog;
  const gateway = await createGateway(config, {
    logger: log,
    ...(keys ? { keys } : {}),
  });
  if (cluster.isWorker) gateway.setMetricsText(workerMetrics(gateway.metrics.registry));
  const running = await listen(gateway, log);
  const metricsPort = await listenMetrics(gateway, log);
  log.info(
    { url: running.url, mode: config.mode, upstream: gateway.upstream.nodes.map((n) => n.url), identity: config.upstream.identity, store: gateway.store.kind },
    'mlgate listening',
  );
  if (devPassword !== undefined) {
    const shown = env.MLGATE_ADMIN_PASSWORD ? '(from MLGATE_ADMIN_PASSWORD)' : devPassword;
    process.stdout.write(
      `\n  mlgate dev mode: ${running.url}  (example node at ${devNode!.url})\n` +
        `  admin password: ${shown}\n` +
        `  try: curl -k -X POST ${running.url}/login -H 'Content-Type: application/json' -d '{"username":"admin","password":"..."}'\n\n`,
    );
  }

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    await Promise.all([running.close(10_000), metricsPort?.close()]);
    await gateway.close();
    await devNode?.close();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // SIGHUP: read the edge certificate and key again (file changes are picked up by themselves too).
  process.on('SIGHUP', () => {
    if (!running.reloadTls()) log.info('SIGHUP: edge TLS files unchanged (or not loadable, see above): certificate kept');
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`mlgate: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
