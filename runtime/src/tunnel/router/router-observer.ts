// The one place a routed call's life is reported: started (with the instance the pool
// picked and why), request and response messages, response headers, ended. The admin hub
// is the observer; metrics and tracing listen to the hub (hub.onEvent), so all three see
// the same events in the same order, each call ending exactly once.
import type * as grpc from "@grpc/grpc-js";
import type { AdminHub } from "../../admin/index.js";
import type { CallDecisionInfo } from "../../admin/hub-events.js";
import type { TunnelMethod } from "../spec.js";

/** What an observer may read of a call. */
export interface ObservedCall {
  readonly hubId: number;
  readonly method: TunnelMethod;
  readonly peer: string;
  readonly metadata: grpc.Metadata;
  readonly routingKey: string | undefined;
  /** The service's balancing strategy in words (read only by an observer that shows it). */
  readonly route: { policy(): string };
}

export interface CallObserver {
  /** Once per call: when its first attempt has an instance, or when it ends without one. */
  started(call: ObservedCall, instanceId: string | undefined, reason: string | undefined, queuedMs?: number): void;
  /** Off the common path: a later attempt, a retry, the router's refusal, an ejection. Only after `started`. */
  decision(call: ObservedCall, decision: CallDecisionInfo): void;
  request(call: ObservedCall, payload: Uint8Array): void;
  /** `metadata` is undefined when the instance sent none. */
  headers(call: ObservedCall, metadata: grpc.Metadata | undefined): void;
  response(call: ObservedCall, payload: Uint8Array): void;
  /** Once per call, after `started`. */
  ended(call: ObservedCall, code: number, message: string, trailers: grpc.Metadata | undefined): void;
}

/** Publishes a call's life to the admin hub (and so to metrics and tracing). */
export class HubCallObserver implements CallObserver {
  constructor(private readonly hub: AdminHub) {}

  started(call: ObservedCall, instanceId: string | undefined, reason: string | undefined, queuedMs?: number): void {
    // One literal of one shape (absent fields undefined): spreads would build several objects per call.
    this.hub.publish({
      type: "callStarted",
      callId: call.hubId,
      method: call.method.path,
      kind: call.method.kind,
      peer: call.peer,
      metadata: call.metadata,
      policy: call.route.policy(),
      instanceId,
      reason,
      queuedMs: queuedMs || undefined,
      routingKey: call.routingKey,
    });
  }

  decision(call: ObservedCall, decision: CallDecisionInfo): void {
    this.hub.publish({ type: "callDecision", callId: call.hubId, decision });
  }

  request(call: ObservedCall, payload: Uint8Array): void {
    this.message(call, "request", payload);
  }

  response(call: ObservedCall, payload: Uint8Array): void {
    this.message(call, "response", payload);
  }

  private message(call: ObservedCall, direction: "request" | "response", payload: Uint8Array): void {
    const hub = this.hub;
    // Sizes only when someone counts them; bodies only when someone reads them.
    if (!hub.wantsMessages) return;
    hub.publish({ type: "callMessage", callId: call.hubId, direction, size: payload.length, payload: hub.wantsBodies ? payload : undefined });
  }

  headers(call: ObservedCall, metadata: grpc.Metadata | undefined): void {
    this.hub.publish({ type: "callHeaders", callId: call.hubId, metadata });
  }

  ended(call: ObservedCall, code: number, message: string, trailers: grpc.Metadata | undefined): void {
    this.hub.publish({ type: "callEnded", callId: call.hubId, code, message, trailers });
  }
}

/** A router without a hub observes nothing, at the cost of a call each. */
export const NO_OBSERVER: CallObserver = {
  started() {},
  decision() {},
  request() {},
  headers() {},
  response() {},
  ended() {},
};
