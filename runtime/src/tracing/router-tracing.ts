// OpenTelemetry spans of a router, one SERVER span per routed call, computed from the events
// it publishes to its AdminHub (like the metrics: `hub.onEvent` sees every event, synchronously).
//
// The span follows the RPC semantic conventions (name "pkg.Service/Method", rpc.* attributes,
// rpc.message events, status from the gRPC code) and joins the client's trace: its parent is
// read from the call's metadata (traceparent/tracestate with the W3C propagator). The router
// forwards the metadata to the instance unchanged, so the instance's own server span is a
// sibling of the router's span under the client's span, and the instance sees exactly the
// trace headers the client sent.
//
// By default the global tracer and propagator of @opentelemetry/api are used: without an SDK
// registered they are no-ops, and a call costs a check that none is registered yet (no span,
// no attributes, nothing kept).
import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  propagation,
  trace,
  type Attributes,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from "@opentelemetry/api";
import type { AdminHub } from "../admin/hub.js";
import { callKey, type CallEndedEvent, type CallKey, type CallMessageEvent, type CallStartedEvent } from "../admin/hub-events.js";
import { carrierOf, metadataGetter } from "./carrier.js";

export interface RouterTracingOptions {
  /** The hub the router publishes to (`createRouter({ hub })`). */
  hub: AdminHub;
  /** Default: `trace.getTracer("@grpcrouter/runtime")`, the global provider's (a no-op without an SDK). */
  tracer?: Tracer;
  /** Reads the parent from the call's metadata. Default: the global propagator (`propagation`). */
  propagator?: Pick<TextMapPropagator, "extract">;
  /** host[:port] clients dial, for server.address / server.port (e.g. "router.internal:9090"); see also `setServerAddress`. */
  serverAddress?: string;
  /** rpc.message events kept per span; the rest are counted in grpcrouter.message_events.omitted. Default 32. */
  maxMessageEvents?: number;
  /** Spans of calls in flight; beyond it the oldest is ended as abandoned (a call that never ends must not leak). Default 10000. */
  maxOpenSpans?: number;
}

export interface RouterTracing {
  /** Spans started and not ended yet (recording ones only). */
  readonly openSpans: number;
  /** server.address / server.port of the spans started from now on (e.g. once a port-0 listener is bound). */
  setServerAddress(address: string | undefined): void;
  /** Stops listening to the hub and ends the open spans, marked abandoned. */
  close(): void;
}

/** The tracer's instrumentation scope. */
export const TRACER_NAME = "@grpcrouter/runtime";

/** Attribute set on a span ended without its call's end (evicted by maxOpenSpans, or close()). */
export const ABANDONED_ATTRIBUTE = "grpcrouter.call.abandoned";

/**
 * The codes that mark a gRPC SERVER span as an error, per the RPC semantic conventions: the
 * others (NOT_FOUND, PERMISSION_DENIED, …) are the client's doing and leave the status unset.
 */
const SERVER_ERROR_CODES = new Set([
  2, // UNKNOWN
  4, // DEADLINE_EXCEEDED
  12, // UNIMPLEMENTED
  13, // INTERNAL
  14, // UNAVAILABLE
  15, // DATA_LOSS
]);

/** Bound of the calls whose messages came before their callStarted (see onMessage). */
const EARLY_CALLS = 1024;
/** Bound of the parsed method paths (the router publishes only its routed methods). */
const METHOD_CACHE = 1024;

interface MethodInfo {
  readonly spanName: string;
  readonly service: string | undefined;
  readonly method: string;
}

interface EarlyMessage {
  readonly direction: "request" | "response";
  readonly size: number;
  readonly time: number;
}

/** Messages of a call not started yet: the first maxMessageEvents, and how many more. */
interface Early {
  readonly messages: EarlyMessage[];
  moreRequests: number;
  moreResponses: number;
}

interface OpenSpan {
  readonly span: Span;
  /** rpc.message.id counters, one per direction, from 1. */
  received: number;
  sent: number;
  events: number;
  omitted: number;
}

