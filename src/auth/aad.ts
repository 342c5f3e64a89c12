// The `aad` provider (Azure Active Directory / Microsoft Entra ID), two paths (DESIGN section 3):
//  1. Bearer pass-in, what mrsdeploy's remoteLoginAAD does: the client sends an Azure AD access token for the
//     web app; it is checked here with jose against the tenant's keys (OIDC discovery -> jwks_uri; one remote key
//     set, cached, refetched once on an unknown kid within jose's cooldown; stale keys keep verifying while the
//     key endpoint is down). Issuer (v1 and/or v2 form of the configured tenant), audience, exp/nbf with a bounded
//     tolerance, tid, RS256 only, and an access token (azp/appid), not an ID token.
//  2. POST /login with Azure AD user name and password (resource-owner password grant), issuing mlgate's own tokens.
// Groups: the `groups` claim (object ids) plus the app `roles` claim values, both matched by auth.roles; a groups
// overage is resolved through Microsoft Graph (client-credentials token) when a client secret is configured.
//
// Failure rules: Azure AD or Graph that cannot answer is 503 directory_unavailable, never 401 for a valid token.
import { createHash } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTPayload,
} from 'jose';
import { DirectoryUnavailable, Forbidden, InvalidCredentials, InvalidRefreshToken, InvalidToken } from '../errors.ts';
import { AzureHttp, type HttpAnswer } from './aad-http.ts';
import type { CredentialProvider, Identity } from './types.ts';

export const AAD_PROVIDER = 'aad';

export interface AadOptions {
  /** https://login.microsoftonline.com (no tenant, no trailing slash needed). */
  authority: string;
  /** Directory (tenant) id, a GUID. */
  tenantId: string;
  /** Accepted `aud` values: the web app's client id and/or App ID URI. */
  audiences: string[];
  /** The web app's client id: Graph (client credentials) and password login. */
  clientId?: string | undefined;
  /** Never logged. */
  clientSecret?: string | undefined;
  graphBaseUrl: string;
  acceptV1Issuer: boolean;
  acceptV2Issuer: boolean;
  /** Base of the v1 issuer, https://sts.windows.net in the public cloud. */
  v1IssuerBaseUrl: string;
  passwordLogin: boolean;
  /** Scope of the password grant; default `{clientId}/.default`. */
  passwordLoginScope?: string | undefined;
  clockToleranceSeconds: number;
  jwksCacheMaxAgeSeconds: number;
  jwksCooldownSeconds: number;
  groupsSecurityEnabledOnly: boolean;
  maxTokenLifetimeSeconds: number;
  timeoutMs: number;
  /** PEM CA bundle for the authority and Graph; absent = the system CAs. */
  ca?: Buffer | undefined;
}

/** A verified Azure AD access token. */
export interface AadBearer {
  identity: Identity;
  /** seconds */
  iat: number;
  /** seconds */
  exp: number;
  /** Azure's token id (uti), else a hash of the token. */
  tokenId: string;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Azure AD access tokens with 200 group ids stay well below this. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** A failed discovery or key fetch is not retried sooner than this (unless the cooldown is shorter). */
const FAILURE_BACKOFF_MS = 5_000;
const GRAPH_TOKEN_RENEW_BEFORE_MS = 60_000;
const GRAPH_MAX_PAGES = 20;
/** AADSTS codes that say "no such user in this tenant": the provider does not know the user (next provider). */
const UNKNOWN_USER = new Set([50034]);
/** OAuth error codes of the password grant that are about the user (wrong password, locked, MFA needed, ...). */
const USER_ERRORS = new Set(['invalid_grant', 'interaction_required']);
/**
 * AADSTS codes Azure AD sends with invalid_grant that are about mlgate's app registration, not the user: consent
 * missing (65001), required permissions not configured (65005), app or resource not found (700016, 500011), the
 * client secret (7000215, 7000222, 7000218), tenant not found (90002). 503, never a 401 that counts against the user.
 */
const CONFIGURATION_ERRORS = new Set([65001, 65005, 700016, 500011, 7000215, 7000222, 7000218, 90002]);

/** The tenant's keys cannot be fetched and none that is cached matches: 503, never 401. */
class KeysUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeysUnavailable';
  }
}

type LocalKeys = ReturnType<typeof createLocalJWKSet>;
type VerifyKey = Awaited<ReturnType<LocalKeys>>;
type GetKey = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<VerifyKey>;
type RemoteKeys = ReturnType<typeof createRemoteJWKSet>;

