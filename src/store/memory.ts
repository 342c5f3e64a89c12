// The embedded store: one process, same semantics as redis, every operation one synchronous step (atomic).
import { byCodeUnit, newestFirst, parseSubjectCursor, subjectCursor } from './listing.ts';
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

/** The hash of the token a rotation made from this one: the same request again is no reuse (see rotate). */
type MemoryRefresh = StoredRefresh & { successorHash?: string };

interface Family {
  subject: string;
  provider: string;
  startedAt: number;
  lastUsedAt: number;
  expiresAt: number;
  /** Latest expiry of any of its tokens: the family is dead after it. */
  liveUntil: number;
  clientAddress: string | undefined;
  hashes: Set<string>;
}

const SWEEP_INTERVAL_MS = 30_000;

export class MemoryTokenStore implements TokenStore {
  readonly kind = 'memory' as const;
  private readonly tokens = new Map<string, MemoryRefresh>();
  private readonly families = new Map<string, Family>();
  private readonly familiesBySubject = new Map<string, Set<string>>();
  private readonly revocations = new Map<string, RevocationEntry>();
  private readonly owners = new Map<string, string>();
  private readonly revocationListeners = new Set<(e: RevocationEntry) => void>();
  private readonly timings: StoreTimings;
  private readonly sweeper: NodeJS.Timeout;

