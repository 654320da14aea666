// AdminHub.onEvent, what the metrics stand on: every event, in order, even where a watcher
// drops; a throwing listener breaks nothing; the metrics count from the hub alone.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdminHub, createRouterMetrics, type HubEvent } from "../../src/index.js";
import { parseMetrics, sum } from "./scrape.js";

const SAY = "/demo.v1.Echo/Say";

describe("AdminHub.onEvent", () => {
  it("sees every event, where a slow watcher drops most of them", () => {
    const hub = new AdminHub({ watcherQueueLimit: 2 });
    const slow = hub.watch();
    const seen: HubEvent["type"][] = [];
    const off = hub.onEvent((e) => seen.push(e.type));
    for (let i = 1; i <= 100; i++) {
      hub.publish({ type: "callStarted", callId: i, method: SAY, kind: "unary" });
      hub.publish({ type: "callEnded", callId: i, code: 0 });
    }
    assert.ok(slow.dropped > 150, `the watcher dropped ${slow.dropped}`);
    assert.equal(seen.length, 200);
    assert.deepEqual(seen.slice(0, 2), ["callStarted", "callEnded"]);
    off();
    hub.publish({ type: "callStarted", callId: 101, method: SAY });
    assert.equal(seen.length, 200, "a removed listener hears nothing more");
    slow.close();
  });

  it("goes on publishing past a listener that throws, and warns once", async () => {
    const hub = new AdminHub();
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      hub.onEvent(() => {
        throw new Error("listener bug");
      });
      let after = 0;
      hub.onEvent(() => after++);
      const w = hub.watch();
      hub.publish({ type: "instanceRegistered", instance: { id: "a", service: "demo.v1.Echo" } });
      hub.publish({ type: "instanceChanged", instance: { id: "a", service: "demo.v1.Echo", health: "ejected" } });
      assert.equal(after, 2);
      assert.equal(hub.snapshot().instances.length, 1, "the hub itself recorded the instance");
      assert.deepEqual(
        [w.take(), w.take(), w.take()].map((e) => e?.event.case),
        ["snapshot", "instanceRegistered", "instanceChanged"],
      );
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.filter((m) => m.includes("listener bug")).length, 1);
      w.close();
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("makes the router publish message sizes even when the hub keeps no history", () => {
    const hub = new AdminHub({ history: { calls: 0 } });
    assert.equal(hub.wantsMessages, false);
    const off = hub.onEvent(() => {});
    assert.equal(hub.wantsMessages, true);
    assert.equal(hub.wantsBodies, false, "sizes only: no bodies for listeners");
    off();
    assert.equal(hub.wantsMessages, false);
  });
});

describe("createRouterMetrics from hub events", () => {
  it("counts messages that arrive before their call is announced, and instances known before it was created", async () => {
    const hub = new AdminHub();
    hub.publish({ type: "instanceRegistered", instance: { id: "old", service: "demo.v1.Echo", health: "draining" } });
    const metrics = createRouterMetrics({ hub, prefix: "router_" });
    // A client stream's requests can come while the call waits for an instance.
    hub.publish({ type: "callMessage", callId: 1, direction: "request", size: 10 });
    hub.publish({ type: "callMessage", callId: 1, direction: "request", size: 5 });
    hub.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Collect", kind: "client_streaming", instanceId: "old" });
    hub.publish({ type: "callMessage", callId: 1, direction: "response", size: 3 });
    hub.publish({ type: "callEnded", callId: 1, code: 14 });
    const m = parseMetrics(await metrics.metrics());
    const labels = { grpc_type: "client_stream", grpc_service: "demo.v1.Echo", grpc_method: "Collect" };
    assert.equal(sum(m, "grpc_server_msg_received_total", labels), 2);
    assert.equal(sum(m, "grpc_server_msg_sent_total", labels), 1);
    assert.equal(sum(m, "grpc_server_handled_total", { ...labels, grpc_code: "Unavailable" }), 1);
    assert.equal(sum(m, "router_tunnelled_bytes_total", { direction: "request" }), 15);
    assert.equal(sum(m, "router_instances", { service: "demo.v1.Echo", health: "draining" }), 1);
    assert.equal(sum(m, "router_instance_calls_total", { instance: "old", grpc_code: "Unavailable" }), 1);
    assert.ok(!m.some((s) => s.name.startsWith("grpcrouter_")), "the prefix replaces grpcrouter_");
    metrics.close();
  });

  it("does not revive a deregistered instance's series when its last calls end", async () => {
    const hub = new AdminHub();
    const metrics = createRouterMetrics({ hub });
    hub.publish({ type: "instanceRegistered", instance: { id: "a", service: "demo.v1.Echo" } });
    hub.publish({ type: "callStarted", callId: 1, method: SAY, kind: "unary", instanceId: "a" });
    hub.publish({ type: "callStarted", callId: 2, method: SAY, kind: "unary", instanceId: "a" });
    hub.publish({ type: "callEnded", callId: 1, code: 0 });
    hub.publish({ type: "instanceDeregistered", instance: { id: "a", service: "demo.v1.Echo" } });
    // The same id registers again (a bridge reconnecting) while call 2 still runs on the old one.
    hub.publish({ type: "instanceRegistered", instance: { id: "a", service: "demo.v1.Echo" } });
    hub.publish({ type: "callEnded", callId: 2, code: 4 });
    const m = parseMetrics(await metrics.metrics());
    assert.equal(sum(m, "grpcrouter_instance_calls_total", { instance: "a" }), 0, "the old registration's calls went with it");
    assert.equal(sum(m, "grpcrouter_calls_in_flight", { instance: "a" }), 0);
    assert.ok(
      m.some((s) => s.name === "grpcrouter_calls_in_flight" && s.labels.instance === "a"),
      "the new registration has its series",
    );
    assert.equal(sum(m, "grpc_server_handled_total", { grpc_code: "DeadlineExceeded" }), 1, "the router's totals keep every call");
    assert.equal(sum(m, "grpcrouter_instance_registrations_total", {}), 2);
    assert.equal(sum(m, "grpcrouter_instance_deregistrations_total", {}), 1);
    metrics.close();
  });
});

describe("createRouterMetrics: bad options", () => {
  it("names the option that is wrong", () => {
    const hub = new AdminHub();
    assert.throws(() => createRouterMetrics({ hub, prefix: "my-router_" }), /prefix "my-router_" cannot start a metric name/);
    const first = createRouterMetrics({ hub });
    assert.throws(() => createRouterMetrics({ hub, registry: first.registry }), /this registry has the router's metrics already/);
    first.close();
  });
});
