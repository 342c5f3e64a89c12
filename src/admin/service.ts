// What an Owner can see and do, for both clients of it: the JSON admin API (src/admin/index.ts, used by the CLI)
// and the admin console (src/console/). Neither holds any logic of its own: one set of rules, one audit trail.
// Callers have already checked that the actor is an Owner.
import { NotFound } from '../errors.ts';
import { guardStore } from '../http/helpers.ts';
import type { AuditEvent, AuditRing, AuditSink } from '../observability/index.ts';
import type { NodeStatus } from '../proxy/index.ts';
import type { FamilySummary, TokenStore } from '../store/index.ts';
import { hashRefreshToken, type KeyRing } from '../tokens/index.ts';

export interface AdminServiceDeps {
  store: TokenStore;
  audit: AuditSink;
  keys: KeyRing;
  /** The upstream pool's node status. */
  nodes(): NodeStatus[];
  /** Recent audit events of this process. */
  recentAudit: AuditRing;
}

/** Who acts, for the audit trail. */
export interface Actor {
  actor: string;
  requestId: string;
}

/** A refresh family as shown to an Owner (no secrets). */
export interface SessionView {
  familyId: string;
  provider: string;
  startedAt: string;
  lastUsedAt: string;
  expiresAt: string;
  clientAddress: string | null;
}

export interface UserSessions {
  subject: string;
  sessions: SessionView[];
}

export interface KeyView {
  kid: string;
  alg: string;
  createdAt: string;
  active: boolean;
  generated: boolean;
}

export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 200;
/** How many subjects one users() call reads at most per requested user (subjects whose families all ended early). */
const SCAN_FACTOR = 4;

const iso = (ms: number): string => new Date(ms).toISOString();

function view(f: FamilySummary): SessionView {
  return {
    familyId: f.familyId,
    provider: f.provider,
    startedAt: iso(f.startedAt),
    lastUsedAt: iso(f.lastUsedAt),
    expiresAt: iso(f.expiresAt),
    clientAddress: f.clientAddress ?? null,
  };
}

export class AdminService {
  private readonly deps: AdminServiceDeps;
  private readonly subjectRevoked = new Set<(subject: string) => void>();

  constructor(deps: AdminServiceDeps) {
    this.deps = deps;
  }

  /** Told after every revocation of a user (the console ends that user's console sessions). */
  onSubjectRevoked(listener: (subject: string) => void): () => void {
    this.subjectRevoked.add(listener);
    return () => this.subjectRevoked.delete(listener);
  }

  async revokeRefreshToken(who: Actor, refreshToken: string): Promise<{ familyId: string; subject: string }> {
    const { store, audit } = this.deps;
    const now = Date.now();
    const rec = await guardStore(store.getRefresh(hashRefreshToken(refreshToken), now));
    if (!rec) throw new NotFound('No live refresh token matches.', 'refresh_token_not_found');
    // A refresh token is ended with its family, as DELETE /login/refreshToken does: its access tokens end too.
    await guardStore(store.revokeFamily(rec.familyId, now));
    audit('admin.revoke.refresh_token', { ...who, user: rec.identity.subject, sid: rec.familyId });
    return { familyId: rec.familyId, subject: rec.identity.subject };
  }

  /** `subject` (optional) only names the family's user in the audit event. */
  async revokeFamily(who: Actor, familyId: string, subject?: string): Promise<boolean> {
    const found = await guardStore(this.deps.store.revokeFamily(familyId, Date.now()));
    this.deps.audit('admin.revoke.family', { ...who, ...(subject !== undefined ? { user: subject } : {}), sid: familyId, found });
    return found;
  }

  async revokeUser(who: Actor, subject: string): Promise<{ notBefore: number; families: number }> {
    const now = Date.now();
    const families = await guardStore(this.deps.store.revokeSubject(subject, now, now));
    this.deps.audit('admin.revoke.user', { ...who, user: subject, notBefore: now, families });
    for (const l of this.subjectRevoked) l(subject);
    return { notBefore: now, families };
  }

  async sessions(who: Actor, subject: string): Promise<SessionView[]> {
    const families = await guardStore(this.deps.store.listFamilies(subject, Date.now()));
    this.deps.audit('admin.sessions', { ...who, user: subject, count: families.length });
    return families.map(view);
  }

  /**
   * One page of users with live sessions, newest login first. Subjects whose families all ended early are skipped
   * (reading at most SCAN_FACTOR x limit subjects), so a page can be short while `next` is not null.
   */
  async users(who: Actor, after: string | null, limit: number): Promise<{ users: UserSessions[]; next: string | null }> {
    const { store } = this.deps;
    const now = Date.now();
    const users: UserSessions[] = [];
    let cursor = after;
    let read = 0;
    do {
      const page = await guardStore(store.listSubjects(cursor, limit - users.length, now));
      read += page.items.length;
      const families = await guardStore(Promise.all(page.items.map((s) => store.listFamilies(s, now))));
      page.items.forEach((subject, i) => {
        if (families[i]!.length > 0) users.push({ subject, sessions: families[i]!.map(view) });
      });
      cursor = page.next;
    } while (cursor !== null && users.length < limit && read < limit * SCAN_FACTOR);
    this.deps.audit('admin.users', { ...who, count: users.length, sessions: users.reduce((n, u) => n + u.sessions.length, 0) });
    return { users, next: cursor };
  }

  async services(after: string | null, limit: number): Promise<{ services: Array<{ service: string; owner: string }>; next: string | null }> {
    const page = await guardStore(this.deps.store.listOwners(after, limit));
    return { services: page.items, next: page.next };
  }

  /** Records `owner` as the owner of `service` whatever was recorded (or nothing); audited with the previous one. */
  async transferOwner(who: Actor, service: string, owner: string): Promise<{ service: string; owner: string; previous: string | null }> {
    const previous = await guardStore(this.deps.store.setOwner(service, owner));
    this.deps.audit('admin.owner.transfer', { ...who, service, owner, previous });
    return { service, owner, previous };
  }

  keys(): KeyView[] {
    return this.deps.keys.keys.map((k) => ({ kid: k.kid, alg: k.alg, createdAt: iso(k.createdAt), active: k.active, generated: k.generated }));
  }

  nodes(): NodeStatus[] {
    return this.deps.nodes();
  }

  auditEvents(q: { user?: string | undefined; kind?: string | undefined; limit: number }): { events: AuditEvent[]; kinds: string[]; capacity: number } {
    const ring = this.deps.recentAudit;
    return { events: ring.recent(q), kinds: ring.kinds(), capacity: ring.capacity };
  }
}
