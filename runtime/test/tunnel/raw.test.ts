// The raw bridge (bytes in, bytes out; what `grpcrouter bridge --target` builds on), and the
// router's registration rules: refusals, authorization, heartbeats, drain, call limits, hub.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AdminHub } from "../../src/admin/index.js";
import {
  GrpcServer,
  createRawBridge,
  createRouter,
  decodeControl,
  decodeFrames,
  defineTunnel,
  FrameEncoder,
  InstanceFrame,
  RouterFrame,
  type RawHandler,
} from "../../src/tunnel/index.js";
import { HelloSchema, ProtocolVersion, WelcomeSchema, type Welcome } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import type { AuditEvent } from "../../src/log/audit.js";
import { ManualClock } from "../../src/resilience/index.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
  UnimplementedService,
} from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, errorOf, methodOf, pacedStream, quietLog, startBridge, startRouter, waitFor } from "./helpers.js";

const say = (client: TestClient, responseSize = 1, md = new grpc.Metadata()) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize }), md);

const rawOptions = (target: string, instanceId: string) => ({ router: target, instanceId, logger: quietLog(), backoff: { initialMs: 50, maxMs: 500 } });

test("raw bridge: payload bytes, -bin metadata and trailers-only answers pass through unchanged", async () => {
  const { router, target } = await startRouter();
  const seen: Array<{ method: string; bin: unknown; deadline: number }> = [];
  const handler: RawHandler = async (call) => {
    seen.push({ method: call.method, bin: call.metadata.get("x-key-bin")[0], deadline: call.deadline });
    if (call.method === methodOf("UnaryCall")) {
      const trailers = new grpc.Metadata();
      trailers.set("x-why-bin", Buffer.from([0, 1, 2, 255]));
      return { code: grpc.status.NOT_FOUND, details: "no such thing", metadata: trailers };
    }
    // FullDuplexCall: headers, then every request payload back as it came, then trailers.
    const headers = new grpc.Metadata();
    headers.set("x-head", "h");
    call.sendHeaders(headers);
    for await (const p of call.requests) await call.send(p);
    const trailers = new grpc.Metadata();
    trailers.set("x-tail", "t");
    return { code: grpc.status.OK, metadata: trailers };
  };
  const bridge = createRawBridge(TestTunnel, handler, rawOptions(target, "raw"));
  await bridge.start();
  const client = new TestClient(target);
  try {
    const md = new grpc.Metadata();
    md.set("x-key-bin", Buffer.from([9, 8, 7]));
    const err = await errorOf(say(client, 1, md));
    assert.equal(err.code, grpc.status.NOT_FOUND);
    assert.equal(err.details, "no such thing");
    assert.deepEqual(err.metadata.get("x-why-bin"), [Buffer.from([0, 1, 2, 255])]);
    assert.deepEqual(seen[0], { method: methodOf("UnaryCall"), bin: Buffer.from([9, 8, 7]), deadline: Infinity });

    // Trailers-only on the wire: one HEADERS frame that carries grpc-status.
    const session = http2.connect(`http://${target}`);
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const req = session.request({ ":method": "POST", ":path": methodOf("UnaryCall"), "content-type": "application/grpc", te: "trailers" });
      req.on("response", resolve);
      req.on("error", reject);
      req.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    session.close();
    assert.equal(headers["grpc-status"], "5", "the status arrives in the response headers (trailers-only)");

    // A stream of raw payloads, echoed byte for byte (any bytes: the router never parses them).
    const id = (b: Buffer) => b;
    const call = client.raw.makeBidiStreamRequest(methodOf("FullDuplexCall"), id, id, new grpc.Metadata(), { deadline: Date.now() + 20_000 });
    const done = collect<Buffer>(call);
    const sent = [1, 70_000, 3, 0].map((n) => Buffer.alloc(n, n & 0xff));
    for (const m of sent) call.write(m);
    call.end();
    const r = await done;
    assert.equal(r.status.code, grpc.status.OK);
    assert.deepEqual(r.headers?.get("x-head"), ["h"]);
    assert.deepEqual(r.status.metadata.get("x-tail"), ["t"]);
    assert.deepEqual(r.messages, sent);
    assert.ok(seen[seen.length - 1]!.deadline > Date.now() && seen[seen.length - 1]!.deadline <= Date.now() + 20_000, "the deadline reached the handler");
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("registration: a wrong service or bad credentials are refused with a clear reason", async () => {
  const { router, target, logs } = await startRouter({
    authorize: (hello) => (hello.credentials["token"] === "s3cret" ? undefined : `bad token for ${hello.instanceId}`),
  });
  try {
    // A tunnel of another service, pointed at this service's Register path.
    const wrong = defineTunnel(UnimplementedService, "interop.v1.TestServiceRouter", { UnimplementedCall: 16 });
    const refused = createRawBridge(wrong, async () => ({ code: 0 }), { ...rawOptions(target, "wrong"), credentialsHook: () => ({ token: "s3cret" }) });
    await assert.rejects(
      refused.start(),
      /this Register stream is for interop\.v1\.TestService, but the instance says it serves "interop\.v1\.UnimplementedService"/,
    );

    const intruder = createRawBridge(TestTunnel, async () => ({ code: 0 }), { ...rawOptions(target, "intruder"), credentialsHook: () => ({ token: "guess" }) });
    await assert.rejects(intruder.start(), /not authorized: bad token for intruder/);
    assert.match(logs.join("\n"), /refused instance "intruder"/);

    const friend = await startBridge(target, "friend", { credentialsHook: async () => ({ token: "s3cret" }) });
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["friend"],
    );
    await friend.stop(0);
  } finally {
    await router.close(0);
  }
});

test("heartbeats on the router's clock: an idle stream is pinged after one interval, a silent one dropped within two, a live bridge stays", async () => {
  // Virtual time: the router's sweeps, pings and timeout run on a ManualClock the test moves,
  // so a loaded machine cannot stretch or squeeze them. The bridge answers in real time.
  const clock = new ManualClock();
  const audit: AuditEvent[] = [];
  const { router, target, logs } = await startRouter({ clock, heartbeatIntervalMs: 10_000, audit: (e) => void audit.push(e) });
  const bridge = await startBridge(target, "alive");
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  try {
    // A hand-written instance that says Hello and then nothing, not even Pong.
    const call = client.makeBidiStreamRequest(
      "/interop.v1.TestServiceRouter/Register",
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    call.on("error", () => {});
    let pingsToSilent = 0;
    let welcome: Welcome | undefined;
    call.on("data", (b: Buffer) => {
      for (const f of decodeFrames(b)) {
        if (f.call === 0 && f.field === RouterFrame.Ping) pingsToSilent++;
        if (f.call === 0 && f.field === RouterFrame.Welcome) welcome = decodeControl(WelcomeSchema, f.body);
      }
    });
    let status: grpc.StatusObject | undefined;
    call.on("status", (s: grpc.StatusObject) => (status = s));
    const enc = new FrameEncoder();
    enc.addControl(
      0,
      InstanceFrame.Hello,
      HelloSchema,
      create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, instanceId: "silent", service: "interop.v1.TestService" }),
    );
    call.write(enc.take());
    await waitFor("the silent instance's Welcome", () => welcome !== undefined);
    assert.equal(Number(welcome!.heartbeatInterval?.seconds), 10, "Welcome tells the instance the interval");
    const helloAt = clock.now();
    const silentOf = (id: string) => router.stats().streams.find((s) => s.instanceId === id)?.silentMs;

    // Quarter intervals, as the router sweeps. After each, a ping the router sent to "alive"
    // is answered before time moves on (the bridge runs in real time, the router's clock not).
    let droppedAt: number | undefined;
    for (let step = 0; step < 40 && status === undefined; step++) {
      await clock.advance(2_500);
      await waitFor("alive to answer the router's ping", () => (silentOf("alive") ?? 0) < 10_000);
      if (droppedAt === undefined && !router.instances().some((i) => i.id === "silent")) droppedAt = clock.now();
    }
    await waitFor("the silent instance's status", () => status !== undefined);
    droppedAt ??= clock.now();
    assert.equal(status!.code, grpc.status.INVALID_ARGUMENT);
    assert.match(logs.join("\n"), /closing instance "silent".*no frame for \d+ ms \(heartbeat timeout\)/);
    assert.ok(pingsToSilent >= 1, "the router pinged the idle stream before giving up on it");
    // Dropped after the timeout (two intervals) and within one sweep (a quarter interval) of it.
    const silence = droppedAt - helloAt;
    assert.ok(silence > 20_000 && silence <= 22_500, `dropped after ${silence} ms of (virtual) silence`);
    // The live bridge went through every sweep that dropped the silent one and was never dropped.
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["alive"],
    );
    assert.deepEqual(
      audit.filter((e) => e.kind === "deregistered").map((e) => e.instanceId),
      ["silent"],
    );
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("call deadlines run on the router's clock: the client gets DEADLINE_EXCEEDED and the handler its Cancel when the clock passes it", async () => {
  const clock = new ManualClock();
  const { router, target } = await startRouter({ clock });
  let aborted: (reason: unknown) => void;
  const handlerAborted = new Promise<unknown>((resolve) => (aborted = resolve));
  let started!: () => void;
  const handlerStarted = new Promise<void>((resolve) => (started = resolve));
  const handler: RawHandler = (call) =>
    new Promise((resolve) => {
      started();
      call.signal.addEventListener("abort", () => {
        aborted(call.signal.reason);
        resolve({ code: grpc.status.CANCELLED });
      });
    });
  const bridge = createRawBridge(TestTunnel, handler, rawOptions(target, "waits"));
  await bridge.start();
  const client = new TestClient(target);
  try {
    // Ten minutes of real time for the client: only the router's clock can end it first.
    const md = new grpc.Metadata();
    const pending = errorOf(
      client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, {}), md, { deadline: Date.now() + 600_000 }),
    );
    await handlerStarted;
    await clock.advance(599_000);
    assert.equal(router.stats().callsInFlight, 1, "a second before its deadline the call still runs");
    await clock.advance(2_000);
    const err = await pending;
    assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
    await handlerAborted;
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("stop() drains: in-flight calls finish, new calls go to another instance", async () => {
  const { router, target } = await startRouter();
  const leaving = await startBridge(target, "leaving");
  const client = new TestClient(target);
  try {
    // A stream that takes ~300 ms, on the only instance.
    const stream = pacedStream(client, 6, 50);
    const done = collect(stream);
    await new Promise((resolve) => stream.once("data", resolve));
    const staying = await startBridge(target, "staying");
    const stopped = leaving.stop(10_000);
    await waitFor("the router to see the drain", () => router.instances().some((i) => i.id === "leaving" && i.draining));
    for (let i = 0; i < 4; i++) assert.equal((await say(client)).res.instanceId, "staying");
    const { messages, status } = await done;
    assert.equal(status.code, grpc.status.OK);
    assert.equal(messages.length, 6);
    assert.ok(messages.every((m) => m.instanceId === "leaving"));
    await stopped;
    await waitFor("the drained instance to leave", () => router.instances().length === 1);
    await staying.stop(0);
  } finally {
    client.close();
    await router.close(0);
  }
});

test("maxConcurrentCalls: the router never gives an instance more, the rest wait their turn", async () => {
  const { router, target } = await startRouter();
  let running = 0;
  let most = 0;
  // Calls hold their slot until two ran at once (or a generous deadline passes), so a loaded
  // machine that delivers the calls slowly cannot make "at most 2" pass as "at most 1".
  let twoRan!: () => void;
  const twoRunning = new Promise<void>((resolve) => (twoRan = resolve));
  const handler: RawHandler = async (call) => {
    running++;
    most = Math.max(most, running);
    if (most >= 2) twoRan();
    for await (const _ of call.requests);
    await Promise.race([twoRunning, new Promise((r) => setTimeout(r, 30_000).unref())]);
    await new Promise((r) => setTimeout(r, 30)); // and a while longer, so calls overlap
    await call.send(toBinary(SimpleResponseSchema, create(SimpleResponseSchema, { instanceId: "limited" })));
    running--;
    return { code: 0 };
  };
  const bridge = createRawBridge(TestTunnel, handler, { ...rawOptions(target, "limited"), maxConcurrentCalls: 2 });
  await bridge.start();
  const client = new TestClient(target);
  try {
    const results = await Promise.all(Array.from({ length: 8 }, () => say(client)));
    assert.ok(results.every((r) => r.res.instanceId === "limited"));
    assert.equal(most, 2);
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("the admin hub sees instances and calls", async () => {
  const hub = new AdminHub();
  const { router, target } = await startRouter({ hub });
  const bridge = await startBridge(target, "watched", { labels: { zone: "a" } });
  const client = new TestClient(target);
  try {
    await say(client, 3);
    await errorOf(client.unary(methodOf("UnimplementedCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema)));
    const snap = hub.snapshot();
    assert.deepEqual(
      snap.instances.map((i) => [i.id, i.service, i.labels["zone"], i.streams]),
      [["watched", "interop.v1.TestService", "a", 1]],
    );
    const ended = snap.calls.map((c) => [c.started?.method, c.started?.instanceId, c.ended?.code, c.ended?.requests, c.ended?.responses]);
    assert.deepEqual(ended, [
      [methodOf("UnaryCall"), "watched", 0, 1, 1],
      [methodOf("UnimplementedCall"), "watched", grpc.status.UNIMPLEMENTED, 1, 0],
    ]);
    await bridge.stop(0);
    await waitFor("the instance to leave the hub", () => hub.snapshot().instances.length === 0);
  } finally {
    client.close();
    await router.close(0);
  }
});

test("routing keys: a hook sees the decoded request and metadata, the balancer gets its key", async () => {
  const keys: Array<string | undefined> = [];
  const { router, target } = await startRouter({
    services: [
      {
        tunnel: TestTunnel,
        routingKeys: {
          UnaryCall: (call) => `${call.metadata.get("x-tenant")[0]}/${(call.request as { responseSize?: number } | undefined)?.responseSize}`,
          FullDuplexCall: (call) => (call.request === undefined ? "stream" : "never"),
        },
        balancer: {
          pick: (candidates: readonly { healthy: boolean }[], ctx: { routingKey?: string }) => {
            keys.push(ctx.routingKey);
            const c = candidates.find((x) => x.healthy);
            return c ? { candidate: c, reason: "test" } : undefined;
          },
          describe: () => "test",
        },
      },
    ],
  });
  const bridge = await startBridge(target, "keyed");
  const client = new TestClient(target);
  try {
    const md = new grpc.Metadata();
    md.set("x-tenant", "acme");
    await say(client, 42, md);
    const call = client.bidi(methodOf("FullDuplexCall"), StreamingOutputCallRequestSchema, StreamingOutputCallResponseSchema);
    call.end();
    await collect(call);
    await client.unary(methodOf("EmptyCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema));
    assert.deepEqual(keys, ["acme/42", "stream", undefined]);
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("router close(grace): calls in flight finish, new calls are refused, bridges are told to drain", async () => {
  const { router, target } = await startRouter();
  const bridge = await startBridge(target, "b");
  const client = new TestClient(target);
  try {
    const stream = pacedStream(client, 6, 50);
    const done = collect(stream);
    await new Promise((resolve) => stream.once("data", resolve));
    const closed = router.close(5000);
    const err = await errorOf(say(client));
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /shutting down/);
    const { messages, status } = await done;
    assert.equal(status.code, grpc.status.OK);
    assert.equal(messages.length, 6);
    await closed;
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("a slow handler pushes back on its own client stream only (request-direction flow control)", async () => {
  const { router, target } = await startRouter();
  let consumed = 0;
  const handler: RawHandler = async (call) => {
    if (call.method === methodOf("StreamingInputCall")) {
      for await (const p of call.requests) {
        consumed += p.length;
        await new Promise((r) => setTimeout(r, 2));
      }
      await call.send(new Uint8Array(0));
      return { code: 0 };
    }
    for await (const _ of call.requests);
    await call.send(toBinary(SimpleResponseSchema, create(SimpleResponseSchema, { instanceId: "slow-reader" })));
    return { code: 0 };
  };
  const bridge = createRawBridge(TestTunnel, handler, rawOptions(target, "slow-reader"));
  await bridge.start();
  const client = new TestClient(target);
  try {
    const id = (b: Buffer) => b;
    const n = 200; // 6.25 MiB
    let aheadAtEnd = -1;
    const done = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.raw.makeClientStreamRequest(methodOf("StreamingInputCall"), id, id, (err) => resolve(err));
      const chunk = Buffer.alloc(32 * 1024, 1);
      let sent = 0;
      const pump = () => {
        while (sent < n) {
          sent++;
          if (!call.write(chunk)) {
            call.once("drain", pump);
            return;
          }
        }
        aheadAtEnd = sent * chunk.length - consumed;
        call.end();
      };
      pump();
    });
    // While that stream crawls, unary calls to the same instance go straight through.
    for (let i = 0; i < 5; i++) assert.equal((await say(client)).res.instanceId, "slow-reader");
    assert.equal(await done, null);
    assert.equal(consumed, n * 32 * 1024);
    // The client could only run ahead of the handler by the windows and buffers on the way
    // (router window, HTTP/2 windows, grpc-js queues), not by the whole stream.
    assert.ok(aheadAtEnd < 2.5 * 1024 * 1024, `the client was ${aheadAtEnd} bytes ahead of the handler`);
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("a router replaced on the same server (reload): bridges re-register at once, calls in flight finish on the old one", async () => {
  const server = new GrpcServer();
  const { address: target } = await server.listen("127.0.0.1:0");
  const old = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
  old.addTo(server);
  // A long backoff: re-registering must not wait for it.
  const bridge = await startBridge(target, "reloaded", { backoff: { initialMs: 60_000 } });
  const client = new TestClient(target);
  const fresh = createRouter({ services: [{ tunnel: TestTunnel }], logger: quietLog() });
  try {
    const stream = pacedStream(client, 6, 50);
    const done = collect(stream);
    await new Promise((resolve) => stream.once("data", resolve));
    // What `grpcrouter serve` does on reload: unmount the old router, mount a new one, close the old.
    for (const p of old.paths) server.remove(p);
    fresh.addTo(server);
    const closed = old.close(10_000);
    await waitFor("the bridge to register with the new router", () => fresh.instances().length === 1);
    assert.equal((await say(client, 4)).res.instanceId, "reloaded");
    const { messages, status } = await done;
    assert.equal(status.code, grpc.status.OK);
    assert.equal(messages.length, 6);
    await closed;
  } finally {
    client.close();
    await bridge.stop(0);
    await old.close(0);
    await fresh.close(0);
    await server.close(0);
  }
});
