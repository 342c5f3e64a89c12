// Login, refresh and revoke: the ML Server token lifecycle on top of a TokenStore.
import { hash, randomBytes, randomUUID } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import { InvalidRefreshToken } from '../errors.ts';
import type { IdentitySnapshot, RefreshRecord, TokenStore } from '../store/index.ts';
import type { AccessTokens } from './access.ts';

/** The ML Server /login and /login/refreshToken answer, field for field. */
export interface TokenResponse {
  token_type: 'Bearer';
  access_token: string;
  expires_in: number;
  expires_on: number;
  refresh_token: string;
}

export interface SessionOptions {
  refreshIdleTtlSeconds: number;
  refreshMaxLifetimeSeconds: number;
  reuseGraceSeconds: number;
  /** 32 bytes; seals successors during the grace window. */
  graceKey: Uint8Array;
}

export interface SessionHooks {
  /** Roles for the access token, from the (re)validated identity. Throws when the user may not have a session. */
  rolesOf(identity: IdentitySnapshot): string[];
  /** Re-reads the user on refresh (still present, enabled, groups); throws to end the family. */
  revalidate(identity: IdentitySnapshot): Promise<IdentitySnapshot>;
  /** Audit sink. */
  audit(event: string, fields: Record<string, unknown>): void;
}

const REFRESH_TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function hashRefreshToken(token: string): string {
  return hash('sha256', token, 'base64url');
}

function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

export class SessionService {
  private readonly store: TokenStore;
  private readonly access: AccessTokens;
  private readonly opts: SessionOptions;
  private readonly hooks: SessionHooks;

  constructor(store: TokenStore, access: AccessTokens, opts: SessionOptions, hooks: SessionHooks) {
    this.store = store;
    this.access = access;
    this.opts = opts;
    this.hooks = hooks;
  }

  async login(identity: IdentitySnapshot, clientAddress: string | undefined, now = Date.now()): Promise<TokenResponse> {
    const roles = this.hooks.rolesOf(identity);
    const familyId = randomUUID();
    const token = newRefreshToken();
    const record: RefreshRecord = {
      familyId,
      identity,
      issuedAt: now,
      familyStartedAt: now,
      familyExpiresAt: now + this.opts.refreshMaxLifetimeSeconds * 1000,
      expiresAt: Math.min(now + this.opts.refreshIdleTtlSeconds * 1000, now + this.opts.refreshMaxLifetimeSeconds * 1000),
      clientAddress,
    };
    await this.store.createFamily(hashRefreshToken(token), record);
    this.hooks.audit('login.ok', { user: identity.subject, provider: identity.provider, sid: familyId, clientAddress });
    return this.respond(record, roles, token, now);
  }

  async refresh(presented: string, clientAddress: string | undefined, now = Date.now()): Promise<TokenResponse> {
    if (!REFRESH_TOKEN_SHAPE.test(presented)) throw new InvalidRefreshToken('malformed refresh token');
    const oldHash = hashRefreshToken(presented);
    const current = await this.store.getRefresh(oldHash, now);
    if (!current) throw new InvalidRefreshToken('unknown, expired or revoked refresh token');

    let identity = current.identity;
    if (current.usedAt === undefined) {
      try {
        identity = await this.hooks.revalidate(current.identity);
      } catch (err) {
        if (err instanceof InvalidRefreshToken) {
          await this.store.revokeFamily(current.familyId, now);
          this.hooks.audit('refresh.denied', { user: current.identity.subject, sid: current.familyId, reason: err.detail });
        }
        throw err;
      }
    }
    const roles = this.hooks.rolesOf(identity);
    const token = newRefreshToken();
    const newHash = hashRefreshToken(token);
    const record: RefreshRecord = {
      familyId: current.familyId,
      identity,
      issuedAt: now,
      familyStartedAt: current.familyStartedAt,
      familyExpiresAt: current.familyExpiresAt,
      expiresAt: Math.min(now + this.opts.refreshIdleTtlSeconds * 1000, current.familyExpiresAt),
      clientAddress: clientAddress ?? current.clientAddress,
    };
    const graceMs = this.opts.reuseGraceSeconds * 1000;
    const outcome = await this.store.rotate({
      oldHash,
      newHash,
      newRecord: record,
      now,
      graceMs,
      sealedSuccessor: graceMs > 0 ? await this.seal(token) : undefined,
    });
    switch (outcome.kind) {
      case 'rotated':
        this.hooks.audit('refresh.ok', { user: identity.subject, sid: current.familyId, clientAddress });
        return this.respond(record, roles, token, now);
      case 'replayed': {
        const successor = await this.unseal(outcome.successor);
        const successorRecord = await this.store.getRefresh(hashRefreshToken(successor), now);
        if (!successorRecord) throw new InvalidRefreshToken('successor no longer valid');
        this.hooks.audit('refresh.replay_within_grace', { user: identity.subject, sid: current.familyId, clientAddress });
        return this.respond(successorRecord, this.hooks.rolesOf(successorRecord.identity), successor, now);
      }
      case 'reused':
        this.hooks.audit('refresh.reuse_detected', { user: outcome.subject, sid: outcome.familyId, clientAddress });
        throw new InvalidRefreshToken('refresh token reuse detected; family revoked');
      case 'invalid':
        throw new InvalidRefreshToken('refresh token vanished during rotation');
    }
  }

  /** DELETE /login/refreshToken: ends the token's family (its access tokens too). */
  async revoke(presented: string, now = Date.now()): Promise<void> {
    if (!REFRESH_TOKEN_SHAPE.test(presented)) throw new InvalidRefreshToken('malformed refresh token');
    const rec = await this.store.getRefresh(hashRefreshToken(presented), now);
    if (!rec) throw new InvalidRefreshToken('unknown refresh token');
    await this.store.revokeFamily(rec.familyId, now);
    this.hooks.audit('revoke.refresh_token', { user: rec.identity.subject, sid: rec.familyId });
  }

  private async respond(record: RefreshRecord, roles: string[], refreshToken: string, now: number): Promise<TokenResponse> {
    const { token, exp } = await this.access.issue(
      {
        sub: record.identity.subject,
        name: record.identity.displayName,
        roles,
        idp: record.identity.provider,
        sid: record.familyId,
      },
      now,
    );
    return {
      token_type: 'Bearer',
      access_token: token,
      expires_in: exp - Math.floor(now / 1000),
      expires_on: exp,
      refresh_token: refreshToken,
    };
  }

  private async seal(token: string): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(token))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .encrypt(this.opts.graceKey);
  }

  private async unseal(sealed: string): Promise<string> {
    const { plaintext } = await compactDecrypt(sealed, this.opts.graceKey);
    return new TextDecoder().decode(plaintext);
  }
}
