// The TokenStore contract: every implementation (memory, redis) must pass this suite unchanged.
// Only the interface is used; every test passes explicit `now` values (around the real clock, so stores that
// also set key TTLs keep the keys), and uses ids/hashes unique to the test (stores may be shared).
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RefreshRecord, RevocationEntry, RotateOutcome, TokenStore } from '../../src/store/index.ts';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

export function tokenStoreContract(
  name: string,
  makeStore: () => Promise<{ store: TokenStore; cleanup: () => Promise<void> }>,
): void {
  describe(`TokenStore contract: ${name}`, () => {
    let store: TokenStore;
    let cleanup: () => Promise<void>;
    /** A base time near the real clock; every test offsets from it explicitly. */
    let T0: number;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      T0 = Date.now();
    });
    afterEach(async () => {
      await cleanup();
    });

    const uid = (what: string): string => `${what}-${randomUUID()}`;

    function record(opts: {
      familyId: string;
      subject: string;
      issuedAt: number;
      ttlMs?: number;
      familyStartedAt?: number;
      familyExpiresAt?: number;
      provider?: string;
      clientAddress?: string;
    }): RefreshRecord {
      const familyStartedAt = opts.familyStartedAt ?? opts.issuedAt;
      const familyExpiresAt = opts.familyExpiresAt ?? familyStartedAt + 90 * DAY;
      return {
        familyId: opts.familyId,
        identity: {
          subject: opts.subject,
          displayName: `User ${opts.subject}`,
          email: `${opts.subject}@example.test`,
          groups: ['stats', 'FTE-north'],
          provider: opts.provider ?? 'admin',
          authTime: familyStartedAt,
        },
        issuedAt: opts.issuedAt,
        expiresAt: Math.min(opts.issuedAt + (opts.ttlMs ?? 14 * DAY), familyExpiresAt),
        familyStartedAt,
        familyExpiresAt,
        clientAddress: opts.clientAddress,
      };
    }

    /** Starts a family and returns its first hash and record. */
    async function newFamily(subject = uid('user'), issuedAt = T0, extra: Partial<Parameters<typeof record>[0]> = {}) {
      const familyId = uid('fam');
      const hash = uid('hash');
      const rec = record({ familyId, subject, issuedAt, ...extra });
      await store.createFamily(hash, rec);
      return { familyId, subject, hash, rec };
    }

    /** Rotates `oldHash` at `now` into a fresh hash (strict unless graceMs/sealed given). */
    async function rotate(
      fam: { familyId: string; subject: string },
      oldHash: string,
      now: number,
      opts: { graceMs?: number; sealed?: string; newHash?: string; ttlMs?: number } = {},
    ): Promise<{ outcome: RotateOutcome; newHash: string; newRecord: RefreshRecord }> {
      const newHash = opts.newHash ?? uid('hash');
      const prev = await store.getRefresh(oldHash, now);
      const newRecord = record({
        familyId: fam.familyId,
        subject: fam.subject,
        issuedAt: now,
        ttlMs: opts.ttlMs,
        familyStartedAt: prev?.familyStartedAt ?? now,
        familyExpiresAt: prev?.familyExpiresAt,
      });
      const outcome = await store.rotate({
        oldHash,
        newHash,
        newRecord,
        now,
        sealedSuccessor: opts.sealed,
        graceMs: opts.graceMs ?? 0,
      });
      return { outcome, newHash, newRecord };
    }

    /** Revocations may arrive through a feed (pub/sub): poll briefly for the expected entry. */
    async function waitFor<T>(get: () => T | undefined, what: string): Promise<T> {
      const deadline = Date.now() + 3_000;
      for (;;) {
        const v = get();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }

    function collectRevocations(): { entries: RevocationEntry[]; stop: () => void } {
      const entries: RevocationEntry[] = [];
      const stop = store.onRevocation((e) => entries.push(e));
      return { entries, stop };
    }

    describe('createFamily / getRefresh', () => {
      it('returns the stored record, field for field, for the hash it was stored under', async () => {
        const f = await newFamily(undefined, T0, { clientAddress: '203.0.113.9' });
        const got = await store.getRefresh(f.hash, T0 + 1);
        expect(got).not.toBeNull();
        expect(got).toMatchObject({ ...f.rec });
        expect(got!.identity).toEqual(f.rec.identity);
        expect(got!.usedAt).toBeUndefined();
      });

      it('knows nothing about an unknown hash', async () => {
        expect(await store.getRefresh(uid('never-stored'), T0)).toBeNull();
      });

      it('keeps families apart: each hash maps to its own family', async () => {
        const a = await newFamily();
        const b = await newFamily();
        expect((await store.getRefresh(a.hash, T0))!.familyId).toBe(a.familyId);
        expect((await store.getRefresh(b.hash, T0))!.familyId).toBe(b.familyId);
      });
    });

    describe('expiry is decided by `now`', () => {
      it('a token is accepted until just before its expiresAt and not at or after it', async () => {
        const f = await newFamily(undefined, T0, { ttlMs: 10 * MIN });
        expect(await store.getRefresh(f.hash, f.rec.expiresAt - 1)).not.toBeNull();
        expect(await store.getRefresh(f.hash, f.rec.expiresAt)).toBeNull();
        expect(await store.getRefresh(f.hash, f.rec.expiresAt + DAY)).toBeNull();
      });

      it('an expired token cannot be rotated', async () => {
        const f = await newFamily(undefined, T0, { ttlMs: 10 * MIN });
        const { outcome, newHash } = await rotate(f, f.hash, f.rec.expiresAt + 1);
        expect(outcome).toEqual({ kind: 'invalid' });
        expect(await store.getRefresh(newHash, f.rec.expiresAt + 2)).toBeNull();
      });

      it('no token outlives the end of its family (familyExpiresAt), whatever its own expiresAt', async () => {
        const familyId = uid('fam');
        const hash = uid('hash');
        const subject = uid('user');
        const rec: RefreshRecord = {
          ...record({ familyId, subject, issuedAt: T0 }),
          expiresAt: T0 + 10 * DAY,
          familyExpiresAt: T0 + 1 * DAY,
        };
        await store.createFamily(hash, rec);
        expect(await store.getRefresh(hash, T0 + DAY - 1)).not.toBeNull();
        expect(await store.getRefresh(hash, T0 + DAY)).toBeNull();
        const { outcome } = await rotate({ familyId, subject }, hash, T0 + DAY + 1);
        expect(outcome.kind).toBe('invalid');
      });

      it('an unknown hash rotates to invalid and stores nothing', async () => {
        const f = { familyId: uid('fam'), subject: uid('user') };
        const { outcome, newHash } = await rotate(f, uid('unknown'), T0);
        expect(outcome).toEqual({ kind: 'invalid' });
        expect(await store.getRefresh(newHash, T0)).toBeNull();
      });
    });

    describe('rotate', () => {
      it('rotates once: the new token is live, the old one is reported consumed at the rotation time', async () => {
        const f = await newFamily();
        const { outcome, newHash, newRecord } = await rotate(f, f.hash, T0 + MIN);
        expect(outcome).toEqual({ kind: 'rotated' });
        const fresh = await store.getRefresh(newHash, T0 + MIN);
        expect(fresh).toMatchObject({ familyId: f.familyId, issuedAt: newRecord.issuedAt, expiresAt: newRecord.expiresAt });
        expect(fresh!.usedAt).toBeUndefined();
        const old = await store.getRefresh(f.hash, T0 + MIN);
        expect(old).not.toBeNull();
        expect(old!.usedAt).toBe(T0 + MIN);
      });

      it('the same rotation request run again (its answer lost) answers rotated again, and is no reuse', async () => {
        const f = await newFamily();
        const first = await rotate(f, f.hash, T0 + MIN);
        expect(first.outcome).toEqual({ kind: 'rotated' });
        const again = await rotate(f, f.hash, T0 + MIN + 5, { newHash: first.newHash });
        expect(again.outcome).toEqual({ kind: 'rotated' });
        expect(await store.getRefresh(first.newHash, T0 + 2 * MIN)).not.toBeNull();
        expect(await store.listFamilies(f.subject, T0 + 2 * MIN)).toHaveLength(1);
        // Another request with the consumed token is still a reuse (strict).
        expect((await rotate(f, f.hash, T0 + 2 * MIN)).outcome.kind).toBe('reused');
      });

      it('a chain of rotations keeps the family alive past the first token idle expiry', async () => {
        const f = await newFamily(undefined, T0, { ttlMs: 10 * MIN });
        let hash = f.hash;
        for (let i = 1; i <= 5; i++) {
          const r = await rotate(f, hash, T0 + i * 8 * MIN, { ttlMs: 10 * MIN });
          expect(r.outcome.kind).toBe('rotated');
          hash = r.newHash;
        }
        expect(await store.getRefresh(hash, T0 + 45 * MIN)).not.toBeNull();
        expect(await store.getRefresh(hash, T0 + 50 * MIN)).toBeNull();
      });

      it('reuse of a consumed token revokes the whole family, emits and lists a family revocation', async () => {
        const { entries, stop } = collectRevocations();
        try {
          const f = await newFamily();
          const first = await rotate(f, f.hash, T0 + MIN);
          expect(first.outcome.kind).toBe('rotated');

          const replay = await rotate(f, f.hash, T0 + 2 * MIN);
          expect(replay.outcome).toEqual({ kind: 'reused', familyId: f.familyId, subject: f.subject });

          // the successor handed out by the first rotation is dead too, and so is the replay's candidate
          expect(await store.getRefresh(first.newHash, T0 + 2 * MIN)).toBeNull();
          expect(await store.getRefresh(replay.newHash, T0 + 2 * MIN)).toBeNull();
          expect(await store.getRefresh(f.hash, T0 + 2 * MIN)).toBeNull();
          const again = await rotate(f, first.newHash, T0 + 3 * MIN);
          expect(again.outcome.kind).toBe('invalid');
          expect(await store.listFamilies(f.subject, T0 + 3 * MIN)).toEqual([]);

          const emitted = await waitFor(
            () => entries.find((e) => e.kind === 'family' && e.familyId === f.familyId),
            'family revocation event',
          );
          expect(emitted.until).toBeGreaterThan(T0 + 2 * MIN);
          const listed = (await store.listRevocations(T0 + 2 * MIN)).filter(
            (e) => e.kind === 'family' && e.familyId === f.familyId,
          );
          expect(listed).toHaveLength(1);
        } finally {
          stop();
        }
      });

      it('reuse revokes only that family: another family of the same subject keeps working', async () => {
        const subject = uid('user');
        const a = await newFamily(subject);
        const b = await newFamily(subject);
        await rotate(a, a.hash, T0 + MIN);
        expect((await rotate(a, a.hash, T0 + 2 * MIN)).outcome.kind).toBe('reused');
        expect(await store.getRefresh(b.hash, T0 + 2 * MIN)).not.toBeNull();
        expect((await rotate(b, b.hash, T0 + 3 * MIN)).outcome.kind).toBe('rotated');
      });

      it('50 concurrent rotations of one token: exactly one rotates (strict)', async () => {
        const f = await newFamily();
        const now = T0 + MIN;
        const prev = (await store.getRefresh(f.hash, now))!;
        const newHashes = Array.from({ length: 50 }, () => uid('hash'));
        const outcomes = await Promise.all(
          newHashes.map((newHash) =>
            store.rotate({
              oldHash: f.hash,
              newHash,
              newRecord: record({ familyId: f.familyId, subject: f.subject, issuedAt: now, familyStartedAt: prev.familyStartedAt }),
              now,
              sealedSuccessor: undefined,
              graceMs: 0,
            }),
          ),
        );
        const kinds = outcomes.map((o) => o.kind);
        expect(kinds.filter((k) => k === 'rotated')).toHaveLength(1);
        expect(kinds.filter((k) => k !== 'rotated' && k !== 'reused' && k !== 'invalid')).toEqual([]);
        // the losers presented a consumed token: strict mode revokes the family, the winner's token included
        expect(kinds.filter((k) => k === 'reused').length).toBeGreaterThanOrEqual(1);
        for (const h of newHashes) expect(await store.getRefresh(h, now)).toBeNull();
      });

      it('50 concurrent rotations with a grace window: one rotates, every other gets the winner\'s sealed successor', async () => {
        const f = await newFamily();
        const now = T0 + MIN;
        const prev = (await store.getRefresh(f.hash, now))!;
        const calls = Array.from({ length: 50 }, (_, i) => ({ newHash: uid('hash'), sealed: `sealed-${i}-${randomUUID()}` }));
        const outcomes = await Promise.all(
          calls.map((c) =>
            store.rotate({
              oldHash: f.hash,
              newHash: c.newHash,
              newRecord: record({ familyId: f.familyId, subject: f.subject, issuedAt: now, familyStartedAt: prev.familyStartedAt }),
              now,
              sealedSuccessor: c.sealed,
              graceMs: 10_000,
            }),
          ),
        );
        const winners = outcomes.flatMap((o, i) => (o.kind === 'rotated' ? [i] : []));
        expect(winners).toHaveLength(1);
        const w = winners[0]!;
        for (const [i, o] of outcomes.entries()) {
          if (i !== w) expect(o).toEqual({ kind: 'replayed', successor: calls[w]!.sealed });
        }
        expect(await store.getRefresh(calls[w]!.newHash, now)).not.toBeNull();
        for (const [i, c] of calls.entries()) if (i !== w) expect(await store.getRefresh(c.newHash, now)).toBeNull();
      });
    });

    describe('reuse grace window', () => {
      it('a replay within the window gets the same sealed successor, without a second rotation', async () => {
        const f = await newFamily();
        const first = await rotate(f, f.hash, T0 + MIN, { graceMs: 5_000, sealed: 'sealed-successor-1' });
        expect(first.outcome.kind).toBe('rotated');

        const replay = await rotate(f, f.hash, T0 + MIN + 4_000, { graceMs: 5_000, sealed: 'sealed-other' });
        expect(replay.outcome).toEqual({ kind: 'replayed', successor: 'sealed-successor-1' });
        expect(await store.getRefresh(replay.newHash, T0 + MIN + 4_000)).toBeNull(); // nothing new stored
        expect(await store.getRefresh(first.newHash, T0 + MIN + 4_000)).not.toBeNull();

        const replay2 = await rotate(f, f.hash, T0 + MIN + 5_000, { graceMs: 5_000, sealed: 'sealed-other-2' });
        expect(replay2.outcome).toEqual({ kind: 'replayed', successor: 'sealed-successor-1' });
      });

      it('a replay after the window is reuse: the family is revoked', async () => {
        const { entries, stop } = collectRevocations();
        try {
          const f = await newFamily();
          const first = await rotate(f, f.hash, T0 + MIN, { graceMs: 5_000, sealed: 'sealed-successor-2' });
          expect(first.outcome.kind).toBe('rotated');
          const late = await rotate(f, f.hash, T0 + MIN + 6_000, { graceMs: 5_000, sealed: 'x' });
          expect(late.outcome).toEqual({ kind: 'reused', familyId: f.familyId, subject: f.subject });
          expect(await store.getRefresh(first.newHash, T0 + MIN + 6_000)).toBeNull();
          await waitFor(() => entries.find((e) => e.kind === 'family' && e.familyId === f.familyId), 'family revocation');
        } finally {
          stop();
        }
      });

      it('graceMs 0 is strict even when a sealed successor is offered', async () => {
        const f = await newFamily();
        expect((await rotate(f, f.hash, T0 + MIN, { graceMs: 0, sealed: 'sealed-3' })).outcome.kind).toBe('rotated');
        const replay = await rotate(f, f.hash, T0 + MIN, { graceMs: 0, sealed: 'sealed-4' });
        expect(replay.outcome.kind).toBe('reused');
      });

      it('a rotation without a sealed successor leaves nothing to replay', async () => {
        const f = await newFamily();
        expect((await rotate(f, f.hash, T0 + MIN, { graceMs: 5_000 })).outcome.kind).toBe('rotated');
        const replay = await rotate(f, f.hash, T0 + MIN + 1_000, { graceMs: 5_000 });
        expect(replay.outcome.kind).toBe('reused');
      });
    });

    describe('revokeFamily', () => {
      it('ends every token of the family, emits and lists a family entry', async () => {
        const { entries, stop } = collectRevocations();
        try {
          const f = await newFamily();
          const r = await rotate(f, f.hash, T0 + MIN);
          expect(await store.revokeFamily(f.familyId, T0 + 2 * MIN)).toBe(true);
          expect(await store.getRefresh(f.hash, T0 + 2 * MIN)).toBeNull();
          expect(await store.getRefresh(r.newHash, T0 + 2 * MIN)).toBeNull();
          expect((await rotate(f, r.newHash, T0 + 3 * MIN)).outcome.kind).toBe('invalid');
          expect(await store.listFamilies(f.subject, T0 + 3 * MIN)).toEqual([]);
          await waitFor(() => entries.find((e) => e.kind === 'family' && e.familyId === f.familyId), 'family revocation');
          const listed = await store.listRevocations(T0 + 2 * MIN);
          expect(listed.some((e) => e.kind === 'family' && e.familyId === f.familyId)).toBe(true);
        } finally {
          stop();
        }
      });

      it('leaves other families alone and reports false for a family it does not know', async () => {
        const a = await newFamily();
        const b = await newFamily();
        await store.revokeFamily(a.familyId, T0 + MIN);
        expect(await store.getRefresh(b.hash, T0 + MIN)).not.toBeNull();
        expect(await store.revokeFamily(uid('no-such-family'), T0 + MIN)).toBe(false);
      });

      it('stops notifying a listener after it unsubscribes', async () => {
        const seen: RevocationEntry[] = [];
        const stop = store.onRevocation((e) => seen.push(e));
        stop();
        const { entries, stop: stop2 } = collectRevocations();
        try {
          const f = await newFamily();
          await store.revokeFamily(f.familyId, T0 + MIN);
          await waitFor(() => entries.find((e) => e.kind === 'family' && e.familyId === f.familyId), 'family revocation');
          expect(seen.filter((e) => e.kind === 'family' && e.familyId === f.familyId)).toEqual([]);
        } finally {
          stop2();
        }
      });
    });

    describe('revokeSubject', () => {
      it('ends all families of that subject only, and emits and lists a subject entry with notBefore', async () => {
        const { entries, stop } = collectRevocations();
        try {
          const subject = uid('user');
          const other = uid('user');
          const a = await newFamily(subject, T0);
          const b = await newFamily(subject, T0 + 1_000);
          const rb = await rotate(b, b.hash, T0 + 2_000);
          const c = await newFamily(other, T0);
          const now = T0 + MIN;
          const notBefore = now - 5;

          expect(await store.revokeSubject(subject, notBefore, now)).toBe(2);
          expect(await store.getRefresh(a.hash, now)).toBeNull();
          expect(await store.getRefresh(rb.newHash, now)).toBeNull();
          expect((await rotate(a, a.hash, now + 1)).outcome.kind).toBe('invalid');
          expect(await store.listFamilies(subject, now)).toEqual([]);
          expect(await store.getRefresh(c.hash, now)).not.toBeNull();
          expect(await store.listFamilies(other, now)).toHaveLength(1);

          const emitted = await waitFor(
            () => entries.find((e) => e.kind === 'subject' && e.subject === subject),
            'subject revocation',
          );
          expect(emitted).toMatchObject({ kind: 'subject', subject, notBefore });
          expect(emitted.until).toBeGreaterThan(now);
          const listed = (await store.listRevocations(now)).filter((e) => e.kind === 'subject' && e.subject === subject);
          expect(listed).toEqual([expect.objectContaining({ notBefore })]);
          expect((await store.listRevocations(now)).some((e) => e.kind === 'subject' && e.subject === other)).toBe(false);
        } finally {
          stop();
        }
      });

      it('a subject with no families still gets a subject entry (its access tokens end too)', async () => {
        const subject = uid('user');
        expect(await store.revokeSubject(subject, T0, T0)).toBe(0);
        const listed = await store.listRevocations(T0);
        expect(listed.some((e) => e.kind === 'subject' && e.subject === subject && e.notBefore === T0)).toBe(true);
      });

      it('a login after the revocation starts a family that works', async () => {
        const subject = uid('user');
        await newFamily(subject, T0);
        await store.revokeSubject(subject, T0 + 1_000, T0 + 1_000);
        const fresh = await newFamily(subject, T0 + 2_000);
        expect(await store.getRefresh(fresh.hash, T0 + 3_000)).not.toBeNull();
        expect((await store.listFamilies(subject, T0 + 3_000)).map((s) => s.familyId)).toEqual([fresh.familyId]);
      });
    });

    describe('listFamilies', () => {
      it('lists the subject\'s live families without secrets, most recently used first', async () => {
        const subject = uid('user');
        const f1 = await newFamily(subject, T0, { clientAddress: '198.51.100.1', provider: 'ldap' });
        const f2 = await newFamily(subject, T0 + 10_000);
        const f3 = await newFamily(subject, T0 + 20_000);
        const r1 = await rotate(f1, f1.hash, T0 + 30_000);
        await newFamily(uid('someone-else'), T0 + 40_000);

        const now = T0 + 50_000;
        const list = await store.listFamilies(subject, now);
        expect(list.map((s) => s.familyId)).toEqual([f1.familyId, f3.familyId, f2.familyId]);
        expect(list.map((s) => s.lastUsedAt)).toEqual([T0 + 30_000, T0 + 20_000, T0 + 10_000]);

        const s1 = list[0]!;
        expect(s1).toMatchObject({ familyId: f1.familyId, subject, provider: 'ldap', startedAt: T0, lastUsedAt: T0 + 30_000 });
        expect(s1.clientAddress).toBe('198.51.100.1');
        expect(s1.expiresAt).toBeGreaterThan(now);
        expect(s1.expiresAt).toBeLessThanOrEqual(f1.rec.familyExpiresAt);

        const text = JSON.stringify(list);
        for (const h of [f1.hash, r1.newHash, f2.hash, f3.hash]) expect(text).not.toContain(h);
        for (const s of list) {
          expect(Object.keys(s).filter((k) => /hash|token|secret|successor/i.test(k))).toEqual([]);
        }
      });

      it('leaves out expired families and knows no families of an unknown subject', async () => {
        const subject = uid('user');
        const short = await newFamily(subject, T0, { ttlMs: 10 * MIN });
        const long = await newFamily(subject, T0, { ttlMs: 60 * MIN });
        expect((await store.listFamilies(subject, T0 + MIN)).map((s) => s.familyId).sort()).toEqual(
          [short.familyId, long.familyId].sort(),
        );
        expect((await store.listFamilies(subject, T0 + 11 * MIN)).map((s) => s.familyId)).toEqual([long.familyId]);
        expect(await store.listFamilies(subject, T0 + 61 * MIN)).toEqual([]);
        expect(await store.listFamilies(uid('nobody'), T0)).toEqual([]);
      });
    });

    describe('listSubjects (admin listing)', () => {
      /** Every page from the first, at `limit` per page (bounded). */
      async function allSubjects(limit: number, now: number): Promise<{ subjects: string[]; pages: number }> {
        const subjects: string[] = [];
        let after: string | null = null;
        let pages = 0;
        do {
          const page = await store.listSubjects(after, limit, now);
          expect(page.items.length).toBeLessThanOrEqual(limit);
          subjects.push(...page.items);
          after = page.next;
          pages++;
        } while (after !== null && pages < 100);
        return { subjects, pages };
      }

      it('pages through every subject with a live family, newest family end first (ties in a fixed order), no repeats', async () => {
        // Families ending far after every other test's, listed at a time when only these are live.
        const far = T0 + 1000 * DAY;
        const long = { ttlMs: 2000 * DAY, familyExpiresAt: far };
        const tag = uid('lst');
        const names = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => `${tag}-${n}`);
        // ends: a far+5, b far+3, c far+3 (a tie with b), d far+1, e far+4 (two families: the newer counts), f far+0
        const ends: Record<string, number[]> = { a: [5], b: [3], c: [3], d: [1], e: [0, 4], f: [0] };
        for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) {
          for (const dt of ends[n]!) await newFamily(`${tag}-${n}`, T0, { ...long, familyExpiresAt: far + dt * 1000 });
        }
        const now = T0 + 999 * DAY;
        const expected = [`${tag}-a`, `${tag}-e`, `${tag}-c`, `${tag}-b`, `${tag}-d`, `${tag}-f`];
        for (const limit of [1, 2, 4, 50]) {
          const { subjects } = await allSubjects(limit, now);
          expect(subjects.filter((s) => s.startsWith(tag)), `limit ${limit}`).toEqual(expected);
          expect(new Set(subjects).size).toBe(subjects.length);
        }
        expect(names.every((n) => expected.includes(n))).toBe(true);
        // After every family's end nobody is listed any more.
        expect((await allSubjects(10, far + 10 * DAY)).subjects.filter((s) => s.startsWith(tag))).toEqual([]);
      });
    });

    describe('listRevocations', () => {
      it('an entry is listed until its `until`, then no longer', async () => {
        const f = await newFamily();
        const subject = uid('user');
        await store.revokeFamily(f.familyId, T0);
        await store.revokeSubject(subject, T0, T0);
        const mine = (es: RevocationEntry[]) =>
          es.filter((e) => (e.kind === 'family' && e.familyId === f.familyId) || (e.kind === 'subject' && e.subject === subject));
        const entries = mine(await store.listRevocations(T0));
        expect(entries).toHaveLength(2);
        const famUntil = entries.find((e) => e.kind === 'family')!.until;
        const subUntil = entries.find((e) => e.kind === 'subject')!.until;
        expect(famUntil).toBeGreaterThan(T0);
        expect(subUntil).toBeGreaterThan(T0);
        expect(mine(await store.listRevocations(Math.min(famUntil, subUntil) - 1))).toHaveLength(2);
        expect(mine(await store.listRevocations(Math.max(famUntil, subUntil)))).toEqual([]);
      });
    });

    describe('feed state', () => {
      it('reports a live feed to a new listener', async () => {
        const states: boolean[] = [];
        const stop = store.onFeedState((live) => states.push(live));
        try {
          await waitFor(() => (states.includes(true) ? true : undefined), 'feed live');
        } finally {
          stop();
        }
      });
    });

    describe('web-service ownership', () => {
      it('the first owner wins, also among 20 concurrent claims', async () => {
        const service = uid('svc');
        const owners = Array.from({ length: 20 }, (_, i) => `owner-${i}`);
        const answers = await Promise.all(owners.map((o) => store.setOwnerIfAbsent(service, o)));
        const winner = answers[0]!;
        expect(owners).toContain(winner);
        expect(answers).toEqual(owners.map(() => winner));
        expect(await store.getOwner(service)).toBe(winner);
        expect(await store.setOwnerIfAbsent(service, 'late-comer')).toBe(winner);
      });

      it('getOwner is null for an unknown service; deleteOwner frees the name for a new owner', async () => {
        const service = uid('svc');
        const other = uid('svc');
        expect(await store.getOwner(service)).toBeNull();
        expect(await store.setOwnerIfAbsent(service, 'alice')).toBe('alice');
        expect(await store.setOwnerIfAbsent(other, 'carol')).toBe('carol');
        await store.deleteOwner(service);
        expect(await store.getOwner(service)).toBeNull();
        expect(await store.getOwner(other)).toBe('carol');
        expect(await store.setOwnerIfAbsent(service, 'bob')).toBe('bob');
        expect(await store.getOwner(service)).toBe('bob');
      });
    });

    describe('ownership transfer and listing (admin)', () => {
      it('setOwner replaces any owner and answers the one before (null when none was recorded)', async () => {
        const service = uid('svc');
        expect(await store.setOwner(service, 'alice')).toBeNull();
        expect(await store.getOwner(service)).toBe('alice');
        expect(await store.setOwner(service, 'bob')).toBe('alice');
        expect(await store.getOwner(service)).toBe('bob');
        expect(await store.setOwnerIfAbsent(service, 'carol')).toBe('bob');
      });

      it('listOwners pages by service name in code-unit order, from a cursor, without deleted services', async () => {
        const tag = uid('svcs');
        const services = ['b/1', 'a/2', 'a/1', 'c <x>"/v1', 'd/9'].map((s) => `${tag}/${s}`);
        for (const s of services) await store.setOwnerIfAbsent(s, `owner of ${s}`);
        await store.setOwner(services[0]!, 'zed');
        await store.deleteOwner(services[4]!);
        const listed: Array<{ service: string; owner: string }> = [];
        let after: string | null = tag; // every name of this test sorts after its tag, and together
        for (let i = 0; i < 20 && after !== null; i++) {
          const page = await store.listOwners(after, 2);
          expect(page.items.length).toBeLessThanOrEqual(2);
          const mine = page.items.filter((r) => r.service.startsWith(tag));
          listed.push(...mine);
          after = mine.length === page.items.length ? page.next : null;
        }
        expect(listed).toEqual([
          { service: `${tag}/a/1`, owner: `owner of ${tag}/a/1` },
          { service: `${tag}/a/2`, owner: `owner of ${tag}/a/2` },
          { service: `${tag}/b/1`, owner: 'zed' },
          { service: `${tag}/c <x>"/v1`, owner: `owner of ${tag}/c <x>"/v1` },
        ]);
      });
    });

    it('answers ping while open', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
