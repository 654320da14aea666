// Load balancing through the real router: several bridged instances on loopback, grpc-js
// clients, and the strategy given in RouterServiceOptions.balancer. Distributions are
// counted from the instance id each response carries.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { AdminHub } from "../../src/admin/index.js";
import { createBridge, createRouter, type Bridge, type BridgeOptions, type Router, type RouterServiceOptions } from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema, type SimpleRequest, type TestService } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, errorOf, interopImpl, methodOf, quietLog, startRouter, waitFor } from "./helpers.js";

const say = (client: TestClient, metadata = new grpc.Metadata(), responseSize = 1) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize }), metadata);

const md = (entries: Record<string, string>) => {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) m.set(k, v);
  return m;
};

/** `n` calls, `concurrency` at a time; how many each instance served. */
async function spread(client: TestClient, n: number, concurrency = 20, metadata = () => new grpc.Metadata()): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < n) {
        started++;
        const { res } = await say(client, metadata());
        counts.set(res.instanceId, (counts.get(res.instanceId) ?? 0) + 1);
      }
    }),
  );
  return counts;
}

const share = (counts: Map<string, number>, id: string, n: number) => (counts.get(id) ?? 0) / n;

type Impl = Partial<ServiceImpl<typeof TestService>>;

interface Fixture {
  router: Router;
  client: TestClient;
  hub: AdminHub;
  add(id: string, options?: Partial<BridgeOptions>, impl?: Impl): Promise<Bridge>;
}

async function withRouter(service: Partial<RouterServiceOptions>, body: (f: Fixture) => Promise<void>): Promise<void> {
  const hub = new AdminHub();
  const { router, target } = await startRouter({ hub, services: [{ tunnel: TestTunnel, ...service }] });
  const client = new TestClient(target);
  const bridges: Bridge[] = [];
  const add = async (id: string, options: Partial<BridgeOptions> = {}, impl: Impl = interopImpl(id)) => {
    const b = createBridge(TestTunnel, impl, { router: target, instanceId: id, logger: quietLog(), backoff: { initialMs: 50, maxMs: 500 }, ...options });
    bridges.push(b);
    await b.start();
    return b;
  };
  try {
    await body({ router, client, hub, add });
  } finally {
    client.close();
    await Promise.all(bridges.map((b) => b.stop(0)));
    await router.close(0);
  }
}

test("weighted round robin: weights from Hello are respected, and a weight changed at runtime applies", async () => {
  await withRouter({ balancer: "weighted_round_robin" }, async ({ router, client, add }) => {
    const w1 = await add("w1", { weight: 1 });
    await add("w2", { weight: 2 });
    await add("w5", { weight: 5 });
    const n = 800;
    const before = await spread(client, n);
    for (const [id, w] of [
      ["w1", 1],
      ["w2", 2],
      ["w5", 5],
    ] as const) {
      const s = share(before, id, n);
      assert.ok(Math.abs(s - w / 8) <= 0.03, `${id}: ${(s * 100).toFixed(1)} % of calls, expected ${(100 * w) / 8} %`);
    }
    // w1 re-registers with weight 5 (a new Hello on a fresh stream) while calls flow: none fails.
    const during = spread(client, 300, 5);
    w1.update({ weight: 5 });
    await during;
    await waitFor(
      "the new weight",
      () => router.instances().find((i) => i.id === "w1")?.weight === 5 && router.instances().find((i) => i.id === "w1")?.streams === 1,
    );
    const m = 1200;
    const after = await spread(client, m);
    for (const [id, w] of [
      ["w1", 5],
      ["w2", 2],
      ["w5", 5],
    ] as const) {
      const s = share(after, id, m);
      assert.ok(Math.abs(s - w / 12) <= 0.03, `after the change ${id}: ${(s * 100).toFixed(1)} % of calls, expected ${((100 * w) / 12).toFixed(1)} %`);
    }
  });
});

