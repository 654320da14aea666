import { test } from "node:test";
import assert from "node:assert/strict";
import { createBalancer } from "../../src/balancer/index.js";
import { CallRejectedError, type CallAttempt } from "../../src/resilience/index.js";
import { OK, pool, state } from "./helpers.js";

const say = { method: "/demo.v1.Echo/Say" };

test("max concurrent calls from Hello: calls go to instances with room first, then queue, then RESOURCE_EXHAUSTED", async () => {
  const t = pool({ maxPendingPerInstance: 2 });
  t.pool.add({ id: "small", maxConcurrentCalls: 1 });
  t.pool.add({ id: "big", maxConcurrentCalls: 3 });
  const running: CallAttempt[] = [];
  for (let i = 0; i < 4; i++) running.push(await t.pool.call(say).next());
  assert.deepEqual(running.map((a) => a.instance.id).sort(), ["big", "big", "big", "small"], "4 slots, all used, none over its limit");
  assert.deepEqual(
    t.pool.statuses().map((s) => [s.id, s.outstanding, s.available]),
    [
      ["small", 1, false],
      ["big", 3, false],
    ],
  );

  // Full: the next calls queue on the instance round robin would have picked, 2 per instance.
  const queued = Array.from({ length: 4 }, () => t.pool.call(say).next());
  for (const q of queued) assert.equal(await state(q), "pending");
  await assert.rejects(
    t.pool.call(say).next(),
    (e: unknown) => e instanceof CallRejectedError && e.code === 8 && /is at its limit of \d calls in flight and 2 queued/.test(e.message),
  );

  // A finishing call hands its slot to the first call queued on that instance (FIFO).
  const onSmall = running.find((a) => a.instance.id === "small")!;
  onSmall.finish(OK);
  const handed = await Promise.race(queued.map((q) => q.then((a) => a)));
  assert.equal(handed.instance.id, "small");
  assert.match(handed.pick.reason, /^queued 0 ms for a free slot on small$/);
  assert.equal(t.pool.get("small")!.status().outstanding, 1, "the slot moved; the limit still holds");
});

test("the router's own cap and Hello's limit: the smaller wins; a queued call ends at its deadline", async () => {
  const t = pool({ maxConcurrentCallsPerInstance: 2 });
  const a = t.pool.add({ id: "a", maxConcurrentCalls: 10 });
  const running = [await t.pool.call(say).next(), await t.pool.call(say).next()];
  assert.equal(a.status().maxConcurrentCalls, 2);
  const late = t.pool.call({ ...say, deadline: t.clock.now() + 1000 }).next();
  late.catch(() => {});
  await t.clock.advance(1000);
  await assert.rejects(late, (e: unknown) => e instanceof CallRejectedError && e.code === 4 && /queued for instance 'a'/.test(e.message));
  assert.equal(a.status().pending, 0, "an expired call leaves the queue");

  // The instance lowers its own limit (a new Hello): finishing one call frees no slot.
  const q = t.pool.call(say).next();
  a.setMaxConcurrentCalls(1);
  running[0]!.finish(OK);
  assert.equal(await state(q), "pending");
  running[1]!.finish(OK);
  assert.equal((await q).instance.id, "a");
});

test("queued calls follow their instance's health: ejected, drained or gone, they move to one with room", async () => {
  const t = pool();
  const a = t.pool.add({ id: "a", maxConcurrentCalls: 1 });
  await t.pool.call(say).next(); // a is full
  const q1 = t.pool.call(say).next();
  const q2 = t.pool.call(say).next();
  assert.equal(a.status().pending, 2);
  // b joins with room: the first queued call moves to it, the second stays first in a's queue.
  const b = t.pool.add({ id: "b", maxConcurrentCalls: 1 });
  assert.equal((await q1).instance.id, "b");
  assert.equal(await state(q2), "pending");
  assert.deepEqual([a.status().pending, b.status().pending], [1, 0]);
  // a drains: its queued call cannot stay; every instance is full, so it queues on b.
  a.drain();
  assert.equal(await state(q2), "pending");
  assert.deepEqual([a.status().pending, b.status().pending], [0, 1]);
  const c = t.pool.add({ id: "c" });
  assert.equal((await q2).instance.id, "c");
  assert.equal(c.status().outstanding, 1);
});

test("consistent hash keeps a key's overflow queued on its own instance rather than spraying it", async () => {
  const t = pool({}, createBalancer({ strategy: "consistent_hash", loadFactor: 1000 }));
  for (const id of ["a", "b", "c"]) t.pool.add({ id, maxConcurrentCalls: 1 });
  const first = await t.pool.call({ ...say, routingKey: "acme" }).next();
  const owner = first.instance.id;
  // Fill the other two.
  const others = [await t.pool.call({ ...say, routingKey: "x1" }).next()];
  while (others.length < 2) {
    const a = await t.pool.call(say).next();
    others.push(a);
  }
  assert.equal(new Set([owner, ...others.map((o) => o.instance.id)]).size, 3);
  const again = t.pool.call({ ...say, routingKey: "acme" }).next();
  assert.equal(await state(again), "pending");
  assert.equal(t.pool.get(owner)!.status().pending, 1);
  first.finish(OK);
  assert.equal((await again).instance.id, owner);
});

