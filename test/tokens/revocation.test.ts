import { describe, it, expect } from 'vitest';
import { RevocationView } from '../../src/tokens/index.ts';

const T = 1_760_000_000_000; // ms, on a whole second
const S = T / 1000;

describe('RevocationView', () => {
  it('revokes every token of a revoked family, and nothing else', () => {
    const v = new RevocationView(30_000);
    v.load([{ kind: 'family', familyId: 'fam-1', until: T + 3_600_000 }], T);
    expect(v.isRevoked({ sid: 'fam-1', sub: 'alice', iat: S - 100 })).toBe(true);
    expect(v.isRevoked({ sid: 'fam-1', sub: 'alice', iat: S + 100 })).toBe(true);
    expect(v.isRevoked({ sid: 'fam-2', sub: 'alice', iat: S })).toBe(false);
  });

  it('a family revoked after load (feed event) is revoked at once', () => {
    const v = new RevocationView(30_000);
    v.load([], T);
    expect(v.isRevoked({ sid: 'fam-9', sub: 'carol', iat: S })).toBe(false);
    v.apply({ kind: 'family', familyId: 'fam-9', until: T + 1000 });
    expect(v.isRevoked({ sid: 'fam-9', sub: 'carol', iat: S })).toBe(true);
  });

  it('subject revocation ends tokens issued up to notBefore, including the same second, not later ones', () => {
    const v = new RevocationView(30_000);
    const notBefore = T + 500; // half-way through second S
    v.load([{ kind: 'subject', subject: 'alice', notBefore, until: T + 3_600_000 }], T);
    expect(v.isRevoked({ sid: 'any', sub: 'alice', iat: S - 3599 })).toBe(true);
    expect(v.isRevoked({ sid: 'any', sub: 'alice', iat: S })).toBe(true); // same second: revoked
    expect(v.isRevoked({ sid: 'any', sub: 'alice', iat: S + 1 })).toBe(false);
    expect(v.isRevoked({ sid: 'any', sub: 'bob', iat: S - 10 })).toBe(false);
  });

  it('with the millisecond issue time, a token issued later in the same second as the revocation stays valid', () => {
    const v = new RevocationView(30_000);
    const notBefore = T + 500;
    v.load([{ kind: 'subject', subject: 'alice', notBefore, until: T + 3_600_000 }], T);
    expect(v.isRevoked({ sid: 'any', sub: 'alice', iat: S, issuedAtMs: T + 499 })).toBe(true);
    expect(v.isRevoked({ sid: 'any', sub: 'alice', iat: S, issuedAtMs: T + 501 })).toBe(false);
  });

  it('a later subject revocation moves notBefore forward; an older one arriving late does not move it back', () => {
    const v = new RevocationView(30_000);
    v.load([], T);
    v.apply({ kind: 'subject', subject: 'alice', notBefore: T + 10_000, until: T + 3_610_000 });
    expect(v.isRevoked({ sid: 'x', sub: 'alice', iat: S + 10 })).toBe(true);
    v.apply({ kind: 'subject', subject: 'alice', notBefore: T + 1_000, until: T + 3_601_000 });
    expect(v.isRevoked({ sid: 'x', sub: 'alice', iat: S + 5 })).toBe(true);
    v.apply({ kind: 'subject', subject: 'alice', notBefore: T + 20_000, until: T + 3_620_000 });
    expect(v.isRevoked({ sid: 'x', sub: 'alice', iat: S + 20 })).toBe(true);
    expect(v.isRevoked({ sid: 'x', sub: 'alice', iat: S + 21 })).toBe(false);
  });

  it('load replaces the view with the snapshot', () => {
    const v = new RevocationView(30_000);
    v.load([{ kind: 'family', familyId: 'old', until: T + 1000 }], T);
    v.load([{ kind: 'family', familyId: 'new', until: T + 1000 }], T);
    expect(v.isRevoked({ sid: 'old', sub: 'a', iat: S })).toBe(false);
    expect(v.isRevoked({ sid: 'new', sub: 'a', iat: S })).toBe(true);
  });

  it('prune drops entries past their until, keeps the others', () => {
    const v = new RevocationView(30_000);
    v.load(
      [
        { kind: 'family', familyId: 'short', until: T + 1_000 },
        { kind: 'family', familyId: 'long', until: T + 10_000 },
        { kind: 'subject', subject: 'alice', notBefore: T, until: T + 1_000 },
        { kind: 'subject', subject: 'bob', notBefore: T, until: T + 10_000 },
      ],
      T,
    );
    expect(v.size).toBe(4);
    v.prune(T + 999);
    expect(v.size).toBe(4);
    v.prune(T + 1_000);
    expect(v.size).toBe(2);
    expect(v.isRevoked({ sid: 'short', sub: 'x', iat: S })).toBe(false);
    expect(v.isRevoked({ sid: 'long', sub: 'x', iat: S })).toBe(true);
    expect(v.isRevoked({ sid: 'x', sub: 'alice', iat: S - 1 })).toBe(false);
    expect(v.isRevoked({ sid: 'x', sub: 'bob', iat: S - 1 })).toBe(true);
    v.prune(T + 10_000);
    expect(v.size).toBe(0);
  });

  describe('freshness (fail closed when the feed is lost)', () => {
    it('is not fresh before anything was loaded', () => {
      const v = new RevocationView(30_000);
      expect(v.isFresh(T)).toBe(false);
    });

    it('stays fresh while the feed is live, however long', () => {
      const v = new RevocationView(30_000);
      v.load([], T);
      v.setLive(true, T);
      expect(v.isFresh(T + 86_400_000)).toBe(true);
      expect(v.staleness(T + 86_400_000)).toBe(0);
    });

    it('after the feed is lost: fresh up to maxStaleness, then not; staleness counts from the loss', () => {
      const v = new RevocationView(30_000);
      v.load([], T);
      v.setLive(true, T);
      const lost = T + 600_000;
      v.setLive(false, lost);
      expect(v.staleness(lost + 5_000)).toBe(5_000);
      expect(v.isFresh(lost + 30_000)).toBe(true);
      expect(v.isFresh(lost + 30_001)).toBe(false);
      expect(v.staleness(lost + 45_000)).toBe(45_000);
      // a repeated "lost" report does not restart the clock
      v.setLive(false, lost + 20_000);
      expect(v.isFresh(lost + 30_001)).toBe(false);
    });

    it('is fresh again once the feed is back', () => {
      const v = new RevocationView(30_000);
      v.load([], T);
      v.setLive(true, T);
      v.setLive(false, T + 1_000);
      expect(v.isFresh(T + 100_000)).toBe(false);
      v.load([], T + 100_000);
      v.setLive(true, T + 100_000);
      expect(v.isFresh(T + 100_000)).toBe(true);
      expect(v.staleness(T + 200_000)).toBe(0);
    });

    it('a snapshot without a live feed is fresh only for maxStaleness after it was loaded', () => {
      const v = new RevocationView(10_000);
      v.load([], T);
      expect(v.isFresh(T + 10_000)).toBe(true);
      expect(v.isFresh(T + 10_001)).toBe(false);
    });
  });
});
