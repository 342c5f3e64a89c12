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

export function auditTo(logger: Logger): AuditSink {
  const audit = logger.child({ audit: true });
  return (event, fields) => audit.info({ ...fields, event }, event);
}
