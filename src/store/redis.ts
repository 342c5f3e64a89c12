// The Redis TokenStore (ioredis): standalone, Sentinel or Cluster, same semantics as memory.ts (one contract suite).
//
// Keys (P = keyPrefix, ids URI-encoded so no id can contain a brace or a colon):
//   P{fam:<familyId>}:f / :x / :s:<hash> / :t   a refresh family; see redis-scripts.ts. One hash tag = one slot.
//   Prtf:<hash> -> familyId                       index from a refresh token hash to its family (its own slot)
//   P{sub:<subject>}:i / :b                       the subject's families (zset) and not-before (ms)
//   P{rev}:e / :d                                 current revocation entries (hash) and their ends (zset)
//   P{subjects}                                   subjects with families (zset, score: newest family end), for
//                                                 the admin listing; pruned past the score at every login
//   Powner:<service>                              publisher of a web service (SET NX)
//   P{owners}                                     services with a recorded owner (zset, score 0: by name)
//   channel Prevocations                          every revocation, as the entry's JSON
// Every key has a TTL except owner keys: ownership lasts as long as the service (deleted with it), and a TTL would
// let anyone re-claim a service after it lapsed.
//
// Atomicity: the family-slot scripts decide. The hash index is only a pointer, written before the family script
// (a pointer to a family that does not hold the hash finds nothing) and never trusted alone. Operations that span
// slots (login: subject index + index + family; revokeSubject: subject + every family) are several steps, ordered so
// that a failure between steps errs closed; the order is argued at each method. On standalone and Sentinel the same
// steps run (one code path, tested on all three topologies).
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseSubjectCursor, subjectCursor } from './listing.ts';
import { SCRIPTS, type ScriptName } from './redis-scripts.ts';
import type {
  FamilySummary,
  OwnerRecord,
  Page,
  RefreshRecord,
  RevocationEntry,
  RotateOutcome,
  RotateRequest,
  StoredRefresh,
  StoreTimings,
  TokenStore,
} from './types.ts';

export interface RedisEndpoint {
  host: string;
  port: number;
}

export interface RedisStoreOptions {
  mode: 'standalone' | 'sentinel' | 'cluster';
  url?: string | undefined;
  sentinels?: RedisEndpoint[] | undefined;
  masterName?: string | undefined;
  nodes?: RedisEndpoint[] | undefined;
  username?: string | undefined;
  password?: string | undefined;
  sentinelPassword?: string | undefined;
  tls?: ConnectionOptions | undefined;
  keyPrefix?: string | undefined;
  commandTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
  /** standalone/sentinel: WAIT for this many replicas after each write (0 = do not wait). */
  minReplicaAcks?: number | undefined;
  replicaAckTimeoutMs?: number | undefined;
  /** PING period of the revocation feed connection. */
  feedCheckIntervalMs?: number | undefined;
  /** Connection events (no secrets in them). */
  log?: ((level: 'debug' | 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void) | undefined;
}

type Client = Redis | Cluster;
type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

const enc = (id: string): string => encodeURIComponent(id);
/** How many families revokeSubject ends at once (each is one script on its own slot). */
const REVOKE_CONCURRENCY = 16;

/** A store error: the app answers 503 store_unavailable for any non-gateway error; this one says what failed. */
export class RedisStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisStoreError';
  }
}

export class RedisTokenStore implements TokenStore {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  private readonly client: Client;
  private readonly opts: RedisStoreOptions;
  private readonly timings: StoreTimings;
  private readonly channel: string;
  private readonly feed: RevocationFeed;
  private closed = false;

  private constructor(client: Client, opts: RedisStoreOptions, timings: StoreTimings) {
    this.client = client;
    this.opts = opts;
    this.timings = timings;
    this.prefix = opts.keyPrefix ?? 'mlgate:';
    this.channel = `${this.prefix}revocations`;
    this.feed = new RevocationFeed({
      channel: this.channel,
      connect: (attempt) => this.subscriberConnection(attempt),
      checkIntervalMs: opts.feedCheckIntervalMs ?? 1_000,
      verify: (opts.minReplicaAcks ?? 0) > 0 && opts.mode !== 'cluster' ? (conn) => this.verifyFeedNode(conn) : undefined,
      pingTimeoutMs: opts.commandTimeoutMs ?? 1_000,
      log: opts.log,
    });
  }

