import { test } from "node:test";
import assert from "node:assert/strict";
import { BalancerConfigError, createBalancer, type Candidate } from "../../src/balancer/index.js";
import { candidate, countPicks } from "./helpers.js";

/** Four instances in zone a, two in zone b of the same region, two in another region. */
function fleet(): Candidate[] {
  return [
    ...["a1", "a2", "a3", "a4"].map((id) => candidate(id, { labels: { zone: "eu-1a", region: "eu-1" } })),
    ...["b1", "b2"].map((id) => candidate(id, { labels: { zone: "eu-1b", region: "eu-1" } })),
    ...["x1", "x2"].map((id) => candidate(id, { labels: { zone: "us-1a", region: "us-1" } })),
  ];
}

const zoneOf = (c: Candidate | undefined) => c?.labels.zone ?? "<none>";
const byZone = (counts: Map<string, number>, cs: Candidate[]) => {
  const out = new Map<string, number>();
  for (const [id, n] of counts) {
    const z = zoneOf(cs.find((c) => c.id === id));
    out.set(z, (out.get(z) ?? 0) + n);
  }
  return out;
};

const local = { locality: { zone: "eu-1a", region: "eu-1" } };

test("locality keeps every call in the router's zone while the zone is healthy, spread over its instances", () => {
  const b = createBalancer({ strategy: "locality" }, local);
  const cs = fleet();
  const counts = countPicks(4000, () => b.pick(cs, { method: "/m" })!.candidate);
  assert.deepEqual([...byZone(counts, cs).keys()], ["eu-1a"]);
  for (const id of ["a1", "a2", "a3", "a4"]) assert.equal(counts.get(id), 1000, `${id} round robin inside the zone`);
  assert.match(b.pick(cs, { method: "/m" })!.reason, /^locality local zone \(zone=eu-1a,region=eu-1\) → round robin$/);
});

test("losing a quarter of the zone moves nothing (overprovisioning 1.4); losing half spills 30 % to the region, none abroad", () => {
  const b = createBalancer({ strategy: "locality" }, local);
  const cs = fleet();
  cs[0]!.healthy = false;
  let zones = byZone(
    countPicks(10_000, () => b.pick(cs, { method: "/m" })!.candidate),
    cs,
  );
  assert.deepEqual([...zones.keys()], ["eu-1a"], "3 of 4 healthy × 1.4 ≥ 1: all local");
  cs[1]!.healthy = false;
  zones = byZone(
    countPicks(10_000, () => b.pick(cs, { method: "/m" })!.candidate),
    cs,
  );
  // 2 of 4 healthy × 1.4 = 70 % stays local; the remaining 30 % goes to eu-1b (fully healthy).
  assert.ok(Math.abs(zones.get("eu-1a")! / 10_000 - 0.7) < 0.01, `local share ${zones.get("eu-1a")}`);
  assert.ok(Math.abs(zones.get("eu-1b")! / 10_000 - 0.3) < 0.01, `region share ${zones.get("eu-1b")}`);
  assert.equal(zones.get("us-1a"), undefined, "another region takes nothing while the region has room");
});

test("a zone that is down fails over to its region at once, and a region that is down to the rest", () => {
  const b = createBalancer({ strategy: "locality" }, local);
  const cs = fleet();
  for (const c of cs.slice(0, 4)) c.healthy = false;
  assert.deepEqual(
    [
      ...byZone(
        countPicks(1000, () => b.pick(cs, { method: "/m" })!.candidate),
        cs,
      ).keys(),
    ],
    ["eu-1b"],
  );
  for (const c of cs.slice(4, 6)) c.healthy = false;
  const zones = byZone(
    countPicks(1000, () => b.pick(cs, { method: "/m" })!.candidate),
    cs,
  );
  assert.deepEqual([...zones.keys()], ["us-1a"]);
  assert.match(b.pick(cs, { method: "/m" })!.reason, /^locality other regions/);
  for (const c of cs) c.healthy = false;
  assert.equal(b.pick(cs, { method: "/m" }), undefined, "nobody healthy: no pick (the router fails or waits)");
  for (const c of cs.slice(0, 4)) c.healthy = true;
  assert.deepEqual(
    [
      ...byZone(
        countPicks(100, () => b.pick(cs, { method: "/m" })!.candidate),
        cs,
      ).keys(),
    ],
    ["eu-1a"],
    "back home when the zone recovers",
  );
});

