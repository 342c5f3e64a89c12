// Builds the upstream from config: the node list (url shorthand or nodes), the engine, the service account.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { HpmTransport } from './hpm.ts';
import { UpstreamPool, type NodeConfig, type PoolLog } from './pool.ts';
import { ServiceAccount, readServiceAccountPassword } from './service-account.ts';
import type { Transport, TransportOptions } from './transport.ts';
import { UndiciTransport } from './undici.ts';

type UpstreamConfig = Config['upstream'];
export type Engine = Config['proxy']['engine'];

/** The engine that moves the bytes (proxy.engine); everything around it (pool, identity, errors) is shared. */
export function createTransport(engine: Engine, opts: TransportOptions): Transport {
  return engine === 'undici' ? new UndiciTransport(opts) : new HpmTransport(opts);
}

/** The nodes named by upstream.url (one) or upstream.nodes, with server names and audiences filled in. */
export function upstreamNodes(u: UpstreamConfig): NodeConfig[] {
  const list = u.nodes ?? (u.url !== undefined ? [{ url: u.url }] : []);
  return list.map((n) => {
    const node = n as { url: string; servername?: string | undefined; assertionAudience?: string | undefined };
    return {
      url: node.url.replace(/\/+$/, ''),
      servername: node.servername ?? u.servername ?? new URL(node.url).hostname,
      assertionAudience: node.assertionAudience ?? u.assertionAudience,
    };
  });
}

export function createUpstream(u: UpstreamConfig, log: PoolLog, env: NodeJS.ProcessEnv = process.env, engine: Engine = 'hpm'): UpstreamPool {
  const nodes = upstreamNodes(u);
  const transport = createTransport(engine, {
    ca: readFileSync(u.caFile),
    cert: readFileSync(u.clientCertFile),
    key: readFileSync(u.clientKeyFile),
    connectTimeoutMs: u.connectTimeoutMs,
    responseTimeoutMs: u.responseTimeoutMs,
    maxSockets: u.maxSockets,
    idleSocketTimeoutMs: u.idleSocketTimeoutMs,
    bodyLimitBytes: u.bodyLimitBytes,
  });
  const sa = u.identity === 'serviceAccount' && u.serviceAccount ? u.serviceAccount : undefined;
  const serviceAccount = sa
    ? new ServiceAccount(
        {
          loginUrl: sa.loginUrl,
          username: sa.username,
          password: readServiceAccountPassword(sa, env),
          refreshBeforeSeconds: sa.refreshBeforeSeconds,
          // A login may wait on the node's directory: up to 30 s (or responseTimeoutMs when lower).
          timeoutMs: Math.min(u.responseTimeoutMs, 30_000),
        },
        nodes,
        (url, opts) => transport.request(url, opts),
        log,
      )
    : undefined;
  return new UpstreamPool(
    {
      nodes,
      identity: u.identity,
      healthCheck: u.healthCheck,
      ejectAfterFailures: u.ejectAfterFailures,
      ejectForMs: u.ejectForMs,
      bodyLimitBytes: u.bodyLimitBytes,
    },
    transport,
    log,
    serviceAccount,
  );
}