  /** The command connection, for login-throttle counters that every instance shares (rate-limiter-flexible). */
  get sharedCounters(): { client: Client; keyPrefix: string } {
    return { client: this.client, keyPrefix: this.prefix };
  }

  /** Connects (fails when Redis cannot be reached within connectTimeoutMs) and starts the revocation feed. */
  static async connect(opts: RedisStoreOptions, timings: StoreTimings): Promise<RedisTokenStore> {
    const client = createClient(opts, { lazyConnect: true, scripts: true });
    const log = opts.log;
    // The last connection error says why (WRONGPASS, ECONNREFUSED, a TLS refusal): the start's error names it.
    let lastError: string | undefined;
    client.on('error', (err: Error) => {
      lastError = err.message;
      log?.('debug', 'redis connection error', { err: err.message });
    });
    client.on('ready', () => log?.('info', 'redis ready', { mode: opts.mode }));
    client.on('close', () => log?.('debug', 'redis connection closed'));
    try {
      await withTimeout(client.connect(), (opts.connectTimeoutMs ?? 2_000) * 3, 'connect to redis');
    } catch (err) {
      client.disconnect();
      const why = lastError !== undefined && !errText(err).includes(lastError) ? ` (${lastError})` : '';
      throw new RedisStoreError(`cannot connect to redis: ${errText(err)}${why}`, { cause: err });
    }
    // From now on a command sent while Redis is unreachable fails at once (-> 503) instead of waiting in a queue.
    client.options.enableOfflineQueue = false;
    const store = new RedisTokenStore(client, opts, timings);
    store.feed.start();
    return store;
  }

  // ---- keys --------------------------------------------------------------------------------------------------
  private famTag(familyId: string): string {
    return `${this.prefix}{fam:${enc(familyId)}}`;
  }
  private famKeys(familyId: string): { f: string; x: string; t: string; s: (hash: string) => string } {
    const tag = this.famTag(familyId);
    return { f: `${tag}:f`, x: `${tag}:x`, t: `${tag}:t`, s: (hash) => `${tag}:s:${enc(hash)}` };
  }
  private indexKey(hash: string): string {
    return `${this.prefix}rtf:${enc(hash)}`;
  }
  private subjectKeys(subject: string): { i: string; b: string } {
    const tag = `${this.prefix}{sub:${enc(subject)}}`;
    return { i: `${tag}:i`, b: `${tag}:b` };
  }
  private revocationKeys(): { e: string; d: string } {
    return { e: `${this.prefix}{rev}:e`, d: `${this.prefix}{rev}:d` };
  }
  private ownerKey(service: string): string {
    return `${this.prefix}owner:${enc(service)}`;
  }
  private subjectsKey(): string {
    return `${this.prefix}{subjects}`;
  }
  private ownersKey(): string {
    return `${this.prefix}{owners}`;
  }

  private script(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    const fn = (this.client as unknown as Record<ScriptName, ScriptCall>)[name];
    return fn.call(this.client, ...keys, ...args.map(String));
  }

  /**
   * The connection commands go out on now. ioredis replaces it on every reconnect, and a failover is a reconnect
   * (to another node): commands in flight are then sent again on the new connection (autoResendUnfulfilledCommands).
   */
  private link(): unknown {
    return this.client instanceof Cluster ? undefined : this.client.stream;
  }

  /**
   * With minReplicaAcks: the writes so far on this connection reached that many replicas, or this throws. `since` is
   * link() taken before the operation's first command: when the connection changed since, the operation's commands
   * may have run on two nodes (a write on the old master, lost with it, the next on the new one), and a WAIT sent
   * again on the new connection counts that connection's writes only (none): nothing is confirmed, this throws.
   */
  private async replicated(since: unknown): Promise<void> {
    const want = this.opts.minReplicaAcks ?? 0;
    if (want <= 0 || this.client instanceof Cluster) return;
    const got = await this.client.wait(want, this.opts.replicaAckTimeoutMs ?? 250);
    if (this.link() !== since) throw new RedisStoreError('the connection to redis changed during the operation (failover?): its writes are not confirmed');
    if (got < want) throw new RedisStoreError(`write reached ${got} of ${want} replicas in ${this.opts.replicaAckTimeoutMs ?? 250} ms`);
  }

  // ---- families ----------------------------------------------------------------------------------------------

