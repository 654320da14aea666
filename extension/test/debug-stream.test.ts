// The extension's Admin client (src/admin-client.ts) against a real router dashboard: the SSE
// reader gets the snapshot first, then events live, decoded into the generated Admin types;
// it resyncs on demand and reconnects when the dashboard comes back; the router state (the
// Router view, the status bar's counts) follows instances.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AdminHub, startDashboard, type Dashboard } from "@grpcrouter/runtime";
import type { JsonObject } from "@bufbuild/protobuf";
import {
  AdminEventStream,
  Instance_Health,
  RouterState,
  connectionText,
  healthText,
  watchRouterState,
  type Event,
  type StreamState,
} from "../src/admin-client.js";

async function until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("admin event stream in the extension host", () => {
  const hub = new AdminHub({ routerAddress: "127.0.0.1:7000" });
  hub.setServices([{ name: "demo.v1.Echo", methods: ["Say", "Chat"] }]);
  let dashboard: Dashboard;

  before(async () => {
    hub.publish({ type: "instanceRegistered", instance: { id: "a", service: "demo.v1.Echo" } });
    dashboard = await startDashboard({ hub });
  });
  after(async () => {
    await dashboard.close();
    hub.close();
  });

  it("feeds the Router tree: snapshot, then instances coming and going", async () => {
    const model = new RouterState();
    const states: StreamState[] = [];
    const stream = new AdminEventStream({ url: dashboard.url, messages: false, onEvent: (e) => model.apply(e), onState: (s) => states.push(s) });
    try {
      await until(() => model.services()[0]?.instances.length === 1, "the snapshot");
      assert.equal(model.routerAddress, "127.0.0.1:7000");
      assert.deepEqual(
        model.services().map((s) => [s.name, s.methods]),
        [["demo.v1.Echo", ["Say", "Chat"]]],
      );
      hub.publish({ type: "instanceRegistered", instance: { id: "b", service: "demo.v1.Echo", health: "draining" } });
      await until(() => model.services()[0]?.instances.length === 2, "instance b");
      assert.equal(model.services()[0]?.instances[1]?.health, Instance_Health.DRAINING);
      assert.equal(healthText(model.services()[0]!.instances[1]!.health), "draining");
      hub.publish({ type: "instanceDeregistered", instance: { id: "a", service: "demo.v1.Echo" } });
      await until(
        () =>
          model
            .services()[0]
            ?.instances.map((i) => i.id)
            .join() === "b",
        "instance a to go",
      );
      assert.ok(states.includes("live"));
    } finally {
      stream.close();
    }
  });

  it("says how each instance is connected, in the dashboard's words (the Router view's description and tooltip)", async () => {
    const model = new RouterState();
    const stream = new AdminEventStream({ url: dashboard.url, messages: false, onEvent: (e) => model.apply(e) });
    const mine = ["plain", "mtls", "token", "old"];
    try {
      await until(() => model.services().length > 0, "the snapshot");
      hub.publish({
        type: "instanceRegistered",
        instance: { id: "plain", service: "demo.v1.Echo", address: "127.0.0.1:4001", transport: "h2c", principal: "anonymous" },
      });
      hub.publish({
        type: "instanceRegistered",
        instance: {
          id: "mtls",
          service: "demo.v1.Echo",
          address: "127.0.0.1:4002",
          transport: "h2",
          principal: "certificate CN=echo-1 + credentials sha256:0123abcd",
        },
      });
      hub.publish({
        type: "instanceRegistered",
        instance: { id: "token", service: "demo.v1.Echo", address: "127.0.0.1:4003", transport: "wss", principal: "credentials sha256:89efcdab" },
      });
      hub.publish({ type: "instanceRegistered", instance: { id: "old", service: "demo.v1.Echo" } });
      const byId = () => new Map(model.services()[0]?.instances.map((i) => [i.id, i]));
      await until(() => mine.every((id) => byId().has(id)), "the four instances");
      const text = (id: string) => connectionText(byId().get(id)!);
      assert.deepEqual(text("plain"), {
        label: "HTTP/2",
        details: ["Register stream over HTTP/2 without TLS (h2c)", "principal: anonymous (no client certificate, no credentials)", "from 127.0.0.1:4001"],
      });
      assert.deepEqual(text("mtls"), {
        label: "HTTP/2 mTLS with credentials",
        details: ["Register stream over HTTP/2 over TLS (h2)", "principal: certificate CN=echo-1 + credentials sha256:0123abcd", "from 127.0.0.1:4002"],
      });
      assert.deepEqual(text("token"), {
        label: "WebSocket TLS with credentials",
        details: ["Register stream over the WebSocket fallback, over TLS (wss)", "principal: credentials sha256:89efcdab", "from 127.0.0.1:4003"],
      });
      // An event from code that did not say (an older router): no label, and the tooltip says so.
      assert.deepEqual(text("old"), { label: "", details: ["transport not reported"] });
    } finally {
      stream.close();
      for (const id of mine) hub.publish({ type: "instanceDeregistered", instance: { id, service: "demo.v1.Echo" } });
    }
  });

  it("asks for messages only when told to, and resync starts over with a snapshot", async () => {
    const withMessages: Event[] = [];
    const without: Event[] = [];
    const has = (e: Event, kind: Event["event"]["case"]) => e.event.case === kind;
    const a = new AdminEventStream({ url: dashboard.url, messages: true, onEvent: (e) => withMessages.push(e) });
    const b = new AdminEventStream({ url: dashboard.url, messages: false, onEvent: (e) => without.push(e) });
    try {
      await until(() => withMessages.length > 0 && without.length > 0 && hub.watcherCount === 2, "both snapshots");
      hub.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", instanceId: "b" });
      hub.publish({ type: "callMessage", callId: 1, direction: "request", size: 3 });
      hub.publish({ type: "callEnded", callId: 1, code: 0 });
      await until(() => withMessages.some((e) => has(e, "callEnded")) && without.some((e) => has(e, "callEnded")), "the call to end");
      assert.equal(withMessages.filter((e) => has(e, "callMessage")).length, 1);
      assert.equal(without.filter((e) => has(e, "callMessage")).length, 0);
      const snapshots = () => withMessages.filter((e) => has(e, "snapshot")).length;
      assert.equal(snapshots(), 1);
      a.resync();
      await until(() => snapshots() === 2, "a second snapshot");
      const last = withMessages.filter((e) => has(e, "snapshot")).at(-1)!.event;
      assert.equal(last.case === "snapshot" && last.value.calls.length, 1, "the resync carries the recent call");
    } finally {
      a.close();
      b.close();
    }
  });

  it("reconnects when the dashboard comes back", async () => {
    const hub2 = new AdminHub();
    let d2 = await startDashboard({ hub: hub2 });
    const port = d2.port;
    const events: Event[] = [];
    const stream = new AdminEventStream({ url: d2.url, messages: false, onEvent: (e) => events.push(e), retryMs: 50 });
    try {
      await until(() => events.length === 1, "the first snapshot");
      await d2.close();
      hub2.publish({ type: "instanceRegistered", instance: { id: "late", service: "x.Y" } });
      d2 = await startDashboard({ hub: hub2, port });
      await until(() => events.filter((e) => e.event.case === "snapshot").length === 2, "a snapshot after reconnecting");
      const last = events.at(-1)!.event;
      assert.equal(last.case === "snapshot" && last.value.instances[0]?.id, "late");
    } finally {
      stream.close();
      await d2.close();
      hub2.close();
    }
  });

  it("decodes only the kinds asked for, and hands the panel the router's JSON unchanged", async () => {
    const decoded: Event[] = [];
    const raw: JsonObject[] = [];
    const batches: JsonObject[][] = [];
    const stream = new AdminEventStream({
      url: dashboard.url,
      messages: true,
      kinds: ["snapshot", "instanceRegistered"],
      onEvent: (e) => decoded.push(e),
      onJson: (j) => raw.push(j),
      onJsonBatch: (b) => batches.push(b),
    });
    try {
      await until(() => decoded.length === 1 && hub.watcherCount >= 1, "the snapshot");
      hub.publish({ type: "callStarted", callId: 7, method: "/demo.v1.Echo/Say", instanceId: "b" });
      hub.publish({ type: "instanceRegistered", instance: { id: "c", service: "demo.v1.Echo" } });
      await until(() => decoded.length === 2, "instance c");
      assert.deepEqual(
        decoded.map((e) => e.event.case),
        ["snapshot", "instanceRegistered"],
      );
      // The page gets every event, as proto3 JSON (what the web dashboard reads from /events).
      const started = raw.find((j) => j.callStarted) as { callStarted: { callId: string; method: string } } | undefined;
      assert.equal(started?.callStarted.method, "/demo.v1.Echo/Say");
      assert.equal(started?.callStarted.callId, "7");
      // The same events, in the batches the router sent them in (what the panel posts).
      assert.deepEqual(batches.flat(), raw);
    } finally {
      stream.close();
      hub.publish({ type: "instanceDeregistered", instance: { id: "c", service: "demo.v1.Echo" } });
    }
  });

  it("counts instances per service for the status bar and the code lenses", async () => {
    const w = watchRouterState(dashboard.url);
    try {
      assert.equal(w.state.counts(), undefined, "unknown before the snapshot");
      await until(() => w.state.counts() !== undefined, "the snapshot");
      const before = w.state.counts()!["demo.v1.Echo"]!;
      hub.publish({ type: "instanceRegistered", instance: { id: "d", service: "demo.v1.Echo" } });
      await until(() => w.state.counts()!["demo.v1.Echo"] === before + 1, "instance d counted");
      hub.publish({ type: "instanceDeregistered", instance: { id: "d", service: "demo.v1.Echo" } });
      await until(() => w.state.counts()!["demo.v1.Echo"] === before, "instance d gone");
    } finally {
      w.close();
    }
  });
});