/**
 * The tenant's signing keys: discovery once, then ONE jose remote key set for its jwks_uri (cached for
 * cacheMaxAge; an unknown kid refetches at most once per cooldown). Unlike the bare jose set, keys fetched before
 * keep verifying when a refresh fails (jose would fail every token once its cache is older than cacheMaxAge).
 */
export class TenantKeys {
  private readonly http: AzureHttp;
  private readonly discoveryUrl: string;
  private readonly opts: { cacheMaxAgeMs: number; cooldownMs: number; timeoutMs: number };
  private remote: RemoteKeys | undefined;
  private pending: Promise<RemoteKeys> | undefined;
  private discoveryFailure: { at: number; reason: string } | undefined;
  private fetchFailedAt = -Infinity;
  private stale: { jwks: JSONWebKeySet; set: LocalKeys } | undefined;
  readonly stats = { discoveryFetches: 0, keyFetches: 0 };

  constructor(http: AzureHttp, discoveryUrl: string, opts: { cacheMaxAgeMs: number; cooldownMs: number; timeoutMs: number }) {
    this.http = http;
    this.discoveryUrl = discoveryUrl;
    this.opts = opts;
  }

  private get backoffMs(): number {
    return Math.min(FAILURE_BACKOFF_MS, this.opts.cooldownMs);
  }

  readonly getKey: GetKey = async (header, token) => {
    const remote = await this.remoteSet();
    const cached = remote.jwks();
    if (cached && !remote.fresh && Date.now() - this.fetchFailedAt < this.backoffMs) return this.fromStale(cached, header, token, 'key endpoint failed moments ago');
    try {
      return await remote(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err;
      // The fetch failed (refused, timeout, not 200, not a key set): keep verifying with the keys we have.
      this.fetchFailedAt = Date.now();
      const keys = remote.jwks();
      const reason = `key endpoint: ${err instanceof Error ? err.message : String(err)}`;
      if (keys) return this.fromStale(keys, header, token, reason);
      throw new KeysUnavailable(reason);
    }
  };

  private async fromStale(jwks: JSONWebKeySet, header: JWSHeaderParameters, token: FlattenedJWSInput, reason: string): Promise<VerifyKey> {
    if (this.stale?.jwks !== jwks) this.stale = { jwks, set: createLocalJWKSet(jwks) };
    try {
      return await this.stale.set(header, token);
    } catch (err) {
      // An unknown kid that cannot be looked up now may well be a valid new key: unavailable, not invalid.
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw new KeysUnavailable(`no cached key matches kid ${String(header.kid)} (${reason})`);
      throw err;
    }
  }

  private async remoteSet(): Promise<RemoteKeys> {
    if (this.remote) return this.remote;
    const failed = this.discoveryFailure;
    if (failed && Date.now() - failed.at < this.backoffMs) throw new KeysUnavailable(failed.reason);
    this.pending ??= this.discover().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async discover(): Promise<RemoteKeys> {
    this.stats.discoveryFetches++;
    let jwksUri: unknown;
    try {
      const answer = await this.http.send('GET', this.discoveryUrl);
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
      jwksUri = AzureHttp.json(answer)?.jwks_uri;
      if (typeof jwksUri !== 'string' || !jwksUri.startsWith('https://')) throw new Error('the document names no https jwks_uri');
    } catch (err) {
      const reason = `OIDC discovery ${this.discoveryUrl}: ${err instanceof Error ? err.message : String(err)}`;
      this.discoveryFailure = { at: Date.now(), reason };
      throw new KeysUnavailable(reason);
    }
    this.discoveryFailure = undefined;
    this.remote = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.opts.timeoutMs,
      cooldownDuration: this.opts.cooldownMs,
      cacheMaxAge: this.opts.cacheMaxAgeMs,
      [customFetch]: (url, init) => {
        this.stats.keyFetches++;
        return this.http.fetch(url, init);
      },
    });
    return this.remote;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : [];
}

/** One printable line of an AADSTS description, without trace/correlation ids and timestamps. */
function firstLine(description: string): string {
  const line = description.split(/\r?\n/)[0] ?? '';
  return line.replace(/[^\x20-\x7e]/g, '').slice(0, 200).trim();
}

export class AadProvider implements CredentialProvider {
  readonly name = AAD_PROVIDER;
  private readonly opts: AadOptions;
  private readonly http: AzureHttp;
  readonly keys: TenantKeys;
  /** Accepted `iss` values. */
  readonly issuers: readonly string[];
  private readonly authority: string;
  private readonly v1Base: string;
  private readonly tokenEndpoint: string;
  private readonly graphBase: string;
  private graphToken: { value: string; expMs: number } | undefined;
  private graphTokenPending: Promise<string> | undefined;
  readonly stats = { graphCalls: 0, graphTokens: 0, passwordGrants: 0 };

