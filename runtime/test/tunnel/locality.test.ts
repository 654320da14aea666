// Zone-aware routing through the real router: bridged instances labelled with zones, a
// router that knows its own zone, grpc-js clients; which instance served each call is read
// from the response.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { createBridge, type Bridge } from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, interopImpl, methodOf, quietLog, startRouter, waitFor } from "./helpers.js";

test("locality keeps calls in the router's zone until its instances go, then fails over to the other zone", async () => {
  const { router, target } = await startRouter({ services: [{ tunnel: TestTunnel, balancer: { strategy: "locality", zone: "z1" } }] });
  const client = new TestClient(target);
  const bridges = new Map<string, Bridge>();
  const add = async (id: string, zone: string) => {
    const b = createBridge(TestTunnel, interopImpl(id), {
      router: target,
      instanceId: id,
      labels: { zone },
      logger: quietLog(),
      backoff: { initialMs: 50, maxMs: 500 },
    });
    bridges.set(id, b);
    await b.start();
  };
  const served = async (n: number) => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const { res } = await client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 1 }));
      counts.set(res.instanceId, (counts.get(res.instanceId) ?? 0) + 1);
    }
    return counts;
  };
  try {
    await add("z1-a", "z1");
    await add("z1-b", "z1");
    await add("z2-a", "z2");
    await waitFor("three instances", () => router.stats().streams.length === 3);
    const home = await served(60);
    assert.deepEqual([...home.keys()].sort(), ["z1-a", "z1-b"], "every call stays in z1");
    assert.equal(home.get("z1-a"), 30);

    await bridges.get("z1-a")!.stop(0);
    await bridges.get("z1-b")!.stop(0);
    await waitFor("z1 gone", () => router.stats().streams.length === 1);
    const away = await served(20);
    assert.deepEqual([...away.keys()], ["z2-a"], "z1 is down: calls fail over to z2, none fails");

    await add("z1-c", "z1");
    await waitFor("z1 back", () => router.stats().streams.length === 2);
    assert.deepEqual([...(await served(20)).keys()], ["z1-c"], "back home once z1 has an instance again");
  } finally {
    client.close();
    await Promise.all([...bridges.values()].map((b) => b.stop(0)));
    await router.close(0);
  }
});