  constructor(timings: StoreTimings) {
    this.timings = timings;
    this.sweeper = setInterval(() => this.sweep(Date.now()), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  /** Number of entries held, for tests that prove nothing grows without bound. */
  size(): number {
    return this.tokens.size + this.families.size + this.familiesBySubject.size + this.revocations.size;
  }

  async createFamily(hash: string, record: RefreshRecord): Promise<void> {
    const family: Family = {
      subject: record.identity.subject,
      provider: record.identity.provider,
      startedAt: record.familyStartedAt,
      lastUsedAt: record.issuedAt,
      expiresAt: record.familyExpiresAt,
      liveUntil: record.expiresAt,
      clientAddress: record.clientAddress,
      hashes: new Set([hash]),
    };
    this.families.set(record.familyId, family);
    let set = this.familiesBySubject.get(family.subject);
    if (!set) this.familiesBySubject.set(family.subject, (set = new Set()));
    set.add(record.familyId);
    this.tokens.set(hash, { ...record });
  }

  async getRefresh(hash: string, now: number): Promise<StoredRefresh | null> {
    return this.live(hash, now) ?? null;
  }

  private live(hash: string, now: number): MemoryRefresh | undefined {
    const rec = this.tokens.get(hash);
    if (!rec) return undefined;
    const family = this.families.get(rec.familyId);
    if (!family || rec.expiresAt <= now || family.expiresAt <= now) return undefined;
    return rec;
  }

  async rotate(req: RotateRequest): Promise<RotateOutcome> {
    const rec = this.live(req.oldHash, req.now);
    if (!rec) return { kind: 'invalid' };
    if (rec.usedAt !== undefined) {
      // The same request again (as Redis may see one whose answer was lost): what it did, not a reuse of itself.
      if (rec.successorHash === req.newHash) return { kind: 'rotated' };
      if (rec.successor !== undefined && req.now - rec.usedAt <= req.graceMs) {
        return { kind: 'replayed', successor: rec.successor };
      }
      const subject = rec.identity.subject;
      this.endFamily(rec.familyId, req.now);
      return { kind: 'reused', familyId: rec.familyId, subject };
    }
    const family = this.families.get(rec.familyId)!;
    rec.usedAt = req.now;
    rec.successorHash = req.newHash;
    if (req.graceMs > 0 && req.sealedSuccessor !== undefined) rec.successor = req.sealedSuccessor;
    this.tokens.set(req.newHash, { ...req.newRecord });
    family.hashes.add(req.newHash);
    family.lastUsedAt = req.now;
    family.liveUntil = Math.max(family.liveUntil, req.newRecord.expiresAt);
    return { kind: 'rotated' };
  }

  async revokeFamily(familyId: string, now: number): Promise<boolean> {
    return this.endFamily(familyId, now);
  }

  private endFamily(familyId: string, now: number): boolean {
    const family = this.families.get(familyId);
    const existed = this.dropFamily(familyId);
    const entry: RevocationEntry = { kind: 'family', familyId, until: now + this.timings.revocationTtlMs };
    this.revocations.set(`family:${familyId}`, entry);
    this.emit(entry);
    return existed && family !== undefined;
  }

  private dropFamily(familyId: string): boolean {
    const family = this.families.get(familyId);
    if (!family) return false;
    for (const h of family.hashes) this.tokens.delete(h);
    this.families.delete(familyId);
    const set = this.familiesBySubject.get(family.subject);
    set?.delete(familyId);
    if (set && set.size === 0) this.familiesBySubject.delete(family.subject);
    return true;
  }

  async revokeSubject(subject: string, notBefore: number, now: number): Promise<number> {
    const ids = [...(this.familiesBySubject.get(subject) ?? [])];
    for (const id of ids) this.dropFamily(id);
    const entry: RevocationEntry = { kind: 'subject', subject, notBefore, until: now + this.timings.revocationTtlMs };
    this.revocations.set(`subject:${subject}`, entry);
    this.emit(entry);
    return ids.length;
  }

  async listFamilies(subject: string, now: number): Promise<FamilySummary[]> {
    const out: FamilySummary[] = [];
    for (const id of this.familiesBySubject.get(subject) ?? []) {
      const f = this.families.get(id);
      if (!f || f.expiresAt <= now || f.liveUntil <= now) continue;
      out.push({
        familyId: id,
        subject: f.subject,
        provider: f.provider,
        startedAt: f.startedAt,
        lastUsedAt: f.lastUsedAt,
        expiresAt: Math.min(f.expiresAt, f.liveUntil),
        clientAddress: f.clientAddress,
      });
    }
    return out.sort((a, b) => b.lastUsedAt - a.lastUsedAt);
  }

  async listSubjects(after: string | null, limit: number, now: number): Promise<Page<string>> {
    // Sorted per call: fine for an admin page (1,000 users x 5 families sort in well under a millisecond).
    const rows: Array<{ end: number; subject: string }> = [];
    for (const [subject, ids] of this.familiesBySubject) {
      let end = 0;
      for (const id of ids) {
        const f = this.families.get(id);
        if (f && f.expiresAt > now && f.liveUntil > now) end = Math.max(end, f.expiresAt);
      }
      if (end > 0) rows.push({ end, subject });
    }
    rows.sort(newestFirst);
    const from = after === null ? undefined : parseSubjectCursor(after);
    const start = from === undefined ? 0 : rows.findIndex((r) => newestFirst(r, from) > 0);
    const page = start < 0 ? [] : rows.slice(start, start + limit);
    const last = page.at(-1);
    return { items: page.map((r) => r.subject), next: page.length === limit && last ? subjectCursor(last.end, last.subject) : null };
  }

  async listRevocations(now: number): Promise<RevocationEntry[]> {
    return [...this.revocations.values()].filter((e) => e.until > now);
  }

  onRevocation(listener: (entry: RevocationEntry) => void): () => void {
    this.revocationListeners.add(listener);
    return () => this.revocationListeners.delete(listener);
  }

  onFeedState(listener: (live: boolean) => void): () => void {
    listener(true); // in-process: the feed cannot be lost
    return () => {};
  }

  private emit(entry: RevocationEntry): void {
    for (const l of this.revocationListeners) l(entry);
  }

  async setOwnerIfAbsent(service: string, owner: string): Promise<string> {
    const current = this.owners.get(service);
    if (current !== undefined) return current;
    this.owners.set(service, owner);
    return owner;
  }

  async getOwner(service: string): Promise<string | null> {
    return this.owners.get(service) ?? null;
  }

  async deleteOwner(service: string): Promise<void> {
    this.owners.delete(service);
  }

  async setOwner(service: string, owner: string): Promise<string | null> {
    const previous = this.owners.get(service) ?? null;
    this.owners.set(service, owner);
    return previous;
  }

  async listOwners(after: string | null, limit: number): Promise<Page<OwnerRecord>> {
    const services = [...this.owners.keys()].filter((s) => after === null || s > after).sort(byCodeUnit).slice(0, limit);
    return {
      items: services.map((service) => ({ service, owner: this.owners.get(service)! })),
      next: services.length === limit ? services.at(-1)! : null,
    };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.revocationListeners.clear();
  }

  /** Drops everything past its expiry; public so tests can run it with a chosen clock. */
  sweep(now: number): void {
    for (const [id, f] of this.families) {
      if (f.expiresAt <= now || f.liveUntil <= now) this.dropFamily(id);
    }
    for (const [h, rec] of this.tokens) {
      if (rec.expiresAt > now) continue;
      this.tokens.delete(h);
      this.families.get(rec.familyId)?.hashes.delete(h);
    }
    for (const [k, e] of this.revocations) if (e.until <= now) this.revocations.delete(k);
  }
}