  /**
   * Three steps: (1) the subject index, which refuses a family that started before a revocation of its subject;
   * (2) the hash index; (3) the family itself, refused when the family id was revoked (tombstone).
   * revokeSubject writes the not-before and then reads the subject index, so a login either is in the index it
   * reads (and is ended, step 3 coming later is refused by the tombstone) or comes after the not-before and is
   * checked against it in step 1. A failure after step 1 or 2 leaves only index entries that expire.
   */
  async createFamily(hash: string, record: RefreshRecord): Promise<void> {
    const since = this.link();
    const now = record.issuedAt;
    const subject = record.identity.subject;
    const sk = this.subjectKeys(subject);
    const tokenTtl = Math.min(record.expiresAt, record.familyExpiresAt) - now;
    const [added] = await Promise.all([
      this.script('mlgSubjectAdd', [sk.i, sk.b], [record.familyId, record.familyStartedAt, record.familyExpiresAt, now]),
      tokenTtl > 0 ? this.client.set(this.indexKey(hash), record.familyId, 'PX', tokenTtl) : Promise.resolve(null),
      // The admin listing of subjects: raised to this family's end (GT), entries past their end pruned. Only a
      // listing: a refused or failed login leaves an entry that ends with the family it named.
      this.client.zadd(this.subjectsKey(), 'GT', record.familyExpiresAt, subject),
      this.client.zremrangebyscore(this.subjectsKey(), '-inf', now),
      // The key lives until its newest member's end: set when it has no expiry (NX), raised otherwise (GT).
      this.client.pexpireat(this.subjectsKey(), record.familyExpiresAt, 'NX'),
      this.client.pexpireat(this.subjectsKey(), record.familyExpiresAt, 'GT'),
    ]);
    if (Number(added) !== 1) throw new RedisStoreError('refusing a family that started before a revocation of its subject');
    const k = this.famKeys(record.familyId);
    const created = await this.script(
      'mlgCreateFamily',
      [k.f, k.x, k.t],
      [
        hash,
        JSON.stringify(record),
        record.expiresAt,
        subject,
        record.identity.provider,
        record.familyStartedAt,
        record.issuedAt,
        record.familyExpiresAt,
        record.clientAddress ?? '',
        now,
      ],
    );
    if (Number(created) !== 1) throw new RedisStoreError('refusing to create a revoked family');
    await this.replicated(since);
  }

  async getRefresh(hash: string, now: number): Promise<StoredRefresh | null> {
    const since = this.link();
    const familyId = await this.client.get(this.indexKey(hash));
    const found = familyId === null ? null : await this.readToken(familyId, hash, now);
    // "Unknown" from a node that may be a demoted master (a failover in progress) would sign a user out: with
    // minReplicaAcks, trust a negative answer only from a master whose replicas are with it.
    if (found === null) await this.replicated(since);
    return found;
  }

  private async readToken(familyId: string, hash: string, now: number): Promise<StoredRefresh | null> {
    const got = (await this.script('mlgGetRefresh', [this.famKeys(familyId).f], [hash])) as [string, string, string] | null;
    if (!got) return null;
    const [fexp, json, used] = got;
    const rec = JSON.parse(json) as RefreshRecord;
    if (rec.familyId !== familyId || rec.expiresAt <= now || Number(fexp) <= now) return null;
    return used === '' ? rec : { ...rec, usedAt: Number(used) };
  }

