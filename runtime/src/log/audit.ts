// The audit trail: who registered, who was refused and why, who left and why, and what
// configuration changed — one structured record each, never rate-limited (the registration
// limits bound how fast records can come). Principals appear as the router knows them
// (certificate names, a digest of the credentials), never as secrets.

export type AuditKind = "registered" | "refused" | "turnedAway" | "deregistered" | "configChanged" | "operatorAction";

export interface AuditEvent {
  kind: AuditKind;
  /** ISO 8601 time the router recorded it. */
  time: string;
  service?: string;
  instanceId?: string;
  principal?: string;
  peer?: string;
  reason?: string;
  /** configChanged: the file and what changed in words. */
  file?: string;
  detail?: string;
  /** operatorAction: drain, undrain, eject, restore, set weight, pause, resume, replay. */
  action?: string;
}

export type AuditSink = (event: AuditEvent) => void;

/** An event stamped with the time now. */
export function auditEvent(kind: AuditKind, fields: Omit<AuditEvent, "kind" | "time">): AuditEvent {
  return { kind, time: new Date().toISOString(), ...fields };
}

/** One JSON object per line, as log shippers read them. */
export function auditJsonLine(e: AuditEvent): string {
  return JSON.stringify(e);
}
