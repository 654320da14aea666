// Health and resilience through the real router (runtime/src/resilience wired into the
// tunnel): HealthReport, outlier ejection with a timed return, call limits with bounded
// queues, retries of UNAVAILABLE for idempotent methods under a budget, wait-for-ready,
// graceful drain, a black-holed instance and a flapping one. Real gRPC on loopback.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { AdminHub } from "../../src/admin/index.js";
import { ManualClock } from "../../src/resilience/index.js";
import { Instance_Health } from "../../src/gen/grpcrouter/v1/admin_pb.js";
import { HelloSchema, PingSchema, ProtocolVersion } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import {
  createBridge,
  createRouter,
  defineTunnel,
  FrameEncoder,
  InstanceFrame,
  type Bridge,
  type BridgeOptions,
  type Router,
  type RouterOptions,
} from "../../src/tunnel/index.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
  file_interop_v1_test,
  type SimpleRequest,
  type StreamingOutputCallRequest,
} from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, errorOf, interopImpl, methodOf, quietLog, waitFor } from "./helpers.js";

// ---- a service whose proto declares idempotency levels ----
// As buf compiles it: Get has `option idempotency_level = NO_SIDE_EFFECTS`, Watch
// `IDEMPOTENT`, Put nothing.
const storeFile = create(FileDescriptorProtoSchema, {
  name: "resil/v1/store.proto",
  package: "resil.v1",
  syntax: "proto3",
  dependency: [file_interop_v1_test.proto.name],
  service: [
    {
      name: "Store",
      method: [
        {
          name: "Get",
          inputType: ".interop.v1.SimpleRequest",
          outputType: ".interop.v1.SimpleResponse",
          options: { idempotencyLevel: MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS },
        },
        { name: "Put", inputType: ".interop.v1.SimpleRequest", outputType: ".interop.v1.SimpleResponse" },
        {
          name: "Watch",
          inputType: ".interop.v1.StreamingOutputCallRequest",
          outputType: ".interop.v1.StreamingOutputCallResponse",
          serverStreaming: true,
          options: { idempotencyLevel: MethodOptions_IdempotencyLevel.IDEMPOTENT },
        },
      ],
    },
  ],
});
const Store: DescService = createFileRegistry(storeFile, (name) => (name === file_interop_v1_test.proto.name ? file_interop_v1_test : undefined)).getService(
  "resil.v1.Store",
)!;
const StoreTunnel = defineTunnel(Store, "resil.v1.StoreRouter", { Get: 16, Put: 17, Watch: 18 });

interface StoreProbe {
  calls: Record<string, number>;
  /** When true, every method fails UNAVAILABLE (Watch after `watchFirst` messages). */
  failing: boolean;
}

function storeImpl(instanceId: string, probe: StoreProbe): Partial<ServiceImpl<DescService>> {
  const count = (m: string) => (probe.calls[m] = (probe.calls[m] ?? 0) + 1);
  const unavailable = () => new ConnectError(`${instanceId} is unavailable`, Code.Unavailable);
  const answer = (req: SimpleRequest) => create(SimpleResponseSchema, { instanceId, payload: { body: new Uint8Array(Math.max(0, req.responseSize)) } });
  return {
    get: async (req: SimpleRequest) => {
      count("Get");
      if (probe.failing) throw unavailable();
      return answer(req);
    },
    put: async (req: SimpleRequest) => {
      count("Put");
      if (probe.failing) throw unavailable();
      return answer(req);
    },
    watch: async function* (req: StreamingOutputCallRequest) {
      count("Watch");
      for (const [i, p] of req.responseParameters.entries()) {
        // A failing instance fails before its first response, unless asked to send some first.
        if (probe.failing && i >= (p.intervalUs === 1 ? 1 : 0)) throw unavailable();
        yield create(StreamingOutputCallResponseSchema, { instanceId, payload: { body: new Uint8Array(p.size) } });
      }
      if (probe.failing) throw unavailable();
    },
  } as unknown as Partial<ServiceImpl<DescService>>;
}

const storePath = (m: string) => `/resil.v1.Store/${m}`;
const get = (client: TestClient, method = "Get", options: grpc.CallOptions = {}) =>
  client.unary(storePath(method), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 1 }), new grpc.Metadata(), options);

