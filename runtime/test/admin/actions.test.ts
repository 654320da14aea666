// Operators' actions and "why a call went where it went" through the Admin service of a real
// router with bridged instances on loopback: each call's record names its attempts, retries
// and ejections; drain, eject, weight and pause change where calls go (counted at the
// instances), are audited and streamed to watchers; a recorded call replays as a new call.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  AdminHub,
  addAdminService,
  adminCallerRefusal,
  createAdminClient,
  describeFromRegistry,
  REPLAY_OF_KEY,
  type AdminClient,
} from "../../src/admin/index.js";
import { ActionKind, CallDecision_Kind, type Event } from "../../src/gen/grpcrouter/v1/admin_pb.js";
import type { AuditEvent } from "../../src/log/audit.js";
import { createBridge, createRouter, GrpcServer, type Bridge, type Router } from "../../src/tunnel/index.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingInputCallRequestSchema,
  StreamingInputCallResponseSchema,
} from "../tunnel/gen/interop/v1/test_pb.js";
import { TestClient, quietLog, waitFor } from "../tunnel/helpers.js";
import { STORE, StoreTunnel, newProbe, storeImpl, storeMethod, storeRegistry, total, type StoreProbe } from "./fixtures/ops-store.js";

describe("operator actions and call decisions through the Admin service", { timeout: 120_000 }, () => {
  let hub: AdminHub;
  let router: Router;
  let server: GrpcServer;
  let client: TestClient;
  let admin: AdminClient;
  const audit: AuditEvent[] = [];
  const events: Event[] = [];
  const probes: Record<string, StoreProbe> = {};
  const bridges: Bridge[] = [];
  let watching: AbortController;

  before(async () => {
    hub = new AdminHub({ describe: describeFromRegistry(storeRegistry) });
    router = createRouter({
      services: [{ tunnel: StoreTunnel }],
      hub,
      logger: quietLog(),
      audit: (e) => audit.push(e),
      // Retries need room in the budget; three failures in a row eject, for a long time.
      resilience: { retry: { budget: { minRetriesPerSecond: 100 } }, outlier: { consecutiveFailures: 3, baseEjectionMs: 600_000, maxEjectionPercent: 50 } },
    });
    server = new GrpcServer();
    router.addTo(server);
    addAdminService(server, hub);
    const { port } = await server.listen("127.0.0.1:0");
    const target = `127.0.0.1:${port}`;
    for (const [id, mode] of [
      ["a", "fast"],
      ["b", "fast"],
      ["failing", "failing"],
    ] as const) {
      probes[id] = newProbe();
      const b = createBridge(StoreTunnel, storeImpl(id, mode, probes[id]!), { router: target, instanceId: id, logger: quietLog() });
      bridges.push(b);
      await b.start();
    }
    await waitFor("three instances", () => router.instances().length === 3);
    client = new TestClient(target);
    admin = createAdminClient(target);
    watching = new AbortController();
    void (async () => {
      for await (const ev of admin.watch({}, watching.signal)) events.push(ev);
    })().catch(() => {});
  });

  after(async () => {
    watching.abort();
    admin.close();
    client.close();
    await Promise.all(bridges.map((b) => b.stop(0)));
    await router.close(0);
    await server.close(0);
    hub.close();
  });

  const get = (size = 0) => client.unary(storeMethod("Get"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: size }));
  const counts = () => Object.fromEntries(Object.entries(probes).map(([id, p]) => [id, total(p)]));
  const healthOf = (id: string) => router.instances(STORE).find((i) => i.id === id)?.health;

  it("records each attempt of a retried call with its instance and reason, and the call whose failure ejected an instance", async () => {
    // Round robin sends every third first attempt to the failing instance; Get is idempotent,
    // so each of those fails UNAVAILABLE there and is retried on another instance.
    for (let i = 0; i < 12; i++) await get();
    await waitFor("the failing instance ejected", () => healthOf("failing") === "ejected");
    const records = hub.snapshot().calls;
    const retried = records.filter((r) => r.decisions.some((d) => d.kind === CallDecision_Kind.RETRY));
    assert.ok(retried.length >= 3, `calls with a retry: ${retried.length}`);
    for (const r of retried) {
      assert.equal(r.started!.instanceId, "failing", "the first attempt went to the failing instance");
      assert.match(r.started!.policy, /round robin/);
      const retry = r.decisions.find((d) => d.kind === CallDecision_Kind.RETRY)!;
      assert.equal(retry.instanceId, "failing");
      assert.equal(retry.code, grpc.status.UNAVAILABLE);
      assert.match(retry.reason, /UNAVAILABLE on an idempotent method: retry 1/);
      const second = r.decisions.find((d) => d.kind === CallDecision_Kind.ATTEMPT)!;
      assert.equal(second.attempt, 2);
      assert.notEqual(second.instanceId, "failing");
      assert.match(second.reason, /round robin/);
      assert.equal(r.ended!.code, 0, "the retry succeeded");
    }
    const ejecting = records.filter((r) => r.decisions.some((d) => d.kind === CallDecision_Kind.EJECTED));
    assert.equal(ejecting.length, 1, "exactly one call's failure ejected the instance");
    assert.match(ejecting[0]!.decisions.find((d) => d.kind === CallDecision_Kind.EJECTED)!.reason, /ejected after 3 consecutive failures \(last UNAVAILABLE\)/);
    // Watchers got the same decisions live.
    await waitFor("decision events", () => events.some((e) => e.event.case === "callDecision" && e.event.value.kind === CallDecision_Kind.EJECTED));
  });

  it("drain and eject keep new calls off an instance until undone; restore ends an outlier ejection", async () => {
    await admin.act({ kind: ActionKind.DRAIN, service: STORE, instanceId: "a", note: "rolling upgrade" });
    assert.equal(healthOf("a"), "draining");
    const before = counts();
    for (let i = 0; i < 10; i++) await get();
    const after = counts();
    assert.equal(after.a, before.a, "no call reached the drained instance");
    assert.equal(after.b! - before.b!, 10);

    await admin.act({ kind: ActionKind.UNDRAIN, service: STORE, instanceId: "a" });
    await admin.act({ kind: ActionKind.EJECT, service: STORE, instanceId: "b" });
    assert.equal(healthOf("b"), "ejected");
    const c0 = counts();
    for (let i = 0; i < 10; i++) await get();
    const c1 = counts();
    assert.equal(c1.b, c0.b, "no call reached the ejected instance");
    assert.equal(c1.a! - c0.a!, 10, "the undrained instance takes calls again");

    const r = await admin.act({ kind: ActionKind.RESTORE, service: STORE, instanceId: "b" });
    assert.match(r.summary, /restored instance "b"/);
    await admin.act({ kind: ActionKind.RESTORE, service: STORE, instanceId: "failing" });
    assert.equal(healthOf("failing"), "serving", "restore ends the outlier ejection early");
    const c2 = counts();
    for (let i = 0; i < 9; i++) await get();
    const c3 = counts();
    assert.ok(c3.b! > c2.b!, "the restored instance takes calls again");
    // The failing instance is ejected again by its own failures soon enough: put it out by hand.
    await admin.act({ kind: ActionKind.EJECT, service: STORE, instanceId: "failing" });
  });

  it("changes an instance's weight, over the weight of its Hello", async () => {
    const r = await admin.act({ kind: ActionKind.SET_WEIGHT, service: STORE, instanceId: "a", weight: 7 });
    assert.match(r.summary, /weight of instance "a" of ops\.v1\.Store: 1 → 7/);
    assert.equal(router.instances(STORE).find((i) => i.id === "a")!.weight, 7);
    const snap = await admin.getSnapshot();
    const a = snap.instances.find((i) => i.id === "a")!;
    assert.equal(a.weight, 7);
    assert.equal(a.operatorWeight, true);
  });

  it("a paused service refuses calls UNAVAILABLE with a clear message until resumed", async () => {
    await admin.act({ kind: ActionKind.PAUSE, service: STORE, note: "schema migration" });
    assert.equal((await admin.getSnapshot()).services.find((s) => s.name === STORE)!.paused, true);
    const before = counts();
    const err = await get().then(
      () => assert.fail("a paused service answered"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /ops\.v1\.Store is paused by an operator \(schema migration\); calls are refused until it is resumed/);
    assert.deepEqual(counts(), before, "no instance saw the refused call");
    // Its record says the router refused it, and why.
    const refused = hub.snapshot().calls.at(-1)!;
    assert.equal(refused.decisions[0]!.kind, CallDecision_Kind.REFUSED);
    assert.match(refused.decisions[0]!.reason, /paused by an operator/);
    await admin.act({ kind: ActionKind.RESUME, service: STORE });
    assert.equal((await get()).status.code, 0);
  });

  it("every action is in the audit log and streamed to watchers; bad actions name the field", async () => {
    const audited = audit.filter((e) => e.kind === "operatorAction").map((e) => `${e.action} ${e.instanceId ?? e.service}`);
    assert.deepEqual(audited, [
      "drain a",
      "undrain a",
      "eject b",
      "restore b",
      "restore failing",
      "eject failing",
      "set weight a",
      "pause ops.v1.Store",
      "resume ops.v1.Store",
    ]);
    const drain = audit.find((e) => e.action === "drain")!;
    assert.match(drain.principal!, /^127\.0\.0\.1:\d+$/);
    assert.equal(drain.reason, "rolling upgrade");
    await waitFor("action events", () => events.filter((e) => e.event.case === "action").length === 9);
    const streamed = events.flatMap((e) => (e.event.case === "action" ? [e.event.value] : []));
    assert.equal(streamed[0]!.kind, ActionKind.DRAIN);
    assert.match(streamed[0]!.summary, /drained instance "a"/);
    // A watcher that comes later finds them in its snapshot.
    assert.deepEqual(
      (await admin.getSnapshot()).actions.map((a) => a.kind),
      streamed.map((a) => a.kind),
    );

    const fails = async (req: Parameters<AdminClient["act"]>[0]) =>
      admin.act(req).then(
        () => assert.fail("accepted"),
        (e: grpc.ServiceError) => e,
      );
    let e = await fails({ kind: ActionKind.DRAIN, service: STORE, instanceId: "nope" });
    assert.equal(e.code, grpc.status.NOT_FOUND);
    assert.match(e.details, /instance_id: ops\.v1\.Store has no instance "nope" \(it has "a", "b", "failing"\)/);
    e = await fails({ kind: ActionKind.SET_WEIGHT, service: STORE, instanceId: "a", weight: 0 });
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.details, /weight: must be an integer in 1\.\.10000, got 0/);
    e = await fails({ kind: ActionKind.PAUSE, service: "no.such.Service" });
    assert.equal(e.code, grpc.status.NOT_FOUND);
    e = await fails({ kind: ActionKind.DRAIN, service: STORE });
    assert.match(e.details, /instance_id: required to drain an instance/);
    e = await fails({ kind: ActionKind.PAUSE, service: STORE, note: "x".repeat(501) });
    assert.match(e.details, /note: at most 500 characters, got 501/);
    e = await fails({ kind: 99 as ActionKind, service: STORE });
    assert.match(e.details, /kind: unknown action 99/);
  });

  it("replays a recorded unary call with an edited request, and a client-streaming call whole, as new calls", async () => {
    const md = new grpc.Metadata();
    md.set("authorization", "Bearer the-callers-secret");
    md.set("x-tenant", "t1");
    await client.unary(storeMethod("Put"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 3 }), md);
    const original = hub.snapshot({ includeBodies: true }).calls.at(-1)!;
    assert.equal(original.started!.method, storeMethod("Put"));
    const id = original.started!.callId;
    const r = await admin.replay({ callId: id, requestsJson: [JSON.stringify({ responseSize: 5 })] });
    assert.equal(r.code, 0);
    assert.notEqual(r.callId, id);
    assert.equal(Buffer.from(JSON.parse(r.responsesJson[0]!).payload.body, "base64").length, 5, "the edited request was sent");
    const replayed = hub.snapshot().calls.find((c) => c.started!.callId === r.callId)!;
    assert.equal(replayed.started!.metadata[REPLAY_OF_KEY], String(id));
    assert.equal(replayed.started!.metadata["x-tenant"], "t1", "the call's metadata is replayed");
    assert.equal(replayed.started!.metadata.authorization, undefined, "but never the caller's credentials");
    assert.equal(replayed.started!.method, storeMethod("Put"));

    // A client stream of three messages, replayed from the recorded bodies, then edited to two.
    const upload = await new Promise<number>((resolve, reject) => {
      const s = client.clientStream(
        storeMethod("Upload"),
        StreamingInputCallRequestSchema,
        StreamingInputCallResponseSchema,
        new grpc.Metadata(),
        {},
        (err, res) => (err ? reject(err) : resolve(res!.aggregatedPayloadSize)),
      );
      for (const n of [1, 2, 3]) s.write(create(StreamingInputCallRequestSchema, { payload: { body: new Uint8Array(n) } }));
      s.end();
    });
    assert.equal(upload, 6);
    const up = hub
      .snapshot()
      .calls.filter((c) => c.started!.method === storeMethod("Upload"))
      .at(-1)!;
    const whole = await admin.replay({ callId: up.started!.callId });
    assert.equal(whole.code, 0);
    assert.equal(JSON.parse(whole.responsesJson[0]!).aggregatedPayloadSize, 6);
    const edited = await admin.replay({ callId: up.started!.callId, requestsJson: [JSON.stringify({ payload: { body: "AAAA" } }), "{}"] });
    assert.equal(JSON.parse(edited.responsesJson[0]!).aggregatedPayloadSize, 3);
    assert.ok(Object.values(probes).some((p) => p.uploadMessages.includes(2)));

    const bad = await admin.replay({ callId: id, requestsJson: ['{"responseSize": "many"}'] }).then(
      () => assert.fail("accepted"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
    assert.match(bad.details, /requests_json\[0\]: not a interop\.v1\.SimpleRequest in proto3 JSON/);
    const many = await admin.replay({ callId: id, requestsJson: Array.from({ length: 1001 }, () => "{}") }).then(
      () => assert.fail("accepted"),
      (e: grpc.ServiceError) => e,
    );
    assert.match(many.details, /requests_json: at most 1000 messages, got 1001/);
    const two = await admin.replay({ callId: id, requestsJson: ["{}", "{}"] }).then(
      () => assert.fail("accepted"),
      (e: grpc.ServiceError) => e,
    );
    assert.match(two.details, /a unary call takes exactly one request, got 2/);
    const gone = await admin.replay({ callId: 999_999n }).then(
      () => assert.fail("accepted"),
      (e: grpc.ServiceError) => e,
    );
    assert.equal(gone.code, grpc.status.NOT_FOUND);
    assert.equal(audit.filter((e) => e.action === "replay").length, 3);
  });

  it("lets act only a loopback caller or one with a verified client certificate", () => {
    assert.equal(adminCallerRefusal("127.0.0.1:5000", undefined), undefined);
    assert.equal(adminCallerRefusal("[::1]:5000", undefined), undefined);
    assert.equal(adminCallerRefusal("::ffff:127.0.0.1", undefined), undefined);
    assert.match(adminCallerRefusal("10.1.2.3:5000", undefined)!, /only from this machine \(loopback\) or with a verified client certificate/);
    assert.match(adminCallerRefusal("[fd00::2]:5000", undefined)!, /fd00::2/);
    assert.match(adminCallerRefusal("127.0.0.1.evil:5", undefined) ?? "", /loopback/);
  });
});

