// serviceAccount identity: mlgate logs in to an existing ML Server web node with its own account (POST /login),
// caches that node's access token, renews it with POST /login/refreshToken before it expires (a fresh /login when
// the refresh is refused) and sends it as Authorization. This lets mlgate sit in front of an unmodified ML Server.
import { readFileSync } from 'node:fs';
import { BadGateway, GatewayError } from '../errors.ts';
import { classifyUpstreamError, type NodeTarget, type SmallAnswer, type SmallRequest } from './transport.ts';

export interface ServiceAccountOptions {
  /** Where to log in; absent = each node's own URL (one login per node). */
  loginUrl?: string | undefined;
  username: string;
  password: string;
  refreshBeforeSeconds: number;
  timeoutMs: number;
}

export interface ServiceAccountLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

type Send = (url: URL, opts: SmallRequest) => Promise<SmallAnswer>;

interface Entry {
  base: NodeTarget;
  access: string | undefined;
  refresh: string | undefined;
  /** ms epoch: the token is no longer sent after this (a few seconds before the node's expiry). */
  expMs: number;
  /** ms epoch: renewal starts (in the background while the token is still good). */
  renewAtMs: number;
  pending: Promise<string> | undefined;
}

/** Tokens older than this are never sent, whatever the node said (its clock may differ a little). */
const EXPIRY_MARGIN_MS = 5_000;
const DEFAULT_TTL_SECONDS = 3600;

/** The password from passwordEnv or passwordFile, read once at start. */
export function readServiceAccountPassword(cfg: { passwordEnv?: string | undefined; passwordFile?: string | undefined }, env: NodeJS.ProcessEnv): string {
  if (cfg.passwordEnv !== undefined) {
    const v = env[cfg.passwordEnv];
    if (!v) throw new Error(`upstream.serviceAccount.passwordEnv: the environment variable ${cfg.passwordEnv} is not set`);
    return v;
  }
  if (cfg.passwordFile !== undefined) {
    const v = readFileSync(cfg.passwordFile, 'utf8').replace(/\r?\n$/, '');
    if (!v) throw new Error(`upstream.serviceAccount.passwordFile: ${cfg.passwordFile} is empty`);
    return v;
  }
  throw new Error('upstream.serviceAccount: passwordEnv or passwordFile is required');
}

export class ServiceAccount {
  readonly stats = { logins: 0, refreshes: 0, failedRefreshes: 0 };
  private readonly opts: ServiceAccountOptions;
  private readonly send: Send;
  private readonly log: ServiceAccountLog;
  private readonly entries = new Map<string, Entry>();
  private readonly nodes: readonly NodeTarget[];

  constructor(opts: ServiceAccountOptions, nodes: readonly NodeTarget[], send: Send, log: ServiceAccountLog) {
    this.opts = opts;
    this.nodes = nodes;
    this.send = send;
    this.log = log;
  }

  private entry(node: NodeTarget): Entry {
    const base = this.baseFor(node);
    let e = this.entries.get(base.url);
    if (!e) {
      e = { base, access: undefined, refresh: undefined, expMs: 0, renewAtMs: 0, pending: undefined };
      this.entries.set(base.url, e);
    }
    return e;
  }

  private baseFor(node: NodeTarget): NodeTarget {
    const login = this.opts.loginUrl?.replace(/\/+$/, '');
    if (login === undefined) return node;
    // A login URL that is one of the nodes uses that node's certificate name.
    return this.nodes.find((n) => n.url === login) ?? { url: login, servername: new URL(login).hostname };
  }

  /** The token to send to `node`: cached, renewed in the background when due, fetched when missing or expired. */
  async token(node: NodeTarget): Promise<string> {
    const e = this.entry(node);
    const now = Date.now();
    if (e.access !== undefined && now < e.expMs) {
      if (now >= e.renewAtMs && e.pending === undefined) {
        // Still good: renew behind the requests that keep using it.
        this.renew(e).catch(() => {});
      }
      return e.access;
    }
    return this.renew(e);
  }

  /** The cached token, if any and still valid (health probes send it, never log in for it). */
  cached(node: NodeTarget): string | undefined {
    const e = this.entries.get(this.baseFor(node).url);
    return e?.access !== undefined && Date.now() < e.expMs ? e.access : undefined;
  }

