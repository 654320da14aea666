// Logging that an attacker cannot flood, structured output, and the audit trail.
export { rateLimitedLog, reasonOf, type LogFn, type RateLimitedLogOptions } from "./rate-limited-log.js";
export { formatLogger, parseLogFormat, type LogFormat } from "./format.js";
export { auditEvent, auditJsonLine, type AuditEvent, type AuditKind, type AuditSink } from "./audit.js";
