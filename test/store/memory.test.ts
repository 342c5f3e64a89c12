import { describe, it, expect } from 'vitest';
import { MemoryTokenStore } from '../../src/store/index.ts';
import type { RefreshRecord } from '../../src/store/index.ts';
import { tokenStoreContract } from './contract.ts';

const REVOCATION_TTL_MS = 3_630_000;

tokenStoreContract('memory', async () => {
  const store = new MemoryTokenStore({ revocationTtlMs: REVOCATION_TTL_MS });
  return { store, cleanup: () => store.close() };
});

function rec(familyId: string, subject: string, issuedAt: number, ttlMs: number): RefreshRecord {
  return {
    familyId,
    identity: { subject, displayName: subject, groups: [], provider: 'admin', authTime: issuedAt },
    issuedAt,
    expiresAt: issuedAt + ttlMs,
    familyStartedAt: issuedAt,
    familyExpiresAt: issuedAt + 10 * ttlMs,
  };
}

describe('MemoryTokenStore: nothing grows without bound', () => {
  it('sweep(now) after every expiry leaves nothing behind, after 10,000 families', async () => {
    const store = new MemoryTokenStore({ revocationTtlMs: REVOCATION_TTL_MS });
    try {
      const T0 = 1_700_000_000_000;
      const ttl = 60_000;
      for (let i = 0; i < 10_000; i++) {
        const familyId = `fam-${i}`;
        await store.createFamily(`h-${i}`, rec(familyId, `user-${i % 97}`, T0, ttl));
        if (i % 3 === 0) {
          // a rotated family leaves a consumed token and its successor behind
          const outcome = await store.rotate({
            oldHash: `h-${i}`,
            newHash: `h2-${i}`,
            newRecord: rec(familyId, `user-${i % 97}`, T0 + 1_000, ttl),
            now: T0 + 1_000,
            sealedSuccessor: 'sealed',
            graceMs: 5_000,
          });
          expect(outcome.kind).toBe('rotated');
        }
        if (i % 5 === 0) await store.revokeFamily(familyId, T0 + 2_000);
        if (i % 1_000 === 0) await store.revokeSubject(`user-${i % 97}`, T0 + 2_000, T0 + 2_000);
      }
      expect(store.size()).toBeGreaterThan(10_000);

      // a sweep before anything expired must not drop live state
      store.sweep(T0 + 30_000);
      const liveIndex = 7; // not rotated, not revoked (7 % 3, 7 % 5 != 0), user-7 never subject-revoked
      expect(await store.getRefresh(`h-${liveIndex}`, T0 + 30_000)).not.toBeNull();

      store.sweep(T0 + 2_000 + REVOCATION_TTL_MS + ttl * 20);
      expect(store.size()).toBe(0);
      expect(await store.listRevocations(T0)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('sweep drops the consumed tokens of a long-lived family but keeps its live token working', async () => {
    const store = new MemoryTokenStore({ revocationTtlMs: REVOCATION_TTL_MS });
    try {
      const T0 = 1_700_000_000_000;
      const ttl = 60_000;
      await store.createFamily('a-0', { ...rec('fam-a', 'alice', T0, ttl), familyExpiresAt: T0 + 100 * ttl });
      let hash = 'a-0';
      for (let i = 1; i <= 20; i++) {
        const now = T0 + i * 50_000;
        const next = `a-${i}`;
        const out = await store.rotate({
          oldHash: hash,
          newHash: next,
          newRecord: { ...rec('fam-a', 'alice', now, ttl), familyStartedAt: T0, familyExpiresAt: T0 + 100 * ttl },
          now,
          sealedSuccessor: undefined,
          graceMs: 0,
        });
        expect(out.kind).toBe('rotated');
        hash = next;
      }
      const now = T0 + 20 * 50_000 + 1;
      const before = store.size();
      store.sweep(now);
      expect(store.size()).toBeLessThan(before);
      // one family + its subject index + at most the two tokens that have not expired yet
      expect(store.size()).toBeLessThanOrEqual(4);
      expect(await store.getRefresh(hash, now)).not.toBeNull();
    } finally {
      await store.close();
    }
  });
});
