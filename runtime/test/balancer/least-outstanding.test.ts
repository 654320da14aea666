import { test } from "node:test";
import assert from "node:assert/strict";
import { LeastOutstandingBalancer, seededRandom, type Candidate } from "../../src/balancer/index.js";
import { candidates, countPicks } from "./helpers.js";

const ctx = { method: "/demo.v1.Echo/Say" };

test("least outstanding never picks the busiest of two and prefers idle instances", () => {
  const lo = new LeastOutstandingBalancer(seededRandom(1));
  const cs = candidates(10, (i) => ({ outstanding: i === 3 ? 0 : 50 }));
  const counts = countPicks(100_000, () => lo.pick(cs, ctx)!.candidate);
  // The idle instance wins every draw it is in: 2/n of all picks, ≈ 20 %.
  const idleShare = counts.get("inst-3")! / 100_000;
  assert.ok(idleShare > 0.19 && idleShare < 0.21, `idle share ${idleShare}`);
  for (const [id, n] of counts) if (id !== "inst-3") assert.ok(n / 100_000 < 0.1, `${id} got ${n}`);
  const busiest = candidates(2, (i) => ({ outstanding: i === 0 ? 7 : 2 }));
  for (let i = 0; i < 100; i++) assert.equal(lo.pick(busiest, ctx)!.candidate.id, "inst-1");
  assert.match(lo.pick(busiest, ctx)!.reason, /least outstanding: 2 in flight vs 7 on inst-0/);
});

test("least outstanding balances a closed-loop simulation with a slow instance", () => {
  // inst-0 is 10× slower; calls complete at a fixed rate per instance. Least outstanding
  // must keep the slow instance's queue short rather than share calls evenly.
  const random = seededRandom(7);
  const lo = new LeastOutstandingBalancer(random);
  const cs = candidates(5);
  const speed = [0.02, 0.2, 0.2, 0.2, 0.2]; // chance per tick that one in-flight call completes
  const picks = new Map<string, number>();
  for (let tick = 0; tick < 100_000; tick++) {
    for (let i = 0; i < cs.length; i++) if (cs[i]!.outstanding > 0 && random() < speed[i]!) cs[i]!.outstanding--;
    const c: Candidate = lo.pick(cs, ctx)!.candidate;
    c.outstanding++;
    picks.set(c.id, (picks.get(c.id) ?? 0) + 1);
    if (cs.reduce((a, x) => a + x.outstanding, 0) > 40) {
      // keep the total bounded: the system is near saturation, which is when balancing matters
      const busiest = cs.reduce((a, b) => (b.outstanding > a.outstanding ? b : a));
      busiest.outstanding--;
    }
  }
  const slow = picks.get("inst-0")! / 100_000;
  assert.ok(slow < 0.12, `slow instance got ${slow} of calls (even share would be 0.2)`);
});

test("least outstanding skips unhealthy candidates and handles tiny sets", () => {
  const lo = new LeastOutstandingBalancer(seededRandom(3));
  const cs = candidates(4, (i) => ({ healthy: i === 2 }));
  const counts = countPicks(1000, () => lo.pick(cs, ctx)?.candidate);
  assert.deepEqual([...counts], [["inst-2", 1000]]);
  assert.equal(lo.pick([], ctx), undefined);
  assert.equal(lo.pick(candidates(1), ctx)!.candidate.id, "inst-0");
  assert.equal(
    lo.pick(
      candidates(1, () => ({ healthy: false })),
      ctx,
    ),
    undefined,
  );
  assert.equal(
    lo.pick(
      candidates(3, () => ({ healthy: false })),
      ctx,
    ),
    undefined,
  );
});
