// The TokenStore contract on real Redis: standalone, Sentinel (1 master, 1 replica, 3 sentinels) and a 3-master
// Cluster; then what only Redis has: TTL on every key, SCRIPT FLUSH, TLS + ACL user, the feed going down and back.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { createStore, redisOptions, RedisTokenStore, type RedisStoreOptions, type RefreshRecord } from '../../src/store/index.ts';
import {
  startCluster,
  startRedis,
  startSentinelTopology,
  type RedisCluster,
  type RedisServer,
  type SentinelTopology,
} from '../integration/servers/redis.ts';
import { tokenStoreContract } from './contract.ts';

const TIMINGS = { revocationTtlMs: 3_630_000 };
const CERTS = join(import.meta.dirname, '..', '..', 'certs-example');

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

/** One store per topology, shared by the contract's tests (ids are unique per test); closed at the end. */
function shared(start: () => Promise<RedisStoreOptions>): () => Promise<{ store: RedisTokenStore; cleanup: () => Promise<void> }> {
  let store: Promise<RedisTokenStore> | undefined;
  return async () => {
    store ??= start().then(async (opts) => {
      const s = await RedisTokenStore.connect(opts, TIMINGS);
      closers.push(() => s.close());
      return s;
    });
    return { store: await store, cleanup: async () => {} };
  };
}

let standalone: RedisServer | undefined;
async function standaloneServer(): Promise<RedisServer> {
  if (!standalone) {
    standalone = await startRedis();
    const s = standalone;
    closers.push(() => s.close());
  }
  return standalone;
}

tokenStoreContract(
  'redis standalone',
  shared(async () => ({ mode: 'standalone', url: (await standaloneServer()).url })),
);

let sentinel: SentinelTopology | undefined;
tokenStoreContract(
  'redis sentinel',
  shared(async () => {
    sentinel = await startSentinelTopology();
    const t = sentinel;
    closers.push(() => t.close());
    return { mode: 'sentinel', sentinels: t.sentinelEndpoints, masterName: t.masterName, minReplicaAcks: 1 };
  }),
);

let cluster: RedisCluster | undefined;
tokenStoreContract(
  'redis cluster',
  shared(async () => {
    cluster = await startCluster(3);
    const c = cluster;
    closers.push(() => c.close());
    return { mode: 'cluster', nodes: c.endpoints };
  }),
);

function record(familyId: string, subject: string, now: number, ttlMs = 60_000): RefreshRecord {
  return {
    familyId,
    identity: { subject, displayName: subject, groups: ['g'], provider: 'admin', authTime: now },
    issuedAt: now,
    expiresAt: now + ttlMs,
    familyStartedAt: now,
    familyExpiresAt: now + 10 * ttlMs,
  };
}

