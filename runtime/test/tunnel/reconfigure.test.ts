// Router.configure through the real router: bridged instances on loopback, grpc-js clients,
// the balancer / resilience settings / rate limits of a service changed while calls flow.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createBridge, type Bridge, type BridgeOptions, type Router, type RouterServiceOptions } from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, errorOf, interopImpl, methodOf, quietLog, startRouter, waitFor } from "./helpers.js";

const SERVICE = "interop.v1.TestService";

/** responseSize < 0: the instance sleeps that many ms before answering. */
const say = (client: TestClient, responseSize = 1, metadata = new grpc.Metadata()) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize }), metadata);

const tenant = (t: string) => {
  const m = new grpc.Metadata();
  m.set("x-tenant", t);
  return m;
};

interface Fixture {
  router: Router;
  client: TestClient;
  logs: string[];
  add(id: string, options?: Partial<BridgeOptions>): Promise<Bridge>;
}

async function withRouter(service: Partial<RouterServiceOptions>, body: (f: Fixture) => Promise<void>): Promise<void> {
  const { router, target, logs } = await startRouter({ services: [{ tunnel: TestTunnel, ...service }] });
  const client = new TestClient(target);
  const bridges: Bridge[] = [];
  const add = async (id: string, options: Partial<BridgeOptions> = {}) => {
    const b = createBridge(TestTunnel, interopImpl(id), {
      router: target,
      instanceId: id,
      logger: quietLog(),
      backoff: { initialMs: 50, maxMs: 500 },
      ...options,
    });
    bridges.push(b);
    await b.start();
    return b;
  };
  try {
    await body({ router, client, logs, add });
  } finally {
    client.close();
    await Promise.all(bridges.map((b) => b.stop(0)));
    await router.close(0);
  }
}

test("configure: round robin → subset by label while calls flow; none lost, the new distribution applies, instances stay", async () => {
  await withRouter({}, async ({ router, client, logs, add }) => {
    for (const id of ["a1", "a2", "b1", "b2"]) await add(id, { labels: { pool: id[0]! } });
    await waitFor("4 instances", () => router.instances(SERVICE).length === 4);

    // Slow calls in flight across the switch, spread over all four instances by round robin.
    const slow = Array.from({ length: 16 }, () => say(client, -400));
    await waitFor("slow calls in flight", () => router.stats().callsInFlight === 16);
    const before = new Set(
      router
        .instances(SERVICE)
        .filter((i) => i.inFlight > 0)
        .map((i) => i.id),
    );
    assert.deepEqual([...before].sort(), ["a1", "a2", "b1", "b2"]);

    // A steady stream of calls while the balancer changes under it.
    let stop = false;
    const flowing: string[] = [];
    const flow = (async () => {
      while (!stop) flowing.push((await say(client)).res.instanceId);
    })();
    await waitFor("calls flowing", () => flowing.length >= 20);
    router.configure(SERVICE, { balancer: { strategy: "subset", selector: { pool: "b" } } });
    const switchedAt = flowing.length;
    await waitFor("calls flowing after the switch", () => flowing.length >= switchedAt + 40);
    stop = true;
    await flow;

    // Alone (a second caller alternating with this one would see only every other pick).
    const after = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const id = (await say(client)).res.instanceId;
      after.set(id, (after.get(id) ?? 0) + 1);
    }
    // Every slow call finished on the instance it started on (none was lost or retried).
    const done = await Promise.all(slow);
    assert.equal(done.length, 16);
    assert.deepEqual(new Set(done.map((d) => d.res.instanceId)), before);

    assert.deepEqual([...after.keys()].sort(), ["b1", "b2"], `after the switch: ${JSON.stringify([...after])}`);
    assert.ok(after.get("b1")! >= 30 && after.get("b2")! >= 30, `round robin inside the subset: ${JSON.stringify([...after])}`);
    // Calls started after configure returned went to the subset only (one may have been picked just before).
    assert.ok(
      flowing.slice(switchedAt + 1).every((id) => id.startsWith("b")),
      `flow after the switch: ${flowing.slice(switchedAt + 1).join(",")}`,
    );
    assert.equal(router.instances(SERVICE).length, 4, "no instance was dropped");
    assert.ok(!logs.some((l) => l.startsWith("deregistered")), logs.join("\n"));
  });
});

