// The token buckets of RateLimiter with an injected clock: refill, burst, keys, and that a
// call refused by one bucket takes no token from another.
import assert from "node:assert/strict";
import { test } from "node:test";
import { RateLimiter, parseRateLimits } from "../../src/tunnel/index.js";

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const admitted = (l: RateLimiter, n: number, call: Parameters<RateLimiter["admit"]>[0]) => {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.admit(call) === undefined) ok++;
  return ok;
};

test("a bucket allows its burst, then refills at perSecond", () => {
  const c = clock();
  const l = new RateLimiter("demo.v1.Echo", { perSecond: 10, burst: 5 }, c.now);
  assert.equal(admitted(l, 8, { method: "Say" }), 5);
  c.advance(250); // 2.5 tokens
  assert.equal(admitted(l, 8, { method: "Say" }), 2);
  c.advance(10_000); // never more than the burst
  assert.equal(admitted(l, 8, { method: "Say" }), 5);
  assert.match(l.admit({ method: "Say" })!, /^rate limit of demo\.v1\.Echo exceeded \(10 calls\/s, burst 5\)$/);
});

test("the default burst is perSecond (at least 1)", () => {
  const c = clock();
  assert.equal(admitted(new RateLimiter("s", { perSecond: 20 }, c.now), 30, { method: "Say" }), 20);
  assert.equal(admitted(new RateLimiter("s", { perSecond: 0.5 }, c.now), 3, { method: "Say" }), 1);
});

test("keys: one bucket per routing key or metadata value; calls without one share a bucket", () => {
  const c = clock();
  const byTenant = new RateLimiter("s", { perSecond: 1, burst: 2, key: { metadata: "x-tenant" } }, c.now);
  const md = (t?: string) => (k: string) => (k === "x-tenant" ? t : undefined);
  assert.equal(admitted(byTenant, 5, { method: "Say", metadata: md("a") }), 2);
  assert.equal(admitted(byTenant, 5, { method: "Say", metadata: md("b") }), 2);
  assert.equal(admitted(byTenant, 5, { method: "Say", metadata: md(undefined) }), 2);
  assert.match(byTenant.admit({ method: "Say" })!, /for calls without x-tenant$/);
  const byKey = new RateLimiter("s", { perSecond: 1, burst: 1, key: "routingKey" }, c.now);
  assert.equal(admitted(byKey, 3, { method: "Say", routingKey: "k1" }), 1);
  assert.match(byKey.admit({ method: "Say", routingKey: "k1" })!, /for routing key "k1"/);
  assert.equal(admitted(byKey, 3, { method: "Say", routingKey: "k2" }), 1);
});

test("service and method limits: a call needs a token from both, and a refusal takes none", () => {
  const c = clock();
  const l = new RateLimiter("demo.v1.Echo", { perSecond: 1, burst: 4, methods: { Say: { perSecond: 1, burst: 2 } } }, c.now);
  assert.equal(admitted(l, 5, { method: "Say" }), 2); // the method's bucket is the tighter one
  assert.match(l.admit({ method: "Say" })!, /rate limit of demo\.v1\.Echo\/Say exceeded/);
  // The three refused Say calls took nothing from the service bucket: 2 left for others.
  assert.equal(admitted(l, 5, { method: "Count" }), 2);
});

test("parseRateLimits names the field", () => {
  assert.throws(() => parseRateLimits({ perSecond: "fast" }), /^RateLimitConfigError: rateLimit\.perSecond: must be a number > 0/);
  assert.throws(() => parseRateLimits({ perSecond: 1, burst: 0.5 }), /rateLimit\.burst: must be an integer >= 1, got 0\.5/);
  assert.throws(() => parseRateLimits({ perSecond: 1, key: "tenant" }), /rateLimit\.key: must be "routingKey" or \{"metadata": "<key>"\}/);
  assert.throws(() => parseRateLimits({ perSecnd: 1 }), /rateLimit\.perSecnd: unknown field \(allowed here: perSecond, burst, key, methods\)/);
  assert.throws(() => parseRateLimits({ burst: 3 }), /rateLimit\.perSecond: must be a number > 0/);
  assert.deepEqual(parseRateLimits({ methods: { Say: { perSecond: 2, key: { metadata: "X-Tenant" } } } }), {
    methods: { Say: { perSecond: 2, key: { metadata: "x-tenant" } } },
  });
});
