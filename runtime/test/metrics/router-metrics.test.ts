// Prometheus metrics of a REAL router: a router with a hub and createRouterMetrics, two
// bridged instances of the interop service, unary, streaming and failing calls from a grpc-js
// client, and /metrics scraped over HTTP from the dashboard, as Prometheus would.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminHub, createRouterMetrics, startDashboard, startMetricsServer, type Dashboard, type RouterMetrics } from "../../src/index.js";
import type { Bridge, Router } from "../../src/tunnel/index.js";
import {
  EmptySchema,
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingInputCallRequestSchema,
  StreamingInputCallResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
} from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, collect, errorOf, methodOf, startBridge, startRouter } from "../tunnel/helpers.js";
import { parseMetrics, scrape, sum, type Sample } from "./scrape.js";

const SERVICE = "interop.v1.TestService";

describe("metrics of a real router, scraped over HTTP", { timeout: 120_000 }, () => {
  let hub: AdminHub;
  let metrics: RouterMetrics;
  let router: Router;
  let dashboard: Dashboard;
  let target = "";
  const bridges = new Map<string, Bridge>();
  let client: TestClient;
  let requestBytes = 0;
  let responseBytes = 0;

  const metricsUrl = () => `${dashboard.url}metrics`;
  const get = async (): Promise<Sample[]> => parseMetrics(await scrape(metricsUrl()));
  /** Scrapes until `cond` holds (what the router does next happens asynchronously). */
  const until = async (what: string, cond: (m: Sample[]) => boolean): Promise<Sample[]> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const m = await get();
      if (cond(m)) return m;
      if (Date.now() > deadline)
        assert.fail(`timed out waiting for ${what}; last scrape:\n${m.map((s) => `${s.name} ${JSON.stringify(s.labels)} ${s.value}`).join("\n")}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    hub = new AdminHub();
    metrics = createRouterMetrics({ hub });
    ({ router, target } = await startRouter({ hub }));
    dashboard = await startDashboard({ hub, metrics });
    for (const id of ["a", "b"]) bridges.set(id, await startBridge(target, id));
    client = new TestClient(target);
  });

  after(async () => {
    client?.close();
    for (const b of bridges.values()) await b.stop(100);
    await router?.close(100);
    metrics?.close();
    await dashboard?.close();
    hub?.close();
  });

  it("shows both instances serving, and a 0 for the other healths", async () => {
    const m = await get();
    assert.equal(sum(m, "grpcrouter_instances", { service: SERVICE, health: "serving" }), 2);
    assert.equal(sum(m, "grpcrouter_instances", { service: SERVICE, health: "ejected" }), 0);
    assert.equal(sum(m, "grpcrouter_instance_registrations_total", { service: SERVICE }), 2);
    assert.equal(sum(m, "grpcrouter_calls_in_flight", { service: SERVICE, instance: "a" }), 0);
    assert.equal(sum(m, "grpcrouter_calls_in_flight", { service: SERVICE, instance: "b" }), 0);
  });

  it("counts unary, streaming and failing calls with their codes and messages", async () => {
    for (let i = 0; i < 4; i++) {
      const req = create(SimpleRequestSchema, { responseSize: 10 + i });
      const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, req);
      requestBytes += toBinary(SimpleRequestSchema, req).length;
      responseBytes += toBinary(SimpleResponseSchema, res).length;
    }
    const failing = create(SimpleRequestSchema, { responseStatus: { code: grpc.status.NOT_FOUND, message: "no such thing" } });
    const err = await errorOf(client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, failing));
    assert.equal(err.code, grpc.status.NOT_FOUND);
    requestBytes += toBinary(SimpleRequestSchema, failing).length;

    // The instances do not implement UnimplementedCall: it fails at the instance.
    const unimpl = await errorOf(client.unary(methodOf("UnimplementedCall"), EmptySchema, EmptySchema, create(EmptySchema)));
    assert.equal(unimpl.code, grpc.status.UNIMPLEMENTED);

    const streamReq = create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 1 }, { size: 2 }, { size: 3 }] });
    const out = await collect(
      client.serverStream(methodOf("StreamingOutputCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, streamReq),
    );
    assert.equal(out.status.code, grpc.status.OK);
    assert.equal(out.messages.length, 3);
    requestBytes += toBinary(StreamingOutputCallRequestSchema, streamReq).length;
    for (const r of out.messages) responseBytes += toBinary(StreamingOutputCallResponseSchema, r).length;

    const inputs = [5, 7].map((n) => create(StreamingInputCallRequestSchema, { payload: { body: new Uint8Array(n) } }));
    const agg = await new Promise<{ aggregatedPayloadSize: number }>((resolve, reject) => {
      const call = client.clientStream(
        methodOf("StreamingInputCall"),
        StreamingInputCallRequestSchema,
        StreamingInputCallResponseSchema,
        new grpc.Metadata(),
        {},
        (e, r) => (e ? reject(e) : resolve(r!)),
      );
      for (const r of inputs) call.write(r);
      call.end();
    });
    assert.equal(agg.aggregatedPayloadSize, 12);
    for (const r of inputs) requestBytes += toBinary(StreamingInputCallRequestSchema, r).length;
    responseBytes += toBinary(StreamingInputCallResponseSchema, create(StreamingInputCallResponseSchema, agg)).length;

    const m = await get();
    const unary = { grpc_type: "unary", grpc_service: SERVICE, grpc_method: "UnaryCall" };
    assert.equal(sum(m, "grpc_server_started_total", unary), 5);
    assert.equal(sum(m, "grpc_server_handled_total", { ...unary, grpc_code: "OK" }), 4);
    assert.equal(sum(m, "grpc_server_handled_total", { ...unary, grpc_code: "NotFound" }), 1);
    assert.equal(sum(m, "grpc_server_handled_total", { grpc_method: "UnimplementedCall", grpc_code: "Unimplemented" }), 1);
    assert.equal(sum(m, "grpc_server_msg_received_total", unary), 5);
    assert.equal(sum(m, "grpc_server_msg_sent_total", unary), 4);
    assert.equal(sum(m, "grpc_server_handling_seconds_count", unary), 5);
    assert.ok(sum(m, "grpc_server_handling_seconds_sum", unary) > 0);

    const sstream = { grpc_type: "server_stream", grpc_method: "StreamingOutputCall" };
    assert.equal(sum(m, "grpc_server_handled_total", { ...sstream, grpc_code: "OK" }), 1);
    assert.equal(sum(m, "grpc_server_msg_received_total", sstream), 1);
    assert.equal(sum(m, "grpc_server_msg_sent_total", sstream), 3);
    const cstream = { grpc_type: "client_stream", grpc_method: "StreamingInputCall" };
    assert.equal(sum(m, "grpc_server_handled_total", { ...cstream, grpc_code: "OK" }), 1);
    assert.equal(sum(m, "grpc_server_msg_received_total", cstream), 2);
    assert.equal(sum(m, "grpc_server_msg_sent_total", cstream), 1);

    // Every call is on exactly one instance, and round robin used both.
    const all = sum(m, "grpc_server_handled_total", {});
    assert.equal(all, 8);
    const onA = sum(m, "grpcrouter_instance_calls_total", { service: SERVICE, instance: "a" });
    const onB = sum(m, "grpcrouter_instance_calls_total", { service: SERVICE, instance: "b" });
    assert.equal(onA + onB, all);
    assert.ok(onA > 0 && onB > 0, `both instances served calls (a: ${onA}, b: ${onB})`);
    assert.equal(sum(m, "grpcrouter_instance_calls_total", { grpc_code: "NotFound" }), 1);

    assert.equal(sum(m, "grpcrouter_tunnelled_bytes_total", { service: SERVICE, direction: "request" }), requestBytes);
    assert.equal(sum(m, "grpcrouter_tunnelled_bytes_total", { service: SERVICE, direction: "response" }), responseBytes);
  });

  it("shows a call in flight on its instance while it runs", async () => {
    // A negative response size makes the instance sleep that many ms; the client cancels it.
    const req = create(SimpleRequestSchema, { responseSize: -60_000 });
    let call!: grpc.ClientUnaryCall;
    const ended = new Promise<grpc.ServiceError | null>((resolve) => {
      call = client.raw.makeUnaryRequest(
        methodOf("UnaryCall"),
        (m: typeof req) => Buffer.from(toBinary(SimpleRequestSchema, m)),
        (b: Buffer) => b,
        req,
        (e) => resolve(e),
      );
    });
    const m = await until("a call in flight", (m) => sum(m, "grpcrouter_calls_in_flight", { service: SERVICE }) === 1);
    const on = m.find((s) => s.name === "grpcrouter_calls_in_flight" && s.value === 1)!.labels.instance;
    assert.ok(on === "a" || on === "b", `in flight on ${on}`);
    assert.equal(sum(m, "grpc_server_started_total", { grpc_method: "UnaryCall" }) - sum(m, "grpc_server_handled_total", { grpc_method: "UnaryCall" }), 1);

    call.cancel();
    assert.equal((await ended)?.code, grpc.status.CANCELLED);
    const after = await until("the call to end", (m) => sum(m, "grpcrouter_calls_in_flight", { service: SERVICE }) === 0);
    assert.equal(sum(after, "grpc_server_handled_total", { grpc_method: "UnaryCall", grpc_code: "Canceled" }), 1);
    assert.equal(sum(after, "grpcrouter_instance_calls_total", { instance: on, grpc_code: "Canceled" }), 1);
  });

  it("removes an instance's series when it leaves", async () => {
    await bridges.get("b")!.stop(100);
    bridges.delete("b");
    const m = await until("instance b to leave", (m) => sum(m, "grpcrouter_instances", { service: SERVICE, health: "serving" }) === 1);
    assert.equal(sum(m, "grpcrouter_instance_deregistrations_total", { service: SERVICE }), 1);
    assert.deepEqual(
      m.filter((s) => s.labels.instance === "b").map((s) => s.name),
      [],
      "no series names instance b any more",
    );
    assert.ok(m.some((s) => s.name === "grpcrouter_calls_in_flight" && s.labels.instance === "a"));
    assert.ok(sum(m, "grpcrouter_instance_calls_total", { instance: "a" }) > 0);
    // The per-method totals stay: they are the router's, not the instance's.
    assert.ok(sum(m, "grpc_server_handled_total", {}) >= 9);
  });

  it("serves the same metrics on a metrics-only server", async () => {
    const server = await startMetricsServer({ metrics });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(server.url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const m = parseMetrics(await res.text());
      assert.equal(sum(m, "grpcrouter_instances", { service: SERVICE, health: "serving" }), 1);
      const other = await fetch(server.url.replace(/\/metrics$/, "/"));
      assert.equal(other.status, 404);
    } finally {
      await server.close();
    }
  });
});
