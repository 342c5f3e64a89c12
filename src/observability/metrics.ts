// prom-client metrics on a per-gateway Registry (no global state: tests and workers build several gateways).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route_class' | 'method' | 'status'>;
  readonly duration: Histogram<'route_class'>;
  readonly logins: Counter<'provider' | 'outcome'>;
  readonly refreshes: Counter<'outcome'>;
  readonly storeLatency: Histogram<'op' | 'outcome'>;

  constructor(gauges: { revocationViewAgeSeconds: () => number; revocationEntries: () => number; verifiedTokens: () => { verified: number; cacheHits: number } }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mlgate_' });
    this.requests = new Counter({
      name: 'mlgate_http_requests_total',
      help: 'Requests answered, by route class, method and status.',
      labelNames: ['route_class', 'method', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'mlgate_http_request_duration_seconds',
      help: 'Time from request to the end of the answer, by route class.',
      labelNames: ['route_class'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.logins = new Counter({ name: 'mlgate_logins_total', help: 'Login outcomes by provider.', labelNames: ['provider', 'outcome'], registers });
    this.refreshes = new Counter({ name: 'mlgate_refreshes_total', help: 'Refresh outcomes.', labelNames: ['outcome'], registers });
    this.storeLatency = new Histogram({
      name: 'mlgate_store_operation_duration_seconds',
      help: 'Token store operation latency.',
      labelNames: ['op', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    new Gauge({
      name: 'mlgate_revocation_view_age_seconds',
      help: 'Seconds since the revocation view was last known complete (0 while its feed is live).',
      registers,
      collect() {
        this.set(gauges.revocationViewAgeSeconds());
      },
    });
    new Gauge({
      name: 'mlgate_revocation_view_entries',
      help: 'Revoked sessions and subjects held in memory.',
      registers,
      collect() {
        this.set(gauges.revocationEntries());
      },
    });
    new Gauge({
      name: 'mlgate_access_token_verifications',
      help: 'Access tokens verified by signature (kind=signature) and served from the verified-token cache (kind=cache).',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = gauges.verifiedTokens();
        this.set({ kind: 'signature' }, s.verified);
        this.set({ kind: 'cache' }, s.cacheHits);
      },
    });
  }

  /** Wraps every async method of an object (the TokenStore) with a latency observation. */
  instrument<T extends object>(target: T): T {
    const latency = this.storeLatency;
    return new Proxy(target, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver);
        if (typeof value !== 'function' || typeof prop !== 'string' || prop.startsWith('on') || prop === 'close') return value;
        return (...args: unknown[]) => {
          const end = latency.startTimer({ op: prop });
          const out = (value as (...a: unknown[]) => unknown).apply(obj, args);
          if (out instanceof Promise) {
            return out.then(
              (v) => {
                end({ outcome: 'ok' });
                return v;
              },
              (e: unknown) => {
                end({ outcome: 'error' });
                throw e;
              },
            );
          }
          end({ outcome: 'ok' });
          return out;
        };
      },
    });
  }
}
