// The router config file's validation: every error names the file and the field, and
// settingsFor merges "*" under a service's own entry.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { loadRouterConfig, parseRouterConfig, parseRouterConfigText, settingsFor } from "../../src/config/index.js";

const bad = (value: unknown, re: RegExp) => assert.throws(() => parseRouterConfig(value, "router.json"), re);

test("errors name the file and the field", () => {
  bad(
    { services: { "demo.v1.Echo": { balancer: { strategy: "x" } } } },
    /^RouterConfigError: router\.json: services\["demo\.v1\.Echo"\]\.balancer\.strategy: unknown strategy "x" \(one of round_robin, weighted_round_robin, least_outstanding, consistent_hash, subset, split, pin, locality, custom\)$/,
  );
  bad(
    { services: { "demo.v1.Echo": { balancer: { strategy: "split", splits: [{ labels: { v: "1" }, percent: 120 }] } } } },
    /router\.json: services\["demo\.v1\.Echo"\]\.balancer\.splits\[0\]\.percent: must be a number between 0 and 100/,
  );
  bad(
    { services: { "*": { resilience: { retry: { maxAttempts: 11 } } } } },
    /^RouterConfigError: router\.json: services\["\*"\]\.resilience\.retry\.maxAttempts: must be an integer 1\.\.10, got 11$/,
  );
  bad(
    { services: { "*": { resilience: { retry: { budget: { windw: 5 } } } } } },
    /router\.json: services\["\*"\]\.resilience\.retry\.budget\.windw: unknown field \(allowed here: ratio, minRetriesPerSecond, windowMs\)/,
  );
  bad({ services: { "*": { resilience: { outlier: 5 } } } }, /services\["\*"\]\.resilience\.outlier: must be an object, got 5/);
  bad(
    { services: { "a.B": { waitForReady: { maxWaitMs: -1 } } } },
    /router\.json: services\["a\.B"\]\.waitForReady\.maxWaitMs: must be a number 0\.\.∞, got -1/,
  );
  bad({ services: { "a.B": { waitForReady: "yes" } } }, /services\["a\.B"\]\.waitForReady: must be true, false or an object/);
  bad(
    { services: { "a.B": { rateLimit: { methods: { Say: { perSecond: 0 } } } } } },
    /router\.json: services\["a\.B"\]\.rateLimit\.methods\.Say\.perSecond: must be a number > 0 \(calls per second\), got 0/,
  );
  bad(
    { services: { "*": { rateLimit: { methods: { Say: { perSecond: 1 } } } } } },
    /services\["\*"\]\.rateLimit\.methods: per-method limits belong under a named service/,
  );
  bad(
    { services: { "a.B": { balancr: "round_robin" } } },
    /router\.json: services\["a\.B"\]\.balancr: unknown field \(allowed here: balancer, resilience, waitForReady, rateLimit\)/,
  );
  bad({ services: { "not a name": {} } }, /router\.json: services\["not a name"\]: not a fully-qualified service name/);
  bad({ servics: {} }, /router\.json: config\.servics: unknown field \(allowed here: services, cors, clientAuth\)/);
  bad([], /^RouterConfigError: router\.json: must be an object \{"services": \{…\}\}, got an array$/);
});

test("JSON syntax errors give the line", () => {
  assert.throws(
    () => parseRouterConfigText('{\n  "services": {\n    "a.B": { "balancer": "round_robin", }\n  }\n}\n', "router.json"),
    /^RouterConfigError: router\.json: not valid JSON: .*line 3/,
  );
});

test('a valid file; settingsFor puts a service\'s own fields over the "*" ones', () => {
  const config = parseRouterConfig(
    {
      services: {
        "*": { balancer: "least_outstanding", waitForReady: true, rateLimit: { perSecond: 100, burst: 200 } },
        "demo.v1.Echo": {
          balancer: { strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } },
          resilience: { maxConcurrentCallsPerInstance: 10, retry: { maxAttempts: 2, budget: { ratio: 0.1 } } },
          rateLimit: { methods: { Say: { perSecond: 5, burst: 10, key: { metadata: "x-tenant" } } } },
        },
      },
    },
    "router.json",
  );
  assert.deepEqual(settingsFor(config, "demo.v1.Echo"), {
    balancer: { strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } },
    resilience: { maxConcurrentCallsPerInstance: 10, retry: { maxAttempts: 2, budget: { ratio: 0.1 } } },
    waitForReady: true,
    rateLimit: { methods: { Say: { perSecond: 5, burst: 10, key: { metadata: "x-tenant" } } } },
  });
  assert.deepEqual(settingsFor(config, "other.v1.Thing"), {
    balancer: { strategy: "least_outstanding" },
    waitForReady: true,
    rateLimit: { perSecond: 100, burst: 200 },
  });
  assert.deepEqual(settingsFor(parseRouterConfig({}), "a.B"), {});
});

test("loadRouterConfig reads a file and names it in errors", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "grpcrouter-config-"));
  try {
    const file = path.join(dir, "router.json");
    await writeFile(file, JSON.stringify({ services: { "a.B": { balancer: "round_robin" } } }));
    assert.deepEqual(await loadRouterConfig(file), { services: { "a.B": { balancer: { strategy: "round_robin" } } } });
    await assert.rejects(loadRouterConfig(path.join(dir, "missing.json"), "missing.json"), /^RouterConfigError: missing\.json: cannot read it: ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