test("consistent hashing on a request field: keys stay on their instance; a join moves at most 1/N + ε of them, all to the newcomer", async () => {
  // The routing key is a request field (as a proto's routing_key option generates it).
  const routingKeys = { UnaryCall: (call: { request?: unknown }) => `user-${(call.request as SimpleRequest | undefined)?.responseSize}` };
  await withRouter({ balancer: { strategy: "consistent_hash" }, routingKeys }, async ({ router, client, add }) => {
    for (const id of ["h1", "h2", "h3"]) await add(id);
    const keys = Array.from({ length: 240 }, (_, i) => i + 1);
    // One call at a time: bounded load sees no imbalance, so placement is the ring's alone.
    const place = async () => {
      const where = new Map<number, string>();
      for (const k of keys) where.set(k, (await say(client, undefined, k)).res.instanceId);
      return where;
    };
    const first = await place();
    assert.deepEqual(new Set(first.values()), new Set(["h1", "h2", "h3"]), "every instance owns keys");
    assert.deepEqual(await place(), first, "every key stays on its instance");
    const h4 = await add("h4");
    const second = await place();
    const moved = keys.filter((k) => second.get(k) !== first.get(k));
    assert.ok(moved.length > 0, "the newcomer takes some keys");
    assert.ok(moved.length / keys.length <= 1 / 4 + 0.1, `${moved.length} of ${keys.length} keys moved`);
    assert.ok(
      moved.every((k) => second.get(k) === "h4"),
      "keys move only to the instance that joined",
    );
    // It leaves: exactly its keys go back where they were.
    await h4.stop(5000);
    await waitFor("h4 to leave", () => router.instances().length === 3);
    assert.deepEqual(await place(), first);
  });
});

test("label subsets: tenant=acme calls never leak to other instances, even when acme's instances are down", async () => {
  await withRouter({ balancer: { strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } } }, async ({ router, client, add }) => {
    const a1 = await add("acme-1", { labels: { tenant: "acme" } });
    const a2 = await add("acme-2", { labels: { tenant: "acme" } });
    await add("beta-1", { labels: { tenant: "beta" } });
    await add("plain");
    const acme = await spread(client, 200, 10, () => md({ "x-tenant": "acme" }));
    assert.deepEqual([...acme.keys()].sort(), ["acme-1", "acme-2"]);
    assert.ok(share(acme, "acme-1", 200) >= 0.3, "both acme instances share the tenant's calls");
    const beta = await spread(client, 50, 10, () => md({ "x-tenant": "beta" }));
    assert.deepEqual([...beta.keys()], ["beta-1"]);
    const unknown = await errorOf(say(client, md({ "x-tenant": "zeta" })));
    assert.equal(unknown.code, grpc.status.UNAVAILABLE);
    const missing = await errorOf(say(client));
    assert.equal(missing.code, grpc.status.UNAVAILABLE, "a call without a tenant goes nowhere (onMissing: fail)");
    // Both acme instances report NOT_SERVING: acme's calls fail rather than go elsewhere.
    a1.setServing(false);
    a2.setServing(false);
    await waitFor("acme to be out", () => router.instances().filter((i) => i.id.startsWith("acme") && i.health === "not_serving").length === 2);
    for (let i = 0; i < 20; i++) {
      const err = await errorOf(say(client, md({ "x-tenant": "acme" })));
      assert.equal(err.code, grpc.status.UNAVAILABLE, err.details);
    }
    // SERVING again: back in the picks.
    a1.setServing(true);
    await waitFor("acme-1 to be back", () => router.instances().find((i) => i.id === "acme-1")?.serving === true);
    const back = await spread(client, 20, 4, () => md({ "x-tenant": "acme" }));
    assert.deepEqual([...back.keys()], ["acme-1"]);
  });
});

