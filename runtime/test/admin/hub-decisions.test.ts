// The hub's record of a call's decisions: kept in order and bounded, streamed to watchers,
// and a later attempt moves the call (its in-flight count, its statistics) to its instance.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AdminHub } from "../../src/admin/index.js";
import { CallDecision_Kind } from "../../src/gen/grpcrouter/v1/admin_pb.js";

test("a retried call is counted on the instance that finally served it, with every decision in its record", () => {
  const hub = new AdminHub();
  for (const id of ["a", "b"]) hub.publish({ type: "instanceRegistered", instance: { id, service: "demo.v1.Echo" } });
  const watcher = hub.watch({});
  // In a second that is over by the time the snapshot is taken (statistics are per closed second).
  const now = Date.now() - 3000;
  hub.publish({
    type: "callStarted",
    callId: 1,
    method: "/demo.v1.Echo/Say",
    instanceId: "a",
    reason: "round robin",
    queuedMs: 3,
    policy: "round robin",
    routingKey: "k",
    time: new Date(now),
  });
  const inFlight = (id: string) => hub.snapshot().instances.find((i) => i.id === id)!.inFlightCalls;
  assert.equal(inFlight("a"), 1);
  hub.publish({
    type: "callDecision",
    callId: 1,
    decision: { kind: "retry", attempt: 1, instanceId: "a", reason: "UNAVAILABLE on an idempotent method: retry 1", code: 14, backoffMs: 7 },
  });
  hub.publish({ type: "callDecision", callId: 1, decision: { kind: "attempt", attempt: 2, instanceId: "b", reason: "round robin" } });
  assert.equal(inFlight("a"), 0);
  assert.equal(inFlight("b"), 1);
  // Decisions of calls the hub does not know are dropped, not kept forever.
  hub.publish({ type: "callDecision", callId: 99, decision: { kind: "refused", attempt: 0, reason: "x" } });
  for (let i = 0; i < 40; i++) hub.publish({ type: "callDecision", callId: 1, decision: { kind: "retry", attempt: 2, instanceId: "b", reason: "again" } });
  hub.publish({ type: "callEnded", callId: 1, code: 0, time: new Date(now + 5) });
  const snap = hub.snapshot();
  const rec = snap.calls[0]!;
  assert.equal(rec.started!.queuedMs, 3);
  assert.equal(rec.started!.policy, "round robin");
  assert.equal(rec.started!.routingKey, "k");
  assert.equal(rec.decisions.length, 32, "bounded");
  assert.deepEqual(
    rec.decisions.slice(0, 2).map((d) => [d.kind, d.attempt, d.instanceId]),
    [
      [CallDecision_Kind.RETRY, 1, "a"],
      [CallDecision_Kind.ATTEMPT, 2, "b"],
    ],
  );
  assert.equal(rec.decisions[0]!.backoffMs, 7);
  const served = (id: string) => snap.stats.find((s) => s.instanceId === id)?.calls.reduce((x, y) => x + y, 0) ?? 0;
  assert.equal(served("b"), 1, "the call is counted where it ended");
  assert.equal(served("a"), 0);
  const streamed: string[] = [];
  for (let ev = watcher.take(); ev; ev = watcher.take()) if (ev.event.case === "callDecision") streamed.push(ev.event.value.instanceId);
  assert.deepEqual(streamed.slice(0, 2), ["a", "b"]);
  hub.close();
});
