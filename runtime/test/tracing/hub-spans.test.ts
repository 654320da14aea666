// Router tracing driven through a real AdminHub with events published as a router publishes
// them: the global tracer and propagator by default (no-op until an SDK is registered), spans
// of calls that never end being bounded, messages that come before their call's start.
// This file registers the global tracer provider: node:test runs it in a process of its own.
import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { propagation, trace, SpanKind } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { ABANDONED_ATTRIBUTE, AdminHub, TRACER_NAME, createRouterTracing, splitHostPort } from "../../src/index.js";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const PARENT = "b7ad6b7169203331";
const METHOD = "/demo.v1.Echo/Say";

describe("router tracing from hub events", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer("test");

  beforeEach(() => exporter.reset());
  after(async () => {
    trace.disable();
    propagation.disable();
    await provider.shutdown();
  });

  it("is a no-op with the global API and no SDK registered, and traces once one is", () => {
    const hub = new AdminHub();
    const tracing = createRouterTracing({ hub });
    const md = { traceparent: `00-${TRACE_ID}-${PARENT}-01` };
    hub.publish({ type: "callStarted", callId: 1, method: METHOD, metadata: md, instanceId: "i1" });
    assert.equal(tracing.openSpans, 0, "nothing is kept for a non-recording span");
    hub.publish({ type: "callEnded", callId: 1, code: 0 });
    assert.equal(exporter.getFinishedSpans().length, 0);

    // The user's SDK registers itself after the router was built: the next call is traced.
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    hub.publish({ type: "callStarted", callId: 2, method: METHOD, metadata: md, instanceId: "i1" });
    assert.equal(tracing.openSpans, 1);
    hub.publish({ type: "callEnded", callId: 2, code: 0 });
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.name, "demo.v1.Echo/Say");
    assert.equal(span?.kind, SpanKind.SERVER);
    assert.equal(span?.instrumentationScope.name, TRACER_NAME);
    assert.equal(span?.spanContext().traceId, TRACE_ID);
    assert.equal(span?.parentSpanContext?.spanId, PARENT);
    tracing.close();
    hub.close();
  });

  it("reads traceparent from plain records and entry lists too, whatever the key's case", () => {
    const hub = new AdminHub();
    const tracing = createRouterTracing({ hub, tracer, propagator: new W3CTraceContextPropagator() });
    hub.publish({ type: "callStarted", callId: 1, method: METHOD, metadata: [["TraceParent", `00-${TRACE_ID}-${PARENT}-01`]] });
    hub.publish({ type: "callEnded", callId: 1, code: 0 });
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.parentSpanContext?.spanId, PARENT);
    // What is not known (no peer, instance or server address) is absent, not empty.
    assert.deepEqual(Object.keys(span!.attributes).sort(), ["rpc.grpc.status_code", "rpc.method", "rpc.service", "rpc.system"]);
    tracing.close();
  });

  it("ends the oldest span as abandoned when too many calls never end, and the rest on close", () => {
    const hub = new AdminHub();
    const tracing = createRouterTracing({ hub, tracer, maxOpenSpans: 3 });
    for (let id = 1; id <= 5; id++) hub.publish({ type: "callStarted", callId: id, method: METHOD });
    assert.equal(tracing.openSpans, 3);
    const evicted = exporter.getFinishedSpans();
    assert.equal(evicted.length, 2);
    for (const s of evicted) assert.equal(s.attributes[ABANDONED_ATTRIBUTE], true);
    // A late end of an evicted call changes nothing; a live one ends normally.
    hub.publish({ type: "callEnded", callId: 1, code: 0 });
    hub.publish({ type: "callEnded", callId: 5, code: 0 });
    assert.equal(exporter.getFinishedSpans().length, 3);
    assert.equal(exporter.getFinishedSpans()[2]?.attributes[ABANDONED_ATTRIBUTE], undefined);
    assert.equal(tracing.openSpans, 2);
    tracing.close();
    assert.equal(tracing.openSpans, 0);
    assert.equal(exporter.getFinishedSpans().length, 5);
    // Closed: later events are not traced.
    hub.publish({ type: "callStarted", callId: 6, method: METHOD });
    assert.equal(tracing.openSpans, 0);
  });

  it("puts requests that came before the call's start on its span, and starts the span at the first", () => {
    const hub = new AdminHub();
    const tracing = createRouterTracing({ hub, tracer });
    const first = new Date(Date.now() - 5_000);
    hub.publish({ type: "callMessage", callId: 7, direction: "request", size: 11, time: first });
    hub.publish({ type: "callMessage", callId: 7, direction: "request", size: 12 });
    hub.publish({ type: "callStarted", callId: 7, method: METHOD, kind: "client_streaming", instanceId: "i2", reason: "round robin" });
    hub.publish({ type: "callMessage", callId: 7, direction: "response", size: 3 });
    hub.publish({ type: "callEnded", callId: 7, code: 14, message: "instance lost" });
    const [span] = exporter.getFinishedSpans();
    assert.deepEqual(
      span?.events.map((e) => e.attributes),
      [
        { "rpc.message.type": "RECEIVED", "rpc.message.id": 1, "rpc.message.uncompressed_size": 11 },
        { "rpc.message.type": "RECEIVED", "rpc.message.id": 2, "rpc.message.uncompressed_size": 12 },
        { "rpc.message.type": "SENT", "rpc.message.id": 1, "rpc.message.uncompressed_size": 3 },
      ],
    );
    const startMs = span!.startTime[0] * 1000 + span!.startTime[1] / 1e6;
    assert.ok(Math.abs(startMs - first.getTime()) < 1, `span starts at the first request (${startMs} vs ${first.getTime()})`);
    assert.equal(span?.attributes["grpcrouter.balancer.reason"], "round robin");
    assert.deepEqual(span?.status, { code: 2, message: "instance lost" });
    tracing.close();
  });

  it("caps early messages like the others and keeps counting their ids", () => {
    const hub = new AdminHub();
    const tracing = createRouterTracing({ hub, tracer, maxMessageEvents: 2 });
    for (let i = 0; i < 4; i++) hub.publish({ type: "callMessage", callId: 8, direction: "request", size: i });
    hub.publish({ type: "callStarted", callId: 8, method: METHOD });
    hub.publish({ type: "callEnded", callId: 8, code: 0 });
    const [span] = exporter.getFinishedSpans();
    assert.deepEqual(
      span?.events.map((e) => e.attributes?.["rpc.message.id"]),
      [1, 2],
    );
    assert.equal(span?.attributes["grpcrouter.message_events.omitted"], 2);
    tracing.close();
  });

  it("splits peer addresses as grpc-js writes them", () => {
    assert.deepEqual(splitHostPort("127.0.0.1:5000"), { address: "127.0.0.1", port: 5000 });
    assert.deepEqual(splitHostPort("::ffff:10.0.0.1:443"), { address: "::ffff:10.0.0.1", port: 443 });
    assert.deepEqual(splitHostPort("[::1]:9090"), { address: "::1", port: 9090 });
    assert.deepEqual(splitHostPort("router.internal"), { address: "router.internal" });
    assert.deepEqual(splitHostPort("/tmp/router.sock"), { address: "/tmp/router.sock" });
  });

  it("rejects a bad bound naming the option", () => {
    assert.throws(() => createRouterTracing({ hub: new AdminHub(), maxOpenSpans: 0 }), /maxOpenSpans/);
    assert.throws(() => createRouterTracing({ hub: new AdminHub(), maxMessageEvents: 1.5 }), /maxMessageEvents/);
  });
});
