import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import { AdminHub, addAdminService, createAdminClient, describeFromRegistry, type AdminClient } from "../../src/admin/index.js";
import { file_grpcrouter_v1_admin, WatchRequestSchema, type Event } from "../../src/gen/grpcrouter/v1/admin_pb.js";

async function until(cond: () => boolean, what: string, timeoutMs = 20000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Admin gRPC service over a real loopback server", () => {
  const hub = new AdminHub({ routerId: "router-1", describe: describeFromRegistry(createRegistry(file_grpcrouter_v1_admin)) });
  const server = new grpc.Server();
  let client: AdminClient;

  before(async () => {
    addAdminService(server, hub);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    hub.setRouterAddress(`127.0.0.1:${port}`);
    client = createAdminClient(`127.0.0.1:${port}`);
  });

  after(async () => {
    client.close();
    hub.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  it("GetSnapshot returns the registered instances", async () => {
    hub.publish({
      type: "instanceRegistered",
      instance: { id: "echo-1", service: "demo.v1.Echo", labels: { zone: "eu" }, address: "127.0.0.1:40000", streams: 2, maxConcurrentCalls: 8 },
    });
    const snap = await client.getSnapshot();
    assert.equal(snap.routerId, "router-1");
    assert.match(snap.routerAddress, /^127\.0\.0\.1:\d+$/);
    assert.equal(snap.instances.length, 1);
    assert.deepEqual({ ...snap.instances[0]!.labels }, { zone: "eu" });
    assert.equal(snap.instances[0]!.streams, 2);
  });

  it("Watch sends the snapshot, then live events with decoded bodies, and stops watching on cancel", async () => {
    const got: Event[] = [];
    const abort = new AbortController();
    const reading = (async () => {
      for await (const ev of client.watch({ includeBodies: true }, abort.signal)) got.push(ev);
    })();
    await until(() => got.length >= 1, "the snapshot");
    assert.equal(got[0]!.event.case, "snapshot");
    const snap = got[0]!.event.value as { instances: Array<{ id: string }> };
    assert.deepEqual(
      snap.instances.map((i) => i.id),
      ["echo-1"],
    );
    assert.equal(hub.watcherCount, 1);

    hub.publish({
      type: "callStarted",
      callId: 42,
      method: "/grpcrouter.v1.Admin/Watch",
      kind: "server_streaming",
      instanceId: "echo-1",
      metadata: { authorization: "Bearer x" },
      reason: "round robin",
    });
    hub.publish({
      type: "callMessage",
      callId: 42,
      direction: "request",
      payload: toBinary(WatchRequestSchema, create(WatchRequestSchema, { services: ["demo.v1.Echo"] })),
    });
    hub.publish({ type: "callEnded", callId: 42, code: 0 });
    hub.publish({ type: "instanceDeregistered", instance: { id: "echo-1", service: "demo.v1.Echo" } });
    await until(() => got.length >= 5, "4 live events");
    assert.deepEqual(
      got.map((e) => e.event.case),
      ["snapshot", "callStarted", "callMessage", "callEnded", "instanceDeregistered"],
    );
    const started = got[1]!.event.value as { reason: string; metadata: Record<string, string> };
    assert.equal(started.reason, "round robin");
    assert.equal(started.metadata["authorization"], "[redacted]");
    const msg = got[2]!.event.value as { json: string };
    assert.deepEqual(JSON.parse(msg.json), { services: ["demo.v1.Echo"] });
    const ended = got[3]!.event.value as { requests: number };
    assert.equal(ended.requests, 1);

    abort.abort();
    await reading;
    await until(() => hub.watcherCount === 0, "the hub to drop the cancelled watcher");
  });

  it("Watch without include_messages gets no message events", async () => {
    const got: Event[] = [];
    const abort = new AbortController();
    const reading = (async () => {
      for await (const ev of client.watch({}, abort.signal)) got.push(ev);
    })();
    await until(() => got.length >= 1, "the snapshot");
    hub.publish({ type: "callStarted", callId: 43, method: "/demo.v1.Echo/Say" });
    hub.publish({ type: "callMessage", callId: 43, direction: "request", size: 5 });
    hub.publish({ type: "callEnded", callId: 43, code: 5, message: "not found" });
    await until(() => got.length >= 3, "2 live events");
    assert.deepEqual(
      got.map((e) => e.event.case),
      ["snapshot", "callStarted", "callEnded"],
    );
    abort.abort();
    await reading;
  });
});

describe("Admin requests in the router's metrics", () => {
  it("counts GetSnapshot and Watch by method (a client that polls shows there)", async () => {
    const { GrpcServer } = await import("../../src/tunnel/http2/server.js");
    const { createRouterMetrics } = await import("../../src/metrics/router-metrics.js");
    const hub = new AdminHub();
    const metrics = createRouterMetrics({ hub });
    const server = new GrpcServer();
    addAdminService(server, hub, { onRequest: (m) => metrics.countAdminRequest(m) });
    const { port } = await server.listen("127.0.0.1:0");
    const client = createAdminClient(`127.0.0.1:${port}`);
    try {
      await client.getSnapshot();
      await client.getSnapshot();
      const abort = new AbortController();
      for await (const ev of client.watch({}, abort.signal)) {
        assert.equal(ev.event.case, "snapshot");
        break;
      }
      const text = await metrics.metrics();
      assert.match(text, /^grpcrouter_admin_requests_total\{method="GetSnapshot"\} 2$/m);
      assert.match(text, /^grpcrouter_admin_requests_total\{method="Watch"\} 1$/m);
    } finally {
      client.close();
      metrics.close();
      await server.close();
      hub.close();
    }
  });
});