  /**
   * The hash index says which family to ask; the family script alone decides. Outside Cluster the script also
   * writes the new token's index entry, in the same step. In a Cluster that entry lives on another slot: it is
   * written first (a pointer into the family, useless unless the script stores the token there), so the token
   * handed out after 'rotated' is always findable. A grace replay writes the successor's entry again (see there).
   */
  async rotate(req: RotateRequest): Promise<RotateOutcome> {
    let since = this.link();
    const familyId = req.newRecord.familyId;
    const newTtl = Math.min(req.newRecord.expiresAt, req.newRecord.familyExpiresAt) - req.now;
    const indexed = newTtl > 0 && !(this.client instanceof Cluster);
    // The old token's index entry is not read again: the family script finds (or misses) the old hash itself.
    if (newTtl > 0 && !indexed) await this.client.set(this.indexKey(req.newHash), familyId, 'PX', newTtl);
    const k = this.famKeys(familyId);
    const entry: RevocationEntry = { kind: 'family', familyId, until: req.now + this.timings.revocationTtlMs };
    const keys = [k.f, k.x, k.s(req.oldHash), k.t];
    const rk = this.revocationKeys();
    const run = (): Promise<unknown> => this.script(
      indexed ? 'mlgRotateIndexed' : 'mlgRotate',
      indexed ? [...keys, this.indexKey(req.newHash), rk.e, rk.d] : keys,
      [
        req.oldHash,
        req.newHash,
        JSON.stringify(req.newRecord),
        req.newRecord.expiresAt,
        req.now,
        req.graceMs,
        req.graceMs > 0 && req.sealedSuccessor !== undefined ? req.sealedSuccessor : '',
        this.timings.revocationTtlMs,
        this.channel,
        JSON.stringify(entry),
        familyId,
        Math.max(newTtl, 0),
      ],
    );
    // A rotation whose answer was lost may have happened: answering 503 would make the client's retry (the same
    // old token, a new request) look like a reuse and end the family. The same call is run again instead; the
    // script recognises its own request and answers what it did. Only a longer outage is a 503.
    let out: [string, string?, string?, string?];
    for (let attempt = 1; ; attempt++) {
      try {
        out = (await run()) as [string, string?, string?, string?];
        if (out[0] === 'rotated') await this.replicated(since);
        break;
      } catch (err) {
        if (attempt >= ROTATE_ATTEMPTS || !outcomeMayBeLost(err)) throw err;
        await new Promise((r) => setTimeout(r, ROTATE_RETRY_DELAY_MS * attempt));
        since = this.link();
      }
    }
    switch (out[0]) {
      case 'rotated':
        return { kind: 'rotated' };
      case 'replayed': {
        // The successor's index entry again: in a Cluster the rotation wrote it before its script, on another node,
        // and a failover between the two can have kept the script's writes (on the new master) and lost the index
        // entry (on the old one); the successor would then be unfindable and this token dead (-> 401, signed out).
        const [, sealed, succ, succTtl] = out;
        const ttl = Number(succTtl ?? 0);
        await Promise.all([
          indexed || succ === req.newHash ? null : this.client.del(this.indexKey(req.newHash)),
          succ && ttl > 0 ? this.client.set(this.indexKey(succ), familyId, 'PX', ttl) : null,
        ]);
        await this.replicated(since);
        return { kind: 'replayed', successor: sealed! };
      }
      case 'reused': {
        // The family is gone and every instance has been told (PUBLISH in the script); now the stored entry, for
        // instances that reload their view later, and the subject index.
        const subject = out[1]!;
        // Outside a Cluster the script stored the entry itself; in a Cluster it lives on another slot.
        await Promise.all([indexed ? null : this.addRevocations([entry], req.now, false), indexed ? null : this.client.del(this.indexKey(req.newHash))]);
        await this.client.zrem(this.subjectKeys(subject).i, familyId);
        await this.replicated(since);
        return { kind: 'reused', familyId, subject };
      }
      default:
        if (!indexed) await this.client.del(this.indexKey(req.newHash));
        return { kind: 'invalid' };
    }
  }

  /** The revocation entry first (access tokens end everywhere at once), then the family's tokens. */
  async revokeFamily(familyId: string, now: number): Promise<boolean> {
    const since = this.link();
    const entry: RevocationEntry = { kind: 'family', familyId, until: now + this.timings.revocationTtlMs };
    await this.addRevocations([entry], now, true);
    const subject = await this.endFamily(familyId, '');
    if (subject !== null) await this.client.zrem(this.subjectKeys(subject).i, familyId);
    await this.replicated(since);
    return subject !== null;
  }

  private async endFamily(familyId: string, message: string): Promise<string | null> {
    const k = this.famKeys(familyId);
    const sub = await this.script('mlgRevokeFamily', [k.f, k.x, k.t], [this.timings.revocationTtlMs, this.channel, message]);
    return typeof sub === 'string' ? sub : null;
  }

