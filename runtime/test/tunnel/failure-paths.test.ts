// The tunnel's failure paths, each driven through public behaviour only (createRouter,
// createRawBridge, createBridge, backoffDelay) against real peers: a hand-written instance
// or a hand-written router speaking the Register protocol over grpc-js. Nothing here depends
// on how the router or the bridge carry their streams, so these hold for any data plane.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { CancelSchema, HelloSchema, OpenSchema, ProtocolVersion, WelcomeSchema, type Hello, type Welcome } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import {
  backoffDelay,
  BridgeRefusedError,
  createBridge,
  createRawBridge,
  createRouter,
  decodeControl,
  decodeFrames,
  FrameEncoder,
  InstanceFrame,
  RouterFrame,
  type RawHandler,
} from "../../src/tunnel/index.js";
import { SimpleRequestSchema, SimpleResponseSchema } from "./gen/interop/v1/test_pb.js";
import { TestClient, TestTunnel, collect, errorOf, interopImpl, methodOf, pacedStream, quietLog, startBridge, startRouter, waitFor } from "./helpers.js";

const REGISTER = "/interop.v1.TestServiceRouter/Register";
const identity = (b: Buffer) => b;

const say = (client: TestClient, metadata = new grpc.Metadata()) =>
  client.unary(methodOf("UnaryCall"), SimpleRequestSchema, SimpleResponseSchema, create(SimpleRequestSchema, { responseSize: 3 }), metadata);

/** A server stream far longer than any test runs: it only ends when something cuts it. */
const STREAM_LENGTH = 10_000;
const endlessStream = (client: TestClient) => {
  const s = pacedStream(client, STREAM_LENGTH, 50);
  s.on("error", () => {});
  return s;
};

function frame<D extends DescMessage>(call: number, field: number, schema: D, message: MessageShape<D>): Buffer {
  const enc = new FrameEncoder();
  enc.addControl(call, field, schema, message);
  return enc.take();
}

// ---- a hand-written instance: one Register stream to a real router ----

function handInstance(target: string) {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(REGISTER, identity, identity);
  const welcomes: Welcome[] = [];
  call.on("error", () => {});
  call.on("data", (b: Buffer) => {
    for (const f of decodeFrames(b)) if (f.call === 0 && f.field === RouterFrame.Welcome) welcomes.push(decodeControl(WelcomeSchema, f.body));
  });
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  return { call, welcomes, status, close: () => client.close() };
}

// ---- a hand-written router: serves Register, plays whatever each stream's script says ----

interface FakeStream {
  readonly index: number;
  readonly hello: Hello;
  send(message: Buffer): void;
  welcome(heartbeatMs?: number, protocolVersion?: number): void;
  /** Resolves when the bridge has ended or cancelled this stream. */
  readonly gone: Promise<void>;
}