  constructor(opts: AadOptions) {
    this.opts = opts;
    const tid = opts.tenantId.toLowerCase();
    this.authority = opts.authority.replace(/\/+$/, '');
    this.v1Base = opts.v1IssuerBaseUrl.replace(/\/+$/, '');
    this.graphBase = opts.graphBaseUrl.replace(/\/+$/, '');
    const issuers: string[] = [];
    if (opts.acceptV1Issuer) issuers.push(`${this.v1Base}/${tid}/`);
    if (opts.acceptV2Issuer) issuers.push(`${this.authority}/${tid}/v2.0`);
    this.issuers = issuers;
    this.tokenEndpoint = `${this.authority}/${tid}/oauth2/v2.0/token`;
    this.http = new AzureHttp({ ca: opts.ca, timeoutMs: opts.timeoutMs });
    this.keys = new TenantKeys(this.http, `${this.authority}/${tid}/v2.0/.well-known/openid-configuration`, {
      cacheMaxAgeMs: opts.jwksCacheMaxAgeSeconds * 1000,
      cooldownMs: opts.jwksCooldownSeconds * 1000,
      timeoutMs: opts.timeoutMs,
    });
  }

  /** Cheap, unverified: does this bearer token claim to come from Azure AD (so it is checked here, not as ours)? */
  isAzureToken(token: string): boolean {
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return false;
    }
    if (typeof iss !== 'string') return false;
    return this.issuers.includes(iss) || iss.startsWith(`${this.v1Base}/`) || iss.startsWith(`${this.authority}/`);
  }

