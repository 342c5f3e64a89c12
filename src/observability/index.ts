export { createLogger, auditTo, AuditRing, REDACT_PATHS, type Logger, type AuditSink, type AuditEvent, type AuditQuery } from './logging.ts';
export { GatewayMetrics } from './metrics.ts';