async function untilTrue(what: string, ms: number, probe: () => boolean | Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (!(await probe())) {
    if (Date.now() - start > ms) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

/**
 * A TCP relay in front of a real redis-server that can lose one answer: the command whose bytes contain the marker
 * reaches Redis and runs, then both connections are cut before its answer gets back (a network cut at the worst
 * moment, as a failover or a dying load balancer makes one).
 */
async function startLossyRelay(
  redisPort: number,
): Promise<{ url: string; loseAnswerTo(marker: string): void; delayAnswerTo(marker: string, ms: number): void; lost: () => number; close(): Promise<void> }> {
  let marker: string | undefined;
  let delayMarker: { text: string; ms: number } | undefined;
  let lost = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const redis = net.connect(redisPort, '127.0.0.1');
    let cutOnAnswer = false;
    let holdUntil = 0;
    const held: Buffer[] = [];
    for (const s of [client, redis]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (d: Buffer) => {
      if (marker !== undefined && d.includes(marker)) {
        marker = undefined;
        cutOnAnswer = true;
      }
      if (delayMarker !== undefined && d.includes(delayMarker.text)) {
        // Every answer from now on is held back (in order) until the delay is over: a slow Redis.
        holdUntil = Date.now() + delayMarker.ms;
        delayMarker = undefined;
        setTimeout(() => {
          for (const b of held.splice(0)) client.write(b);
          holdUntil = 0;
        }, holdUntil - Date.now());
      }
      redis.write(d);
    });
    redis.on('data', (d: Buffer) => {
      if (cutOnAnswer) {
        lost++;
        client.destroy();
        redis.destroy();
        return;
      }
      if (holdUntil > 0) held.push(d);
      else client.write(d);
    });
    client.on('close', () => redis.destroy());
    redis.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    loseAnswerTo: (m) => {
      marker = m;
    },
    delayAnswerTo: (text, ms) => {
      delayMarker = { text, ms };
    },
    lost: () => lost,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('RedisTokenStore on standalone Redis', () => {
  it('puts a TTL on every key it writes (owner keys and their listing index excepted) and a family on one hash tag', async () => {
    const server = await startRedis();
    closers.push(() => server.close());
    const store = await RedisTokenStore.connect({ mode: 'standalone', url: server.url, keyPrefix: 'ttl:' }, TIMINGS);
    try {
      const now = Date.now();
      const fam = randomUUID();
      await store.createFamily('h1', record(fam, 'alice', now));
      const r = await store.rotate({ oldHash: 'h1', newHash: 'h2', newRecord: record(fam, 'alice', now + 1), now: now + 1, sealedSuccessor: 'sealed', graceMs: 5_000 });
      expect(r.kind).toBe('rotated');
      await store.createFamily('h3', record(randomUUID(), 'bob', now));
      await store.revokeSubject('bob', now, now);
      await store.setOwnerIfAbsent('svc/v1', 'alice');
      const keys = (await server.cli('KEYS', '*')).split('\n').filter(Boolean).sort();
      const withoutTtl: string[] = [];
      for (const k of keys) if (Number(await server.cli('PTTL', k)) < 0) withoutTtl.push(k);
      expect(withoutTtl).toEqual(['ttl:owner:svc%2Fv1', 'ttl:{owners}']);
      expect(keys.filter((k) => k.includes(fam))).toEqual([`ttl:{fam:${fam}}:f`, `ttl:{fam:${fam}}:s:h1`, `ttl:{fam:${fam}}:x`]);
    } finally {
      await store.close();
    }
  });

  it('writes the new token\'s index entry in the rotation itself: one per rotation, none for a refused one', async () => {
    const server = await standaloneServer();
    const store = await RedisTokenStore.connect({ mode: 'standalone', url: server.url, keyPrefix: 'idx:' }, TIMINGS);
    try {
      const now = Date.now();
      const fam = randomUUID();
      const index = async (hash: string) => ({ family: await server.cli('GET', `idx:rtf:${hash}`), ttl: Number(await server.cli('PTTL', `idx:rtf:${hash}`)) });
      await store.createFamily(`a-${fam}`, record(fam, 'erin', now));
      expect((await store.rotate({ oldHash: `a-${fam}`, newHash: `b-${fam}`, newRecord: record(fam, 'erin', now), now, sealedSuccessor: undefined, graceMs: 0 })).kind).toBe('rotated');
      const written = await index(`b-${fam}`);
      expect(written.family).toBe(fam);
      expect(written.ttl).toBeGreaterThan(50_000);
      expect(written.ttl).toBeLessThanOrEqual(60_000);
      expect(await store.getRefresh(`b-${fam}`, now)).not.toBeNull();
      // Unknown old token, and a consumed one presented again (reuse): no index entry for the would-be successor.
      expect((await store.rotate({ oldHash: `nope-${fam}`, newHash: `c-${fam}`, newRecord: record(fam, 'erin', now), now, sealedSuccessor: undefined, graceMs: 0 })).kind).toBe('invalid');
      expect((await store.rotate({ oldHash: `a-${fam}`, newHash: `d-${fam}`, newRecord: record(fam, 'erin', now), now, sealedSuccessor: undefined, graceMs: 0 })).kind).toBe('reused');
      expect((await index(`c-${fam}`)).family).toBe('');
      expect((await index(`d-${fam}`)).family).toBe('');
    } finally {
      await store.close();
    }
  });

  type Relay = Awaited<ReturnType<typeof startLossyRelay>>;
  /** A store that reaches standalone Redis through a relay, a fresh family in it, and a rotation of any of its tokens. */
  async function throughRelay(
    keyPrefix: string,
    subject: string,
    test: (t: { store: RedisTokenStore; relay: Relay; server: RedisServer; fam: string; now: number; rotate: (oldHash: string, newHash: string) => ReturnType<RedisTokenStore['rotate']> }) => Promise<void>,
    opts: Partial<RedisStoreOptions> = {},
  ): Promise<void> {
    const server = await standaloneServer();
    const relay = await startLossyRelay(server.port);
    const store = await RedisTokenStore.connect({ mode: 'standalone', url: relay.url, keyPrefix, ...opts } as RedisStoreOptions, TIMINGS);
    try {
      const now = Date.now();
      const fam = randomUUID();
      await store.createFamily(`a-${fam}`, record(fam, subject, now));
      const rotate = (oldHash: string, newHash: string) =>
        store.rotate({ oldHash, newHash, newRecord: record(fam, subject, now), now, sealedSuccessor: undefined, graceMs: 0 });
      await test({ store, relay, server, fam, now, rotate });
    } finally {
      await store.close();
      await relay.close();
    }
  }

  it('a rotation whose answer is lost is run again and answers rotated: the client is not told 503 and its retry is no reuse', async () => {
    await throughRelay('lost:', 'lena', async ({ store, relay, server, fam, now, rotate }) => {
      relay.loseAnswerTo(`b-${fam}`);
      const out = await rotate(`a-${fam}`, `b-${fam}`);
      expect(relay.lost()).toBe(1);
      expect(out.kind).toBe('rotated');
      expect(await store.getRefresh(`b-${fam}`, now)).not.toBeNull();
      expect(await server.cli('EXISTS', `lost:{fam:${fam}}:t`)).toBe('0');
      expect(await server.cli('HGET', 'lost:{rev}:e', `family:${fam}`)).toBe('');
    });
  });

  it('a rotation slower than commandTimeoutMs is sent again and answers rotated, not a 503 that would make the retry a reuse', async () => {
    await throughRelay(
      'slow:',
      'nora',
      async ({ store, relay, server, fam, now, rotate }) => {
        // The first try times out at 300 ms; Redis ran it, and its answer (then the second try's) arrives at 450 ms.
        relay.delayAnswerTo(`b-${fam}`, 450);
        expect((await rotate(`a-${fam}`, `b-${fam}`)).kind).toBe('rotated');
        expect(await store.getRefresh(`b-${fam}`, now)).not.toBeNull();
        expect(await server.cli('EXISTS', `slow:{fam:${fam}}:t`)).toBe('0');
      },
      { commandTimeoutMs: 300 },
    );
  });

  it('a reuse whose answer is lost is still reported as reuse, and its revocation entry is stored with it (a reloaded view keeps the family revoked)', async () => {
    await throughRelay('lostreuse:', 'mona', async ({ store, relay, server, fam, now, rotate }) => {
      expect((await rotate(`a-${fam}`, `b-${fam}`)).kind).toBe('rotated');
      relay.loseAnswerTo(`c-${fam}`);
      const out = await rotate(`a-${fam}`, `c-${fam}`);
      expect(relay.lost()).toBe(1);
      expect(out).toEqual({ kind: 'reused', familyId: fam, subject: 'mona' });
      expect(JSON.parse(await server.cli('HGET', 'lostreuse:{rev}:e', `family:${fam}`))).toMatchObject({ kind: 'family', familyId: fam });
      expect((await store.listRevocations(now)).some((e) => e.kind === 'family' && e.familyId === fam)).toBe(true);
    });
  });

  it('rotates after SCRIPT FLUSH (scripts are re-sent on NOSCRIPT)', async () => {
    const server = await standaloneServer();
    const store = await RedisTokenStore.connect({ mode: 'standalone', url: server.url }, TIMINGS);
    try {
      const now = Date.now();
      const fam = randomUUID();
      await store.createFamily(`a-${fam}`, record(fam, 'carol', now));
      expect(await server.cli('SCRIPT', 'FLUSH')).toBe('OK');
      const out = await store.rotate({ oldHash: `a-${fam}`, newHash: `b-${fam}`, newRecord: record(fam, 'carol', now), now, sealedSuccessor: undefined, graceMs: 0 });
      expect(out.kind).toBe('rotated');
      expect(await store.getRefresh(`b-${fam}`, now)).not.toBeNull();
    } finally {
      await store.close();
    }
  });

  it('fails fast while Redis is down, reports the feed lost, then live again after a restart', async () => {
    const server = await startRedis({ persist: true });
    closers.push(() => server.close());
    const store = await RedisTokenStore.connect({ mode: 'standalone', url: server.url, commandTimeoutMs: 500, feedCheckIntervalMs: 200 }, TIMINGS);
    const states: boolean[] = [];
    store.onFeedState((live) => states.push(live));
    try {
      await untilTrue('feed live', 3_000, () => states.at(-1) === true);
      const now = Date.now();
      const fam = randomUUID();
      await store.createFamily('k1', record(fam, 'dave', now));
      await server.kill();
      const lost = await untilTrue('feed lost', 3_000, () => states.at(-1) === false);
      expect(lost).toBeLessThan(1_000);
      const t0 = Date.now();
      await expect(store.getRefresh('k1', now)).rejects.toThrow();
      await expect(store.createFamily('k2', record(randomUUID(), 'dave', now))).rejects.toThrow();
      expect(Date.now() - t0).toBeLessThan(1_500);

      await server.start();
      await untilTrue('feed live again', 5_000, () => states.at(-1) === true);
      await untilTrue('commands work again', 5_000, () => store.ping().then(() => true, () => false));
      expect((await store.getRefresh('k1', now))?.familyId).toBe(fam);
    } finally {
      await store.close();
    }
  });
});

describe('RedisTokenStore over TLS with an ACL user', () => {
  it('connects with mutual TLS and username/password, and refuses a wrong password', async () => {
    const port = (await import('../integration/servers/redis.ts')).freeRedisPort;
    const tlsPort = await port();
    const tlsCli = ['--tls', '--cacert', join(CERTS, 'ca.crt'), '--cert', join(CERTS, 'gateway-client.crt'), '--key', join(CERTS, 'gateway-client.key')];
    const server = await startRedis({
      port: tlsPort,
      args: [
        '--port', '0', '--tls-port', String(tlsPort),
        '--tls-cert-file', join(CERTS, 'node.crt'), '--tls-key-file', join(CERTS, 'node.key'),
        '--tls-ca-cert-file', join(CERTS, 'ca.crt'), '--tls-auth-clients', 'yes',
        '--user', 'default', 'off',
        // the ACL the README recommends: own keys and channel, no dangerous commands but INFO (ready check)
        '--user', 'mlgate', 'on', '>gw-Secret-1', '~mlgate:*', '&mlgate:*', '+@all', '-@dangerous', '+info',
      ],
      cliArgs: [...tlsCli, '--user', 'mlgate', '--pass', 'gw-Secret-1', '--no-auth-warning'],
    });
    closers.push(() => server.close());
    const { readFileSync } = await import('node:fs');
    const tls = {
      ca: readFileSync(join(CERTS, 'ca.crt')),
      cert: readFileSync(join(CERTS, 'gateway-client.crt')),
      key: readFileSync(join(CERTS, 'gateway-client.key')),
      servername: 'localhost',
    };
    const base: RedisStoreOptions = { mode: 'standalone', url: `rediss://127.0.0.1:${tlsPort}`, tls, username: 'mlgate', password: 'gw-Secret-1' };
    const store = await RedisTokenStore.connect(base, TIMINGS);
    try {
      const now = Date.now();
      const fam = randomUUID();
      await store.createFamily('t1', record(fam, 'erin', now));
      expect((await store.getRefresh('t1', now))?.familyId).toBe(fam);
      await untilTrue('feed live over TLS', 3_000, () => store.feedLive);
    } finally {
      await store.close();
    }
    await expect(RedisTokenStore.connect({ ...base, password: 'wrong', connectTimeoutMs: 500 }, TIMINGS)).rejects.toThrow(/WRONGPASS/);
    // a plain client without TLS gets nowhere either
    const plain = new Redis({ port: tlsPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
    plain.on('error', () => {});
    await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    plain.disconnect();
  });
});

describe('store configuration', () => {
  const base = { upstream: { url: 'https://127.0.0.1:1', caFile: 'x', clientCertFile: 'x', clientKeyFile: 'x' } };
  const problems = (store: unknown, env: Record<string, string> = {}): string[] => {
    try {
      loadConfig({ base: { ...base, ...(store === undefined ? {} : { store }) } as never, env });
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it('refuses kind redis without redis settings, and settings that do not fit the mode', () => {
    expect(problems({ kind: 'redis' })).toEqual(['store.redis: store.kind is redis but store.redis is not configured']);
    expect(problems({ kind: 'redis', redis: {} }).join('\n')).toContain('store.redis.url: mode standalone needs url');
    const sentinel = problems({ kind: 'redis', redis: { mode: 'sentinel', url: 'redis://x:1' } }).join('\n');
    expect(sentinel).toContain('store.redis.sentinels');
    expect(sentinel).toContain('store.redis.masterName');
    expect(sentinel).toContain('store.redis.url');
    expect(problems({ kind: 'redis', redis: { mode: 'cluster', nodes: [{ host: 'a', port: 1 }], minReplicaAcks: 1 } }).join('\n')).toContain(
      'store.redis.minReplicaAcks',
    );
    expect(problems({ kind: 'redis', redis: { url: 'redis://a:1', keyPrefix: 'x{y}:' } }).join('\n')).toContain('store.redis.keyPrefix');
    expect(problems({ kind: 'redis', redis: { url: 'redis://a:1', password: 'p', passwordFile: '/f' } }).join('\n')).toContain('passwordFile');
    expect(problems({ kind: 'redis', redis: { url: 'http://a:1' } }).join('\n')).toContain('store.redis.url');
    expect(problems({ kind: 'redis', redis: { url: 'redis://a:1', commandTimeoutMs: 200 } }).join('\n')).toContain('replicaAckTimeoutMs');
    expect(problems(undefined)).toEqual([]);
  });

  it('takes the store from the environment, and the password from a file', async () => {
    const server = await standaloneServer();
    const dir = mkdtempSync(join(tmpdir(), 'mlgate-redis-cfg-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'pw'), 'not-needed-but-read\n');
    const config = loadConfig({
      base: base as never,
      env: { MLGATE_STORE__KIND: 'redis', MLGATE_STORE__REDIS__URL: server.url, MLGATE_STORE__REDIS__PASSWORD_FILE: join(dir, 'pw') },
    });
    expect(config.store.kind).toBe('redis');
    expect(redisOptions(config.store.redis!).password).toBe('not-needed-but-read');
    // no password configured on this server: connect without the file
    const store = await createStore({ ...config.store, redis: { ...config.store.redis!, passwordFile: undefined } }, TIMINGS);
    try {
      expect(store.kind).toBe('redis');
      await store.ping();
    } finally {
      await store.close();
    }
  });
});
