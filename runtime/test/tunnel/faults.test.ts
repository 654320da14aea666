// Faults: instances that die, a router that restarts, a client that does not read, hostile
// instances, and many calls at once. Real processes and sockets throughout.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { FrameEncoder, InstanceFrame, RouterFrame, decodeFrames } from "../../src/tunnel/index.js";
import { HeadersSchema, HelloSchema, ProtocolVersion, TrailersSchema, WelcomeSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import {
  SimpleRequestSchema,
  SimpleResponseSchema,
  StreamingOutputCallRequestSchema,
  StreamingOutputCallResponseSchema,
  type StreamingOutputCallResponse,
} from "./gen/interop/v1/test_pb.js";
import { TestClient, collect, errorOf, methodOf, pacedStream, startBridge, startRouter, waitFor, type ImplProbe } from "./helpers.js";

const say = (client: TestClient, responseSize = 1, options: grpc.CallOptions = {}) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize }), new grpc.Metadata(), options);

const longStream = (client: TestClient, n: number, intervalMs: number, size = 8) => {
  const s = pacedStream(client, n, intervalMs, size);
  s.on("error", () => {});
  return s;
};

/** Reads one message, then stops reading (grpc-js only applies backpressure once reading began). */
const stopReading = (s: grpc.ClientReadableStream<unknown>) => s.once("data", () => s.pause());

test("no instance registered: UNAVAILABLE naming the service", async () => {
  const { router, target } = await startRouter();
  const client = new TestClient(target);
  try {
    const err = await errorOf(say(client));
    assert.equal(err.code, grpc.status.UNAVAILABLE);
    assert.match(err.details, /no instance of interop\.v1\.TestService is registered/);
  } finally {
    client.close();
    await router.close(0);
  }
});

/** Messages of the long streams: at 50 ms apart, far longer than any test here runs. */
const STREAM_LENGTH = 10_000;

