// pino JSON logs. Secrets never reach them: fields that can hold one are redacted at the source.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  'refreshToken',
  '*.refreshToken',
  'refresh_token',
  '*.refresh_token',
  'access_token',
  '*.access_token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'token',
  '*.token',
  'assertion',
  '*.assertion',
];

const SECRET_FIELDS = new Set(REDACT_PATHS.filter((p) => !p.includes('.')));

export function createLogger(level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'mlgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** The audit stream: one line per security event, `audit: true` so it can be routed separately. */
export type AuditSink = (event: string, fields: Record<string, unknown>) => void;

export function auditTo(logger: Logger, recent?: AuditRing): AuditSink {
  const audit = logger.child({ audit: true });
  return (event, fields) => {
    audit.info({ ...fields, event }, event);
    recent?.push(event, fields);
  };
}

export interface AuditEvent {
  /** ms since epoch */
  time: number;
  event: string;
  user: string | undefined;
  fields: Record<string, unknown>;
}

export interface AuditQuery {
  /** Exact subject (the `user` field). */
  user?: string | undefined;
  /** An event name, or its first part: `login` matches login.ok, login.failed, login.throttled. */
  kind?: string | undefined;
  limit: number;
}

/**
 * The most recent audit events of THIS process (the admin console's audit page), newest first. Bounded: the oldest
 * event makes room. Per instance: another instance or cluster worker has its own; the log stream is the record.
 */
export class AuditRing {
  readonly capacity: number;
  private readonly events: (AuditEvent | undefined)[];
  private head = 0;
  private count = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.events = new Array<AuditEvent | undefined>(capacity);
  }

  push(event: string, fields: Record<string, unknown>, time = Date.now()): void {
    if (this.capacity === 0) return;
    const user = typeof fields.user === 'string' ? fields.user : undefined;
    // Audit fields hold no secrets (tested on the log); the names pino redacts are dropped here all the same.
    const kept: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) if (!SECRET_FIELDS.has(k)) kept[k] = v;
    this.events[this.head] = { time, event, user, fields: kept };
    this.head = (this.head + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  get size(): number {
    return this.count;
  }

  recent(q: AuditQuery): AuditEvent[] {
    const out: AuditEvent[] = [];
    for (let i = 1; i <= this.count && out.length < q.limit; i++) {
      const e = this.events[(this.head - i + this.capacity) % this.capacity]!;
      if (q.user !== undefined && e.user !== q.user && e.fields.actor !== q.user) continue;
      if (q.kind !== undefined && e.event !== q.kind && !e.event.startsWith(`${q.kind}.`)) continue;
      out.push(e);
    }
    return out;
  }

  /** The distinct event names held, for a filter menu. */
  kinds(): string[] {
    const names = new Set<string>();
    for (let i = 0; i < this.count; i++) names.add(this.events[i]!.event);
    return [...names].sort();
  }
}
