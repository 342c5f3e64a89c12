// The revocation view: what the hot path consults, in memory, with no network round trip.
import type { RevocationEntry } from '../store/index.ts';

export interface RevocationCheck {
  sid: string;
  sub: string;
  /** seconds */
  iat: number;
  /** ms, when the token says it precisely (mlgate's own tokens); else only iat is known. */
  issuedAtMs?: number | undefined;
}

export class RevocationView {
  private readonly families = new Map<string, number>();
  private readonly subjects = new Map<string, { notBefore: number; until: number }>();
  private live = false;
  /** ms: last moment the view was known to be complete. */
  private confirmedAt = 0;
  private readonly maxStalenessMs: number;

  constructor(maxStalenessMs: number) {
    this.maxStalenessMs = maxStalenessMs;
  }

  /** Replaces the view with a full snapshot (start, reconnect). */
  load(entries: readonly RevocationEntry[], now: number): void {
    this.families.clear();
    this.subjects.clear();
    for (const e of entries) this.apply(e);
    this.confirmedAt = now;
  }

  apply(entry: RevocationEntry): void {
    if (entry.kind === 'family') {
      this.families.set(entry.familyId, Math.max(entry.until, this.families.get(entry.familyId) ?? 0));
    } else {
      const prev = this.subjects.get(entry.subject);
      if (!prev || entry.notBefore >= prev.notBefore) this.subjects.set(entry.subject, { notBefore: entry.notBefore, until: entry.until });
    }
  }

  setLive(live: boolean, now: number): void {
    if (this.live) this.confirmedAt = now; // fresh up to the moment the feed was lost
    this.live = live;
    if (live) this.confirmedAt = now;
  }

  /** ms since the view was last known complete; 0 while the feed is live. */
  staleness(now: number): number {
    return this.live ? 0 : now - this.confirmedAt;
  }

  isFresh(now: number): boolean {
    return this.live || now - this.confirmedAt <= this.maxStalenessMs;
  }

  isRevoked(t: RevocationCheck): boolean {
    if (this.families.size > 0 && this.families.has(t.sid)) return true;
    if (this.subjects.size > 0) {
      const s = this.subjects.get(t.sub);
      // Without a precise time, same-second tokens count as revoked (iat has one-second resolution; err closed).
      if (s && (t.issuedAtMs !== undefined ? t.issuedAtMs <= s.notBefore : t.iat * 1000 <= s.notBefore)) return true;
    }
    return false;
  }

  /** Whether every token of `subject` issued at or before `atMs` is revoked (a console session started at `atMs`). */
  isSubjectRevokedSince(subject: string, atMs: number): boolean {
    const s = this.subjects.get(subject);
    return s !== undefined && atMs <= s.notBefore;
  }

  /** Drops entries that can no longer match a valid token. */
  prune(now: number): void {
    for (const [k, until] of this.families) if (until <= now) this.families.delete(k);
    for (const [k, v] of this.subjects) if (v.until <= now) this.subjects.delete(k);
  }

  get size(): number {
    return this.families.size + this.subjects.size;
  }
}