/** "/pkg.Svc/Method" → service and method; anything else is kept whole as the method. */
function parseMethod(path: string): MethodInfo {
  const m = /^\/?([^/]+)\/([^/]+)$/.exec(path);
  const service = m?.[1] ?? "";
  const method = m?.[2] ?? path;
  return { spanName: service ? `${service}/${method}` : method, service: service || undefined, method };
}

/**
 * "host:port", "[v6]:port" or grpc-js' unbracketed "v6:port" (its getPeer joins them with a
 * colon) → address and port. Without a numeric port, the whole text is the address.
 */
export function splitHostPort(text: string): { address: string; port?: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return bracketed[2] ? { address: bracketed[1]!, port: Number(bracketed[2]) } : { address: bracketed[1]! };
  const m = /^(.*):(\d+)$/.exec(text);
  if (m && m[1]) return { address: m[1], port: Number(m[2]) };
  return { address: text };
}

/**
 * Starts a span per routed call from `hub`'s events. Create it before the router's first
 * call; `close()` when the router is closed.
 */
export function createRouterTracing(options: RouterTracingOptions): RouterTracing {
  const { hub } = options;
  const tracer = options.tracer ?? trace.getTracer(TRACER_NAME);
  const propagator = options.propagator ?? propagation;
  const maxEvents = options.maxMessageEvents ?? 32;
  const maxOpen = options.maxOpenSpans ?? 10_000;
  if (!Number.isInteger(maxEvents) || maxEvents < 0) throw new Error(`createRouterTracing: maxMessageEvents must be an integer >= 0, got ${maxEvents}`);
  if (!Number.isInteger(maxOpen) || maxOpen < 1) throw new Error(`createRouterTracing: maxOpenSpans must be an integer >= 1, got ${maxOpen}`);

  let server: { address?: string; port?: number } = {};
  const setServerAddress = (text: string | undefined) => {
    server = text ? splitHostPort(text) : {};
  };
  setServerAddress(options.serverAddress);

  // The global tracer without an SDK behind it: every span would be a no-op. Checked per call
  // until an SDK registers (it may come after the router); a registered one stays.
  let sdkSeen = options.tracer !== undefined;
  const noSdk = (): boolean => {
    if (sdkSeen) return false;
    const provider = trace.getTracerProvider();
    // Another copy of the API, or a provider set some other way: trace as usual.
    sdkSeen = !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(TRACER_NAME) !== undefined;
    return !sdkSeen;
  };

  const methods = new Map<string, MethodInfo>();
  /**
   * Calls started and not ended: their span, or null when it is not recording (sampled out,
   * or a given tracer that records nothing). Those are kept too, so that their messages are
   * not mistaken for messages that came before their call's start. Without an SDK behind the
   * global tracer no call is kept (see noSdk).
   */
  const open = new Map<CallKey, OpenSpan | null>();
  let recording = 0;
  const early = new Map<CallKey, Early>();

  function methodOf(path: string): MethodInfo {
    let m = methods.get(path);
    if (!m) {
      if (methods.size >= METHOD_CACHE) methods.clear();
      methods.set(path, (m = parseMethod(path)));
    }
    return m;
  }

  function abandon(s: OpenSpan | null): void {
    if (!s) return;
    recording--;
    s.span.setAttribute(ABANDONED_ATTRIBUTE, true);
    if (s.omitted > 0) s.span.setAttribute("grpcrouter.message_events.omitted", s.omitted);
    s.span.end();
  }

  function addMessage(s: OpenSpan, direction: "request" | "response", size: number, time?: number): void {
    // The router is the server: requests are received, responses sent.
    const id = direction === "request" ? ++s.received : ++s.sent;
    if (s.events >= maxEvents) {
      s.omitted++;
      return;
    }
    s.events++;
    s.span.addEvent(
      "rpc.message",
      { "rpc.message.type": direction === "request" ? "RECEIVED" : "SENT", "rpc.message.id": id, "rpc.message.uncompressed_size": size },
      time,
    );
  }

  function onStarted(e: CallStartedEvent): void {
    const id = callKey(e.callId);
    const pending = early.size > 0 ? early.get(id) : undefined;
    if (pending) early.delete(id);
    if (noSdk()) return;
    const method = methodOf(e.method);
    const peer = e.peer ? splitHostPort(e.peer) : undefined;
    // One literal with every key, unknown ones undefined (SDKs skip those): adding dotted keys
    // one by one turns the object into a slow dictionary, 100 times the cost of the rest.
    const attributes: Attributes = {
      "rpc.system": "grpc",
      "rpc.service": method.service,
      "rpc.method": method.method,
      "server.address": server.address,
      "server.port": server.port,
      "network.peer.address": peer?.address,
      "network.peer.port": peer?.port,
      "grpcrouter.instance.id": e.instanceId,
      "grpcrouter.balancer.reason": e.reason || undefined,
      "grpcrouter.call.kind": e.kind,
    };
    // A call waiting for an instance is announced when it gets one: its early messages show
    // it was there before.
    let startTime = e.time?.getTime() ?? Date.now();
    const first = pending?.messages[0];
    if (first && first.time < startTime) startTime = first.time;
    const carrier = carrierOf(e.metadata);
    // ROOT_CONTEXT, not the active context: events run in whatever async context the router
    // is in, which belongs to no trace of this call.
    const parent = carrier ? propagator.extract(ROOT_CONTEXT, carrier, metadataGetter) : ROOT_CONTEXT;
    const span = tracer.startSpan(method.spanName, { kind: SpanKind.SERVER, attributes, startTime }, parent);
    // Non-recording spans need nothing more than their place in `open`: ending them does nothing.
    const s: OpenSpan | null = span.isRecording() ? { span, received: 0, sent: 0, events: 0, omitted: 0 } : null;
    const stale = open.get(id);
    if (stale !== undefined) {
      open.delete(id);
      abandon(stale);
    }
    if (open.size >= maxOpen) {
      const [oldest, o] = open.entries().next().value!;
      open.delete(oldest);
      abandon(o);
    }
    open.set(id, s);
    if (!s) return;
    recording++;
    if (pending) {
      for (const m of pending.messages) addMessage(s, m.direction, m.size, m.time);
      // Those not kept still count, for the ids of the next ones.
      s.received += pending.moreRequests;
      s.sent += pending.moreResponses;
      s.omitted += pending.moreRequests + pending.moreResponses;
    }
  }

  function onMessage(e: CallMessageEvent): void {
    const id = callKey(e.callId);
    const size = e.size ?? e.payload?.byteLength ?? 0;
    const s = open.get(id);
    if (s) return addMessage(s, e.direction, size, e.time?.getTime());
    if (s === null || noSdk()) return;
    // A client may stream requests while its call waits for an instance, before the call is
    // announced: keep them (bounded) for its span.
    let pending = early.get(id);
    if (!pending) {
      if (early.size >= EARLY_CALLS) early.delete(early.keys().next().value!);
      early.set(id, (pending = { messages: [], moreRequests: 0, moreResponses: 0 }));
    }
    if (pending.messages.length < maxEvents) pending.messages.push({ direction: e.direction, size, time: e.time?.getTime() ?? Date.now() });
    else if (e.direction === "request") pending.moreRequests++;
    else pending.moreResponses++;
  }

  function onEnded(e: CallEndedEvent): void {
    const id = callKey(e.callId);
    if (early.size > 0) early.delete(id);
    const s = open.get(id);
    if (s === undefined) return;
    open.delete(id);
    if (!s) return;
    recording--;
    const span = s.span;
    span.setAttribute("rpc.grpc.status_code", e.code);
    if (s.omitted > 0) span.setAttribute("grpcrouter.message_events.omitted", s.omitted);
    if (SERVER_ERROR_CODES.has(e.code) || !Number.isInteger(e.code) || e.code < 0 || e.code > 16) {
      span.setStatus({ code: SpanStatusCode.ERROR, ...(e.message ? { message: e.message } : {}) });
    }
    span.end(e.time);
  }

  const stop = hub.onEvent((e) => {
    switch (e.type) {
      case "callStarted":
        return onStarted(e);
      case "callMessage":
        return onMessage(e);
      case "callEnded":
        return onEnded(e);
      default:
        return;
    }
  });

  return {
    get openSpans() {
      return recording;
    },
    setServerAddress,
    close() {
      stop();
      for (const s of open.values()) abandon(s);
      open.clear();
      recording = 0;
      early.clear();
    },
  };
}
