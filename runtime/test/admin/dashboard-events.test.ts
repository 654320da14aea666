// The dashboard's event stream as its readers see it on the wire: one admin Event per
// Server-Sent Events message by default; with `batch=1` the events queued together in one
// message as a JSON array (what the page and the VS Code extension ask for), in order.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { AdminHub, startDashboard, type Dashboard } from "../../src/admin/index.js";
import { waitFor } from "../tunnel/helpers.js";

/** Reads `path` until `done(messages)` holds; each message's data, parsed. */
function read(url: string, done: (messages: unknown[]) => boolean): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const messages: unknown[] = [];
    const req = http.get(url, (res) => {
      res.setEncoding("utf8");
      let buffer = "";
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const data = buffer
            .slice(0, end)
            .split("\n")
            .filter((l) => l.startsWith("data: "))
            .map((l) => l.slice(6))
            .join("\n");
          buffer = buffer.slice(end + 2);
          if (data) messages.push(JSON.parse(data));
        }
        if (done(messages)) {
          req.destroy();
          resolve(messages);
        }
      });
    });
    req.on("error", (e) => (messages.length ? undefined : reject(e)));
  });
}

describe("dashboard /events on the wire", () => {
  const hub = new AdminHub();
  let dashboard: Dashboard;
  before(async () => {
    dashboard = await startDashboard({ hub });
  });
  after(async () => {
    await dashboard.close();
    hub.close();
  });

  const publishCalls = (from: number, n: number) => {
    for (let id = from; id < from + n; id++) {
      hub.publish({ type: "callStarted", callId: id, method: "/x.Y/Z", instanceId: "a" });
      hub.publish({ type: "callEnded", callId: id, code: 0 });
    }
  };
  const started = (events: unknown[]) => events.filter((e) => (e as { callStarted?: unknown }).callStarted).length;

  it("sends one event per message by default", async () => {
    const reading = read(`${dashboard.url}events?messages=0`, (m) => started(m) >= 50);
    await waitFor("the reader's watcher", () => hub.watcherCount === 1, 20_000);
    publishCalls(1, 50);
    const messages = await reading;
    assert.ok(
      messages.every((m) => !Array.isArray(m)),
      "no arrays",
    );
    assert.ok((messages[0] as { snapshot?: unknown }).snapshot, "the snapshot first");
  });

  it("sends arrays of events with batch=1, in order, far fewer messages than events", async () => {
    await waitFor("the first reader's watcher to close", () => hub.watcherCount === 0, 20_000);
    const reading = read(`${dashboard.url}events?messages=0&batch=1`, (m) => started(m.flat()) >= 2000);
    await waitFor("the reader's watcher", () => hub.watcherCount === 1, 20_000);
    publishCalls(1000, 2000);
    const messages = await reading;
    assert.ok(messages.every(Array.isArray), "every message is an array");
    const events = messages.flat() as { snapshot?: unknown; callStarted?: { callId: string } }[];
    assert.ok(events[0]!.snapshot, "the snapshot first");
    const ids = events.filter((e) => e.callStarted).map((e) => Number(e.callStarted!.callId));
    assert.deepEqual(
      ids,
      Array.from({ length: 2000 }, (_, i) => 1000 + i),
      "in order, none lost",
    );
    assert.ok(messages.length < events.length / 10, `${messages.length} messages for ${events.length} events`);
  });
});
