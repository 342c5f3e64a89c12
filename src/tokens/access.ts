// Access tokens: signed once at login/refresh, verified once per token and then served from memory.
import { randomUUID } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { InvalidToken } from '../errors.ts';
import type { KeyRing } from './keys.ts';

export interface AccessClaims {
  sub: string;
  name: string;
  roles: string[];
  idp: string;
  /** refresh family (session) id */
  sid: string;
}

export interface VerifiedToken extends AccessClaims {
  jti: string;
  /** seconds */
  iat: number;
  /** ms: issue time to the millisecond (claim `iat_ms`), so a user revocation never hits a token issued after it. */
  issuedAtMs?: number | undefined;
  /** seconds */
  exp: number;
  /** The node assertion minted for this token (one audience: all nodes share it), reused until shortly before its expiry. */
  assertion?: { aud: string; value: string; expMs: number } | undefined;
  /** Assertions for further audiences, when nodes have their own (upstream.nodes[].assertionAudience). */
  assertionsByAudience?: Map<string, { aud: string; value: string; expMs: number }> | undefined;
}

export interface AccessTokenOptions {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clockToleranceSeconds: number;
  cacheSize: number;
}

const MAX_TOKEN_LENGTH = 8192;

export class AccessTokens {
  private readonly keys: KeyRing;
  private readonly opts: AccessTokenOptions;
  private readonly cache = new Map<string, VerifiedToken>();
  /** Counts for benchmarks and metrics. */
  readonly stats = { verified: 0, cacheHits: 0 };

  constructor(keys: KeyRing, opts: AccessTokenOptions) {
    this.keys = keys;
    this.opts = opts;
  }

  async issue(claims: AccessClaims, nowMs: number): Promise<{ token: string; exp: number }> {
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + this.opts.ttlSeconds;
    const signer = this.keys.signer;
    const token = await new SignJWT({ name: claims.name, roles: claims.roles, idp: claims.idp, sid: claims.sid, iat_ms: nowMs })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setAudience(this.opts.audience)
      .setSubject(claims.sub)
      .setJti(randomUUID())
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(signer.privateKey);
    return { token, exp };
  }

  /** A Map lookup only: the token when it was verified before and has not expired; never throws. */
  cached(token: string, nowMs: number): VerifiedToken | undefined {
    const hit = this.cache.get(token);
    if (hit === undefined || hit.exp * 1000 + this.opts.clockToleranceSeconds * 1000 <= nowMs) return undefined;
    this.stats.cacheHits++;
    return hit;
  }

  /** Verifies signature and claims once per token; later calls are a Map lookup plus an expiry check. */
  async verify(token: string, nowMs: number): Promise<VerifiedToken> {
    const cached = this.cache.get(token);
    if (cached !== undefined) {
      if (cached.exp * 1000 + this.opts.clockToleranceSeconds * 1000 > nowMs) {
        this.stats.cacheHits++;
        return cached;
      }
      this.cache.delete(token);
      throw new InvalidToken('The access token has expired.', 'token_expired');
    }
    if (token.length > MAX_TOKEN_LENGTH) throw new InvalidToken(undefined, 'invalid_token', 'token too long');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keys.getVerificationKey, {
        algorithms: [this.keys.alg],
        issuer: this.opts.issuer,
        audience: this.opts.audience,
        requiredClaims: ['exp', 'iat', 'sub', 'jti', 'sid'],
        clockTolerance: this.opts.clockToleranceSeconds,
        currentDate: new Date(nowMs),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new InvalidToken('The access token has expired.', 'token_expired');
      throw new InvalidToken(undefined, 'invalid_token', err instanceof Error ? `${err.name}: ${err.message}` : 'verify failed');
    }
    const { sub, jti, iat, exp, sid, name, roles, idp, iat_ms } = payload as Record<string, unknown>;
    if (
      typeof sub !== 'string' || typeof jti !== 'string' || typeof sid !== 'string' ||
      typeof iat !== 'number' || typeof exp !== 'number' ||
      !Array.isArray(roles) || !roles.every((r) => typeof r === 'string')
    ) {
      throw new InvalidToken(undefined, 'invalid_token', 'claims of the wrong type');
    }
    const verified: VerifiedToken = {
      sub, jti, iat, exp, sid,
      // A precise time only when it agrees with iat (same second).
      issuedAtMs: typeof iat_ms === 'number' && Math.floor(iat_ms / 1000) === iat ? iat_ms : undefined,
      name: typeof name === 'string' ? name : sub,
      roles: roles as string[],
      idp: typeof idp === 'string' ? idp : 'unknown',
    };
    this.stats.verified++;
    if (this.opts.cacheSize > 0) {
      if (this.cache.size >= this.opts.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(token, verified);
    }
    return verified;
  }

  /** Drops expired entries (timer-driven, off the hot path). */
  prune(nowMs: number): void {
    for (const [k, v] of this.cache) if (v.exp * 1000 <= nowMs) this.cache.delete(k);
  }
}
