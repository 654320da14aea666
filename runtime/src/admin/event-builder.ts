// Turns what the router published (hub-events.ts) into the admin API's protobuf messages:
// metadata redacted on the way in, bodies decoded to JSON only when a reader asks for them.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, type Duration } from "@bufbuild/protobuf/wkt";
import {
  CallDecision_Kind,
  CallDecisionSchema,
  CallEndedSchema,
  CallHeadersSchema,
  CallMessage_Direction,
  CallMessageSchema,
  CallStartedSchema,
  Instance_Health,
  Instance_Transport,
  type CallDecision,
  type CallEnded,
  type CallHeaders,
  type CallMessage,
  type CallStarted,
  type Instance,
} from "../gen/grpcrouter/v1/admin_pb.js";
import type { BodyDecoder, DecodedBody } from "./body.js";
import type { CallDecisionEvent, CallEndedEvent, CallStartedEvent, HealthInput, InstanceInfo, TransportInput } from "./hub-events.js";
import type { MetadataInput, MetadataRedactor } from "./metadata.js";

/** One call message as kept: its protobuf forms are built on first demand and memoised. */
export interface MessageRecord {
  readonly callId: bigint;
  readonly method: string;
  readonly direction: "request" | "response";
  readonly size: number;
  readonly timeMs: number;
  /** Kept only within the history byte budget. */
  payload: Uint8Array | undefined;
  decoded: DecodedBody | undefined;
  base: CallMessage | undefined;
}

const HEALTH: Record<Exclude<HealthInput, Instance_Health>, Instance_Health> = {
  serving: Instance_Health.SERVING,
  not_serving: Instance_Health.NOT_SERVING,
  draining: Instance_Health.DRAINING,
  ejected: Instance_Health.EJECTED,
};

const TRANSPORT: Record<Exclude<TransportInput, Instance_Transport>, Instance_Transport> = {
  h2c: Instance_Transport.HTTP2,
  h2: Instance_Transport.HTTP2_TLS,
  ws: Instance_Transport.WEBSOCKET,
  wss: Instance_Transport.WEBSOCKET_TLS,
};

const DECISION_KINDS = {
  attempt: CallDecision_Kind.ATTEMPT,
  retry: CallDecision_Kind.RETRY,
  refused: CallDecision_Kind.REFUSED,
  ejected: CallDecision_Kind.EJECTED,
} as const;

function durationOfMs(ms: number): Duration {
  const whole = Math.max(0, ms);
  const seconds = Math.floor(whole / 1000);
  return { $typeName: "google.protobuf.Duration", seconds: BigInt(seconds), nanos: Math.round((whole - seconds * 1000) * 1e6) };
}

export class EventBuilder {
  constructor(
    private readonly redactor: MetadataRedactor,
    private readonly decoder: BodyDecoder,
  ) {}

  /** Copies the fields the event gives onto the instance; a new one is SERVING unless told. */
  applyInstance(inst: Instance, info: Partial<InstanceInfo>, isNew: boolean): void {
    if (info.labels !== undefined) inst.labels = { ...info.labels };
    if (info.weight !== undefined) inst.weight = info.weight;
    if (info.address !== undefined) inst.address = info.address;
    if (info.transport !== undefined) inst.transport = typeof info.transport === "string" ? TRANSPORT[info.transport] : info.transport;
    if (info.principal !== undefined) inst.principal = info.principal;
    if (info.streams !== undefined) inst.streams = info.streams;
    if (info.maxConcurrentCalls !== undefined) inst.maxConcurrentCalls = info.maxConcurrentCalls;
    if (info.health !== undefined) inst.health = typeof info.health === "string" ? HEALTH[info.health] : info.health;
    else if (isNew) inst.health = Instance_Health.SERVING;
    if (info.registeredAt !== undefined) inst.registeredAt = timestampFromMs(info.registeredAt.getTime());
    if (info.description !== undefined) inst.description = info.description;
    if (info.operatorDrained !== undefined) inst.operatorDrained = info.operatorDrained;
    if (info.operatorEjected !== undefined) inst.operatorEjected = info.operatorEjected;
    if (info.operatorWeight !== undefined) inst.operatorWeight = info.operatorWeight;
  }

  callStarted(e: CallStartedEvent, id: bigint, startMs: number): CallStarted {
    return create(CallStartedSchema, {
      callId: id,
      method: e.method,
      peer: e.peer ?? "",
      metadata: this.redactor.toMap(e.metadata),
      instanceId: e.instanceId ?? "",
      reason: e.reason ?? "",
      time: timestampFromMs(startMs),
      kind: e.kind ?? "",
      queuedMs: Math.round(e.queuedMs ?? 0),
      policy: e.policy ?? "",
      routingKey: e.routingKey ?? "",
    });
  }

  callHeaders(id: bigint, metadata: MetadataInput | undefined): CallHeaders {
    return create(CallHeadersSchema, { callId: id, metadata: this.redactor.toMap(metadata) });
  }

  /** `counted` are the messages the hub saw, used when the event does not give its own counts. */
  callEnded(e: CallEndedEvent, id: bigint, durationMs: number, counted?: { requests: number; responses: number }): CallEnded {
    return create(CallEndedSchema, {
      callId: id,
      code: e.code,
      message: e.message ?? "",
      trailers: this.redactor.toMap(e.trailers),
      duration: durationOfMs(durationMs),
      requests: e.requests ?? counted?.requests ?? 0,
      responses: e.responses ?? counted?.responses ?? 0,
    });
  }

  callDecision(e: CallDecisionEvent, id: bigint, timeMs: number): CallDecision {
    const d = e.decision;
    return create(CallDecisionSchema, {
      callId: id,
      time: timestampFromMs(timeMs),
      kind: DECISION_KINDS[d.kind],
      attempt: d.attempt,
      instanceId: d.instanceId ?? "",
      reason: d.reason,
      queuedMs: Math.round(d.queuedMs ?? 0),
      code: d.code ?? 0,
      backoffMs: Math.round(d.backoffMs ?? 0),
    });
  }

  /** The message event's value; with `withBody`, the body decoded to JSON (once per record). */
  callMessage(r: MessageRecord, payload: Uint8Array | undefined, withBody: boolean): CallMessage {
    r.base ??= create(CallMessageSchema, {
      callId: r.callId,
      direction: r.direction === "request" ? CallMessage_Direction.REQUEST : CallMessage_Direction.RESPONSE,
      size: r.size,
      time: timestampFromMs(r.timeMs),
    });
    if (!withBody) return r.base;
    r.decoded ??= this.decoder.decode(r.method, r.direction, payload);
    return { ...r.base, json: r.decoded.json, jsonTruncated: r.decoded.truncated, jsonError: r.decoded.error };
  }
}
