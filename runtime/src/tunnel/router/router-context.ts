// What the parts of a router share: resolved limits, the logger and the admin hub.
import type { AdminHub } from "../../admin/index.js";
import type { AuditEvent, AuditKind } from "../../log/audit.js";
import type { RouterByteBudget } from "../byte-budget.js";
import type { InstanceClaims } from "../instance-identity.js";
import type { RegistrationLimits } from "../registration-limits.js";
import type { Clock } from "../../resilience/index.js";
import type { PeerCertificateInfo } from "../peer-certificate.js";
import type { CallObserver } from "./router-observer.js";
import type { DrainingSet } from "../drained.js";

export interface RouterLimits {
  /** Response bytes an instance may send per call before the router grants more (Welcome.initial_window). */
  readonly callWindow: number;
  /** Calls one Register stream carries at once: floor(streamBufferBytes / callWindow). */
  readonly callsPerStream: number;
  /** Calls waiting for an instance with room, over all services. */
  readonly maxPendingCalls: number;
  readonly heartbeatIntervalMs: number;
  /** A stream silent for this long is considered dead. */
  readonly heartbeatTimeoutMs: number;
  /** A stream that has not said Hello within this time is closed. */
  readonly helloTimeoutMs: number;
  /** Largest request or response message of a call (message-limits.ts). */
  readonly maxMessageBytes: number;
}

export interface HelloInfo {
  instanceId: string;
  service: string;
  labels: Readonly<Record<string, string>>;
  credentials: Readonly<Record<string, string>>;
  /** The connection's address, e.g. "ipv4:10.0.0.7:51234". */
  peer: string;
  /** The instance's client certificate (mTLS: `--tls-client-ca` / ServerTlsFiles.clientCa); undefined otherwise. */
  certificate?: PeerCertificateInfo;
}

export interface RouterContext {
  readonly routerId: string;
  readonly limits: RouterLimits;
  readonly hub: AdminHub | undefined;
  /** Where every routed call reports its life (the hub's observer, or none). */
  readonly observer: CallObserver;
  readonly log: (line: string) => void;
  readonly peers: readonly string[];
  /** The router's time: heartbeats, the Hello timeout, call deadlines, and the resilience layer's (ejections, queue waits, retry backoff, budgets). */
  readonly clock: Clock;
  readonly authorize: ((hello: HelloInfo) => string | undefined | Promise<string | undefined>) | undefined;
  /** Byte bounds of every Register stream and of the router (byte-budget.ts). */
  readonly budget: RouterByteBudget;
  /** Register streams per connection/address, Hellos per second (registration-limits.ts). */
  readonly registrations: RegistrationLimits;
  /** Records a registration event in the audit trail (log/audit.ts). */
  readonly audit: (kind: AuditKind, fields: Omit<AuditEvent, "kind" | "time">) => void;
  /** Who owns which instance id (instance-identity.ts). */
  readonly claims: InstanceClaims;
  /** Router-wide call ids for the admin hub (stream call ids repeat across streams). */
  nextHubCallId(): number;
  /** Client calls in flight or pending, for close(); its `drained` wakes the drains waiting on it. */
  readonly active: DrainingSet<{ abortForShutdown(): void }>;
  closing: boolean;
}