  /**
   * (1) The subject entry (stored + published: its access tokens end everywhere); (2) the not-before and the
   * subject's family list, in one script on the subject's slot; (3) each family, one script per family: in a
   * Cluster the families live on other slots than the subject index, so this cannot be one script. (4) A family
   * entry per ended family, so that a refresh that rotated between (2) and (3) cannot leave a usable access token.
   */
  async revokeSubject(subject: string, notBefore: number, now: number): Promise<number> {
    const since = this.link();
    const until = now + this.timings.revocationTtlMs;
    await this.addRevocations([{ kind: 'subject', subject, notBefore, until }], now, true);
    const sk = this.subjectKeys(subject);
    const families = (await this.script('mlgSubjectRevoke', [sk.i, sk.b], [notBefore, this.timings.revocationTtlMs])) as string[];
    const ended: string[] = [];
    for (let i = 0; i < families.length; i += REVOKE_CONCURRENCY) {
      const batch = families.slice(i, i + REVOKE_CONCURRENCY);
      const subjects = await Promise.all(batch.map((id) => this.endFamily(id, '')));
      batch.forEach((id, j) => {
        if (subjects[j] !== null) ended.push(id);
      });
    }
    if (ended.length > 0) {
      await this.addRevocations(
        ended.map((familyId) => ({ kind: 'family', familyId, until })),
        now,
        true,
      );
    }
    await this.replicated(since);
    return ended.length;
  }

  async listFamilies(subject: string, now: number): Promise<FamilySummary[]> {
    const since = this.link();
    const ids = await this.client.zrangebyscore(this.subjectKeys(subject).i, `(${now}`, '+inf');
    await this.replicated(since);
    const rows = await Promise.all(
      ids.map((id) => this.client.hmget(this.famKeys(id).f, 'sub', 'prov', 'start', 'last', 'fexp', 'live', 'addr')),
    );
    const out: FamilySummary[] = [];
    rows.forEach((r, i) => {
      const [sub, prov, start, last, fexp, live, addr] = r;
      if (sub !== subject || !fexp || !live) return;
      const expiresAt = Math.min(Number(fexp), Number(live));
      if (expiresAt <= now) return;
      out.push({
        familyId: ids[i]!,
        subject: sub,
        provider: prov ?? '',
        startedAt: Number(start),
        lastUsedAt: Number(last),
        expiresAt,
        clientAddress: addr ? addr : undefined,
      });
    });
    return out.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
  }

  /** Newest family end first; ties (same ms) in descending code-unit order, as memory.ts. Two reads per page. */
  async listSubjects(after: string | null, limit: number, now: number): Promise<Page<string>> {
    const key = this.subjectsKey();
    const rows: Array<{ end: number; subject: string }> = [];
    const from = after === null ? undefined : parseSubjectCursor(after);
    if (from !== undefined) {
      // The rest of the cursor's tie group: members with exactly its score, after it in the order.
      const ties = from.end > now ? await this.client.zrangebyscore(key, from.end, from.end) : [];
      for (const subject of ties.filter((m) => m < from.subject).sort().reverse()) rows.push({ end: from.end, subject });
    }
    if (rows.length < limit) {
      const max = from === undefined ? '+inf' : `(${from.end}`;
      const got = await this.client.zrevrangebyscore(key, max, `(${now}`, 'WITHSCORES', 'LIMIT', 0, limit - rows.length);
      for (let i = 0; i < got.length; i += 2) rows.push({ end: Number(got[i + 1]), subject: got[i]! });
    }
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { items: page.map((r) => r.subject), next: page.length === limit && last ? subjectCursor(last.end, last.subject) : null };
  }

  // ---- revocations -------------------------------------------------------------------------------------------

  private async addRevocations(entries: RevocationEntry[], now: number, publish: boolean): Promise<void> {
    const rk = this.revocationKeys();
    const args: (string | number)[] = [now, this.channel, publish ? '1' : '0'];
    for (const e of entries) args.push(revocationId(e), JSON.stringify(e), e.until);
    await this.script('mlgRevocationAdd', [rk.e, rk.d], args);
  }

  async listRevocations(now: number): Promise<RevocationEntry[]> {
    const since = this.link();
    const all = await this.client.hvals(this.revocationKeys().e);
    // The view is rebuilt from this list: a stale master (failover in progress) must not be the source.
    await this.replicated(since);
    const out: RevocationEntry[] = [];
    for (const json of all) {
      const e = parseRevocation(json);
      if (e && e.until > now) out.push(e);
    }
    return out;
  }

  onRevocation(listener: (entry: RevocationEntry) => void): () => void {
    return this.feed.onEntry(listener);
  }

