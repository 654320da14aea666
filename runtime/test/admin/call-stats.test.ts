import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdminHub } from "../../src/admin/index.js";
import { CallStats, STATS_SECONDS } from "../../src/admin/call-stats.js";
import type { Event, StatsTick } from "../../src/gen/grpcrouter/v1/admin_pb.js";

const T0 = 1_800_000_000_000; // a whole second, in ms

describe("CallStats", () => {
  it("counts calls and errors per second, per service and per instance, with p50/p99 within the histogram's 12 %", () => {
    const s = new CallStats();
    // Second 0: instance a answers 98 calls in 10 ms and 2 in 500 ms; instance b fails 50 calls in 1 ms.
    for (let i = 0; i < 98; i++) s.record("demo.Echo", "a", 10, 0, T0 + i);
    for (let i = 0; i < 2; i++) s.record("demo.Echo", "a", 500, 0, T0 + 500);
    for (let i = 0; i < 50; i++) s.record("demo.Echo", "b", 1, 14, T0 + 900);
    s.record("demo.Echo", "", 3, 14, T0 + 950); // refused before routing: the service only
    const { second, points } = s.tick(T0 + 1000);
    assert.equal(second, T0 / 1000);
    const get = (id: string) => points.find((p) => p.instanceId === id)!;
    assert.deepEqual([get("a").calls, get("a").errors], [100, 0]);
    assert.ok(Math.abs(get("a").p50Ms - 10) / 10 < 0.13, `a p50 ${get("a").p50Ms}`);
    assert.ok(Math.abs(get("a").p99Ms - 500) / 500 < 0.13, `a p99 ${get("a").p99Ms}`);
    assert.deepEqual([get("b").calls, get("b").errors], [50, 50]);
    assert.deepEqual([get("").calls, get("").errors], [151, 51], "the service counts every call");
  });

  it("keeps 5 minutes: quiet seconds are zeros, older ones fall out, a series quiet for the whole window is forgotten", () => {
    const s = new CallStats();
    s.record("svc", "a", 5, 0, T0);
    s.record("svc", "a", 5, 0, T0 + 3_000); // seconds 1 and 2 quiet
    const h = s.history(T0 + 4_000);
    const a = h.find((x) => x.instanceId === "a")!;
    assert.equal(a.firstSecond, T0 / 1000, "history starts at the series' first call, not 5 minutes back");
    assert.deepEqual(a.calls, [1, 0, 0, 1]);
    const later = s.history(T0 + (STATS_SECONDS + 2) * 1000).find((x) => x.instanceId === "a")!;
    assert.equal(later.calls.length, STATS_SECONDS);
    assert.equal(
      later.calls.reduce((x, y) => x + y, 0),
      1,
      "the first second fell out of the window",
    );
    assert.equal(s.tick(T0 + (STATS_SECONDS + 10) * 1000).points.length, 0, "quiet for 5 minutes: forgotten");
  });
});

describe("AdminHub statistics", () => {
  it("streams one stats event per service per second and puts the history in the snapshot", () => {
    const hub = new AdminHub();
    hub.publish({ type: "callStarted", callId: 1, method: "/demo.v1.Echo/Say", instanceId: "a", time: new Date(T0) });
    hub.publish({ type: "callEnded", callId: 1, code: 0, time: new Date(T0 + 20) });
    hub.publish({ type: "callStarted", callId: 2, method: "/demo.v1.Other/Go", instanceId: "x", time: new Date(T0 + 30) });
    hub.publish({ type: "callEnded", callId: 2, code: 13, time: new Date(T0 + 40) });
    const w = hub.watch({ services: ["demo.v1.Echo"] });
    hub.tickStats(T0 + 1000);
    const events: Event[] = [];
    for (let e = w.take(); e; e = w.take()) events.push(e);
    assert.deepEqual(
      events.map((e) => e.event.case),
      ["snapshot", "stats"],
      "only the watched service's tick",
    );
    const tick = events[1]!.event.value as StatsTick;
    assert.equal(tick.second, BigInt(T0 / 1000));
    assert.deepEqual(tick.points.map((p) => [p.instanceId, p.calls, p.errors]).sort(), [
      ["", 1, 0],
      ["a", 1, 0],
    ]);
    const snap = hub.snapshot();
    assert.deepEqual(snap.stats.map((x) => `${x.service}/${x.instanceId}`).sort(), ["demo.v1.Echo/", "demo.v1.Echo/a", "demo.v1.Other/", "demo.v1.Other/x"]);
    hub.close();
  });
});