async function fakeRouter(script: (s: FakeStream) => void) {
  const server = new grpc.Server();
  const streams: FakeStream[] = [];
  server.addService(
    {
      Register: {
        path: REGISTER,
        requestStream: true,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Register: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        let goneResolve!: () => void;
        const gone = new Promise<void>((r) => (goneResolve = r));
        call.on("end", () => goneResolve());
        call.on("cancelled", () => goneResolve());
        call.on("error", () => goneResolve());
        call.once("data", (b: Buffer) => {
          const f = decodeFrames(b).find((x) => x.call === 0 && x.field === InstanceFrame.Hello);
          if (!f) return call.end();
          const s: FakeStream = {
            index: streams.length,
            hello: decodeControl(HelloSchema, f.body),
            send: (m) => void call.write(m),
            welcome: (heartbeatMs = 10_000, protocolVersion: number = ProtocolVersion.PROTOCOL_VERSION_1) =>
              void call.write(
                frame(
                  0,
                  RouterFrame.Welcome,
                  WelcomeSchema,
                  create(WelcomeSchema, {
                    accepted: true,
                    protocolVersion,
                    heartbeatInterval: { seconds: BigInt(Math.floor(heartbeatMs / 1000)), nanos: (heartbeatMs % 1000) * 1_000_000 },
                    initialWindow: 65536,
                  }),
                ),
              ),
            gone,
          };
          streams.push(s);
          script(s);
        });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { target: `127.0.0.1:${port}`, streams, close: () => server.forceShutdown() };
}

/** A raw bridge of TestTunnel to `target` whose log lines land in `logs`. */
function rawBridge(target: string, logs: string[], handler: RawHandler = async () => ({ code: 0 })) {
  return createRawBridge(TestTunnel, handler, { router: target, instanceId: "probe", logger: quietLog(logs), backoff: { initialMs: 50, maxMs: 200 } });
}

// ---- the router's side ----

test("Hello timeout: a Register stream that never says Hello is closed INVALID_ARGUMENT, and the router serves on", async () => {
  const { router, target, logs } = await startRouter({ helloTimeoutMs: 200 });
  const mute = handInstance(target);
  try {
    const status = await mute.status;
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /no Hello within 200 ms/);
    assert.match(logs.join("\n"), /no Hello within 200 ms/);
    assert.deepEqual(mute.welcomes, []);
    const bridge = await startBridge(target, "after");
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["after"],
    );
    await bridge.stop(0);
  } finally {
    mute.close();
    await router.close(0);
  }
});

test("protocol version mismatch: the router refuses the instance in Welcome, naming both versions", async () => {
  const { router, target, logs } = await startRouter();
  const future = handInstance(target);
  try {
    future.call.write(
      frame(
        0,
        InstanceFrame.Hello,
        HelloSchema,
        create(HelloSchema, { protocolVersion: 2 as ProtocolVersion, instanceId: "future", service: "interop.v1.TestService" }),
      ),
    );
    const status = await future.status;
    assert.equal(status.code, grpc.status.FAILED_PRECONDITION, status.details);
    assert.equal(future.welcomes.length, 1);
    assert.equal(future.welcomes[0]!.accepted, false);
    assert.equal(future.welcomes[0]!.reason, "protocol version 2 is not supported; this router speaks version 1");
    assert.match(logs.join("\n"), /refused instance "future" .*: protocol version 2 is not supported/);
    assert.deepEqual(router.instances(), []);
  } finally {
    future.close();
    await router.close(0);
  }
});

test("a routing-key hook that throws: the call is routed without a key and the failure is logged", async () => {
  const logs: string[] = [];
  const router = createRouter({
    services: [
      {
        tunnel: TestTunnel,
        routingKeys: {
          UnaryCall: () => {
            throw new Error("no customer header");
          },
        },
      },
    ],
    logger: quietLog(logs),
  });
  const { port } = await router.listen("127.0.0.1:0");
  const target = `127.0.0.1:${port}`;
  const bridge = await startBridge(target, "only");
  const client = new TestClient(target);
  try {
    const { res } = await say(client);
    assert.equal(res.instanceId, "only");
    assert.equal(res.payload?.body.length, 3);
    assert.match(logs.join("\n"), /routing key hook of \/interop\.v1\.TestService\/UnaryCall failed: no customer header/);
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("shutdown grace runs out: the router cuts calls still in flight with UNAVAILABLE", async () => {
  const { router, target } = await startRouter();
  const bridge = await startBridge(target, "busy");
  const client = new TestClient(target);
  try {
    const stream = endlessStream(client);
    const done = collect(stream);
    await new Promise((resolve) => stream.once("data", resolve));
    await router.close(100);
    const { status, messages } = await done;
    assert.equal(status.code, grpc.status.UNAVAILABLE, status.details);
    assert.match(status.details, /shutting down/);
    assert.ok(messages.length < STREAM_LENGTH, `${messages.length} messages`);
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("shutdown grace runs out: a stopping bridge cuts its calls still in flight, the client sees UNAVAILABLE", async () => {
  const { router, target } = await startRouter();
  const probe = { aborted: [] as string[], produced: 0 };
  const bridge = await startBridge(target, "leaving", {}, probe);
  const client = new TestClient(target);
  try {
    const stream = endlessStream(client);
    const done = collect(stream);
    await new Promise((resolve) => stream.once("data", resolve));
    await bridge.stop(100);
    const { status, messages } = await done;
    assert.equal(status.code, grpc.status.UNAVAILABLE, status.details);
    assert.ok(messages.length < STREAM_LENGTH, `${messages.length} messages`);
    // The handler was told: its signal fired.
    await waitFor("the handler to be aborted", () => probe.aborted.length === 1);
    await waitFor("the instance to be gone", () => router.instances().length === 0);
  } finally {
    client.close();
    await router.close(0);
  }
});

// ---- the bridge's side ----

test("a credentialsHook that throws: the bridge retries with backoff and registers once it works", async () => {
  let asked = 0;
  const { router, target } = await startRouter({ authorize: (h) => (h.credentials.token === "s3cret" ? undefined : "bad token") });
  const logs: string[] = [];
  const bridge = createBridge(TestTunnel, interopImpl("patient"), {
    router: target,
    instanceId: "patient",
    logger: quietLog(logs),
    backoff: { initialMs: 50, maxMs: 200 },
    credentialsHook: () => {
      if (++asked <= 2) throw new Error("vault sealed");
      return { token: "s3cret" };
    },
  });
  try {
    await bridge.start();
    assert.equal(asked, 3);
    assert.equal(logs.filter((l) => /credentials hook failed: vault sealed/.test(l)).length, 2, logs.join("\n"));
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["patient"],
    );
  } finally {
    await bridge.stop(0);
    await router.close(0);
  }
});

test("a raw handler that throws or rejects: the call ends with its status, the instance serves on", async () => {
  const { router, target } = await startRouter();
  const handler = ((call) => {
    const mode = call.metadata.get("x-mode")[0];
    if (mode === "sync") throw new Error("thrown before any await");
    return (async () => {
      if (mode === "coded") throw Object.assign(new Error("no such order"), { code: grpc.status.NOT_FOUND });
      if (mode === "plain") throw new Error("boom");
      if (mode === "string") throw "not an Error"; // eslint-disable-line no-throw-literal
      for await (const _ of call.requests) void _;
      await call.send(new Uint8Array(0));
      return { code: grpc.status.OK };
    })();
  }) as RawHandler;
  const bridge = createRawBridge(TestTunnel, handler, { router: target, instanceId: "raw", logger: quietLog(), backoff: { initialMs: 50, maxMs: 200 } });
  await bridge.start();
  const client = new TestClient(target);
  const withMode = (mode: string) => {
    const md = new grpc.Metadata();
    md.set("x-mode", mode);
    return md;
  };
  try {
    const cases: [string, grpc.status, string][] = [
      ["sync", grpc.status.UNKNOWN, "thrown before any await"],
      ["plain", grpc.status.UNKNOWN, "boom"],
      ["coded", grpc.status.NOT_FOUND, "no such order"],
      ["string", grpc.status.UNKNOWN, "not an Error"],
    ];
    for (const [mode, code, details] of cases) {
      const err = await errorOf(say(client, withMode(mode)));
      assert.deepEqual({ mode, code: err.code, details: err.details }, { mode, code, details });
    }
    await say(client, withMode("ok"));
    assert.deepEqual(
      router.instances().map((i) => i.id),
      ["raw"],
    );
  } finally {
    client.close();
    await bridge.stop(0);
    await router.close(0);
  }
});

test("a silent router (Welcome, then nothing, no Pong): the bridge drops the stream and registers anew", async () => {
  const fake = await fakeRouter((s) => s.welcome(50));
  const logs: string[] = [];
  const bridge = rawBridge(fake.target, logs);
  try {
    await bridge.start();
    await waitFor("a second Register stream", () => fake.streams.length >= 2, 30_000);
    await fake.streams[0]!.gone;
    assert.equal(fake.streams[1]!.hello.instanceId, "probe");
    assert.match(logs.join("\n"), /lost \(no frame from the router for \d+ ms \(keepalive 50 ms\)\); reconnecting in \d+ ms/);
  } finally {
    await bridge.stop(0);
    fake.close();
  }
});

test("a router that welcomes in another protocol version is refused by the bridge, naming both versions", async () => {
  for (const version of [2, 0]) {
    const fake = await fakeRouter((s) => s.welcome(10_000, version));
    const logs: string[] = [];
    const bridge = rawBridge(fake.target, logs);
    try {
      const expected = new RegExp(`the router speaks tunnel protocol version ${version}, this bridge speaks version 1`);
      const error = await bridge.start().then(
        () => assert.fail("start() resolved"),
        (e: unknown) => e as BridgeRefusedError,
      );
      assert.ok(error instanceof BridgeRefusedError, String(error));
      assert.match(error.message, /cannot register with router 127\.0\.0\.1:\d+/);
      assert.match(error.reason, expected);
      await assert.rejects(bridge.stopped, expected);
      await fake.streams[0]!.gone;
      // Final: the bridge stopped instead of dialling the same router again.
      assert.equal(fake.streams.length, 1);
      assert.match(logs.join("\n"), /stopping \(a refusal is final/);
    } finally {
      await bridge.stop(0);
      fake.close();
    }
  }
});

test("BridgeOptions.keepaliveMs that is not a positive number is refused at once, naming the option", () => {
  for (const bad of [0, -1, Number.NaN, Infinity]) {
    assert.throws(
      () => createRawBridge(TestTunnel, async () => ({ code: 0 }), { router: "127.0.0.1:1", keepaliveMs: bad }),
      /BridgeOptions\.keepaliveMs: expected a positive number of milliseconds/,
    );
  }
});

test("a connection that dies between Hello and Welcome: the bridge's HTTP/2 ping goes unanswered, it dials anew and registers", async () => {
  // The first stream's Hello arrives, then its connection goes silent both ways (a relay
  // that stops forwarding, as a NAT that forgot the flow); later connections pass.
  const fake = await fakeRouter((s) => {
    if (s.index === 0) relay.blackhole();
    else s.welcome();
  });
  const relay = await blackholingRelay(fake.target);
  const logs: string[] = [];
  const bridge = createRawBridge(TestTunnel, async () => ({ code: 0 }), {
    router: relay.target,
    instanceId: "probe",
    logger: quietLog(logs),
    keepaliveMs: 300,
    backoff: { initialMs: 50, maxMs: 200 },
  });
  try {
    await bridge.start();
    assert.equal(fake.streams.length, 2);
    assert.match(logs.join("\n"), /lost \(no answer to an HTTP\/2 ping within 300 ms while waiting for Welcome\)/);
  } finally {
    await bridge.stop(0);
    relay.close();
    fake.close();
  }
});

/** A TCP relay to `target` whose `blackhole()` silences the connections open now (no bytes, no close). */
async function blackholingRelay(target: string) {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const open = new Set<{ silenced: boolean }>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const state = { silenced: false };
    open.add(state);
    const up = net.connect(port, host);
    for (const [from, to] of [
      [down, up],
      [up, down],
    ] as const) {
      sockets.add(from);
      from.on("data", (b: Buffer) => void (state.silenced || to.write(b)));
      from.on("error", () => {});
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    target: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    blackhole: () => {
      for (const s of open) s.silenced = true;
      open.clear();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

test("malformed frames from the router: the bridge closes that stream with the reason and registers anew", async () => {
  const cases: [string, (s: FakeStream) => void, RegExp][] = [
    [
      "bytes that are no frames",
      (s) => (s.welcome(), s.send(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))),
      /malformed message from the router/,
    ],
    [
      "a frame for a call never opened",
      (s) => (s.welcome(), s.send(frame(7, RouterFrame.Cancel, CancelSchema, create(CancelSchema, { reason: "x" })))),
      /frame for call 7, which was never opened/,
    ],
    [
      "a call before Welcome",
      (s) => s.send(frame(1, RouterFrame.Open, OpenSchema, create(OpenSchema, { method: "/interop.v1.TestService/UnaryCall" }))),
      /frame for call 1 before Welcome/,
    ],
  ];
  for (const [what, misbehave, reason] of cases) {
    // The first stream misbehaves; the ones after it are a well-behaved router's.
    const fake = await fakeRouter((s) => (s.index === 0 ? misbehave(s) : s.welcome()));
    const logs: string[] = [];
    const bridge = rawBridge(fake.target, logs);
    try {
      const started = bridge.start();
      await waitFor(`${what}: a second Register stream`, () => fake.streams.length >= 2, 30_000);
      await fake.streams[0]!.gone;
      await started;
      assert.match(logs.join("\n"), reason, `${what}:\n${logs.join("\n")}`);
    } finally {
      await bridge.stop(0);
      fake.close();
    }
  }
});

// ---- reconnect backoff ----

test("backoff: ±jitter around initial × multiplier^attempt, capped at maxMs before the jitter", () => {
  const o = { initialMs: 100, multiplier: 2, maxMs: 1000, jitter: 0.25 };
  const low = () => 0;
  const high = () => 1 - Number.EPSILON;
  const mid = () => 0.5;
  assert.deepEqual(
    [0, 1, 2, 3].map((a) => backoffDelay(a, o, mid)),
    [100, 200, 400, 800],
  );
  assert.equal(backoffDelay(2, o, low), 300);
  assert.ok(Math.abs(backoffDelay(2, o, high) - 500) < 1e-6);
  // From attempt 4 on the base is the cap; jitter still spreads reconnects around it.
  for (const a of [4, 10, 1000]) {
    assert.equal(backoffDelay(a, o, mid), 1000);
    assert.equal(backoffDelay(a, o, low), 750);
    assert.ok(backoffDelay(a, o, high) <= 1250);
  }
  // gRPC's defaults: 1 s, ×1.6, ±20 %, 120 s.
  assert.equal(backoffDelay(0, {}, mid), 1000);
  assert.equal(backoffDelay(0, {}, low), 800);
  assert.equal(backoffDelay(50, {}, mid), 120_000);
  assert.equal(backoffDelay(50, {}, low), 96_000);
});

test("backoff: a bridge's reconnect delays grow by the multiplier within the jitter, and stop growing at the cap", async () => {
  // A router address nothing listens on: every attempt fails at once.
  const fake = await fakeRouter(() => {});
  const target = fake.target;
  fake.close();
  const logs: string[] = [];
  const bridge = createRawBridge(TestTunnel, async () => ({ code: 0 }), {
    router: target,
    instanceId: "lonely",
    logger: quietLog(logs),
    backoff: { initialMs: 20, multiplier: 2, maxMs: 160, jitter: 0.2 },
  });
  const delays = () => logs.flatMap((l) => /reconnecting in (\d+) ms/.exec(l)?.[1] ?? []).map(Number);
  bridge.start().catch(() => {});
  try {
    await waitFor("eight reconnects", () => delays().length >= 8, 60_000);
    const seen = delays().slice(0, 8);
    seen.forEach((d, attempt) => {
      const base = Math.min(20 * 2 ** attempt, 160);
      assert.ok(d >= Math.floor(base * 0.8) && d <= Math.ceil(base * 1.2), `attempt ${attempt}: ${d} ms, base ${base} ms (all: ${seen})`);
    });
  } finally {
    await bridge.stop(0);
  }
});
