import { test } from "node:test";
import assert from "node:assert/strict";
import { RoundRobinBalancer, WeightedRoundRobinBalancer } from "../../src/balancer/index.js";
import { candidates, countPicks } from "./helpers.js";

const ctx = { method: "/demo.v1.Echo/Say" };

test("round robin visits every instance in turn and skips unhealthy ones", () => {
  const rr = new RoundRobinBalancer();
  const cs = candidates(3);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map(() => rr.pick(cs, ctx)!.candidate.id),
    ["inst-0", "inst-1", "inst-2", "inst-0", "inst-1", "inst-2"],
  );
  cs[1]!.healthy = false;
  const counts = countPicks(1000, () => rr.pick(cs, ctx)?.candidate);
  assert.equal(counts.get("inst-1"), undefined);
  assert.equal(counts.get("inst-0"), 500);
  assert.equal(counts.get("inst-2"), 500);
  cs[0]!.healthy = cs[2]!.healthy = false;
  assert.equal(rr.pick(cs, ctx), undefined);
  assert.equal(rr.pick([], ctx), undefined);
  assert.equal(new RoundRobinBalancer().pick(candidates(2), ctx)!.reason, "round robin");
});

test("weighted round robin respects weights over 100k picks and interleaves smoothly", () => {
  const wrr = new WeightedRoundRobinBalancer();
  const weights = [5, 1, 1, 3, 0]; // 0 means the default of 1 (Hello.weight)
  const cs = candidates(weights.length, (i) => ({ weight: weights[i]! }));
  const effective = [5, 1, 1, 3, 1];
  const sum = effective.reduce((a, b) => a + b, 0);
  const n = 100_000;
  const counts = countPicks(n, () => wrr.pick(cs, ctx)!.candidate);
  effective.forEach((w, i) => {
    const share = counts.get(`inst-${i}`)! / n;
    assert.ok(Math.abs(share - w / sum) < 0.001, `inst-${i}: share ${share}, want ${w / sum}`);
  });
  // Smooth: the heavy instance is never picked more than twice in a row for 5 of 11.
  const seq = Array.from({ length: sum * 4 }, () => wrr.pick(cs, ctx)!.candidate.id);
  let run = 0;
  let maxRun = 0;
  for (let i = 0; i < seq.length; i++) {
    run = i > 0 && seq[i] === seq[i - 1] ? run + 1 : 1;
    maxRun = Math.max(maxRun, run);
  }
  assert.ok(maxRun <= 2, `longest run ${maxRun} in ${seq.join(" ")}`);
  assert.match(wrr.pick(cs, ctx)!.reason, /weighted round robin \(weight \d of 11\)/);
});

test("weighted round robin applies a weight changed at runtime and survives joins", () => {
  const wrr = new WeightedRoundRobinBalancer();
  const cs = candidates(2);
  let counts = countPicks(10_000, () => wrr.pick(cs, ctx)!.candidate);
  assert.equal(counts.get("inst-0"), 5000);
  cs[0]!.weight = 4; // same array, weight mutated in place by the router
  counts = countPicks(10_000, () => wrr.pick(cs, ctx)!.candidate);
  assert.ok(Math.abs(counts.get("inst-0")! - 8000) <= 2, `inst-0 got ${counts.get("inst-0")}`);
  const joined = [...cs, ...candidates(3).slice(2)]; // adds inst-2 with weight 1
  counts = countPicks(60_000, () => wrr.pick(joined, ctx)!.candidate);
  assert.ok(Math.abs(counts.get("inst-0")! - 40_000) <= 3);
  assert.ok(Math.abs(counts.get("inst-2")! - 10_000) <= 3);
  joined[2]!.healthy = false;
  counts = countPicks(10_000, () => wrr.pick(joined, ctx)!.candidate);
  assert.equal(counts.get("inst-2"), undefined);
});