const say = (client: TestClient, responseSize = 1, options: grpc.CallOptions = {}) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize }), new grpc.Metadata(), options);

const bridgeOptions = (target: string | string[], id: string, extra: Partial<BridgeOptions> = {}): BridgeOptions => ({
  router: target,
  instanceId: id,
  logger: quietLog(),
  backoff: { initialMs: 50, maxMs: 500 },
  ...extra,
});

/** A router (own server on loopback) and cleanup for it, its bridges and its clients. */
async function setup(options: Partial<RouterOptions> & { services: RouterOptions["services"] }) {
  const logs: string[] = [];
  const hub = new AdminHub();
  const router = createRouter({ logger: quietLog(logs), hub, ...options });
  const { port } = await router.listen("127.0.0.1:0");
  const target = `127.0.0.1:${port}`;
  const bridges: Bridge[] = [];
  const clients: TestClient[] = [];
  return {
    router,
    target,
    hub,
    logs,
    client() {
      const c = new TestClient(target);
      clients.push(c);
      return c;
    },
    async bridge(spec: typeof TestTunnel | typeof StoreTunnel, impl: object, id: string, extra: Partial<BridgeOptions> = {}) {
      const b = createBridge(spec, impl as never, bridgeOptions(target, id, extra));
      bridges.push(b);
      await b.start();
      return b;
    },
    async close() {
      for (const c of clients) c.close();
      await Promise.all(bridges.map((b) => b.stop(0)));
      await router.close(0);
    },
  };
}

const view = (router: Router, id: string) => router.instances().find((i) => i.id === id);

// ---- health ----

test("HealthReport: NOT_SERVING takes an instance out of the picks, SERVING puts it back", async () => {
  const t = await setup({ services: [{ tunnel: TestTunnel }] });
  try {
    const a = await t.bridge(TestTunnel, interopImpl("a"), "a");
    await t.bridge(TestTunnel, interopImpl("b"), "b");
    const client = t.client();
    a.setServing(false);
    await waitFor("a to report NOT_SERVING", () => view(t.router, "a")?.health === "not_serving");
    assert.equal(t.hub.snapshot().instances.find((i) => i.id === "a")?.health, Instance_Health.NOT_SERVING);
    for (let i = 0; i < 10; i++) assert.equal((await say(client)).res.instanceId, "b");
    a.setServing(true);
    await waitFor("a to be back", () => view(t.router, "a")?.serving === true);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await say(client)).res.instanceId);
    assert.deepEqual([...seen].sort(), ["a", "b"]);
  } finally {
    await t.close();
  }
});

test("outlier ejection: an instance failing INTERNAL in a row is ejected, and returns after its ejection time", async () => {
  // The router's clock is driven: the ejection lasts until the test moves time, however
  // slowly a loaded machine runs the calls.
  const clock = new ManualClock(Date.now());
  const t = await setup({ services: [{ tunnel: TestTunnel }], resilience: { outlier: { consecutiveFailures: 3, baseEjectionMs: 600 } }, clock });
  try {
    let sick = true;
    let sickCalls = 0;
    const base = interopImpl("sick");
    await t.bridge(
      TestTunnel,
      {
        ...base,
        unaryCall(req: SimpleRequest, ctx: never) {
          sickCalls++;
          if (sick) throw new ConnectError("broken", Code.Internal);
          return base.unaryCall!(req, ctx);
        },
      },
      "sick",
    );
    await t.bridge(TestTunnel, interopImpl("well"), "well");
    const client = t.client();
    let failures = 0;
    for (let i = 0; i < 20; i++) {
      try {
        assert.equal((await say(client)).res.instanceId, "well");
      } catch (e) {
        assert.equal((e as grpc.ServiceError).code, grpc.status.INTERNAL);
        failures++;
      }
    }
    assert.equal(failures, 3, "three failures in a row eject the instance; every later call goes to the other");
    assert.equal(view(t.router, "sick")?.health, "ejected");
    assert.match(view(t.router, "sick")!.healthReason, /ejected after 3 consecutive failures \(last INTERNAL\)/);
    assert.ok(
      t.logs.some((l) => /"sick".*ejected/.test(l)),
      "the ejection is logged",
    );
    assert.equal(t.hub.snapshot().instances.find((i) => i.id === "sick")?.health, Instance_Health.EJECTED, "the dashboard shows it ejected");
    // Healed; just before the ejection time it is still out, after it it is picked again.
    sick = false;
    const before = sickCalls;
    await clock.advance(599);
    assert.equal(view(t.router, "sick")?.health, "ejected");
    for (let i = 0; i < 4; i++) assert.equal((await say(client)).res.instanceId, "well");
    assert.equal(sickCalls, before, "an ejected instance gets no call");
    await clock.advance(1);
    assert.equal(view(t.router, "sick")?.health, "serving");
    assert.equal(t.hub.snapshot().instances.find((i) => i.id === "sick")?.health, Instance_Health.SERVING);
    for (let i = 0; i < 6; i++) await say(client);
    assert.ok(sickCalls > before, "the returned instance serves calls again");
  } finally {
    await t.close();
  }
});