  /** Verifies an Azure AD access token and reads the user's groups. No cache here (see AadBearerTokens). */
  async verifyBearer(token: string, nowMs: number): Promise<AadBearer> {
    if (token.length > MAX_TOKEN_LENGTH) throw new InvalidToken(undefined, 'invalid_token', 'aad: token too long');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys.getKey, {
        algorithms: ['RS256'],
        issuer: [...this.issuers],
        audience: this.opts.audiences,
        requiredClaims: ['exp', 'iat', 'tid', 'oid'],
        clockTolerance: this.opts.clockToleranceSeconds,
        currentDate: new Date(nowMs),
      }));
    } catch (err) {
      if (err instanceof KeysUnavailable) throw new DirectoryUnavailable(`aad: ${err.message}`);
      if (err instanceof joseErrors.JWTExpired) throw new InvalidToken('The access token has expired.', 'token_expired', 'aad: expired');
      throw new InvalidToken(undefined, 'invalid_token', `aad: ${err instanceof Error ? `${err.name}: ${err.message}` : 'verify failed'}`);
    }
    const p = payload as Record<string, unknown>;
    const reject = (why: string): never => {
      throw new InvalidToken(undefined, 'invalid_token', `aad: ${why}`);
    };
    const tid = str(p.tid);
    if (!tid || tid.toLowerCase() !== this.opts.tenantId.toLowerCase()) reject(`tid ${String(p.tid)} is not the configured tenant`);
    const oid = str(p.oid);
    if (!oid || !GUID.test(oid)) reject('oid is not an object id');
    // Access tokens name the client application (v1 appid, v2 azp); ID tokens do not.
    if (!str(p.azp) && !str(p.appid)) reject('not an access token (no azp/appid claim)');
    // Only delegated tokens (a user signed in; they carry scp) act as a user. A client-credentials token of any app
    // in the tenant has no scp (and idtyp app): it would otherwise get the implicit role of a user with no group.
    if (str(p.idtyp) === 'app' || !str(p.scp)) reject('an app-only token (no scp claim): only tokens of a signed-in user are accepted');
    const iat = p.iat as number;
    const exp = p.exp as number;
    if (exp - iat > this.opts.maxTokenLifetimeSeconds) {
      reject(`lifetime ${exp - iat} s exceeds auth.aad.maxTokenLifetimeSeconds (${this.opts.maxTokenLifetimeSeconds})`);
    }
    const groups = await this.groupsOf(p, oid!);
    const upn = str(p.upn) ?? str(p.preferred_username) ?? str(p.unique_name);
    const identity: Identity = {
      subject: oid!.toLowerCase(),
      displayName: str(p.name) ?? upn ?? oid!,
      email: str(p.email) ?? (upn?.includes('@') ? upn : undefined),
      groups,
      provider: AAD_PROVIDER,
      authTime: nowMs,
    };
    const tokenId = str(p.uti) ?? str(p.jti) ?? createHash('sha256').update(token).digest('base64url').slice(0, 22);
    return { identity, iat, exp, tokenId };
  }

  /** Group object ids from the token (or Graph on overage) and the app role values. */
  private async groupsOf(p: Record<string, unknown>, oid: string): Promise<string[]> {
    const claimNames = p._claim_names;
    const overage = p.hasgroups === true || (claimNames !== null && typeof claimNames === 'object' && 'groups' in claimNames);
    let groups: string[];
    if (overage) {
      if (!this.canCallGraph()) {
        throw new Forbidden(
          'Your Azure AD token lists too many groups to carry them (groups overage); the gateway needs auth.aad.clientId and a client secret (clientSecretEnv or clientSecretFile) with Microsoft Graph permission GroupMember.Read.All to read them.',
          'groups_overage',
          `aad: overage for ${oid} and no client secret configured`,
        );
      }
      groups = await this.memberObjects(oid, 'bearer');
    } else {
      groups = strings(p.groups);
    }
    return [...groups, ...strings(p.roles)];
  }

  private canCallGraph(): boolean {
    return this.opts.clientId !== undefined && this.opts.clientSecret !== undefined;
  }

  // ---------------------------------------------------------------------------------------------------------
  // POST /login: resource-owner password grant

  async verify(username: string, password: string, nowMs: number): Promise<Identity | null> {
    if (!this.opts.passwordLogin) return null;
    // Azure AD sign-in names are user@domain; anything else is some other provider's user (e.g. admin).
    if (!/^[^@\s]+@[^@\s]+$/.test(username)) return null;
    if (password.trim() === '') throw new InvalidCredentials('aad: empty password');
    this.stats.passwordGrants++;
    const answer = await this.tokenRequest({
      grant_type: 'password',
      client_id: this.opts.clientId!,
      client_secret: this.opts.clientSecret!,
      scope: this.opts.passwordLoginScope ?? `${this.opts.clientId}/.default`,
      username,
      password,
    }, 'password grant');
    const body = AzureHttp.json(answer);
    if (answer.status === 200) {
      const accessToken = str(body?.access_token);
      if (!accessToken) throw new DirectoryUnavailable('aad: password grant answered 200 without access_token');
      try {
        const { identity } = await this.verifyBearer(accessToken, nowMs);
        return identity;
      } catch (err) {
        // Azure AD issued a token this gateway does not accept: a configuration mismatch, not the user's fault.
        if (err instanceof InvalidToken) throw new DirectoryUnavailable(`aad: the token from the password grant is refused (${err.detail}); check passwordLoginScope against audiences`);
        throw err;
      }
    }
    const code = this.aadstsCode(body);
    const error = str(body?.error);
    if (answer.status === 400 || answer.status === 401) {
      if (code !== undefined && UNKNOWN_USER.has(code)) return null;
      if (error && USER_ERRORS.has(error) && !(code !== undefined && CONFIGURATION_ERRORS.has(code))) {
        const description = firstLine(str(body?.error_description) ?? '');
        const shown = code !== undefined ? `AADSTS${code}` : error;
        throw new InvalidCredentials(
          `aad: ${error} ${shown}`,
          `Azure AD refused the sign-in (${description.startsWith('AADSTS') ? description : `${shown}: ${description || error}`}).`,
        );
      }
    }
    // invalid_client, invalid_scope, unauthorized_client, consent, tenant not found, throttling, 5xx: not the user.
    throw new DirectoryUnavailable(`aad: password grant: HTTP ${answer.status} ${error ?? ''} ${code !== undefined ? `AADSTS${code}` : ''}`.trim());
  }

  private aadstsCode(body: Record<string, unknown> | undefined): number | undefined {
    const codes = body?.error_codes;
    if (Array.isArray(codes) && typeof codes[0] === 'number') return codes[0];
    const m = /AADSTS(\d+)/.exec(str(body?.error_description) ?? '');
    return m ? Number(m[1]) : undefined;
  }

  private async tokenRequest(form: Record<string, string>, what: string): Promise<HttpAnswer> {
    try {
      return await this.http.send('POST', this.tokenEndpoint, {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
    } catch (err) {
      throw new DirectoryUnavailable(`aad: ${what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * On refresh (password-login sessions): the account must still exist and be enabled, with no sign-in sessions
   * revoked and no password change since the login; group ids are read again, app roles are kept from the login.
   */
  async revalidate(identity: Identity, _nowMs: number): Promise<Identity> {
    if (!this.opts.passwordLogin) throw new InvalidRefreshToken('aad: password login is no longer enabled');
    if (!this.canCallGraph()) throw new InvalidRefreshToken('aad: no client secret to re-check the user');
    if (!GUID.test(identity.subject)) throw new InvalidRefreshToken('aad: subject is not an object id');
    const select = 'id,accountEnabled,displayName,mail,userPrincipalName,lastPasswordChangeDateTime,signInSessionsValidFromDateTime';
    const answer = await this.graph('GET', `/v1.0/users/${identity.subject}?$select=${select}`);
    if (answer.status === 404) throw new InvalidRefreshToken(`aad: user ${identity.subject} no longer exists`);
    const user = answer.status === 200 ? AzureHttp.json(answer) : undefined;
    if (!user) throw this.graphFailure(answer, 'user');
    if (user.accountEnabled === false) throw new InvalidRefreshToken(`aad: user ${identity.subject} is disabled`);
    for (const key of ['signInSessionsValidFromDateTime', 'lastPasswordChangeDateTime'] as const) {
      const t = Date.parse(str(user[key]) ?? '');
      // Graph keeps whole seconds: a change in the login's own second counts as later (erring closed).
      if (Number.isFinite(t) && t >= Math.floor(identity.authTime / 1000) * 1000) {
        throw new InvalidRefreshToken(`aad: ${key} of ${identity.subject} is after the login`);
      }
    }
    const appRoles = identity.groups.filter((g) => !GUID.test(g));
    const groups = await this.memberObjects(identity.subject, 'refresh');
    const upn = str(user.userPrincipalName);
    return {
      ...identity,
      displayName: str(user.displayName) ?? identity.displayName,
      email: str(user.mail) ?? upn ?? identity.email,
      groups: [...groups, ...appRoles],
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Microsoft Graph

  /** Transitive group memberships (object ids) of a user or service principal. */
  private async memberObjects(oid: string, purpose: 'bearer' | 'refresh'): Promise<string[]> {
    const out: string[] = [];
    let answer = await this.graph('POST', `/v1.0/directoryObjects/${oid}/getMemberObjects`, {
      securityEnabledOnly: this.opts.groupsSecurityEnabledOnly,
    });
    for (let page = 0; ; page++) {
      if (answer.status === 404) {
        if (purpose === 'refresh') throw new InvalidRefreshToken(`aad: user ${oid} no longer exists`);
        throw new InvalidToken(undefined, 'invalid_token', `aad: Graph does not know ${oid}`);
      }
      const body = answer.status === 200 ? AzureHttp.json(answer) : undefined;
      if (!body || !Array.isArray(body.value)) throw this.graphFailure(answer, 'getMemberObjects');
      out.push(...strings(body.value));
      const next = str(body['@odata.nextLink']);
      if (!next) return out;
      if (page + 1 >= GRAPH_MAX_PAGES || !next.startsWith(`${this.graphBase}/`)) {
        throw new DirectoryUnavailable(`aad: Graph getMemberObjects: paging stopped at page ${page + 1}`);
      }
      answer = await this.graph('GET', next.slice(this.graphBase.length));
    }
  }

  private graphFailure(answer: HttpAnswer, what: string): DirectoryUnavailable {
    const err = AzureHttp.json(answer)?.error as Record<string, unknown> | undefined;
    const hint = answer.status === 401 || answer.status === 403 ? ' (grant the web app GroupMember.Read.All / User.Read.All application permissions)' : '';
    return new DirectoryUnavailable(`aad: Graph ${what}: HTTP ${answer.status} ${str(err?.code) ?? ''}${hint}`);
  }

  private async graph(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.graphAccessToken();
      this.stats.graphCalls++;
      let answer: HttpAnswer;
      try {
        answer = await this.http.send(method, `${this.graphBase}${path}`, {
          headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      } catch (err) {
        throw new DirectoryUnavailable(`aad: Graph ${method} ${path.split('?')[0]}: ${err instanceof Error ? err.message : String(err)}`);
      }
      // A token Graph no longer takes (revoked, clock): fetch a new one, once.
      if (answer.status === 401 && attempt === 0) {
        this.graphToken = undefined;
        continue;
      }
      return answer;
    }
  }

  /** Client-credentials token for Graph, cached until a minute before it expires. */
  private async graphAccessToken(): Promise<string> {
    const now = Date.now();
    if (this.graphToken && this.graphToken.expMs - GRAPH_TOKEN_RENEW_BEFORE_MS > now) return this.graphToken.value;
    this.graphTokenPending ??= (async () => {
      this.stats.graphTokens++;
      const answer = await this.tokenRequest({
        grant_type: 'client_credentials',
        client_id: this.opts.clientId!,
        client_secret: this.opts.clientSecret!,
        scope: `${this.graphBase}/.default`,
      }, 'Graph token');
      const body = AzureHttp.json(answer);
      const value = str(body?.access_token);
      if (answer.status !== 200 || !value) {
        const code = this.aadstsCode(body);
        throw new DirectoryUnavailable(`aad: Graph token: HTTP ${answer.status} ${str(body?.error) ?? ''} ${code !== undefined ? `AADSTS${code}` : ''}`.trim());
      }
      const expiresIn = typeof body?.expires_in === 'number' ? body.expires_in : Number(body?.expires_in ?? 0);
      this.graphToken = { value, expMs: Date.now() + (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 300) * 1000 };
      return value;
    })().finally(() => (this.graphTokenPending = undefined));
    return this.graphTokenPending;
  }

  async close(): Promise<void> {
    this.http.close();
  }
}

/**
 * The verified-token cache for Azure AD bearer tokens, so the proxied path does no signature work per request:
 * keyed by the token, kept until it expires, bounded in size; concurrent first uses of a token share one check.
 */
export class AadBearerTokens<T extends { exp: number }> {
  private readonly provider: AadProvider;
  private readonly toToken: (bearer: AadBearer) => T;
  private readonly cacheSize: number;
  private readonly toleranceMs: number;
  private readonly cache = new Map<string, T>();
  private readonly inFlight = new Map<string, Promise<T>>();
  readonly stats = { verified: 0, cacheHits: 0 };

  constructor(provider: AadProvider, toToken: (bearer: AadBearer) => T, opts: { cacheSize: number; clockToleranceSeconds: number }) {
    this.provider = provider;
    this.toToken = toToken;
    this.cacheSize = opts.cacheSize;
    this.toleranceMs = opts.clockToleranceSeconds * 1000;
  }

  /** A Map lookup: the token when it was verified before and has not expired. */
  cached(token: string, nowMs: number): T | undefined {
    const hit = this.cache.get(token);
    if (hit === undefined) return undefined;
    if (hit.exp * 1000 + this.toleranceMs > nowMs) {
      this.stats.cacheHits++;
      return hit;
    }
    this.cache.delete(token);
    return undefined;
  }

  /** Unverified and cheap: whether the token is for this verifier at all. */
  claims(token: string): boolean {
    return this.provider.isAzureToken(token);
  }

  async verify(token: string, nowMs: number): Promise<T> {
    const hit = this.cached(token, nowMs);
    if (hit !== undefined) return hit;
    let pending = this.inFlight.get(token);
    if (!pending) {
      pending = this.provider.verifyBearer(token, nowMs).then((bearer) => {
        const verified = this.toToken(bearer);
        this.stats.verified++;
        if (this.cacheSize > 0) {
          if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
          this.cache.set(token, verified);
        }
        return verified;
      });
      this.inFlight.set(token, pending);
      void pending.finally(() => this.inFlight.delete(token)).catch(() => {});
    }
    return pending;
  }

  prune(nowMs: number): void {
    for (const [k, v] of this.cache) if (v.exp * 1000 + this.toleranceMs <= nowMs) this.cache.delete(k);
  }
}
