// Admin console sessions: an opaque random id in a cookie, the session itself in this process's memory (never in
// the cookie), ended after an idle timeout or an absolute lifetime, at logout, or when the user is revoked. Not shared between instances or
// cluster workers: a browser must reach the process that logged it in (README, Admin console).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ConsoleSession {
  subject: string;
  displayName: string;
  provider: string;
  /** Synchronizer token: every state-changing form carries it in a hidden field. */
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

/** Bound on sessions held at once; the least recently used one makes room (logins are throttled besides). */
const MAX_SESSIONS = 1000;

const key = (id: string): string => createHash('sha256').update(id).digest('base64url');

export class ConsoleSessions {
  readonly idleMs: number;
  readonly maxMs: number;
  /** Keyed by the SHA-256 of the cookie value; Map order = least recently used first (touch re-inserts). */
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(idleMs: number, maxMs = Infinity) {
    this.idleMs = idleMs;
    this.maxMs = maxMs;
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.min(idleMs, 60_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** A new session; returns the cookie value (256 random bits). */
  create(who: { subject: string; displayName: string; provider: string }, now = Date.now()): { id: string; session: ConsoleSession } {
    this.sweep(now);
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session: ConsoleSession = { ...who, csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeen: now };
    this.sessions.set(key(id), session);
    return { id, session };
  }

  /** The live session of a cookie value, its idle clock restarted; undefined when unknown or idle too long. */
  touch(id: string | undefined, now = Date.now()): ConsoleSession | undefined {
    if (!id || id.length > 128) return undefined;
    const k = key(id);
    const s = this.sessions.get(k);
    if (!s) return undefined;
    this.sessions.delete(k);
    if (now - s.lastSeen >= this.idleMs || now - s.createdAt >= this.maxMs) return undefined;
    s.lastSeen = now;
    this.sessions.set(k, s);
    return s;
  }

  end(id: string | undefined): void {
    if (id) this.sessions.delete(key(id));
  }

  /** Ends every console session of a subject (the admin API or console revoked that user). */
  endSubject(subject: string): number {
    let n = 0;
    for (const [k, s] of this.sessions) {
      if (s.subject === subject) {
        this.sessions.delete(k);
        n++;
      }
    }
    return n;
  }

  sweep(now: number): void {
    for (const [k, s] of this.sessions) if (now - s.lastSeen >= this.idleMs || now - s.createdAt >= this.maxMs) this.sessions.delete(k);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sessions.clear();
  }
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(session: ConsoleSession, submitted: string | undefined): boolean {
  if (submitted === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}