test("call limits: Hello's max_concurrent_calls queues calls up to a bound, then RESOURCE_EXHAUSTED; the router's own cap too", async () => {
  const t = await setup({ services: [{ tunnel: TestTunnel }], resilience: { maxPendingPerInstance: 3 } });
  try {
    let running = 0;
    let most = 0;
    // The first calls hold their slots until both slots are taken and the router has refused
    // the 3 calls that fit neither a slot nor the queue, i.e. until all 8 have arrived,
    // however slow the machine (a fixed sleep let a slot free up early on a loaded machine).
    // The deadline only keeps a broken router from hanging the test; the asserts then fail.
    let refusals = 0;
    let release!: () => void;
    const allRefused = new Promise<void>((resolve) => (release = resolve));
    const releaseWhenFull = () => most === 2 && refusals === 3 && release();
    const base = interopImpl("limited");
    await t.bridge(
      TestTunnel,
      {
        ...base,
        async unaryCall(req: SimpleRequest, ctx: never) {
          running++;
          most = Math.max(most, running);
          releaseWhenFull();
          try {
            await Promise.race([allRefused, new Promise((r) => setTimeout(r, 60_000).unref())]);
            return await base.unaryCall!(req, ctx);
          } finally {
            running--;
          }
        },
      },
      "limited",
      { maxConcurrentCalls: 2 },
    );
    const client = t.client();
    const calls = Array.from({ length: 8 }, () => say(client));
    for (const c of calls) c.catch(() => (refusals++, releaseWhenFull()));
    const results = await Promise.allSettled(calls);
    const codes = results.map((r) => (r.status === "fulfilled" ? 0 : (r.reason as grpc.ServiceError).code));
    assert.equal(codes.filter((c) => c === 0).length, 5, `2 run + 3 queued succeed: ${codes}`);
    assert.equal(codes.filter((c) => c === grpc.status.RESOURCE_EXHAUSTED).length, 3, `the rest are refused: ${codes}`);
    const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.match((refused.reason as grpc.ServiceError).details, /limited.*at its limit of 2 calls in flight and 3 queued/);
    assert.equal(most, 2);
  } finally {
    await t.close();
  }

  // The router's cap per instance (a circuit breaker on top of Hello's limit), no queue.
  const u = await setup({ services: [{ tunnel: TestTunnel }], resilience: { maxConcurrentCallsPerInstance: 1, maxPendingPerInstance: 0 } });
  try {
    // As above: each instance's one call runs until the router has refused the other two.
    let refusedBoth!: () => void;
    const bothRefused = new Promise<void>((resolve) => (refusedBoth = resolve));
    for (const id of ["c1", "c2"]) {
      const impl = interopImpl(id);
      await u.bridge(
        TestTunnel,
        {
          ...impl,
          async unaryCall(req: SimpleRequest, ctx: never) {
            await Promise.race([bothRefused, new Promise((r) => setTimeout(r, 60_000).unref())]);
            return await impl.unaryCall!(req, ctx);
          },
        },
        id,
      );
    }
    const client = u.client();
    let refusals = 0;
    const calls = Array.from({ length: 4 }, () => say(client));
    for (const c of calls) c.catch(() => ++refusals === 2 && refusedBoth());
    const results = await Promise.allSettled(calls);
    const ok = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<Awaited<ReturnType<typeof say>>>[];
    assert.deepEqual(ok.map((r) => r.value.res.instanceId).sort(), ["c1", "c2"], "one call per instance at a time");
    assert.ok(results.filter((r) => r.status === "rejected").every((r) => (r as PromiseRejectedResult).reason.code === grpc.status.RESOURCE_EXHAUSTED));
  } finally {
    await u.close();
  }
});

