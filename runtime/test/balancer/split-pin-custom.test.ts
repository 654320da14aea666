import { test } from "node:test";
import assert from "node:assert/strict";
import { createBalancer, CustomBalancer, type Candidate, type CustomPickFunction } from "../../src/balancer/index.js";
import { candidate, countPicks, metadata } from "./helpers.js";

function fleet(): Candidate[] {
  return [
    candidate("v1-a", { labels: { version: "v1" } }),
    candidate("v1-b", { labels: { version: "v1" } }),
    candidate("v1-c", { labels: { version: "v1" } }),
    candidate("v2-a", { labels: { version: "v2" } }),
  ];
}

test("canary split sends ≈ 5 % of calls without a key to version=v2", () => {
  const b = createBalancer({ strategy: "split", splits: [{ labels: { version: "v2" }, percent: 5 }] });
  const cs = fleet();
  const n = 100_000;
  const counts = countPicks(n, () => b.pick(cs, { method: "/m" })!.candidate);
  const canary = counts.get("v2-a")! / n;
  assert.ok(Math.abs(canary - 0.05) < 0.002, `canary share ${canary}`);
  for (const id of ["v1-a", "v1-b", "v1-c"]) assert.ok(Math.abs(counts.get(id)! / n - 0.95 / 3) < 0.005);
});

test("canary split by routing key is ≈ 5 % of keys and deterministic per key", () => {
  const b = createBalancer({ strategy: "split", splits: [{ labels: { version: "v2" }, percent: 5 }] });
  const other = createBalancer({ strategy: "split", splits: [{ labels: { version: "v2" }, percent: 5 }] });
  const cs = fleet();
  let canary = 0;
  for (let i = 0; i < 50_000; i++) {
    const key = `user-${i}`;
    const version = b.pick(cs, { method: "/m", routingKey: key })!.candidate.labels.version;
    if (version === "v2") canary++;
    for (let again = 0; again < 2; again++) assert.equal(b.pick(cs, { method: "/m", routingKey: key })!.candidate.labels.version, version);
    assert.equal(other.pick(cs, { method: "/m", routingKey: key })!.candidate.labels.version, version, "another router agrees");
  }
  assert.ok(Math.abs(canary / 50_000 - 0.05) < 0.005, `canary share ${canary / 50_000}`);
  const p = b.pick(cs, { method: "/m", routingKey: "user-1" })!;
  assert.match(p.reason, /^split (5% → version=v2|remaining 95% → stable) → round robin$/);
});

test("a split whose group is down sends its share to the stable version, and A/B splits add up", () => {
  const b = createBalancer({ strategy: "split", splits: [{ labels: { version: "v2" }, percent: 5 }] });
  const cs = fleet();
  cs[3]!.healthy = false;
  assert.equal(countPicks(10_000, () => b.pick(cs, { method: "/m" })!.candidate).get("v2-a"), undefined);
  const ab = createBalancer({
    strategy: "split",
    splits: [
      { labels: { version: "v1" }, percent: 50 },
      { labels: { version: "v2" }, percent: 50 },
    ],
  });
  const all = fleet();
  const counts = countPicks(20_000, () => ab.pick(all, { method: "/m" })!.candidate);
  assert.ok(Math.abs(counts.get("v2-a")! / 20_000 - 0.5) < 0.01);
});

test("pinning sends a call to the instance named in metadata; fallback decides otherwise", () => {
  const cs = fleet();
  const pin = createBalancer({ strategy: "pin", metadataKey: "x-instance", inner: "round_robin" });
  for (let i = 0; i < 10; i++) {
    const p = pin.pick(cs, { method: "/m", metadata: metadata({ "x-instance": "v1-b" }) })!;
    assert.equal(p.candidate.id, "v1-b");
    assert.equal(p.reason, "pinned by x-instance");
  }
  assert.equal(countPicks(400, () => pin.pick(cs, { method: "/m", metadata: metadata({}) })!.candidate).size, 4);
  assert.equal(pin.pick(cs, { method: "/m", metadata: metadata({ "x-instance": "gone" }) }), undefined);
  cs[1]!.healthy = false;
  assert.equal(pin.pick(cs, { method: "/m", metadata: metadata({ "x-instance": "v1-b" }) }), undefined);
  const lenient = createBalancer({ strategy: "pin", metadataKey: "x-instance", fallback: "any" });
  const p = lenient.pick(cs, { method: "/m", metadata: metadata({ "x-instance": "v1-b" }) })!;
  assert.notEqual(p.candidate.id, "v1-b");
  assert.match(p.reason, /^pinned instance 'v1-b' unavailable → round robin$/);
});