test("configure: invalid settings throw an error naming the field and change nothing", async () => {
  await withRouter({ balancer: { strategy: "subset", selector: { pool: "b" } } }, async ({ router, client, add }) => {
    await add("a1", { labels: { pool: "a" } });
    await add("b1", { labels: { pool: "b" } });
    assert.throws(() => router.configure(SERVICE, { balancer: { strategy: "x" } }), /balancer\.strategy: unknown strategy "x" \(one of round_robin/);
    assert.throws(
      () => router.configure(SERVICE, { resilience: { retry: { maxAttempts: 0 } } }),
      /resilience\.retry\.maxAttempts: must be an integer 1\.\.10, got 0/,
    );
    assert.throws(
      () => router.configure(SERVICE, { rateLimit: { methods: { UnaryCall: { perSecond: 0 } } } }),
      /rateLimit\.methods\.UnaryCall\.perSecond: must be a number > 0/,
    );
    assert.throws(
      () => router.configure(SERVICE, { rateLimit: { methods: { Nope: { perSecond: 1 } } } }),
      /rateLimit\.methods\.Nope: no method "Nope" in this service/,
    );
    assert.throws(() => router.configure("demo.v1.Nope", {}), /no service "demo\.v1\.Nope" \(it routes interop\.v1\.TestService\)/);
    // Still the subset, no rate limit: 20 calls all land on b1.
    for (let i = 0; i < 20; i++) assert.equal((await say(client)).res.instanceId, "b1");
  });
});

test("configure: a new per-instance limit counts the calls already in flight", async () => {
  await withRouter({}, async ({ router, client, add }) => {
    await add("only");
    const slow = say(client, -1500);
    await waitFor("a call in flight", () => router.stats().callsInFlight === 1);
    router.configure(SERVICE, { resilience: { maxConcurrentCallsPerInstance: 1, maxPendingPerInstance: 0 } });
    const e = await errorOf(say(client));
    assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(e.details, /instance 'only' of interop\.v1\.TestService is at its limit of 1 calls in flight/);
    assert.equal((await slow).res.instanceId, "only");
    // Back to no router-side limit: concurrent calls are fine again.
    router.configure(SERVICE, {});
    const many = await Promise.all(Array.from({ length: 5 }, () => say(client, -50)));
    assert.equal(many.length, 5);
  });
});

test("rate limits: per method and per tenant; refused calls get RESOURCE_EXHAUSTED; configure lifts them", async () => {
  // 0.001 calls/s: no token comes back during the test, so the counts are exact.
  const rateLimit = { methods: { UnaryCall: { perSecond: 0.001, burst: 3, key: { metadata: "x-tenant" } } } } as const;
  await withRouter({ rateLimit }, async ({ router, client, add }) => {
    await add("i1");
    const outcome = async (t: string) => {
      const r = await Promise.allSettled(Array.from({ length: 5 }, () => say(client, 1, tenant(t))));
      const refused = r.filter((x) => x.status === "rejected").map((x) => (x as PromiseRejectedResult).reason as grpc.ServiceError);
      return { ok: r.length - refused.length, refused };
    };
    const acme = await outcome("acme");
    assert.equal(acme.ok, 3);
    assert.equal(acme.refused.length, 2);
    for (const e of acme.refused) {
      assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.match(e.details, /rate limit of interop\.v1\.TestService\/UnaryCall exceeded \(0\.001 calls\/s, burst 3\) for x-tenant="acme"/);
    }
    // Another tenant has a bucket of its own.
    assert.equal((await outcome("globex")).ok, 3);
    // Other methods are not limited.
    const empty = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.raw.makeUnaryRequest(
        methodOf("EmptyCall"),
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
        new grpc.Metadata(),
        (err) => resolve(err),
      ),
    );
    assert.equal(empty, null);

    // A service-wide limit instead: 4 calls for everyone together.
    router.configure(SERVICE, { rateLimit: { perSecond: 0.001, burst: 4 } });
    const all = await Promise.allSettled(["a", "b", "c", "d", "e", "f"].map((t) => say(client, 1, tenant(t))));
    assert.equal(all.filter((x) => x.status === "fulfilled").length, 4);

    router.configure(SERVICE, {});
    assert.equal((await outcome("acme")).ok, 5);
  });
});
