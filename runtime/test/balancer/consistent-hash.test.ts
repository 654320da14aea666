import { test } from "node:test";
import assert from "node:assert/strict";
import { ConsistentHashBalancer, RoundRobinBalancer, seededRandom, type Candidate } from "../../src/balancer/index.js";
import { candidate, candidates } from "./helpers.js";

const KEYS = Array.from({ length: 20_000 }, (_, i) => `customer-${i}`);

function ring(loadFactor = 1.25): ConsistentHashBalancer {
  return new ConsistentHashBalancer({ loadFactor, withoutKey: new RoundRobinBalancer() });
}

function assign(b: ConsistentHashBalancer, cs: readonly Candidate[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const k of KEYS) out.set(k, b.pick(cs, { method: "/m", routingKey: k })!.candidate.id);
  return out;
}

test("a key stays on its instance and keys spread evenly", () => {
  const b = ring();
  const cs = candidates(10);
  const a = assign(b, cs);
  assert.deepEqual(assign(b, cs), a, "same keys, same instances");
  assert.deepEqual(assign(ring(), [...cs]), a, "a new balancer (another router) agrees");
  const counts = new Map<string, number>();
  for (const id of a.values()) counts.set(id, (counts.get(id) ?? 0) + 1);
  assert.equal(counts.size, 10);
  for (const [id, n] of counts) assert.ok(Math.abs(n / KEYS.length - 0.1) < 0.035, `${id} holds ${n}`);
});

test("a join moves at most 1/N + ε of the keys, all to the newcomer; a leave moves only the leaver's keys", () => {
  const b = ring();
  const before = candidates(10);
  const a1 = assign(b, before);
  const joined = [...before, candidate("inst-new")];
  const a2 = assign(b, joined);
  let moved = 0;
  for (const k of KEYS) {
    if (a1.get(k) !== a2.get(k)) {
      moved++;
      assert.equal(a2.get(k), "inst-new", `${k} moved between old instances`);
    }
  }
  const share = moved / KEYS.length;
  assert.ok(share <= 1 / 11 + 0.04, `join moved ${share}`);
  assert.ok(share > 0.04, `join moved only ${share}: the newcomer took almost nothing`);

  const left = joined.filter((c) => c.id !== "inst-4");
  const a3 = assign(b, left);
  for (const k of KEYS) {
    if (a2.get(k) !== "inst-4") assert.equal(a3.get(k), a2.get(k), `${k} moved although its instance stayed`);
    else assert.notEqual(a3.get(k), "inst-4");
  }
});

test("an unhealthy instance's keys go elsewhere and come back when it recovers", () => {
  const b = ring();
  const cs = candidates(5);
  const a1 = assign(b, cs);
  cs[2]!.healthy = false;
  const a2 = assign(b, cs);
  for (const k of KEYS) {
    if (a1.get(k) === "inst-2") assert.notEqual(a2.get(k), "inst-2");
    else assert.equal(a2.get(k), a1.get(k));
  }
  cs[2]!.healthy = true;
  assert.deepEqual(assign(b, cs), a1);
});

test("bounded load: no instance exceeds ⌈c × average⌉ under a skewed key distribution", () => {
  const c = 1.25;
  const b = ring(c);
  const cs = candidates(8);
  const random = seededRandom(11);
  // Zipf-like keys: a handful of hot keys carry most calls.
  const hot = (): string => `tenant-${Math.floor(Math.pow(random(), 4) * 200)}`;
  const inFlight: Candidate[] = [];
  let spilled = 0;
  for (let i = 0; i < 100_000; i++) {
    if (inFlight.length > 0 && random() < 0.5) {
      const j = Math.floor(random() * inFlight.length);
      inFlight[j]!.outstanding--;
      inFlight[j] = inFlight[inFlight.length - 1]!;
      inFlight.pop();
    }
    if (inFlight.length >= 200) continue;
    const total = inFlight.length + 1;
    const p = b.pick(cs, { method: "/m", routingKey: hot() })!;
    p.candidate.outstanding++;
    inFlight.push(p.candidate);
    if (p.reason.includes("skipping")) spilled++;
    const cap = Math.ceil((c * total) / cs.length);
    for (const x of cs) assert.ok(x.outstanding <= cap, `${x.id} has ${x.outstanding} > cap ${cap} (total ${total})`);
  }
  assert.ok(spilled > 1000, `hot keys should have spilled over (${spilled})`);
});

test("weights size the arcs; the reason names the key and ring point; no key uses the fallback", () => {
  const b = new ConsistentHashBalancer({ loadFactor: Infinity, withoutKey: new RoundRobinBalancer() });
  const cs = candidates(3, (i) => ({ weight: i === 0 ? 3 : 1 }));
  const counts = new Map<string, number>();
  for (const id of assign(b, cs).values()) counts.set(id, (counts.get(id) ?? 0) + 1);
  const heavy = counts.get("inst-0")! / KEYS.length;
  assert.ok(Math.abs(heavy - 0.6) < 0.06, `weight 3 of 5 holds ${heavy}`);
  assert.match(b.pick(cs, { method: "/m", routingKey: "acme" })!.reason, /^hash of key 'acme' 0x[0-9a-f]{8} → ring point 0x[0-9a-f]{8}$/);
  assert.equal(b.pick(cs, { method: "/m" })!.reason, "round robin");
  assert.equal(b.pick([], { method: "/m", routingKey: "x" }), undefined);
  assert.equal(
    b.pick(
      candidates(2, () => ({ healthy: false })),
      { method: "/m", routingKey: "x" },
    ),
    undefined,
  );
});

test("joins at several fleet sizes and weights move only the newcomer's share (≤ w/W + ε)", () => {
  for (const n of [2, 5, 20, 50]) {
    for (const w of [1, 3]) {
      const b = ring();
      const before = candidates(n);
      const a1 = assign(b, before);
      const a2 = assign(b, [...before, candidate("inst-new", { weight: w })]);
      let moved = 0;
      for (const k of KEYS) {
        if (a1.get(k) === a2.get(k)) continue;
        moved++;
        assert.equal(a2.get(k), "inst-new", `n=${n} w=${w}: ${k} moved between old instances`);
      }
      const fair = w / (n + w);
      // ε: 100 points per weight give each arc set about ±10 % of its share, plus sampling noise.
      assert.ok(moved / KEYS.length <= fair * 1.2 + 0.01, `n=${n} w=${w}: moved ${moved / KEYS.length}, fair share ${fair}`);
      assert.ok(moved / KEYS.length >= fair * 0.8 - 0.01, `n=${n} w=${w}: newcomer took only ${moved / KEYS.length}`);
    }
  }
});

test("under load the bound spills keys only while it must, and they return afterwards", () => {
  const b = ring(1.25);
  const cs = candidates(4);
  const a1 = assign(b, cs);
  // inst-0 is busy with long calls: its keys spill to the next instance on the ring...
  cs[0]!.outstanding = 100;
  for (const c of cs.slice(1)) c.outstanding = 10;
  const busy = assign(b, cs);
  let spilled = 0;
  for (const k of KEYS) {
    if (a1.get(k) !== "inst-0") assert.equal(busy.get(k), a1.get(k), `${k} moved although its instance had room`);
    else if (busy.get(k) !== "inst-0") spilled++;
  }
  assert.ok(spilled > 0);
  // ...and come home once the load is gone.
  for (const c of cs) c.outstanding = 0;
  assert.deepEqual(assign(b, cs), a1);
});