test("pinning by metadata: a call naming an instance id goes there; the admin hub says which instance and why", async () => {
  await withRouter({ balancer: { strategy: "pin", metadataKey: "x-instance", inner: "round_robin" } }, async ({ client, add, hub }) => {
    for (const id of ["p1", "p2", "p3"]) await add(id);
    const pinned = await spread(client, 30, 5, () => md({ "x-instance": "p2" }));
    assert.deepEqual([...pinned.keys()], ["p2"]);
    const free = await spread(client, 30, 5);
    assert.deepEqual([...free.keys()].sort(), ["p1", "p2", "p3"], "calls without the header are balanced");
    const gone = await errorOf(say(client, md({ "x-instance": "nobody" })));
    assert.equal(gone.code, grpc.status.UNAVAILABLE);
    const started = hub
      .snapshot()
      .calls.map((c) => c.started!)
      .filter((s) => s.instanceId !== "");
    const pins = started.filter((s) => s.instanceId === "p2" && /pinned by x-instance/.test(s.reason));
    assert.equal(pins.length, 30, "every pinned call's reason names the pin");
    assert.ok(
      started.every((s) => s.reason.length > 0),
      "every routed call has a reason",
    );
  });
});

test("least outstanding: a slow instance gets fewer calls", async () => {
  await withRouter({ balancer: "least_outstanding" }, async ({ client, add }) => {
    // "Slow" holds every call until the fast instance has served all but the last window of
    // calls, so the outcome depends on outstanding counts, not on how loaded the machine is.
    // A balancer that ignores them (round robin) would park every caller on "slow": the
    // fallback timer then lets the calls through and the share assertion fails.
    const n = 400;
    const concurrency = 16;
    let fastServed = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const fallback = setTimeout(release, 60_000);
    const slowImpl = interopImpl("slow");
    const fastImpl = interopImpl("fast");
    const slow: Impl = {
      ...slowImpl,
      async unaryCall(req, ctx) {
        await released;
        return slowImpl.unaryCall!(req, ctx);
      },
    };
    const fast: Impl = {
      ...fastImpl,
      async unaryCall(req, ctx) {
        if (++fastServed >= n - 2 * concurrency) release();
        return fastImpl.unaryCall!(req, ctx);
      },
    };
    await add("slow", {}, slow);
    await add("fast", {}, fast);
    try {
      const counts = await spread(client, n, concurrency);
      assert.ok(share(counts, "slow", n) < 0.15, `the slow instance served ${counts.get("slow")} of ${n}`);
    } finally {
      clearTimeout(fallback);
    }
  });
});

test("traffic split: 5 % of calls go to version=v2, and a custom strategy is a plain function", async () => {
  await withRouter({ balancer: { strategy: "split", splits: [{ labels: { version: "v2" }, percent: 5 }] } }, async ({ client, add }) => {
    await add("v1-a", { labels: { version: "v1" } });
    await add("v1-b", { labels: { version: "v1" } });
    await add("v2", { labels: { version: "v2" } });
    const n = 1000;
    const counts = await spread(client, n);
    const s = share(counts, "v2", n);
    assert.ok(s >= 0.03 && s <= 0.07, `v2 got ${(s * 100).toFixed(1)} % of calls`);
  });
  await withRouter(
    {
      balancer: (candidates: readonly { labels: Readonly<Record<string, string>>; healthy: boolean }[]) =>
        candidates.find((c) => c.healthy && c.labels["zone"] === "b"),
    },
    async ({ client, add }) => {
      await add("za", { labels: { zone: "a" } });
      await add("zb", { labels: { zone: "b" } });
      const counts = await spread(client, 20, 4);
      assert.deepEqual([...counts.keys()], ["zb"]);
    },
  );
});

test("bad balancer or resilience settings fail createRouter with the service and the field named", () => {
  assert.throws(
    () => createRouter({ services: [{ tunnel: TestTunnel, balancer: { strategy: "fastest" } }], logger: quietLog() }),
    /interop\.v1\.TestService: balancer\.strategy: unknown strategy "fastest"/,
  );
  assert.throws(
    () =>
      createRouter({
        services: [{ tunnel: TestTunnel, balancer: { strategy: "split", splits: [{ labels: { version: "v2" }, percent: 150 }] } }],
        logger: quietLog(),
      }),
    /balancer\.splits\[0\]\.percent: must be a number between 0 and 100/,
  );
  assert.throws(
    () => createRouter({ services: [{ tunnel: TestTunnel }], resilience: { retry: { maxAttempts: 0 } }, logger: quietLog() }),
    /resilience\.retry\.maxAttempts: must be an integer 1\.\.10, got 0/,
  );
});