  onFeedState(listener: (live: boolean) => void): () => void {
    return this.feed.onState(listener);
  }

  /** Whether the revocation feed is subscribed right now. */
  get feedLive(): boolean {
    return this.feed.live;
  }

  // ---- ownership ---------------------------------------------------------------------------------------------

  async setOwnerIfAbsent(service: string, owner: string): Promise<string> {
    const since = this.link();
    // SET NX GET (Redis 7): one atomic step that answers the owner recorded before, or null when we set it.
    const previous = (await this.client.call('SET', this.ownerKey(service), owner, 'NX', 'GET')) as string | null;
    if (previous === null) {
      // The listing index (another slot): written after the owner, removed after it (deleteOwner).
      await this.client.zadd(this.ownersKey(), 0, service);
      await this.replicated(since);
    }
    return previous ?? owner;
  }

  async setOwner(service: string, owner: string): Promise<string | null> {
    const since = this.link();
    const previous = (await this.client.call('SET', this.ownerKey(service), owner, 'GET')) as string | null;
    await this.client.zadd(this.ownersKey(), 0, service);
    await this.replicated(since);
    return previous;
  }

  /** By name from the index; a name whose owner key is gone (deleted meanwhile) is left out. */
  async listOwners(after: string | null, limit: number): Promise<Page<OwnerRecord>> {
    const services = await this.client.zrangebylex(this.ownersKey(), after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, limit);
    const owners = await Promise.all(services.map((s) => this.client.get(this.ownerKey(s))));
    const items: OwnerRecord[] = [];
    services.forEach((service, i) => {
      const owner = owners[i];
      if (owner !== null && owner !== undefined) items.push({ service, owner });
    });
    return { items, next: services.length === limit ? services.at(-1)! : null };
  }

  async getOwner(service: string): Promise<string | null> {
    return this.client.get(this.ownerKey(service));
  }

  async deleteOwner(service: string): Promise<void> {
    const since = this.link();
    await this.client.del(this.ownerKey(service));
    await this.client.zrem(this.ownersKey(), service);
    await this.replicated(since);
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.feed.stop();
    try {
      await withTimeout(this.client.quit(), 1_000, 'quit');
    } catch {
      this.client.disconnect();
    }
  }

  /** The raw client, for operations and tests (DBSIZE, SCRIPT FLUSH). */
  get redis(): Client {
    return this.client;
  }

  /**
   * With minReplicaAcks: the feed subscribes only on a master that has its replicas. A master demoted by a failover
   * loses its replica at once, so a feed that re-attached to it (a Sentinel not yet told of the failover answered)
   * is refused and retried instead of listening where no revocation is published any more.
   */
  private async verifyFeedNode(conn: Redis): Promise<void> {
    const info = await conn.info('replication');
    const role = /^role:(\w+)/m.exec(info)?.[1];
    const replicas = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
    const want = this.opts.minReplicaAcks ?? 0;
    if (role !== 'master' || replicas < want) throw new RedisStoreError(`feed node is ${role} with ${replicas} replicas (want ${want})`);
  }

  /** A new connection for the revocation feed: a plain connection to one node (Cluster pub/sub reaches every node). */
  private subscriberConnection(attempt: number): Redis {
    if (this.client instanceof Cluster) {
      const known = this.client.nodes('master').map((n) => ({ host: n.options.host!, port: n.options.port! }));
      const candidates = known.length > 0 ? known : (this.opts.nodes ?? []);
      const node = candidates[attempt % candidates.length]!;
      return createClient({ ...this.opts, mode: 'standalone', url: undefined, nodes: undefined, endpoint: node }, { lazyConnect: true, scripts: false, subscriber: true }) as Redis;
    }
    return createClient(this.opts, { lazyConnect: true, scripts: false, subscriber: true }) as Redis;
  }
}

/** A rotation is sent at most this many times when its answer is lost (each try waits for commandTimeoutMs). */
const ROTATE_ATTEMPTS = 3;
const ROTATE_RETRY_DELAY_MS = 100;

/**
 * Whether a failed command may have run without its answer reaching us (a timeout, a cut or replaced connection,
 * a failover, writes not confirmed by replicas), as opposed to Redis refusing it (a script error).
 */
