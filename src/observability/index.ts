export { createLogger, auditTo, REDACT_PATHS, type Logger, type AuditSink } from './logging.ts';
export { GatewayMetrics } from './metrics.ts';
