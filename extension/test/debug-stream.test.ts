// The extension host's side of the debug panel and the Router view, against a real router
// dashboard: the SSE reader gets the snapshot first, then events live, resyncs on demand and
// reconnects when the dashboard comes back; the tree model follows instances.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AdminHub, startDashboard, type Dashboard } from "@grpcrouter/runtime";
import { RouterModel } from "../src/debug/model.js";
import { AdminEventStream, type AdminEvent, type StreamState } from "../src/debug/sse.js";

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
    const model = new RouterModel();
    const states: StreamState[] = [];
    const stream = new AdminEventStream({ url: dashboard.url, messages: false, onEvent: (e) => model.apply(e), onState: (s) => states.push(s) });
    try {
      await until(() => model.services()[0]?.instances.length === 1, "the snapshot");
      assert.equal(model.routerAddress, "127.0.0.1:7000");
      assert.deepEqual(model.services().map((s) => [s.name, s.methods]), [["demo.v1.Echo", ["Say", "Chat"]]]);
      hub.publish({ type: "instanceRegistered", instance: { id: "b", service: "demo.v1.Echo", health: "draining" } });
      await until(() => model.services()[0]?.instances.length === 2, "instance b");
      assert.equal(model.services()[0]?.instances[1]?.health, "HEALTH_DRAINING");
      hub.publish({ type: "instanceDeregistered", instance: { id: "a", service: "demo.v1.Echo" } });
      await until(() => model.services()[0]?.instances.map((i) => i.id).join() === "b", "instance a to go");
      assert.ok(states.includes("live"));
    } finally {
      stream.close();
    }
  });

  it("asks for messages only when told to, and resync starts over with a snapshot", async () => {
    const withMessages: AdminEvent[] = [];
    const without: AdminEvent[] = [];
    const a = new AdminEventStream({ url: dashboard.url, messages: true, onEvent: (e) => withMessages.push(e) });
    const b = new AdminEventStream({ url: dashboard.url, messages: false, onEvent: (e) => without.push(e) });
    try {
      await until(() => withMessages.length > 0 && without.length > 0 && hub.watcherCount === 2, "both snapshots");
      hub.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", instanceId: "b" });
      hub.publish({ type: "callMessage", callId: 1, direction: "request", size: 3 });
      hub.publish({ type: "callEnded", callId: 1, code: 0 });
      await until(() => withMessages.some((e) => e.callEnded) && without.some((e) => e.callEnded), "the call to end");
      assert.equal(withMessages.filter((e) => e.callMessage).length, 1);
      assert.equal(without.filter((e) => e.callMessage).length, 0);
      const snapshots = () => withMessages.filter((e) => e.snapshot).length;
      assert.equal(snapshots(), 1);
      a.resync();
      await until(() => snapshots() === 2, "a second snapshot");
      const snap = withMessages.filter((e) => e.snapshot).at(-1)!.snapshot as { calls?: unknown[] };
      assert.equal(snap.calls?.length, 1, "the resync carries the recent call");
    } finally {
      a.close();
      b.close();
    }
  });

  it("reconnects when the dashboard comes back", async () => {
    const hub2 = new AdminHub();
    let d2 = await startDashboard({ hub: hub2 });
    const port = d2.port;
    const events: AdminEvent[] = [];
    const stream = new AdminEventStream({ url: d2.url, messages: false, onEvent: (e) => events.push(e), retryMs: 50 });
    try {
      await until(() => events.length === 1, "the first snapshot");
      await d2.close();
      hub2.publish({ type: "instanceRegistered", instance: { id: "late", service: "x.Y" } });
      d2 = await startDashboard({ hub: hub2, port });
      await until(() => events.filter((e) => e.snapshot).length === 2, "a snapshot after reconnecting");
      assert.equal(events.at(-1)?.snapshot?.instances?.[0]?.id, "late");
    } finally {
      stream.close();
      await d2.close();
      hub2.close();
    }
  });
});