function outcomeMayBeLost(err: unknown): boolean {
  if (err instanceof RedisStoreError) return true;
  if (err instanceof ReplyError) return /^(READONLY|MASTERDOWN|LOADING|BUSY|CLUSTERDOWN|TRYAGAIN)\b/.test((err as Error).message);
  return true;
}

function revocationId(e: RevocationEntry): string {
  return e.kind === 'family' ? `family:${e.familyId}` : `subject:${e.subject}`;
}

function parseRevocation(json: string): RevocationEntry | null {
  try {
    const e = JSON.parse(json) as RevocationEntry;
    if (e.kind === 'family' && typeof e.familyId === 'string' && typeof e.until === 'number') return e;
    if (e.kind === 'subject' && typeof e.subject === 'string' && typeof e.notBefore === 'number' && typeof e.until === 'number') return e;
  } catch {
    // ignored: not ours
  }
  return null;
}

// ---- connections -----------------------------------------------------------------------------------------------

interface ClientKind {
  lazyConnect: boolean;
  scripts: boolean;
  /** The feed connection: no reconnects of its own (RevocationFeed reconnects, and reloads after each). */
  subscriber?: boolean;
}

function createClient(opts: RedisStoreOptions & { endpoint?: RedisEndpoint }, kind: ClientKind): Client {
  const connectTimeout = opts.connectTimeoutMs ?? 2_000;
  // What every connection needs, one server or each node of a Cluster alike.
  const connection: RedisOptions = {
    username: opts.username,
    password: opts.password,
    tls: opts.tls,
    connectTimeout,
    commandTimeout: opts.commandTimeoutMs ?? 1_000,
    // PITFALLS 28: never queue a command across reconnects; one try, then the caller answers 503.
    maxRetriesPerRequest: 1,
    // PITFALLS 27: RESP2 reply shapes (and the restricted subscriber mode the feed relies on).
    protocol: 2,
    disableClientInfo: true,
    connectionName: kind.subscriber ? 'mlgate-feed' : 'mlgate',
  };
  const common: RedisOptions = {
    ...connection,
    lazyConnect: kind.lazyConnect,
    enableReadyCheck: true,
    autoResubscribe: false,
    // A demoted master answers READONLY: reconnect, so the Sentinel connector finds the new master.
    reconnectOnError: (err) => /READONLY|MASTERDOWN/.test(err.message),
    retryStrategy: kind.subscriber ? () => null : (times) => Math.min(100 * times, 1_000),
    ...(kind.scripts ? { scripts: SCRIPTS } : {}),
    // Commands issued in one event-loop turn go out in one write: under load, one syscall for many refreshes.
    enableAutoPipelining: !kind.subscriber,
  };
  if (opts.mode === 'cluster') {
    const clusterOpts: ClusterOptions = {
      lazyConnect: kind.lazyConnect,
      redisOptions: connection,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1_000),
      slotsRefreshTimeout: connectTimeout,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      maxRedirections: 6,
      // PITFALLS 32: token state is read from masters only (scaleReads stays 'master').
      ...(kind.scripts ? { scripts: SCRIPTS } : {}),
      enableAutoPipelining: !kind.subscriber,
    };
    return new Cluster(opts.nodes ?? [], clusterOpts);
  }
  if (opts.endpoint) return new Redis({ ...common, host: opts.endpoint.host, port: opts.endpoint.port });
  if (opts.mode === 'sentinel') {
    return new Redis({
      ...common,
      sentinels: opts.sentinels ?? [],
      name: opts.masterName,
      role: 'master',
      sentinelPassword: opts.sentinelPassword,
      ...(opts.tls ? { enableTLSForSentinelMode: true, sentinelTLS: opts.tls } : {}),
      sentinelCommandTimeout: opts.commandTimeoutMs ?? 1_000,
      // Subscribes to +switch-master on the Sentinels and drops the connection at once on a failover: without it
      // a client stays on the demoted master until Sentinel reconfigures it (10 s and more), getting 503s.
      failoverDetector: true,
      // The Sentinel connector walks the list of sentinels on every connect; bounded, then retryStrategy again.
      sentinelRetryStrategy: (times) => (times > 3 ? null : 100 * times),
    });
  }
  if (!opts.url) throw new RedisStoreError('redis mode standalone needs a url');
  const url = new URL(opts.url);
  const tls = url.protocol === 'rediss:' ? (opts.tls ?? {}) : opts.tls;
  return new Redis(opts.url, { ...common, tls });
}