test("when every level is degraded the calls spread in proportion instead of failing", () => {
  const b = createBalancer({ strategy: "locality", overprovisioning: 1 }, local);
  const cs = fleet();
  // Without overprovisioning each level takes min(what is left, its healthy share):
  // eu-1a 1 of 4 → 25 %; eu-1b none → 0; us 1 of 2 → min(75 %, 50 %) = 50 %. That adds up to
  // 75 %: normalised, a third of the calls stay local and two thirds go abroad.
  for (const id of ["a1", "a2", "a3", "b1", "b2", "x1"]) cs.find((c) => c.id === id)!.healthy = false;
  const zones = byZone(
    countPicks(30_000, () => b.pick(cs, { method: "/m" })!.candidate),
    cs,
  );
  assert.ok(Math.abs(zones.get("eu-1a")! / 30_000 - 1 / 3) < 0.01, `local ${zones.get("eu-1a")}`);
  assert.ok(Math.abs(zones.get("us-1a")! / 30_000 - 2 / 3) < 0.01, `abroad ${zones.get("us-1a")}`);
  assert.equal(zones.get("eu-1b"), undefined);
});

test("the router's zone comes from the config, else the options, else GRPCROUTER_ZONE; unknown means every instance", () => {
  const cs = fleet();
  const fromConfig = createBalancer({ strategy: "locality", zone: "eu-1b" }, local);
  assert.deepEqual(
    [
      ...byZone(
        countPicks(100, () => fromConfig.pick(cs, { method: "/m" })!.candidate),
        cs,
      ).keys(),
    ],
    ["eu-1b"],
  );
  const saved = process.env.GRPCROUTER_ZONE;
  process.env.GRPCROUTER_ZONE = "us-1a";
  try {
    const fromEnv = createBalancer({ strategy: "locality" });
    assert.deepEqual(
      [
        ...byZone(
          countPicks(100, () => fromEnv.pick(cs, { method: "/m" })!.candidate),
          cs,
        ).keys(),
      ],
      ["us-1a"],
    );
  } finally {
    if (saved === undefined) delete process.env.GRPCROUTER_ZONE;
    else process.env.GRPCROUTER_ZONE = saved;
  }
  const unknown = createBalancer({ strategy: "locality" }, { locality: {} });
  assert.equal(countPicks(800, () => unknown.pick(cs, { method: "/m" })!.candidate).size, 8);
  assert.match(unknown.describe(), /zone unknown/);
  const custom = createBalancer({ strategy: "locality", zoneLabel: "topology.kubernetes.io/zone", inner: "least_outstanding" }, { locality: { zone: "z2" } });
  const k8s = [candidate("p", { labels: { "topology.kubernetes.io/zone": "z1" } }), candidate("q", { labels: { "topology.kubernetes.io/zone": "z2" } })];
  assert.equal(custom.pick(k8s, { method: "/m" })!.candidate.id, "q");
  assert.match(custom.describe(), /least outstanding/);
});

test("locality config errors name the field", () => {
  assert.throws(
    () => createBalancer({ strategy: "locality", overprovisioning: 0.5 }),
    (e: unknown) => e instanceof BalancerConfigError && e.path === "balancer.overprovisioning",
  );
  assert.throws(() => createBalancer({ strategy: "locality", zone: "" }), /balancer\.zone: must be a non-empty string/);
  assert.throws(() => createBalancer({ strategy: "locality", zones: ["a"] }), /balancer\.zones: unknown field/);
});
