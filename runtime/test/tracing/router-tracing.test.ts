// OpenTelemetry spans of a REAL router: a router with a hub and createRouterTracing, a bridged
// instance of the interop service, calls from a grpc-js client that carry (or not) a W3C
// traceparent, and the spans collected by the OpenTelemetry SDK's in-memory exporter.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { AdminHub, createBridge, createRouterTracing, type Bridge, type Router, type RouterTracing } from "../../src/index.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
} from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, errorOf, interopImpl, methodOf, quietLog, startRouter, waitFor } from "../tunnel/helpers.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN_ID}-01`;
const TRACESTATE = "vendor=opaque-value";
const MAX_EVENTS = 3;

describe("tracing of a real router", { timeout: 120_000 }, () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let hub: AdminHub;
  let tracing: RouterTracing;
  let router: Router;
  let bridge: Bridge;
  let client: TestClient;
  let port = 0;
  /** Trace headers as the instance's handler saw them. */
  const seen: Array<{ traceparent: string | null; tracestate: string | null }> = [];

  before(async () => {
    hub = new AdminHub();
    tracing = createRouterTracing({ hub, tracer: provider.getTracer("test"), propagator: new W3CTraceContextPropagator(), maxMessageEvents: MAX_EVENTS });
    let target: string;
    ({ router, target, port } = await startRouter({ hub }));
    tracing.setServerAddress(target);
    const impl = interopImpl("a");
    bridge = createBridge(
      TestTunnel,
      {
        ...impl,
        unaryCall(req, ctx) {
          seen.push({ traceparent: ctx.requestHeader.get("traceparent"), tracestate: ctx.requestHeader.get("tracestate") });
          return impl.unaryCall!(req, ctx);
        },
      },
      { router: target, instanceId: "a", logger: quietLog() },
    );
    await bridge.start();
    client = new TestClient(target);
  });

  after(async () => {
    client?.close();
    await bridge?.stop(100);
    await router?.close(100);
    tracing?.close();
    hub?.close();
    await provider.shutdown();
  });

  beforeEach(() => {
    exporter.reset();
    seen.length = 0;
  });

  /** The spans of `n` calls, once the router has ended them (it ends a span after the client has its status). */
  async function spans(n: number): Promise<ReadableSpan[]> {
    await waitFor(`${n} finished span(s)`, () => exporter.getFinishedSpans().length >= n);
    const got = exporter.getFinishedSpans();
    assert.equal(got.length, n, `spans: ${got.map((s) => s.name).join(", ")}`);
    return got;
  }

  const traced = (extra: Record<string, string> = {}) => {
    const md = new grpc.Metadata();
    md.set("traceparent", TRACEPARENT);
    md.set("tracestate", TRACESTATE);
    for (const [k, v] of Object.entries(extra)) md.set(k, v);
    return md;
  };

  it("joins the client's trace with a SERVER span named and attributed per the RPC conventions", async () => {
    const req = create(SimpleRequestSchema, { responseSize: 20 });
    const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, req, traced());
    const [span] = await spans(1);
    assert.equal(span!.name, "interop.v1.TestService/UnaryCall");
    assert.equal(span!.kind, SpanKind.SERVER);
    assert.equal(span!.spanContext().traceId, TRACE_ID);
    assert.equal(span!.parentSpanContext?.spanId, CLIENT_SPAN_ID);
    assert.equal(span!.parentSpanContext?.isRemote, true);
    assert.notEqual(span!.spanContext().spanId, CLIENT_SPAN_ID);
    assert.equal(span!.spanContext().traceState?.serialize(), TRACESTATE);

    const a = span!.attributes;
    assert.equal(a["rpc.system"], "grpc");
    assert.equal(a["rpc.service"], "interop.v1.TestService");
    assert.equal(a["rpc.method"], "UnaryCall");
    assert.equal(a["rpc.grpc.status_code"], 0);
    assert.equal(a["network.peer.address"], "127.0.0.1");
    assert.equal(typeof a["network.peer.port"], "number");
    assert.equal(a["server.address"], "127.0.0.1");
    assert.equal(a["server.port"], port);
    assert.equal(a["grpcrouter.instance.id"], "a");
    assert.equal(typeof a["grpcrouter.balancer.reason"], "string");
    assert.ok((a["grpcrouter.balancer.reason"] as string).length > 0);
    assert.equal(span!.status.code, SpanStatusCode.UNSET);

    assert.deepEqual(
      span!.events.map((e) => [e.name, e.attributes]),
      [
        ["rpc.message", { "rpc.message.type": "RECEIVED", "rpc.message.id": 1, "rpc.message.uncompressed_size": toBinary(SimpleRequestSchema, req).length }],
        ["rpc.message", { "rpc.message.type": "SENT", "rpc.message.id": 1, "rpc.message.uncompressed_size": toBinary(SimpleResponseSchema, res).length }],
      ],
    );
    assert.equal(tracing.openSpans, 0);
  });

  it("passes the trace headers to the instance exactly as the client sent them", async () => {
    await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {}), traced());
    assert.deepEqual(seen, [{ traceparent: TRACEPARENT, tracestate: TRACESTATE }]);
    await spans(1);
  });

  it("starts a new trace for a call without traceparent", async () => {
    for (let i = 0; i < 2; i++) {
      await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {}));
    }
    const got = await spans(2);
    for (const s of got) {
      assert.equal(s.parentSpanContext, undefined);
      assert.match(s.spanContext().traceId, /^[0-9a-f]{32}$/);
      assert.notEqual(s.spanContext().traceId, TRACE_ID);
    }
    assert.notEqual(got[0]!.spanContext().traceId, got[1]!.spanContext().traceId);
    assert.deepEqual(seen, [
      { traceparent: null, tracestate: null },
      { traceparent: null, tracestate: null },
    ]);
  });

  it("marks server errors (INTERNAL, DEADLINE_EXCEEDED) as ERROR and client errors (NOT_FOUND) not", async () => {
    const internal = create(SimpleRequestSchema, { responseStatus: { code: grpc.status.INTERNAL, message: "it broke" } });
    assert.equal(
      (await errorOf(client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, internal, traced()))).code,
      grpc.status.INTERNAL,
    );
    const notFound = create(SimpleRequestSchema, { responseStatus: { code: grpc.status.NOT_FOUND, message: "no such thing" } });
    assert.equal(
      (await errorOf(client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, notFound, traced()))).code,
      grpc.status.NOT_FOUND,
    );
    // A sleeping handler (negative size) and a short deadline.
    const slow = create(SimpleRequestSchema, { responseSize: -30_000 });
    const late = await errorOf(client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, slow, traced(), { deadline: Date.now() + 300 }));
    assert.equal(late.code, grpc.status.DEADLINE_EXCEEDED);

    const got = await spans(3);
    const byCode = new Map(got.map((s) => [s.attributes["rpc.grpc.status_code"], s]));
    assert.equal(byCode.get(grpc.status.INTERNAL)?.status.code, SpanStatusCode.ERROR);
    assert.equal(byCode.get(grpc.status.INTERNAL)?.status.message, "it broke");
    assert.equal(byCode.get(grpc.status.NOT_FOUND)?.status.code, SpanStatusCode.UNSET);
    assert.equal(byCode.get(grpc.status.DEADLINE_EXCEEDED)?.status.code, SpanStatusCode.ERROR);
    for (const s of got) assert.equal(s.spanContext().traceId, TRACE_ID);
    assert.equal(tracing.openSpans, 0);
  });

  it("keeps at most maxMessageEvents message events and counts the rest", async () => {
    const req = create(StreamingOutputCallRequestSchema, { responseParameters: [1, 2, 3, 4, 5].map((size) => ({ size })) });
    const out = await collect(
      client.serverStream(methodOf("StreamingOutputCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, req, traced()),
    );
    assert.equal(out.status.code, grpc.status.OK);
    assert.equal(out.messages.length, 5);
    const [span] = await spans(1);
    assert.equal(span!.name, "interop.v1.TestService/StreamingOutputCall");
    assert.deepEqual(
      span!.events.map((e) => [e.attributes?.["rpc.message.type"], e.attributes?.["rpc.message.id"]]),
      [
        ["RECEIVED", 1],
        ["SENT", 1],
        ["SENT", 2],
      ],
    );
    // 1 request + 5 responses, 3 kept.
    assert.equal(span!.attributes["grpcrouter.message_events.omitted"], 3);
    assert.equal(span!.attributes["grpcrouter.call.kind"], "server_streaming");
  });
});