// ---- the revocation feed ---------------------------------------------------------------------------------------

interface FeedOptions {
  channel: string;
  connect: (attempt: number) => Redis;
  checkIntervalMs: number;
  pingTimeoutMs: number;
  /** Checked after connecting and before subscribing; a throw counts as a lost connection. */
  verify?: ((conn: Redis) => Promise<void>) | undefined;
  log?: RedisStoreOptions['log'];
}

/**
 * One dedicated subscriber connection (PITFALLS 31). Live = subscribed and answering PINGs. Lost = closed, or a
 * PING unanswered within the command timeout; then it reconnects (new connection, backoff up to 1 s) and reports
 * live again only once SUBSCRIBE is confirmed, so the reload the app does on every "live" misses nothing.
 */
class RevocationFeed {
  private readonly opts: FeedOptions;
  private readonly entryListeners = new Set<(e: RevocationEntry) => void>();
  private readonly stateListeners = new Set<(live: boolean) => void>();
  private conn: Redis | undefined;
  private attempt = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly pinger: NodeJS.Timeout;
  live = false;

  constructor(opts: FeedOptions) {
    this.opts = opts;
    this.pinger = setInterval(() => this.check(), opts.checkIntervalMs);
    this.pinger.unref();
  }

  start(): void {
    this.open();
  }

  onEntry(listener: (e: RevocationEntry) => void): () => void {
    this.entryListeners.add(listener);
    return () => void this.entryListeners.delete(listener);
  }

  onState(listener: (live: boolean) => void): () => void {
    this.stateListeners.add(listener);
    if (this.live) listener(true);
    return () => void this.stateListeners.delete(listener);
  }

  private setLive(live: boolean): void {
    if (this.live === live) return;
    this.live = live;
    this.opts.log?.(live ? 'info' : 'warn', live ? 'revocation feed live' : 'revocation feed lost');
    for (const l of [...this.stateListeners]) l(live);
  }

  private open(): void {
    if (this.stopped) return;
    const conn = this.opts.connect(this.attempt++);
    this.conn = conn;
    let lost = false;
    const onLost = (why: string): void => {
      if (lost) return;
      lost = true;
      conn.removeAllListeners('message');
      conn.disconnect();
      if (this.conn !== conn) return;
      this.conn = undefined;
      this.setLive(false);
      if (this.stopped) return;
      const delay = Math.min(50 * 2 ** Math.min(this.attempt, 5), 1_000);
      this.opts.log?.('debug', 'revocation feed reconnecting', { why, delayMs: delay });
      this.retryTimer = setTimeout(() => this.open(), delay);
      this.retryTimer.unref();
    };
    conn.on('error', (err: Error) => this.opts.log?.('debug', 'revocation feed error', { err: err.message }));
    conn.on('close', () => onLost('closed'));
    conn.on('end', () => onLost('ended'));
    conn.on('message', (channel: string, message: string) => {
      if (channel !== this.opts.channel) return;
      const entry = parseRevocation(message);
      if (!entry) return;
      for (const l of [...this.entryListeners]) l(entry);
    });
    conn
      .connect()
      .then(() => this.opts.verify?.(conn))
      .then(() => conn.subscribe(this.opts.channel))
      .then(
        () => {
          if (lost || this.conn !== conn) return;
          this.attempt = 0;
          this.setLive(true);
        },
        (err: unknown) => onLost(errText(err)),
      );
  }

  /** A PING through the subscribed connection; unanswered in time -> the feed is lost and reconnects. */
  private check(): void {
    const conn = this.conn;
    if (!conn || !this.live) return;
    withTimeout(conn.ping(), this.opts.pingTimeoutMs, 'feed ping').catch(() => {
      if (this.conn === conn) conn.disconnect();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pinger);
    clearTimeout(this.retryTimer);
    this.entryListeners.clear();
    this.stateListeners.clear();
    const conn = this.conn;
    this.conn = undefined;
    this.live = false;
    if (conn) {
      try {
        await withTimeout(conn.quit(), 500, 'quit');
      } catch {
        conn.disconnect();
      }
    }
  }
}

// ---- helpers -----------------------------------------------------------------------------------------------------

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisStoreError(`${what}: no answer within ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Reads a secret file (trailing newline ignored). */
export function readSecretFile(file: string): string {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}
