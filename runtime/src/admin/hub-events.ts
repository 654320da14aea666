// What the router tells the hub: the events it publishes (instances come and go, calls start,
// move, carry messages and end). Plain objects, cheap to make on the traffic path; the hub
// turns them into admin protobuf messages only when a watcher, a snapshot or a replay asks.
// So the hub keeps what a call's events carry (the events themselves, their metadata and
// payloads) and reads it later: a publisher must not change them once published.
import type { Instance_Health, Instance_Transport } from "../gen/grpcrouter/v1/admin_pb.js";
import type { MetadataInput } from "./metadata.js";

export type CallId = bigint | number;

/**
 * A call id as a Map key: the same key whether the id came as a number or a bigint, and a
 * number whenever it fits, so that looking a call up per event makes no BigInt.
 */
export type CallKey = number | bigint;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function callKey(id: CallId): CallKey {
  if (typeof id === "number") return id;
  return id <= MAX_SAFE && id >= -MAX_SAFE ? Number(id) : id;
}
export type CallKind = "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";
export type HealthInput = "serving" | "not_serving" | "draining" | "ejected" | Instance_Health;
/** How a Register stream reached the router: HTTP/2 (h2c, or h2 over TLS) or WebSocket (ws, or wss over TLS). */
export type TransportInput = "h2c" | "h2" | "ws" | "wss" | Instance_Transport;

export interface InstanceInfo {
  id: string;
  /** Fully-qualified service name, e.g. "demo.v1.Echo". */
  service: string;
  labels?: Record<string, string>;
  weight?: number;
  /** Peer address of the instance's Register stream(s). */
  address?: string;
  /** How its (first) Register stream reached the router. */
  transport?: TransportInput;
  /**
   * Who the router takes it for (its principal, as the audit log writes it: certificate
   * names and/or a digest of its credentials, never a secret), or "anonymous".
   */
  principal?: string;
  streams?: number;
  maxConcurrentCalls?: number;
  health?: HealthInput;
  registeredAt?: Date;
  description?: string;
  /** An operator drained or ejected it, or set its weight (Admin Act). */
  operatorDrained?: boolean;
  operatorEjected?: boolean;
  operatorWeight?: boolean;
}

/** A decision the router made about a call after it started (see admin.proto CallDecision). */
export interface CallDecisionInfo {
  kind: "attempt" | "retry" | "refused" | "ejected";
  /** The attempt it concerns: 1 for the first, 0 for a call refused before any. */
  attempt: number;
  instanceId?: string;
  reason: string;
  queuedMs?: number;
  code?: number;
  backoffMs?: number;
}

/** An instance's id and service with the fields that changed (instanceChanged). */
export type InstanceUpdate = Pick<InstanceInfo, "id" | "service"> & Partial<InstanceInfo>;

/** What the router publishes. In-flight counts per instance are kept by the hub itself. */
export type HubEvent =
  | { type: "instanceRegistered"; instance: InstanceInfo }
  /** Health, streams, weight, labels… changed: only the given fields are updated. */
  | { type: "instanceChanged"; instance: InstanceUpdate }
  | { type: "instanceDeregistered"; instance: Pick<InstanceInfo, "id" | "service"> }
  | {
      type: "callStarted";
      callId: CallId;
      /** The method path, "/pkg.Svc/Method". */
      method: string;
      kind?: CallKind;
      peer?: string;
      metadata?: MetadataInput;
      instanceId?: string;
      /** Why this instance: the balancer and the routing key, in words. */
      reason?: string;
      /** Waited for an instance or a slot before the first attempt. */
      queuedMs?: number;
      /** The balancing strategy, in words. */
      policy?: string;
      routingKey?: string;
      time?: Date;
    }
  | {
      /** A later attempt, a retry, the router's refusal, an ejection (see admin.proto CallDecision). */
      type: "callDecision";
      callId: CallId;
      decision: CallDecisionInfo;
      time?: Date;
    }
  | { type: "callHeaders"; callId: CallId; metadata?: MetadataInput }
  | {
      type: "callMessage";
      callId: CallId;
      direction: "request" | "response";
      /** Encoded size in bytes (defaults to payload.byteLength). */
      size?: number;
      /** The serialized message; pass it when `hub.wantsBodies`, omit it otherwise. */
      payload?: Uint8Array;
      time?: Date;
    }
  | {
      type: "callEnded";
      callId: CallId;
      /** gRPC status code. */
      code: number;
      message?: string;
      trailers?: MetadataInput;
      /** Message counts; default to what the hub saw published. */
      requests?: number;
      responses?: number;
      time?: Date;
    };

/** The events of a call, each by its name. */
export type CallStartedEvent = Extract<HubEvent, { type: "callStarted" }>;
export type CallDecisionEvent = Extract<HubEvent, { type: "callDecision" }>;
export type CallHeadersEvent = Extract<HubEvent, { type: "callHeaders" }>;
export type CallMessageEvent = Extract<HubEvent, { type: "callMessage" }>;
export type CallEndedEvent = Extract<HubEvent, { type: "callEnded" }>;

/**
 * Sees every event the hub is given, synchronously, before the watchers do (see `onEvent`).
 * It runs on the router's traffic path: keep it to a few map and counter updates.
 */
export type HubListener = (event: HubEvent) => void;
