// Login throttling: failed attempts are counted per client address, per (user, address) and per user.
// Every block ends after its window, so an attacker can never lock a real user out for longer than that.
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { TooManyRequests } from '../errors.ts';

export interface ThrottleSettings {
  enabled: boolean;
  windowSeconds: number;
  /** Failed logins from one address (any user) before that address waits. */
  perAddress: number;
  /** Failed logins for one user from one address before that pair waits. */
  perUserAndAddress: number;
  /** Failed logins for one user from all addresses together before that user waits (bounded lockout). */
  perUser: number;
}

/** Counters shared by every instance through the Redis store (an ioredis client). */
export interface SharedCounters {
  client: unknown;
  keyPrefix: string;
}

export class LoginThrottle {
  private readonly limiters: Array<{ name: string; limiter: RateLimiterAbstract; key: (user: string, address: string) => string }>;
  private readonly pair: RateLimiterAbstract;
  private readonly enabled: boolean;

  constructor(s: ThrottleSettings, shared?: SharedCounters) {
    this.enabled = s.enabled;
    const mk = (points: number, name: string): RateLimiterAbstract => {
      const opts = { points, duration: s.windowSeconds, blockDuration: s.windowSeconds };
      if (!shared) return new RateLimiterMemory(opts);
      // Redis down: this instance keeps counting in memory rather than letting every attempt through.
      return new RateLimiterRedis({
        ...opts,
        storeClient: shared.client,
        keyPrefix: `${shared.keyPrefix}throttle:${name}`,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory(opts),
      });
    };
    this.pair = mk(s.perUserAndAddress, 'pair');
    this.limiters = [
      { name: 'address', limiter: mk(s.perAddress, 'address'), key: (_u, a) => a },
      { name: 'user+address', limiter: this.pair, key: (u, a) => `${userKey(u)}|${a}` },
      { name: 'user', limiter: mk(s.perUser, 'user'), key: (u) => userKey(u) },
    ];
  }

  /**
   * Counts the attempt before any password work, and throws 429 when a limit is reached. Counted up front, not
   * after the check: otherwise a burst of parallel guesses all pass before the first failure is recorded. A
   * correct login and an attempt that was no credential failure (a directory outage) give their points back.
   */
  async check(user: string, address: string): Promise<void> {
    if (!this.enabled) return;
    const taken: typeof this.limiters = [];
    for (const l of this.limiters) {
      try {
        await l.limiter.consume(l.key(user, address));
        taken.push(l);
      } catch (err) {
        // Refused: the counts taken for this attempt go back (an address blocked for one user keeps its budget).
        await Promise.all(taken.map((t) => t.limiter.reward(t.key(user, address), 1).catch(() => undefined)));
        if (err instanceof RateLimiterRes) throw new TooManyRequests(err.msBeforeNext / 1000, `login throttled by ${l.name}`);
        throw err; // a store failure, not a limit
      }
    }
  }

  /** A correct login clears that pair's count and gives back its attempt to the address and the user. */
  async succeeded(user: string, address: string): Promise<void> {
    if (!this.enabled) return;
    await Promise.all([
      this.pair.delete(`${userKey(user)}|${address}`),
      ...this.limiters.filter((l) => l.limiter !== this.pair).map((l) => l.limiter.reward(l.key(user, address), 1)),
    ]);
  }

  /** An attempt that failed for another reason than the credentials (directory or store down, 400): not counted. */
  async released(user: string, address: string): Promise<void> {
    if (!this.enabled) return;
    await Promise.all(this.limiters.map((l) => l.limiter.reward(l.key(user, address), 1)));
  }
}

/**
 * One count per account however the name is typed, as a directory's case-insensitive matching sees it: Unicode
 * compatibility forms and accents (a dotted capital I is an i), runs of spaces, surrounding spaces and case folded.
 * Folding too much only makes look-alike names share a count, which errs on the safe side.
 */
export function userKey(user: string): string {
  return user.normalize('NFKD').replace(/\p{M}/gu, '').replace(/\s+/gu, ' ').trim().toLowerCase();
}