describe("a call's record: time queued for a slot, and the rate limit that refused it", { timeout: 60_000 }, () => {
  it("says how long a call waited for a free slot, and which rate limit refused a call", async () => {
    const hub = new AdminHub();
    const probe = newProbe();
    // One call at a time per instance: the second of two concurrent calls queues for the slot.
    const router = createRouter({ services: [{ tunnel: StoreTunnel }], hub, logger: quietLog(), resilience: { maxConcurrentCallsPerInstance: 1 } });
    const { port } = await router.listen("127.0.0.1:0");
    const bridge = createBridge(StoreTunnel, storeImpl("slow", "slow", probe, 200), { router: `127.0.0.1:${port}`, instanceId: "slow", logger: quietLog() });
    const client = new TestClient(`127.0.0.1:${port}`);
    try {
      await bridge.start();
      await waitFor("the instance", () => router.instances().length === 1);
      const call = () => client.unary(storeMethod("Get"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {}));
      await Promise.all([call(), call()]);
      const queued = hub
        .snapshot()
        .calls.map((c) => c.started!)
        .find((s) => s.queuedMs > 0);
      assert.ok(queued, `a call queued: ${JSON.stringify(hub.snapshot().calls.map((c) => [c.started!.queuedMs, c.started!.reason]))}`);
      assert.match(queued.reason, /^queued \d+ ms for a free slot on slow$/);

      router.configure(STORE, { rateLimit: { perSecond: 0.001, burst: 1 } });
      await call();
      const err = await call().then(
        () => assert.fail("over the limit, yet answered"),
        (e: grpc.ServiceError) => e,
      );
      assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
      const refused = hub.snapshot().calls.at(-1)!;
      assert.equal(refused.started!.instanceId, "", "no instance was involved");
      assert.equal(refused.decisions.length, 1);
      assert.equal(refused.decisions[0]!.kind, CallDecision_Kind.REFUSED);
      assert.match(refused.decisions[0]!.reason, /^rate limit of ops\.v1\.Store exceeded \(0\.001 calls\/s, burst 1\)/);
    } finally {
      client.close();
      await bridge.stop(0);
      await router.close(0);
      hub.close();
    }
  });
});
