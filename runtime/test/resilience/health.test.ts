import { test } from "node:test";
import assert from "node:assert/strict";
import { HealthReport_Status } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { CallRejectedError } from "../../src/resilience/index.js";
import { OK, pool, runCall, state } from "./helpers.js";

const picks = async (p: ReturnType<typeof pool>, n: number): Promise<Map<string, number>> => {
  const served = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = await runCall(p.pool, p.clock, () => OK);
    const id = r.code === 0 ? r.tried.at(-1)! : `<${r.code}>`;
    served.set(id, (served.get(id) ?? 0) + 1);
  }
  return served;
};

test("an instance that stops sending (no frame, no Pong) leaves rotation and returns on its next frame", async () => {
  const t = pool({ heartbeatTimeoutMs: 15_000, waitForReady: false });
  const a = t.pool.add({ id: "a" });
  const b = t.pool.add({ id: "b" });
  for (let s = 0; s < 20; s++) {
    await t.clock.advance(1000);
    a.heartbeat(); // b has gone quiet (black-holed)
  }
  assert.equal(b.status().health, "not_serving");
  assert.match(b.status().reason, /^no heartbeat for 2\d s$/);
  assert.deepEqual([...(await picks(t, 10))], [["a", 10]]);
  b.heartbeat();
  assert.equal(b.status().health, "serving");
  assert.deepEqual([...(await picks(t, 10))].sort(), [
    ["a", 5],
    ["b", 5],
  ]);
  assert.deepEqual(t.events, ["b not_serving", "b serving"]);
  t.pool.close();
  assert.equal(t.clock.pending, 0, "close stops the heartbeat sweep");
});

test("HealthReport NOT_SERVING takes an instance out until it reports SERVING; Drain takes it out for good", async () => {
  const t = pool({ waitForReady: false });
  const a = t.pool.add({ id: "a" });
  const b = t.pool.add({ id: "b" });
  b.report(HealthReport_Status.NOT_SERVING);
  assert.equal(b.status().reason, "the instance reported NOT_SERVING");
  assert.deepEqual([...(await picks(t, 6))], [["a", 6]]);
  b.report("SERVING");
  assert.equal((await picks(t, 6)).get("b"), 3);
  a.drain();
  assert.deepEqual([...(await picks(t, 6))], [["b", 6]]);
  b.report(HealthReport_Status.NOT_SERVING);
  const r = await runCall(t.pool, t.clock, () => OK);
  assert.equal(r.code, 14);
  assert.equal(r.message, "no instance of demo.v1.Echo is available (1 draining, 1 not serving)");
  assert.deepEqual(t.events, ["b not_serving", "b serving", "a draining", "b not_serving"]);
});

test("wait-for-ready: a call with no instance waits for the first to register, up to its deadline", async () => {
  const t = pool();
  const call = t.pool.call({ method: "/demo.v1.Echo/Say", deadline: t.clock.now() + 5000 });
  const next = call.next();
  await t.clock.advance(2000);
  assert.equal(await state(next), "pending");
  t.pool.add({ id: "late" });
  const attempt = await next;
  assert.equal(attempt.instance.id, "late");
  assert.equal(attempt.waitedMs, 2000);
  attempt.finish(OK);

  // Nobody comes: DEADLINE_EXCEEDED at the deadline, not before.
  t.pool.remove("late");
  const lonely = t.pool.call({ method: "/demo.v1.Echo/Say", deadline: t.clock.now() + 3000 }).next();
  lonely.catch(() => {}); // asserted below; it rejects while the clock advances
  await t.clock.advance(2999);
  assert.equal(await state(lonely), "pending");
  await t.clock.advance(1);
  await assert.rejects(
    lonely,
    (e: unknown) => e instanceof CallRejectedError && e.code === 4 && /deadline exceeded after 3000 ms waiting for an instance/.test(e.message),
  );

  // No deadline: maxWaitMs, then UNAVAILABLE naming the service.
  const capped = t.pool.call({ method: "/demo.v1.Echo/Say" }).next();
  capped.catch(() => {});
  await t.clock.advance(10_000);
  await assert.rejects(
    capped,
    (e: unknown) => e instanceof CallRejectedError && e.code === 14 && e.message === "no instance of demo.v1.Echo is registered; waited 10000 ms",
  );
});

test("wait-for-ready also waits out an ejection or a NOT_SERVING spell, and a cancel ends the wait", async () => {
  const t = pool();
  const a = t.pool.add({ id: "a" });
  a.report("NOT_SERVING");
  const waiting = t.pool.call({ method: "/demo.v1.Echo/Say" }).next();
  await t.clock.advance(500);
  assert.equal(await state(waiting), "pending");
  a.report("SERVING");
  assert.equal((await waiting).instance.id, "a");

  a.report("NOT_SERVING");
  const ac = new AbortController();
  const cancelled = t.pool.call({ method: "/demo.v1.Echo/Say", signal: ac.signal }).next();
  ac.abort();
  await assert.rejects(cancelled, (e: unknown) => e instanceof CallRejectedError && e.code === 1);

  const off = pool({ waitForReady: false });
  await assert.rejects(off.pool.call({ method: "/demo.v1.Echo/Say" }).next(), /no instance of demo.v1.Echo is registered$/);
});

test("a subset that matches nobody fails at once when waiting is off and names the balancer", async () => {
  const { createBalancer } = await import("../../src/balancer/index.js");
  const t = pool({ waitForReady: false }, createBalancer({ strategy: "subset", selector: { tenant: "acme" } }));
  t.pool.add({ id: "g", labels: { tenant: "globex" } });
  const r = await runCall(t.pool, t.clock, () => OK);
  assert.equal(r.code, 14);
  assert.equal(r.message, "no instance of demo.v1.Echo matches /demo.v1.Echo/Say under subset tenant=acme (empty: fail) → round robin (1 serving)");
});

test("HealthMonitor alone: a router with its own dispatch gets ok/state/reason and change callbacks", async () => {
  const { HealthMonitor, ManualClock } = await import("../../src/resilience/index.js");
  const clock = new ManualClock();
  const seen: string[] = [];
  const m = new HealthMonitor({ clock, resilience: { heartbeatTimeoutMs: 3000 }, onChange: (h) => seen.push(`${h.id} ${h.state} ok=${h.ok}`) });
  const a = m.add("a");
  const b = m.add("b");
  for (let i = 0; i < 5; i++) a.recordResult(14);
  assert.equal(a.ok, false);
  assert.match(a.reason, /^ejected after 5 consecutive failures \(last UNAVAILABLE\), back in 30 s$/);
  for (let s = 0; s < 30; s++) {
    await clock.advance(1000);
    a.heartbeat();
    if (s < 10) b.heartbeat();
  }
  assert.deepEqual(seen, ["a ejected ok=false", "b not_serving ok=false", "a serving ok=true"]);
  m.remove(b);
  m.close();
  assert.equal(clock.pending, 0);
});