test("a custom strategy is a plain function, by name from config or directly", () => {
  const lowestId: CustomPickFunction = (cs) => [...cs].sort((a, b) => a.id.localeCompare(b.id))[0];
  const b = createBalancer({ strategy: "custom", name: "lowest" }, { custom: { lowest: lowestId } });
  const cs = fleet().reverse();
  assert.equal(b.pick(cs, { method: "/m" })!.candidate.id, "v1-a");
  assert.equal(b.pick(cs, { method: "/m" })!.reason, "custom strategy 'lowest'");
  const byMethod = new CustomBalancer((cs, ctx) => ({ candidate: cs[ctx.method.length % cs.length]!, reason: "by method length" }));
  assert.equal(byMethod.pick(cs, { method: "/ab" })!.reason, "by method length");
  const rogue = new CustomBalancer(() => candidate("stranger"), "rogue");
  assert.throws(() => rogue.pick(cs, { method: "/m" }), /custom balancer 'rogue' returned instance 'stranger', which was not among the candidates/);
  assert.throws(
    () => createBalancer({ strategy: "custom", name: "nope" }, { custom: { lowest: lowestId } }),
    /balancer\.name: no custom strategy named "nope" was registered \(known: lowest\)/,
  );
});

test("wrappers compose: pin → subset → split → consistent hash", () => {
  const b = createBalancer({
    strategy: "pin",
    metadataKey: "x-instance",
    inner: {
      strategy: "subset",
      selector: { tenant: { metadata: "x-tenant" } },
      inner: { strategy: "split", splits: [{ labels: { version: "v2" }, percent: 20 }], inner: "consistent_hash" },
    },
  });
  const cs = ["acme", "globex"].flatMap((tenant) =>
    ["v1", "v1", "v2"].map((version, i) => candidate(`${tenant}-${version}-${i}`, { labels: { tenant, version } })),
  );
  const acme = (key: string) => b.pick(cs, { method: "/m", routingKey: key, metadata: metadata({ "x-tenant": "acme" }) })!;
  for (let i = 0; i < 1000; i++) assert.ok(acme(`k${i}`).candidate.id.startsWith("acme-"));
  assert.equal(acme("k1").candidate, acme("k1").candidate);
  assert.match(acme("k1").reason, /^subset tenant=acme \(3 of 6\) → split .* → hash of key 'k1'/);
  assert.match(b.describe(), /^pin by x-instance \(else subset tenant=<x-tenant>/);
});

test("pin and split follow an instance that re-registers under the same id", () => {
  const pin = createBalancer({ strategy: "pin", metadataKey: "x-instance" });
  const cs = fleet();
  const md = { method: "/m", metadata: metadata({ "x-instance": "v2-a" }) };
  assert.equal(pin.pick(cs, md)!.candidate, cs[3]);
  const again = [...cs.slice(0, 3), candidate("v2-a", { labels: { version: "v2" } })];
  assert.equal(pin.pick(again, md)!.candidate, again[3], "the pin must reach the new registration, not the dead one");

  const split = createBalancer({ strategy: "split", splits: [{ labels: { version: "v2" }, percent: 50 }] });
  assert.ok(countPicks(1000, () => split.pick(cs, { method: "/m" })!.candidate).get("v2-a")! > 400);
  // v2-a comes back as v1: the v2 share must go to the stable group, not the old object.
  const relabelled = [...cs.slice(0, 3), candidate("v2-a", { labels: { version: "v1" } })];
  const counts = countPicks(1000, () => {
    const c = split.pick(relabelled, { method: "/m" })!.candidate;
    assert.ok(relabelled.includes(c), "picked a stale registration");
    return c;
  });
  assert.equal(counts.get("v2-a"), 250, "now one of four stable instances");
});
