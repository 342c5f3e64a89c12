// X-MLGate-Assertion: the user's identity for the node, signed once per (access token, upstream) and reused.
import { SignJWT } from 'jose';
import type { VerifiedToken } from './access.ts';
import type { KeyRing } from './keys.ts';

const RENEW_BEFORE_MS = 10_000;
const MIN_LIFETIME_SECONDS = 15;

export class AssertionMinter {
  private readonly keys: KeyRing;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly ttlSeconds: number;
  readonly stats = { minted: 0 };

  constructor(keys: KeyRing, opts: { issuer: string; audience: string; ttlSeconds: number }) {
    this.keys = keys;
    this.issuer = opts.issuer;
    this.audience = opts.audience;
    this.ttlSeconds = opts.ttlSeconds;
  }

  /**
   * Cached on the verified token: no signature per request while the assertion has >10 s left. `audience` is the
   * node's (default: the configured one); nodes that share an audience share one assertion.
   */
  async forToken(t: VerifiedToken, nowMs: number, audience: string = this.audience): Promise<string> {
    const cached = t.assertion?.aud === audience ? t.assertion : t.assertionsByAudience?.get(audience);
    if (cached !== undefined && cached.expMs - RENEW_BEFORE_MS > nowMs) return cached.value;
    const iat = Math.floor(nowMs / 1000);
    // Never outlive the access token by more than a moment, never arrive already expired.
    const exp = Math.min(iat + this.ttlSeconds, Math.max(t.exp, iat + MIN_LIFETIME_SECONDS));
    const signer = this.keys.signer;
    const value = await new SignJWT({ name: t.name, roles: t.roles, idp: t.idp, sid: t.sid })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'mlgate-assertion+jwt' })
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setSubject(t.sub)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(signer.privateKey);
    this.stats.minted++;
    const entry = { aud: audience, value, expMs: exp * 1000 };
    if (t.assertion === undefined || t.assertion.aud === audience) t.assertion = entry;
    else (t.assertionsByAudience ??= new Map()).set(audience, entry);
    return value;
  }
}