test("close fails every waiting call with UNAVAILABLE and refuses new ones", async () => {
  const t = pool();
  t.pool.add({ id: "a", maxConcurrentCalls: 1 });
  await t.pool.call(say).next();
  const queued = t.pool.call(say).next();
  t.pool.remove("a");
  t.pool.add({ id: "b", maxConcurrentCalls: 0 });
  assert.equal((await queued).instance.id, "b");
  t.pool.remove("b");
  const waiting = t.pool.call(say).next();
  t.pool.close();
  await assert.rejects(waiting, (e: unknown) => e instanceof CallRejectedError && e.code === 14 && e.message === "the router is shutting down");
  await assert.rejects(t.pool.call(say).next(), /shutting down/);
  assert.equal(t.clock.pending, 0, "no timer left behind");
});

test("a black-holed instance (answers nothing) does not stall calls on the others, and is ejected by its timeouts", async () => {
  const t = pool(); // round robin: the worst case, it would keep sending the hole its share
  t.pool.add({ id: "hole", maxConcurrentCalls: 8 });
  t.pool.add({ id: "good", maxConcurrentCalls: 8 });
  const stuck: CallAttempt[] = [];
  let served = 0;
  for (let i = 0; i < 200; i++) {
    const a = await t.pool.call({ ...say, deadline: t.clock.now() + 1000 }).next();
    if (a.instance.id === "hole")
      stuck.push(a); // never answers
    else {
      served++;
      a.finish(OK); // answers at once
    }
  }
  assert.equal(stuck.length, 8, "the hole takes calls only up to its limit");
  assert.equal(served + stuck.length, 200, "no call waited behind the hole");
  await t.clock.advance(1000);
  for (const a of stuck) a.finish({ code: 4, delivered: true }); // the router's deadline fires
  assert.equal(t.pool.get("hole")!.status().health, "ejected");
});

test("a new Hello with other labels regroups subsets at once, and a waiting tenant call gets its instance", async () => {
  const t = pool({}, createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } }));
  const a = t.pool.add({ id: "a", labels: { tenant: "globex" } });
  const acme = { ...say, metadata: (k: string) => (k === "x-tenant" ? "acme" : undefined) };
  const waiting = t.pool.call(acme).next();
  assert.equal(await state(waiting), "pending", "no acme instance yet: wait for ready");
  a.setLabels({ tenant: "acme" });
  assert.equal((await waiting).instance.id, "a");
  a.setLabels({ tenant: "globex" });
  const again = t.pool.call(acme).next();
  assert.equal(await state(again), "pending", "never leaks to an instance relabelled away");
  t.pool.close();
  await assert.rejects(again);
});

test("through the pool, with limits, queues and ejections, subsets never leak", async () => {
  const { seededRandom } = await import("../../src/balancer/index.js");
  const random = seededRandom(5);
  const t = pool(
    { retry: { retryOn: [] } },
    createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" } }, inner: "weighted_round_robin" }),
  );
  const tenants = ["acme", "globex"];
  for (let i = 0; i < 6; i++) t.pool.add({ id: `i${i}`, labels: { tenant: tenants[i % 2]! }, weight: 1 + (i % 3), maxConcurrentCalls: 3 });
  const running: CallAttempt[] = [];
  const leaks: string[] = [];
  let served = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const tenant = tenants[Math.floor(random() * 2)]!;
    t.pool
      .call({ ...say, metadata: (k) => (k === "x-tenant" ? tenant : undefined) })
      .next()
      .then(
        (a) => {
          served++;
          if (a.candidate.labels.tenant !== tenant) leaks.push(`${tenant} → ${a.instance.id}`);
          running.push(a);
        },
        () => refused++,
      );
    await new Promise((r) => setImmediate(r));
    // Calls end in random order; i3 always fails (and gets ejected, and returns), others now and then.
    while (running.length > 4 && random() < 0.9) {
      const a = running.splice(Math.floor(random() * running.length), 1)[0]!;
      a.finish(a.instance.id === "i3" || random() < 0.05 ? { code: 14, delivered: true } : OK);
    }
    if (i % 100 === 0) await t.clock.advance(1000);
  }
  while (running.length > 0) {
    running.splice(0).forEach((a) => a.finish(OK));
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(leaks, []);
  assert.ok(served > 2000, `served ${served}, refused ${refused}`);
  assert.ok(
    t.pool.statuses().some((s) => s.ejections > 0),
    "the run should have ejected someone",
  );
  t.pool.close();
});

test("through the pool, weights are still respected", async () => {
  const t = pool({}, createBalancer("weighted_round_robin"));
  for (const [id, weight] of [
    ["a", 1],
    ["b", 3],
    ["c", 6],
  ] as const)
    t.pool.add({ id, weight });
  const served = new Map<string, number>();
  for (let i = 0; i < 10_000; i++) {
    const a = await t.pool.call(say).next();
    served.set(a.instance.id, (served.get(a.instance.id) ?? 0) + 1);
    a.finish(OK);
  }
  assert.deepEqual([...served].sort(), [
    ["a", 1000],
    ["b", 3000],
    ["c", 6000],
  ]);
});
