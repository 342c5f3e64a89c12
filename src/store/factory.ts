// Builds the configured TokenStore.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import { MemoryTokenStore } from './memory.ts';
import { RedisTokenStore, readSecretFile, type RedisStoreOptions } from './redis.ts';
import type { StoreTimings, TokenStore } from './types.ts';

export type StoreLog = NonNullable<RedisStoreOptions['log']>;

export async function createStore(store: Config['store'], timings: StoreTimings, log?: StoreLog): Promise<TokenStore> {
  switch (store.kind) {
    case 'memory':
      return new MemoryTokenStore(timings);
    case 'redis': {
      const r = store.redis;
      if (!r) throw new Error('store.kind is redis but store.redis is not configured');
      return RedisTokenStore.connect(redisOptions(r, log), timings);
    }
  }
}

/** Config -> connection options: secrets read from their files, TLS material loaded. */
export function redisOptions(r: NonNullable<Config['store']['redis']>, log?: StoreLog): RedisStoreOptions {
  return {
    mode: r.mode,
    url: r.url,
    sentinels: r.sentinels,
    masterName: r.masterName,
    nodes: r.nodes,
    username: r.username,
    password: r.passwordFile ? readSecretFile(r.passwordFile) : r.password,
    sentinelPassword: r.sentinelPasswordFile ? readSecretFile(r.sentinelPasswordFile) : r.sentinelPassword,
    tls: r.tls
      ? {
          ca: readFileSync(r.tls.caFile),
          ...(r.tls.certFile ? { cert: readFileSync(r.tls.certFile) } : {}),
          ...(r.tls.keyFile ? { key: readFileSync(r.tls.keyFile) } : {}),
          ...(r.tls.servername ? { servername: r.tls.servername } : {}),
        }
      : undefined,
    keyPrefix: r.keyPrefix,
    commandTimeoutMs: r.commandTimeoutMs,
    connectTimeoutMs: r.connectTimeoutMs,
    minReplicaAcks: r.minReplicaAcks,
    replicaAckTimeoutMs: r.replicaAckTimeoutMs,
    feedCheckIntervalMs: r.feedCheckIntervalMs,
    log,
  };
}
