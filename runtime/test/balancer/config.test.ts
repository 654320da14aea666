import { test } from "node:test";
import assert from "node:assert/strict";
import { Balancer as BalancerEnum } from "../../src/gen/grpcrouter/v1/options_pb.js";
import { BalancerConfigError, balancerConfigFromProto, createBalancer, parseBalancerConfig } from "../../src/balancer/index.js";

test("the proto enum, its names and plain names all map to strategies", () => {
  assert.deepEqual(balancerConfigFromProto(BalancerEnum.CONSISTENT_HASH), { strategy: "consistent_hash" });
  assert.deepEqual(balancerConfigFromProto(BalancerEnum.UNSPECIFIED), { strategy: "round_robin" });
  assert.deepEqual(parseBalancerConfig("BALANCER_LEAST_OUTSTANDING"), { strategy: "least_outstanding" });
  assert.deepEqual(parseBalancerConfig(BalancerEnum.WEIGHTED_ROUND_ROBIN), { strategy: "weighted_round_robin" });
  assert.deepEqual(parseBalancerConfig({ strategy: "CONSISTENT_HASH", loadFactor: 1.5, withoutKey: "least_outstanding" }), {
    strategy: "consistent_hash",
    loadFactor: 1.5,
    withoutKey: { strategy: "least_outstanding" },
  });
  assert.equal(createBalancer("consistent_hash").describe(), "consistent hash (100 points per weight, load ≤ 1.25× average; no key → round robin)");
});

test("validation errors name the field and what is wrong", () => {
  const cases: [unknown, RegExp][] = [
    [{ strategy: "fastest" }, /^balancer\.strategy: unknown strategy "fastest" \(one of round_robin, .*\)$/],
    [{}, /^balancer\.strategy: must be one of /],
    [42, /^balancer: unknown Balancer enum value 42$/],
    [null, /^balancer: must be a strategy name or an object/],
    [{ strategy: "round_robin", weight: 3 }, /^balancer\.weight: unknown field \(allowed here: strategy\)$/],
    [{ strategy: "consistent_hash", loadFactor: 1 }, /^balancer\.loadFactor: must be a number > 1/],
    [{ strategy: "consistent_hash", virtualNodes: 2.5 }, /^balancer\.virtualNodes: must be an integer 1\.\.10000, got number 2\.5$/],
    [
      { strategy: "split", splits: [{ labels: { version: "v2" }, percent: 150 }] },
      /^balancer\.splits\[0\]\.percent: must be a number between 0 and 100, got number 150$/,
    ],
    [
      {
        strategy: "split",
        splits: [
          { labels: { v: "a" }, percent: 60 },
          { labels: { v: "b" }, percent: 50 },
        ],
      },
      /^balancer\.splits\[1\]\.percent: splits add up to 110 %, more than 100 %$/,
    ],
    [{ strategy: "split", splits: [{ labels: {}, percent: 5 }] }, /^balancer\.splits\[0\]\.labels: must name at least one label$/],
    [{ strategy: "split", splits: [{ labels: { v: 2 }, percent: 5 }] }, /^balancer\.splits\[0\]\.labels\.v: must be a string, got number 2$/],
    [{ strategy: "split", splits: [{ labels: { v: "2" }, percnt: 5 }] }, /^balancer\.splits\[0\]\.percnt: unknown field/],
    [
      { strategy: "subset", selector: { tenant: { header: "x" } } },
      /^balancer\.selector\.tenant: must be a label value, \{"metadata": "<key>"\} or \{"routingKey": true\}/,
    ],
    [{ strategy: "subset", selector: { tenant: "a" }, fallback: "maybe" }, /^balancer\.fallback: must be "fail" or "any", got "maybe"$/],
    [{ strategy: "pin" }, /^balancer\.metadataKey: must be a non-empty string, got nothing$/],
    [{ strategy: "pin", metadataKey: "x", inner: { strategy: "subset", selector: {} } }, /^balancer\.inner\.selector: must be an object/],
  ];
  for (const [config, message] of cases) {
    assert.throws(
      () => createBalancer(config),
      (e: unknown) => e instanceof BalancerConfigError && message.test(e.message),
      `${JSON.stringify(config)} should fail with ${message}`,
    );
  }
  try {
    parseBalancerConfig({ strategy: "split", splits: [{ labels: { v: "a" }, percent: -1 }] }, { path: "services.Orders.balancer", source: "grpcrouter.json" });
    assert.fail("should throw");
  } catch (e) {
    assert.ok(e instanceof BalancerConfigError);
    assert.equal(e.path, "services.Orders.balancer.splits[0].percent");
    assert.match(e.message, /^grpcrouter\.json: services\.Orders\.balancer\.splits\[0\]\.percent: /);
  }
});