  /** The node refused `token` (401): forget it, so the next token() logs in afresh (once, however many callers). */
  invalidate(node: NodeTarget, token: string | undefined): void {
    const e = this.entries.get(this.baseFor(node).url);
    if (!e || e.access !== token) return;
    e.access = undefined;
    e.refresh = undefined;
    e.expMs = 0;
    this.log.warn({ loginUrl: e.base.url }, 'node refused the service-account token; logging in again');
  }

  /** One renewal at a time per login URL; everyone waiting gets its result. */
  private renew(e: Entry): Promise<string> {
    e.pending ??= this.obtain(e).finally(() => {
      e.pending = undefined;
    });
    return e.pending;
  }

  private async obtain(e: Entry): Promise<string> {
    if (e.refresh !== undefined) {
      try {
        const r = await this.post(e.base, '/login/refreshToken', { refreshToken: e.refresh });
        if (r.status === 200) {
          this.store(e, r.body);
          this.stats.refreshes++;
          this.log.info({ loginUrl: e.base.url, expiresInMs: e.expMs - Date.now() }, 'service-account token refreshed');
          return e.access!;
        }
        this.log.warn({ loginUrl: e.base.url, status: r.status }, 'service-account refresh refused; logging in again');
      } catch (err) {
        this.log.warn({ loginUrl: e.base.url, err: describe(err) }, 'service-account refresh failed; logging in again');
      }
      this.stats.failedRefreshes++;
      e.refresh = undefined;
    }
    const r = await this.post(e.base, '/login', { username: this.opts.username, password: this.opts.password });
    if (r.status !== 200) {
      throw new BadGateway(
        `service-account login as ${this.opts.username} at ${e.base.url} answered ${r.status}`,
        "The operationalization node refused the gateway's service account; the gateway log has the reason.",
      );
    }
    this.store(e, r.body);
    this.stats.logins++;
    this.log.info({ loginUrl: e.base.url, user: this.opts.username, expiresInMs: e.expMs - Date.now() }, 'service account logged in');
    return e.access!;
  }

  private async post(base: NodeTarget, path: string, body: Record<string, string>): Promise<SmallAnswer> {
    try {
      return await this.send(new URL(base.url + path), {
        method: 'POST',
        body: JSON.stringify(body),
        timeoutMs: this.opts.timeoutMs,
        servername: base.servername,
      });
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw classifyUpstreamError(err as NodeJS.ErrnoException, false);
    }
  }

  /** Reads ML Server's token answer: access_token, refresh_token, expires_in (seconds) or expires_on (epoch seconds). */
  private store(e: Entry, text: string): void {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new BadGateway(`service-account token answer from ${e.base.url} is not JSON`);
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') {
      throw new BadGateway(`service-account token answer from ${e.base.url} has no access_token`);
    }
    const now = Date.now();
    const expiresIn = Number(body.expires_in);
    const expiresOn = Number(body.expires_on);
    const lifetimeMs =
      Number.isFinite(expiresIn) && expiresIn > 0
        ? expiresIn * 1000
        : Number.isFinite(expiresOn) && expiresOn * 1000 > now
          ? expiresOn * 1000 - now
          : DEFAULT_TTL_SECONDS * 1000;
    e.access = body.access_token;
    e.refresh = typeof body.refresh_token === 'string' && body.refresh_token !== '' ? body.refresh_token : undefined;
    // Stop sending a little before the node's expiry (short-lived tokens: after three quarters of the lifetime).
    e.expMs = now + Math.max(lifetimeMs * 0.75, lifetimeMs - EXPIRY_MARGIN_MS);
    e.renewAtMs = now + Math.max(lifetimeMs / 2, lifetimeMs - this.opts.refreshBeforeSeconds * 1000);
    if (e.renewAtMs > e.expMs) e.renewAtMs = e.expMs;
  }
}

function describe(err: unknown): string {
  if (err instanceof GatewayError) return `${err.code}: ${err.detail ?? err.message}`;
  return err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? err.name}: ${err.message}` : String(err);
}