// ---- retries ----

test("retries: UNAVAILABLE is retried on another instance only for idempotent methods, never once the response started", async () => {
  // A roomy budget: this test is about which calls may be retried (the next one, about how many).
  const t = await setup({
    services: [{ tunnel: StoreTunnel }],
    resilience: { outlier: { consecutiveFailures: 0 }, retry: { budget: { minRetriesPerSecond: 20 } } },
  });
  try {
    const flaky: StoreProbe = { calls: {}, failing: true };
    const good: StoreProbe = { calls: {}, failing: false };
    await t.bridge(StoreTunnel, storeImpl("flaky", flaky), "flaky");
    await t.bridge(StoreTunnel, storeImpl("good", good), "good");
    const client = t.client();
    // Get (NO_SIDE_EFFECTS): every call succeeds, the ones that hit the flaky instance on a retry.
    for (let i = 0; i < 12; i++) assert.equal((await get(client)).res.instanceId, "good");
    assert.ok((flaky.calls["Get"] ?? 0) >= 3, `the flaky instance was tried (${flaky.calls["Get"]} times)`);
    assert.equal(good.calls["Get"], 12);
    // Put (no idempotency level): the calls that hit the flaky instance fail, each handler runs once.
    let failed = 0;
    for (let i = 0; i < 12; i++) {
      try {
        await get(client, "Put");
      } catch (e) {
        assert.equal((e as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
        failed++;
      }
    }
    assert.ok(failed >= 3, `${failed} Puts failed`);
    assert.equal((flaky.calls["Put"] ?? 0) + (good.calls["Put"] ?? 0), 12, "a Put never runs twice");
    assert.equal(failed, flaky.calls["Put"]);
    // Watch (IDEMPOTENT, server streaming): retried while nothing was sent…
    const req = (intervalUs: number) =>
      create(StreamingOutputCallRequestSchema, {
        responseParameters: [
          { size: 1, intervalUs },
          { size: 2, intervalUs },
        ],
      });
    for (let i = 0; i < 6; i++) {
      const r = await collect(client.serverStream(storePath("Watch"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, req(0)));
      assert.equal(r.status.code, grpc.status.OK, r.status.details);
      assert.deepEqual(
        r.messages.map((m) => m.instanceId),
        ["good", "good"],
      );
    }
    // …but not after a first response reached the client.
    let committed = 0;
    for (let i = 0; i < 6; i++) {
      const r = await collect(client.serverStream(storePath("Watch"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema, req(1)));
      if (r.status.code !== grpc.status.OK) {
        assert.equal(r.status.code, grpc.status.UNAVAILABLE);
        assert.deepEqual(
          r.messages.map((m) => m.instanceId),
          ["flaky"],
        );
        committed++;
      }
    }
    assert.ok(committed >= 2, "streams that had started on the flaky instance end UNAVAILABLE");
  } finally {
    await t.close();
  }
});

test("an outage does not multiply calls: with every instance failing, the retry budget holds handler invocations to ~1.2× the calls", async () => {
  const t = await setup({ services: [{ tunnel: StoreTunnel }] });
  try {
    const probes: StoreProbe[] = [];
    for (const id of ["down-1", "down-2", "down-3"]) {
      const p: StoreProbe = { calls: {}, failing: true };
      probes.push(p);
      await t.bridge(StoreTunnel, storeImpl(id, p), id);
    }
    const client = t.client();
    const n = 200;
    let started = 0;
    const codes: number[] = [];
    const began = Date.now();
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (started < n) {
          started++;
          codes.push((await errorOf(get(client))).code);
        }
      }),
    );
    assert.ok(codes.every((c) => c === grpc.status.UNAVAILABLE));
    const invocations = probes.reduce((s, p) => s + (p.calls["Get"] ?? 0), 0);
    // Budget: retries ≤ 20 % of calls + 1/s over a 10 s window. Without it: up to 3 × 200.
    const windows = Math.ceil((Date.now() - began) / 10_000);
    assert.ok(invocations >= n, `${invocations} invocations`);
    assert.ok(invocations <= n * 1.2 + 10 * windows + 1, `${invocations} handler invocations for ${n} calls`);
  } finally {
    await t.close();
  }
});

// ---- wait-for-ready ----

test("wait-for-ready: a call waits (up to its deadline) for a first instance instead of failing at once", async () => {
  const t = await setup({ services: [{ tunnel: TestTunnel }], waitForReady: true });
  try {
    const client = t.client();
    const waiting = say(client, 5, { deadline: Date.now() + 20_000 });
    await waitFor("the call to wait", () => t.router.stats().callsPending === 1);
    await t.bridge(TestTunnel, interopImpl("late"), "late");
    const { res } = await waiting;
    assert.equal(res.instanceId, "late");
    await t.bridge(TestTunnel, interopImpl("x"), "x").then((b) => b.stop(0));
  } finally {
    await t.close();
  }
  // Nobody comes: the call ends at its own deadline; a call without one after maxWaitMs.
  const u = await setup({ services: [{ tunnel: TestTunnel }], waitForReady: { maxWaitMs: 300 } });
  try {
    const client = u.client();
    const err = await errorOf(say(client, 1, { deadline: Date.now() + 200 }));
    assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
    const unavailable = await errorOf(say(client));
    assert.equal(unavailable.code, grpc.status.UNAVAILABLE);
    assert.match(unavailable.details, /no instance of interop\.v1\.TestService is registered; waited \d+ ms/);
    // The dashboard saw both calls start (with no instance) and end.
    const snap = u.hub.snapshot();
    assert.deepEqual(snap.callsInFlight, []);
    assert.deepEqual(
      snap.calls.map((c) => [c.started?.instanceId, c.ended?.code]),
      [
        ["", grpc.status.DEADLINE_EXCEEDED],
        ["", grpc.status.UNAVAILABLE],
      ],
    );
  } finally {
    await u.close();
  }
});

// ---- drain ----

test("router drain: calls in flight finish, new calls are refused, bridges move to the other router", async () => {
  const a = await setup({ services: [{ tunnel: TestTunnel }] });
  const b = await setup({ services: [{ tunnel: TestTunnel }] });
  const bridges: Bridge[] = [];
  try {
    // One instance registered with both routers of a deployment.
    const bridge = createBridge(TestTunnel, interopImpl("both"), bridgeOptions([a.target, b.target], "both"));
    bridges.push(bridge);
    await bridge.start();
    const ca = a.client();
    const cb = b.client();
    const slow = say(ca, -500);
    await waitFor("the slow call to run", () => view(a.router, "both")?.inFlight === 1);
    const drained = a.router.drain(10_000);
    const refused = await errorOf(say(ca));
    assert.equal(refused.code, grpc.status.UNAVAILABLE);
    assert.equal((await slow).res.instanceId, "both", "the call in flight finished");
    await drained;
    assert.equal(a.router.instances().length, 0);
    // The instance lives on at the other router, which never missed a call.
    for (let i = 0; i < 5; i++) assert.equal((await say(cb)).res.instanceId, "both");
    assert.equal(view(b.router, "both")?.streams, 1);
  } finally {
    await Promise.all(bridges.map((x) => x.stop(0)));
    await a.close();
    await b.close();
  }
});

// ---- faults ----

test("a black-holed instance (stops reading its stream) stalls none of the other instances' calls and is ejected", async () => {
  const t = await setup({ services: [{ tunnel: TestTunnel }], resilience: { outlier: { consecutiveFailures: 3, baseEjectionMs: 60_000 } } });
  const raw = new grpc.Client(t.target, grpc.credentials.createInsecure());
  let pinger: NodeJS.Timeout | undefined;
  try {
    await t.bridge(TestTunnel, interopImpl("g1"), "g1");
    await t.bridge(TestTunnel, interopImpl("g2"), "g2");
    // The black hole: says Hello, keeps pinging (its writer lives), never reads a frame.
    const call = raw.makeBidiStreamRequest(
      "/interop.v1.TestServiceRouter/Register",
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    call.on("error", () => {});
    const enc = new FrameEncoder();
    enc.addControl(
      0,
      InstanceFrame.Hello,
      HelloSchema,
      create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, instanceId: "hole", service: "interop.v1.TestService" }),
    );
    call.write(enc.take());
    call.pause();
    let nonce = 0n;
    pinger = setInterval(() => {
      enc.addControl(0, InstanceFrame.Ping, PingSchema, create(PingSchema, { nonce: ++nonce }));
      call.write(enc.take());
    }, 50);
    await waitFor("the black hole to register", () => view(t.router, "hole") !== undefined);
    const client = t.client();
    // 1. Calls with a deadline no test run reaches: those picked for the hole stay in flight
    //    there; every other one must finish all the same. No time budget: the proof is that
    //    the live calls are done while the hole's are still open.
    const done: string[] = [];
    const n = 30;
    const far = Date.now() + 10 * 60_000;
    const calls = Array.from({ length: n }, (_, i) =>
      say(client, 1, { deadline: far }).then(
        ({ res }) => void done.push(res.instanceId),
        (e: grpc.ServiceError) => void done.push(`call ${i}: ${e.code} ${e.details}`),
      ),
    );
    const inHole = () => t.router.stats().streams.find((s) => s.instanceId === "hole")?.calls ?? 0;
    await waitFor("every call to be answered or stuck in the hole", () => done.length + inHole() === n, 60_000);
    const stuck = inHole();
    assert.ok(stuck >= 3 && stuck <= n / 2, `${stuck} calls were sent into the black hole`);
    assert.deepEqual(
      done.filter((d) => d !== "g1" && d !== "g2"),
      [],
      "every call outside the hole succeeded on a live instance",
    );
    // 2. Calls that may time out: the ones picked for the hole fail DEADLINE_EXCEEDED, which
    //    ejects it after three in a row. (A slow machine may time out a live call too; that
    //    only costs another round.)
    for (let round = 0; view(t.router, "hole")?.health !== "ejected"; round++) {
      assert.ok(round < 300, "the black hole was never ejected");
      await say(client, 1, { deadline: Date.now() + 300 }).catch((e: grpc.ServiceError) => assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED, e.details));
    }
    void calls;
    for (let i = 0; i < 20; i++) assert.notEqual((await say(client, 1, { deadline: Date.now() + 5000 })).res.instanceId, "hole");
  } finally {
    if (pinger) clearInterval(pinger);
    raw.close();
    await t.close();
  }
});

