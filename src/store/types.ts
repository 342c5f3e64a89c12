// The TokenStore contract. Every implementation (memory, redis) passes the same suite: test/store/contract.ts.

/** Who a refresh family belongs to, as known at login or the last refresh (plain data, no secrets). */
export interface IdentitySnapshot {
  subject: string;
  displayName: string;
  email?: string | undefined;
  groups: string[];
  provider: string;
  /** ms since epoch of the password/credential check that started the family. */
  authTime: number;
}

/** One refresh token, stored under the SHA-256 of its value. */
export interface RefreshRecord {
  familyId: string;
  identity: IdentitySnapshot;
  /** ms: when this token was issued. */
  issuedAt: number;
  /** ms: when this token stops being accepted (idle TTL, capped by the family end). */
  expiresAt: number;
  /** ms: login time of the family. */
  familyStartedAt: number;
  /** ms: end of the family (login + max lifetime). */
  familyExpiresAt: number;
  clientAddress?: string | undefined;
}

export interface StoredRefresh extends RefreshRecord {
  /** ms: when it was consumed by a rotation; absent while unused. */
  usedAt?: number | undefined;
  /** Sealed successor token, kept only for the reuse grace window. */
  successor?: string | undefined;
}

export type RotateOutcome =
  | { kind: 'rotated' }
  /** Presented again within the grace window: the same successor, sealed. */
  | { kind: 'replayed'; successor: string }
  /** Presented again after it was consumed: the family is now revoked. */
  | { kind: 'reused'; familyId: string; subject: string }
  /** Unknown, expired or revoked. */
  | { kind: 'invalid' };

export interface RotateRequest {
  oldHash: string;
  newHash: string;
  newRecord: RefreshRecord;
  now: number;
  /** Sealed new token, stored with the old record for graceMs (0 = strict, none stored). */
  sealedSuccessor: string | undefined;
  graceMs: number;
}

export interface FamilySummary {
  familyId: string;
  subject: string;
  provider: string;
  startedAt: number;
  lastUsedAt: number;
  expiresAt: number;
  clientAddress?: string | undefined;
}

/** One page of a listing, and the cursor for the next one (null: this was the last page). */
export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface OwnerRecord {
  service: string;
  owner: string;
}

/** What the revocation view needs to know; entries expire once no access token they cover can be valid. */
export type RevocationEntry =
  | { kind: 'family'; familyId: string; until: number }
  | { kind: 'subject'; subject: string; notBefore: number; until: number };

export interface TokenStore {
  readonly kind: 'memory' | 'redis';
  /** Stores the first token of a new family. */
  createFamily(hash: string, record: RefreshRecord): Promise<void>;
  /** The live or consumed token record; null when unknown, expired or its family is revoked. */
  getRefresh(hash: string, now: number): Promise<StoredRefresh | null>;
  /** Atomic: of N concurrent calls with the same oldHash, exactly one returns 'rotated'. */
  rotate(req: RotateRequest): Promise<RotateOutcome>;
  /** Ends a family: its refresh tokens and (through the revocation view) its access tokens. */
  revokeFamily(familyId: string, now: number): Promise<boolean>;
  /** Ends every family of a subject and every access token issued to it before notBefore. */
  revokeSubject(subject: string, notBefore: number, now: number): Promise<number>;
  listFamilies(subject: string, now: number): Promise<FamilySummary[]>;
  /**
   * Subjects that may hold live families, newest login first (by the end of their newest family; ties in a fixed
   * order), at most `limit` per page, from the opaque cursor `after`. Every subject with a live family is listed; a
   * subject whose families ended early (revoked, idle) may still be listed until its newest family's end, so
   * callers read listFamilies for each. For the admin console and API (not the hot path).
   */
  listSubjects(after: string | null, limit: number, now: number): Promise<Page<string>>;

  /** Current revocation entries (loaded at start and after reconnect). */
  listRevocations(now: number): Promise<RevocationEntry[]>;
  /** Called for every revocation made by any instance sharing the store. Returns an unsubscribe function. */
  onRevocation(listener: (entry: RevocationEntry) => void): () => void;
  /** Called when the store knows its revocation feed is live (now) or lost; the view's freshness follows. */
  onFeedState(listener: (live: boolean) => void): () => void;

  /** Records the publisher of a web service unless one is recorded; returns the recorded owner. */
  setOwnerIfAbsent(service: string, owner: string): Promise<string>;
  getOwner(service: string): Promise<string | null>;
  deleteOwner(service: string): Promise<void>;
  /** Records an owner unconditionally (an Owner transferring a service); returns the owner recorded before. */
  setOwner(service: string, owner: string): Promise<string | null>;
  /** Recorded owners by service key (code-unit order), services after `after` (exclusive), at most `limit`. */
  listOwners(after: string | null, limit: number): Promise<Page<OwnerRecord>>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreTimings {
  /** How long a revocation entry lives: the longest an access token can stay valid, plus clock skew. */
  revocationTtlMs: number;
}
