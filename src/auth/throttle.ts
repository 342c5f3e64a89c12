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
      { name: 'user+address', limiter: this.pair, key: (u, a) => `${u.toLowerCase()}|${a}` },
      { name: 'user', limiter: mk(s.perUser, 'user'), key: (u) => u.toLowerCase() },
    ];
  }

  /** Throws 429 before any password work when a limit is reached. */
  async check(user: string, address: string): Promise<void> {
    if (!this.enabled) return;
    for (const { limiter, key, name } of this.limiters) {
      const res = await limiter.get(key(user, address));
      if (res && res.remainingPoints <= 0) {
        throw new TooManyRequests(res.msBeforeNext / 1000, `login throttled by ${name}`);
      }
    }
  }

  async failed(user: string, address: string): Promise<void> {
    if (!this.enabled) return;
    for (const { limiter, key } of this.limiters) {
      try {
        await limiter.consume(key(user, address));
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err; // a store failure, not a limit
      }
    }
  }

  /** A correct login clears that pair's count (the address and user counts expire on their own). */
  async succeeded(user: string, address: string): Promise<void> {
    if (!this.enabled) return;
    await this.pair.delete(`${user.toLowerCase()}|${address}`);
  }
}