test("a flapping instance (health toggling, re-registering) costs no call", async () => {
  const t = await setup({ services: [{ tunnel: TestTunnel }] });
  let flapping = true;
  const flaps: Bridge[] = [];
  try {
    await t.bridge(TestTunnel, interopImpl("steady"), "steady");
    const flapper = (async () => {
      while (flapping) {
        const b = createBridge(TestTunnel, interopImpl("flap"), bridgeOptions(t.target, "flap"));
        flaps.push(b);
        await b.start();
        for (let i = 0; i < 4 && flapping; i++) {
          b.setServing(i % 2 === 1);
          await new Promise((r) => setTimeout(r, 15));
        }
        b.setServing(true);
        await new Promise((r) => setTimeout(r, 15));
        await b.stop(5000);
      }
    })();
    const client = t.client();
    const seen = new Map<string, number>();
    let started = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (started < 400) {
          started++;
          const { res } = await say(client, -2); // 2 ms in the handler
          seen.set(res.instanceId, (seen.get(res.instanceId) ?? 0) + 1);
        }
      }),
    );
    flapping = false;
    await flapper;
    assert.ok((seen.get("flap") ?? 0) > 0, `the flapping instance served calls while up: ${[...seen]}`);
    await waitFor("the flapper to be gone", () => t.router.instances().length === 1);
  } finally {
    flapping = false;
    await Promise.all(flaps.map((b) => b.stop(0)));
    await t.close();
  }
});
