import { test } from "node:test";
import assert from "node:assert/strict";
import { OK, UNAVAILABLE, pool, runCall } from "./helpers.js";

const INTERNAL = { code: 13, delivered: true };

test("an instance that starts failing is ejected after 5 failures in a row and comes back after 30 s", async () => {
  const { pool: p, clock, events } = pool({ retry: { retryOn: [] } });
  for (const id of ["a", "b", "c"]) p.add({ id });
  let broken = true;
  const served = new Map<string, number>();
  const serve = (id: string) => {
    served.set(id, (served.get(id) ?? 0) + 1);
    return id === "b" && broken ? INTERNAL : OK;
  };
  for (let i = 0; i < 15; i++) await runCall(p, clock, serve);
  assert.equal(served.get("b"), 5, "b took its share until its 5th failure");
  assert.equal(p.get("b")!.status().health, "ejected");
  assert.match(p.get("b")!.status().reason, /^ejected after 5 consecutive failures \(last INTERNAL\), back in 30 s$/);
  assert.deepEqual(events, ["b ejected"]);

  served.clear();
  for (let i = 0; i < 100; i++) await runCall(p, clock, serve);
  assert.equal(served.get("b"), undefined, "no call reaches an ejected instance");
  assert.equal(served.get("a")! + served.get("c")!, 100);

  broken = false;
  await clock.advance(30_000);
  assert.equal(p.get("b")!.status().health, "serving");
  assert.deepEqual(events, ["b ejected", "b serving"]);
  served.clear();
  for (let i = 0; i < 30; i++) await runCall(p, clock, serve);
  assert.equal(served.get("b"), 10, "back in rotation with its full share");
});

test("a success resets the count: scattered failures never eject", async () => {
  const { pool: p, clock } = pool({ retry: { retryOn: [] } });
  p.add({ id: "a" });
  p.add({ id: "b" });
  const n = new Map<string, number>();
  const fourthSucceeds = (id: string) => {
    n.set(id, (n.get(id) ?? 0) + 1);
    return n.get(id)! % 4 === 0 ? OK : UNAVAILABLE;
  };
  for (let i = 0; i < 200; i++) await runCall(p, clock, fourthSucceeds);
  assert.deepEqual(
    p.statuses().map((s) => s.health),
    ["serving", "serving"],
  );
  // Application errors (NOT_FOUND, INVALID_ARGUMENT) are not the instance's fault.
  for (let i = 0; i < 50; i++) await runCall(p, clock, () => ({ code: 5, delivered: true }));
  assert.deepEqual(
    p.statuses().map((s) => s.health),
    ["serving", "serving"],
  );
});

test("a flapping instance stays out longer each time (30, 60, 90 s … capped) and is forgiven when it recovers", async () => {
  const { pool: p, clock, events } = pool({ retry: { retryOn: [] }, outlier: { maxEjectionMs: 90_000 } });
  p.add({ id: "good" });
  const flappy = p.add({ id: "flappy" });
  const failAll = (id: string) => (id === "flappy" ? UNAVAILABLE : OK);
  const outFor: number[] = [];
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 10; i++) await runCall(p, clock, failAll);
    assert.equal(flappy.status().health, "ejected", `round ${round}`);
    const until = flappy.status().ejectedUntil!;
    outFor.push(until - clock.now());
    await clock.advance(until - clock.now());
    assert.equal(flappy.status().health, "serving");
  }
  assert.deepEqual(outFor, [30_000, 60_000, 90_000, 90_000]);
  assert.equal(events.filter((e) => e === "flappy ejected").length, 4);

  // Healthy for 3 base periods: the multiplier drops from 4 to 1, so the next ejection is 60 s, not 90.
  for (let i = 0; i < 10; i++) await runCall(p, clock, () => OK);
  await clock.advance(90_000);
  for (let i = 0; i < 10; i++) await runCall(p, clock, failAll);
  assert.equal(flappy.status().ejectedUntil! - clock.now(), 60_000);
});

test("max ejection percent: a fleet-wide failure never ejects more than half (but one of two may go)", async () => {
  const { pool: p, clock } = pool({ retry: { retryOn: [] } });
  for (let i = 0; i < 4; i++) p.add({ id: `i${i}` });
  for (let i = 0; i < 100; i++) await runCall(p, clock, () => UNAVAILABLE);
  assert.equal(p.statuses().filter((s) => s.health === "ejected").length, 2);
  assert.equal(p.statuses().filter((s) => s.available).length, 2, "half the fleet keeps serving (its errors reach clients)");

  const two = pool({ retry: { retryOn: [] } });
  two.pool.add({ id: "x" });
  two.pool.add({ id: "y" });
  for (let i = 0; i < 50; i++) await runCall(two.pool, two.clock, (id) => (id === "x" ? UNAVAILABLE : OK));
  assert.deepEqual(
    two.pool.statuses().map((s) => s.health),
    ["ejected", "serving"],
  );

  const one = pool({ retry: { retryOn: [] } });
  one.pool.add({ id: "only" });
  for (let i = 0; i < 50; i++) await runCall(one.pool, one.clock, () => UNAVAILABLE);
  assert.equal(one.pool.get("only")!.status().health, "serving", "ejecting the only instance would turn every error into UNAVAILABLE");
});
