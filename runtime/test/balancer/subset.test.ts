import { test } from "node:test";
import assert from "node:assert/strict";
import { createBalancer, seededRandom, type Candidate } from "../../src/balancer/index.js";
import { candidate, metadata } from "./helpers.js";

test("subsets never leak: property test over random label sets and selectors", () => {
  const random = seededRandom(42);
  const tenants = ["acme", "globex", "initech", "umbrella"];
  const regions = ["eu", "us"];
  const choose = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  for (const inner of ["round_robin", "weighted_round_robin", "least_outstanding", "consistent_hash"]) {
    for (let round = 0; round < 50; round++) {
      const b = createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" }, region: "eu" }, inner }, { random });
      const n = 1 + Math.floor(random() * 12);
      const cs: Candidate[] = Array.from({ length: n }, (_, i) => {
        const labels: Record<string, string> = {};
        if (random() < 0.8) labels.tenant = choose(tenants);
        if (random() < 0.8) labels.region = choose(regions);
        return candidate(`i${i}`, { labels, weight: 1 + Math.floor(random() * 3), healthy: random() < 0.85 });
      });
      for (let call = 0; call < 200; call++) {
        const tenant = choose(tenants);
        const p = b.pick(cs, { method: "/m", routingKey: `k${call}`, metadata: metadata({ "x-tenant": tenant }) });
        const eligible = cs.filter((c) => c.labels.tenant === tenant && c.labels.region === "eu" && c.healthy);
        if (eligible.length === 0) assert.equal(p, undefined, `tenant ${tenant} leaked to ${p?.candidate.id}`);
        else {
          assert.ok(p, `tenant ${tenant} refused although ${eligible.map((c) => c.id)} serve it`);
          assert.ok(eligible.includes(p.candidate), `${inner}: tenant ${tenant} went to ${JSON.stringify(p.candidate.labels)}`);
        }
      }
    }
  }
});

test("subset spreads calls over its members only, and reports why", () => {
  const b = createBalancer({ strategy: "subset", selector: { tenant: "acme" } });
  const cs = [
    candidate("a1", { labels: { tenant: "acme" } }),
    candidate("g1", { labels: { tenant: "globex" } }),
    candidate("a2", { labels: { tenant: "acme" } }),
  ];
  const ids = Array.from({ length: 4 }, () => b.pick(cs, { method: "/m" })!.candidate.id);
  assert.deepEqual(ids, ["a1", "a2", "a1", "a2"]);
  assert.equal(b.pick(cs, { method: "/m" })!.reason, "subset tenant=acme (2 of 3) → round robin");
  assert.equal(b.describe(), "subset tenant=acme (empty: fail) → round robin");
});

test("subset fallback 'any' and onMissing decide what an empty subset or a missing value does", () => {
  const cs = [candidate("a1", { labels: { tenant: "acme" } }), candidate("n1")];
  const strict = createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } });
  assert.equal(strict.pick(cs, { method: "/m", metadata: metadata({ "x-tenant": "nobody" }) }), undefined);
  assert.equal(strict.pick(cs, { method: "/m", metadata: metadata({}) }), undefined);
  cs[0]!.healthy = false;
  assert.equal(strict.pick(cs, { method: "/m", metadata: metadata({ "x-tenant": "acme" }) }), undefined, "unhealthy subset must not leak");
  cs[0]!.healthy = true;

  const lenient = createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" } }, fallback: "any", onMissing: "any" });
  const p = lenient.pick(cs, { method: "/m", metadata: metadata({ "x-tenant": "nobody" }) })!;
  assert.ok(p);
  assert.match(p.reason, /^subset tenant=nobody empty, any instance → round robin$/);
  assert.match(lenient.pick(cs, { method: "/m" })!.reason, /subset value for tenant missing/);
  assert.equal(lenient.pick(cs, { method: "/m", metadata: metadata({ "x-tenant": "acme" }) })!.candidate.id, "a1");
});

test("subset by routing key, and membership changes rebuild the groups", () => {
  const b = createBalancer({ strategy: "subset", selector: { shard: { routingKey: true } } });
  const cs = [candidate("s1", { labels: { shard: "1" } }), candidate("s2", { labels: { shard: "2" } })];
  assert.equal(b.pick(cs, { method: "/m", routingKey: "2" })!.candidate.id, "s2");
  assert.equal(b.pick(cs, { method: "/m", routingKey: "3" }), undefined);
  const grown = [...cs, candidate("s3", { labels: { shard: "3" } })];
  assert.equal(b.pick(grown, { method: "/m", routingKey: "3" })!.candidate.id, "s3");
  const shrunk = grown.filter((c) => c.id !== "s2");
  assert.equal(b.pick(shrunk, { method: "/m", routingKey: "2" }), undefined);
});

test("subsets never leak under churn: joins, leaves, health flips and re-registration with new labels", () => {
  const random = seededRandom(7);
  const tenants = ["acme", "globex", "initech"];
  const choose = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  for (const inner of ["round_robin", "weighted_round_robin", "least_outstanding", "consistent_hash"]) {
    const b = createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" } }, inner }, { random });
    let cs: Candidate[] = Array.from({ length: 6 }, (_, i) => candidate(`i${i}`, { labels: { tenant: choose(tenants) } }));
    let nextId = 6;
    for (let round = 0; round < 300; round++) {
      const r = random();
      if (r < 0.25) cs = [...cs, candidate(`i${nextId++}`, { labels: { tenant: choose(tenants) } })];
      else if (r < 0.45 && cs.length > 1) cs = cs.filter((_, i) => i !== Math.floor(random() * cs.length));
      else if (r < 0.75 && cs.length > 0) {
        // The same instance id comes back on a new stream with other labels: a new object in place.
        const i = Math.floor(random() * cs.length);
        cs = cs.map((c, j) => (j === i ? candidate(c.id, { labels: { tenant: choose(tenants) } }) : c));
      } else if (cs.length > 0) {
        const c = choose(cs);
        c.healthy = !c.healthy;
      }
      for (let call = 0; call < 20; call++) {
        const tenant = choose(tenants);
        const p = b.pick(cs, { method: "/m", routingKey: `k${call}`, metadata: metadata({ "x-tenant": tenant }) });
        const eligible = cs.filter((c) => c.labels.tenant === tenant && c.healthy);
        if (eligible.length === 0) assert.equal(p, undefined, `${inner}: tenant ${tenant} leaked to ${p?.candidate.id}`);
        else
          assert.ok(
            p && eligible.includes(p.candidate),
            `${inner} round ${round}: tenant ${tenant} went to ${p?.candidate.id} ${JSON.stringify(p?.candidate.labels)}, not one of the current objects`,
          );
      }
    }
  }
});

test("a router that updates an instance in place (new labels object, new array) is followed too", () => {
  const b = createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } });
  const a = candidate("a", { labels: { tenant: "acme" } }) as Candidate & { labels: Record<string, string> };
  let cs: Candidate[] = [a, candidate("g", { labels: { tenant: "globex" } })];
  const acme = { method: "/m", metadata: metadata({ "x-tenant": "acme" }) };
  assert.equal(b.pick(cs, acme)!.candidate.id, "a");
  a.labels = { tenant: "globex" }; // the same object re-registered with other labels
  cs = [...cs];
  assert.equal(b.pick(cs, acme), undefined, "acme must not leak to an instance now labelled globex");
});
