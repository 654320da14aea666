// Router.addService / replaceService / removeService through a real router: what
// `grpcrouter serve` does on a hot reload with its one router. Bridged instances on
// loopback, grpc-js clients, slow calls in flight across each change.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminHub } from "../../src/admin/index.js";
import { defineTunnel, type Bridge, type Router } from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, errorOf, methodOf, startBridge, startRouter, waitFor } from "./helpers.js";

const SERVICE = "interop.v1.TestService";

/** responseSize < 0: the instance sleeps that many ms before answering. */
const say = (client: TestClient, responseSize = 1) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize }));

/** The same service as a reloaded proto gives it: a new spec object, the same frame fields. */
const sameTunnel = () => defineTunnel(TestTunnel.service, TestTunnel.routerService, { ...TestTunnel.fields });

async function withBridges(router: Router, target: string, ids: string[], body: (bridges: Bridge[], client: TestClient) => Promise<void>): Promise<void> {
  const bridges: Bridge[] = [];
  const client = new TestClient(target);
  try {
    for (const id of ids) bridges.push(await startBridge(target, id));
    await body(bridges, client);
  } finally {
    client.close();
    await Promise.all(bridges.map((b) => b.stop(0)));
    await router.close(0);
  }
}

test("replaceService: instances, their health and calls in flight stay; new calls use the new definition and settings", async () => {
  const { router, target, logs } = await startRouter();
  await withBridges(router, target, ["a", "b"], async (_bridges, client) => {
    await waitFor("2 instances", () => router.instances(SERVICE).length === 2);
    const registeredAt = router.instances(SERVICE).map((i) => i.registeredAt.getTime());
    const slow = Array.from({ length: 4 }, () => say(client, -400));
    await waitFor("slow calls in flight", () => router.stats().callsInFlight === 4);

    router.replaceService({ tunnel: sameTunnel(), rateLimit: { perSecond: 1000, burst: 1000 } });

    for (const r of await Promise.all(slow)) assert.ok(["a", "b"].includes(r.res.instanceId), "the calls in flight finished where they were");
    assert.deepEqual(
      router.instances(SERVICE).map((i) => i.registeredAt.getTime()),
      registeredAt,
      "the same registrations",
    );
    assert.ok(router.instances(SERVICE).every((i) => i.serving));
    assert.equal((await say(client)).res.payload?.body.length, 1, "new calls go through");
    assert.ok(router.hasServingInstance(SERVICE));
    assert.ok(
      logs.some((l) => /replaced interop\.v1\.TestService$/.test(l)),
      logs.join("\n"),
    );
    assert.ok(!logs.some((l) => /draining|deregistered/.test(l)), "nobody was told to drain");
  });
});

test("replaceService: a method that changes its frame field drains the instances, which register anew", async () => {
  const { router, target, logs } = await startRouter();
  await withBridges(router, target, ["a"], async () => {
    await waitFor("the instance", () => router.instances(SERVICE).length === 1);
    const swapped = defineTunnel(TestTunnel.service, TestTunnel.routerService, { ...TestTunnel.fields, EmptyCall: 30 });
    router.replaceService({ tunnel: swapped });
    assert.ok(
      logs.some((l) => /replaced interop\.v1\.TestService: its methods changed frame fields/.test(l)),
      logs.join("\n"),
    );
    const registrations = () => logs.filter((l) => /^registered instance "a"/.test(l)).length;
    await waitFor("the instance registered anew", () => registrations() === 2 && router.instances(SERVICE).some((i) => !i.draining && i.serving));
  });
});

test("addService and removeService: a router that starts with no service; a removed one's calls in flight finish, new ones are UNIMPLEMENTED", async () => {
  const hub = new AdminHub();
  const changes: Array<[string, boolean]> = [];
  const { router, target } = await startRouter({ services: [], hub, onServingChange: (s, serving) => changes.push([s, serving]) });
  assert.deepEqual(router.services, []);
  assert.throws(() => router.replaceService({ tunnel: TestTunnel }), /no service "interop\.v1\.TestService"/);
  assert.throws(() => router.addService({ tunnel: sameTunnel(), rateLimit: { perSecond: -1 } }), /rateLimit\.perSecond/);
  assert.deepEqual(router.services, [], "invalid settings change nothing");
  router.addService({ tunnel: TestTunnel });
  assert.throws(() => router.addService({ tunnel: TestTunnel }), /routes interop\.v1\.TestService already/);
  assert.deepEqual(hub.serviceNames, [SERVICE]);
  await withBridges(router, target, ["a"], async (bridges, client) => {
    await waitFor("the instance", () => router.hasServingInstance(SERVICE));
    assert.deepEqual(changes, [[SERVICE, true]]);
    const slow = say(client, -400);
    await waitFor("a slow call in flight", () => router.stats().callsInFlight === 1);

    const removed = router.removeService(SERVICE, 10_000);
    assert.deepEqual(router.services, []);
    assert.deepEqual(hub.serviceNames, []);
    const refused = await errorOf(say(client));
    assert.equal(refused.code, grpc.status.UNIMPLEMENTED, "new calls are not the router's any more");
    assert.equal((await slow).res.instanceId, "a", "the call in flight finished");
    await removed;
    assert.deepEqual(router.instances(), [], "its instance left with it");
    assert.equal(router.hasServingInstance(SERVICE), false);
    assert.deepEqual(changes, [[SERVICE, true]], "no health change reported for a service that is gone");
    void bridges;
  });
});