test("an instance killed mid-stream: its calls fail UNAVAILABLE at once, a waiting call goes to another instance", async () => {
  const { router, target } = await startRouter();
  const child = spawn(
    process.execPath,
    ["--conditions=@grpcrouter/source", "--import", "tsx", fileURLToPath(new URL("./fixtures/instance.ts", import.meta.url)), target, "doomed", "1"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const bridge = await startBridge(target, "survivor", { maxConcurrentCalls: 1 });
  const client = new TestClient(target);
  try {
    await waitFor("the child instance to register", () => router.instances().length === 2, 30_000);
    // One long stream on each instance (round robin), both now at their limit of one call.
    const streams = [longStream(client, STREAM_LENGTH, 50), longStream(client, STREAM_LENGTH, 50)];
    const firsts = await Promise.all(streams.map((s) => new Promise<StreamingOutputCallResponse>((resolve) => s.once("data", resolve))));
    const doomedIndex = firsts.findIndex((m) => m.instanceId === "doomed");
    assert.ok(doomedIndex >= 0, "one stream is on the child instance");
    const doomedStream = streams[doomedIndex]!;
    const survivorStream = streams[1 - doomedIndex]!;
    const doomedDone = collect(doomedStream);
    const survivorDone = collect(survivorStream);
    // A third call waits: no instance has room.
    const waiting = say(client, 7);
    await waitFor("the call to wait", () => router.stats().callsPending === 1);

    child.kill("SIGKILL");
    const { status, messages } = await doomedDone;
    assert.equal(status.code, grpc.status.UNAVAILABLE, status.details);
    assert.match(status.details, /went away/);
    // The stream ended because its instance died, not because it ran out of messages.
    assert.ok(messages.length < STREAM_LENGTH - 1, `${messages.length} of ${STREAM_LENGTH} messages arrived`);
    await waitFor("the dead instance to be gone", () => router.instances().length === 1);

    // When the survivor has room, the waiting call runs there.
    survivorStream.cancel();
    await survivorDone;
    const { res } = await waiting;
    assert.equal(res.instanceId, "survivor");
    assert.equal(res.payload?.body.length, 7);
  } finally {
    child.kill("SIGKILL");
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("a router restarted while bridges run: they re-register and calls flow again", async () => {
  const first = await startRouter();
  const bridges = [await startBridge(first.target, "a"), await startBridge(first.target, "b", { streams: 2 })];
  const client = new TestClient(first.target);
  try {
    assert.equal((await say(client)).res.payload?.body.length, 1);
    await first.router.close(0);
    const second = await startRouter({}, `127.0.0.1:${first.port}`);
    try {
      await waitFor(
        "both instances to re-register",
        () => second.router.instances().length === 2 && second.router.instances().every((i) => i.streams === (i.id === "b" ? 2 : 1)),
        20_000,
      );
      const ids = new Set<string>();
      for (let i = 0; i < 4; i++) ids.add((await say(client, 3)).res.instanceId);
      assert.deepEqual([...ids].sort(), ["a", "b"]);
    } finally {
      client.close();
      for (const b of bridges) await b.stop(0);
      await second.router.close(0);
    }
  } finally {
    client.close();
  }
});

test("a slow consumer stalls only its own call, and the router holds a bounded number of bytes", async () => {
  const callWindow = 64 * 1024;
  const size = 32 * 1024;
  const { router, target } = await startRouter({ callWindow, streamBufferBytes: 2 * callWindow });
  const probe: ImplProbe = { aborted: [], produced: 0 };
  const bridge = await startBridge(target, "a", {}, probe);
  const client = new TestClient(target);
  try {
    const n = 400; // 12.5 MiB in all
    const slow = longStream(client, n, 0, size);
    stopReading(slow);
    // The handler is held back by the window: it stops well short of the whole stream.
    let last = -1;
    await waitFor("the stalled handler to settle", () => {
      const settled = probe.produced === last && probe.produced > 0;
      last = probe.produced;
      return settled;
    });
    const stalledAt = probe.produced;
    assert.ok(stalledAt < n / 2, `handler produced ${stalledAt} of ${n} messages for a client that reads nothing`);
    const held = router.stats().bufferedBytes;
    assert.ok(held <= callWindow + size, `router holds ${held} bytes for the stalled call`);

    // Other calls on the same Register stream are not held up by it.
    for (let i = 0; i < 5; i++) assert.equal((await say(client, 100)).res.payload?.body.length, 100);

    // Per-stream bound: this stream takes two calls at once (2 windows); a third one waits.
    const second = longStream(client, n, 0, size);
    stopReading(second);
    const third = say(client, 5);
    await waitFor("the third call to wait", () => router.stats().callsPending === 1);
    second.cancel();
    assert.equal((await third).res.payload?.body.length, 5);

    // Reading again, the client gets every message.
    const done = collect(slow);
    slow.resume();
    const { messages, status } = await done;
    assert.equal(status.code, grpc.status.OK);
    assert.equal(messages.length + 1, n, "every message but the one read before pausing");
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

/** A hand-written instance: Hello, then whatever the test makes it send. */
async function rawInstance(target: string, id: string) {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(
    "/interop.v1.TestServiceRouter/Register",
    (b: Buffer) => b,
    (b: Buffer) => b,
  );
  const opens: number[] = [];
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("error", () => {});
  const welcomed = new Promise<void>((resolve) => {
    call.on("data", (m: Buffer) => {
      for (const f of decodeFrames(m)) {
        if (f.call === 0 && f.field === RouterFrame.Welcome && fromBinary(WelcomeSchema, f.body).accepted) resolve();
        if (f.field === RouterFrame.Open) opens.push(f.call);
      }
    });
  });
  const enc = new FrameEncoder();
  enc.addControl(
    0,
    InstanceFrame.Hello,
    HelloSchema,
    create(HelloSchema, { protocolVersion: ProtocolVersion.PROTOCOL_VERSION_1, instanceId: id, service: "interop.v1.TestService" }),
  );
  call.write(enc.take());
  await welcomed;
  return { call, opens, status, close: () => client.close() };
}

test("hostile frames close only the sender's stream; other instances' calls go on", async () => {
  const { router, target, logs } = await startRouter();
  const bridge = await startBridge(target, "good");
  const client = new TestClient(target);
  try {
    const good = collect(longStream(client, 30, 30));

    // 1. Bytes that are no protobuf at all.
    const garbage = await rawInstance(target, "garbage");
    garbage.call.write(Buffer.from([0x0a, 0x7f, 0x01]));
    assert.equal((await garbage.status).code, grpc.status.INVALID_ARGUMENT);
    garbage.close();

    // 2. A frame for a call that was never opened.
    const liar = await rawInstance(target, "liar");
    const enc = new FrameEncoder();
    enc.addControl(999, InstanceFrame.Headers, HeadersSchema, create(HeadersSchema));
    liar.call.write(enc.take());
    assert.equal((await liar.status).code, grpc.status.INVALID_ARGUMENT);
    liar.close();

    // 3. A window overrun: the instance answers a stream with far more than its window at once.
    const flood = await rawInstance(target, "flood");
    const calls = Array.from({ length: 4 }, () =>
      collect(longStream(client, 1, 0, 10)).then((r) => (r.status.code === grpc.status.OK ? r.messages[0]!.instanceId : r.status)),
    );
    await waitFor("a call to reach the flooding instance", () => flood.opens.length > 0);
    const big = toBinary(StreamingOutputCallResponseSchema, create(StreamingOutputCallResponseSchema, { payload: { body: new Uint8Array(40 * 1024) } }));
    for (const id of flood.opens) for (let i = 0; i < 3; i++) enc.add(id, 18, big);
    flood.call.write(enc.take());
    assert.equal((await flood.status).code, grpc.status.INVALID_ARGUMENT);
    flood.close();
    const results = await Promise.all(calls);
    for (const r of results) {
      if (typeof r === "string") assert.equal(r, "good");
      else assert.equal(r.code, grpc.status.UNAVAILABLE, "the flooded call fails UNAVAILABLE");
    }
    assert.ok(
      results.some((r) => typeof r !== "string"),
      "a call went to the flooding instance",
    );

    // 4. Two answers to a unary call.
    const twice = await rawInstance(target, "twice");
    const unaries = Array.from({ length: 4 }, () =>
      say(client, 10).then(
        (r) => r.res.instanceId,
        (e: grpc.ServiceError) => e.code,
      ),
    );
    await waitFor("a call to reach the instance", () => twice.opens.length > 0);
    const small = toBinary(SimpleResponseSchema, create(SimpleResponseSchema, { instanceId: "twice" }));
    for (const id of twice.opens) for (let i = 0; i < 2; i++) enc.add(id, 17, small);
    twice.call.write(enc.take());
    assert.equal((await twice.status).code, grpc.status.INVALID_ARGUMENT);
    twice.close();
    assert.deepEqual([...new Set(await Promise.all(unaries))].sort(), [grpc.status.UNAVAILABLE, "good"].sort());

    const log = logs.join("\n");
    assert.match(log, /closing instance "garbage".*malformed/);
    assert.match(log, /closing instance "liar".*call 999, which was never opened/);
    assert.match(log, /closing instance "flood".*overran its window/);
    assert.match(log, /closing instance "twice".*second response message/);

    const { messages, status } = await good;
    assert.equal(status.code, grpc.status.OK);
    assert.equal(messages.length, 30);
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["good"],
    );
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("1,000 concurrent calls across 3 instances: none lost, none crossed", async () => {
  const { router, target } = await startRouter();
  const bridges = await Promise.all(["i1", "i2", "i3"].map((id) => startBridge(target, id)));
  const client = new TestClient(target);
  try {
    const perInstance = new Map<string, number>();
    const calls = Array.from({ length: 1000 }, async (_, i) => {
      if (i % 4 === 3) {
        // A server stream whose message sizes encode the call.
        const s = client.serverStream(
          methodOf("StreamingOutputCall"),
          StreamingOutputCallRequestSchema,
          StreamingOutputCallResponseSchema,
          create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: i }, { size: i + 1 }] }),
        );
        const { messages, status } = await collect(s);
        assert.equal(status.code, grpc.status.OK);
        assert.deepEqual(
          messages.map((m) => m.payload?.body.length),
          [i, i + 1],
        );
        return;
      }
      const { res } = await say(client, i + 1);
      assert.equal(res.payload?.body.length, i + 1, `call ${i} got the answer of another call`);
      perInstance.set(res.instanceId, (perInstance.get(res.instanceId) ?? 0) + 1);
    });
    await Promise.all(calls);
    assert.deepEqual([...perInstance.keys()].sort(), ["i1", "i2", "i3"]);
    assert.equal(
      [...perInstance.values()].reduce((a, b) => a + b),
      750,
    );
    assert.equal(router.stats().callsInFlight, 0);
  } finally {
    client.close();
    for (const b of bridges) await b.stop(0);
    await router.close(0);
  }
});

test("random frames from instances never take the router down", async () => {
  const { router, target, logs } = await startRouter();
  const bridge = await startBridge(target, "good");
  const client = new TestClient(target);
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  try {
    for (let round = 0; round < 25; round++) {
      const fuzz = await rawInstance(target, `fuzz-${round}`);
      // Give it a call or two to talk about.
      const calls = [say(client, 5).catch(() => undefined), say(client, 5).catch(() => undefined)];
      const enc = new FrameEncoder();
      for (let i = 0; i < 20; i++) {
        const body = new Uint8Array(rand(40)).map(() => rand(256));
        enc.add(rand(4), rand(24), body);
      }
      const bytes = enc.take();
      // Sometimes also flip bytes of the encoded message itself.
      if (round % 2 === 1) for (let i = 0; i < 5; i++) bytes[rand(bytes.length)] = rand(256);
      fuzz.call.write(bytes);
      fuzz.call.end();
      await fuzz.status;
      fuzz.close();
      await Promise.all(calls);
    }
    // The router is alive and the well-behaved instance still answers.
    for (let i = 0; i < 3; i++) assert.equal((await say(client, 9)).res.instanceId, "good");
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["good"],
    );
    assert.ok(
      logs.some((l) => /closing instance "fuzz-/.test(l)),
      "fuzzed streams were closed with a reason",
    );
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("a call an instance refuses unstarted (it is draining) goes to another instance", async () => {
  const { router, target } = await startRouter();
  const bridge = await startBridge(target, "good");
  const refuser = await rawInstance(target, "refuser");
  const client = new TestClient(target);
  let answered = 0;
  refuser.call.on("data", () => {
    // Refuse every call it is offered, as a bridge does in the moment it starts draining.
    const enc = new FrameEncoder();
    for (const id of refuser.opens.splice(0)) {
      enc.addControl(
        id,
        InstanceFrame.Trailers,
        TrailersSchema,
        create(TrailersSchema, {
          code: grpc.status.UNAVAILABLE,
          message: "draining",
          metadata: [{ key: "grpcrouter-refused", value: new TextEncoder().encode("draining") }],
        }),
      );
      answered++;
    }
    if (enc.count > 0) refuser.call.write(enc.take());
  });
  try {
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => say(client, i + 1)));
    assert.deepEqual(
      results.map((r) => [r.res.instanceId, r.res.payload?.body.length]),
      Array.from({ length: 6 }, (_, i) => ["good", i + 1]),
    );
    assert.ok(answered > 0, "the refusing instance was offered calls");
  } finally {
    refuser.call.end();
    refuser.close();
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("scale-out: a bridge registers with every router it is told of; losing one router loses no instance", async () => {
  const second = await startRouter();
  // The first router names the second in its Welcome; the bridge is given only the first.
  const first = await startRouter({ peers: [second.target] });
  const bridge = await startBridge(first.target, "everywhere");
  const c1 = new TestClient(first.target);
  const c2 = new TestClient(second.target);
  try {
    await waitFor("the bridge to register with the second router", () => second.router.instances().length === 1);
    assert.equal((await say(c1, 2)).res.instanceId, "everywhere");
    assert.equal((await say(c2, 2)).res.instanceId, "everywhere");
    await first.router.close(0);
    assert.equal((await say(c2, 3)).res.payload?.body.length, 3);
  } finally {
    c1.close();
    c2.close();
    await bridge.stop(0);
    await first.router.close(0);
    await second.router.close(0);
  }
});
